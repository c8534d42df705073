//! Temporary opens: a payload posted to `/open` waits here under a one-time token until the
//! recipient's browser comes back with its session cookie. The payload is the envelope itself,
//! which is ciphertext, so nothing readable is stored.

use crate::{Result, Store};

impl Store {
    pub async fn insert_temp_open(
        &self,
        token_hash: &str,
        payload: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO temp_opens (token_hash, payload, created_at, expires_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(payload)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn temp_open(&self, token_hash: &str, now: i64) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT payload FROM temp_opens WHERE token_hash = ? AND expires_at > ?"),
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn delete_temp_open(&self, token_hash: &str) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM temp_opens WHERE token_hash = ?"))
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
