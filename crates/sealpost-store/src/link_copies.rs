//! Encrypted copies for the opt-in `link` delivery profile: the envelope as sealed for the
//! recipient (ciphertext, never decrypted or re-encrypted here), kept under the hash of a
//! random link id until it expires. This is the one place where a message outlives its
//! e-mail on the server, which is why the profile is opt-in and the rows are swept.

use sqlx::Row;

use crate::{Result, Store, StoreTx, text};

/// A copy to keep, written in the transaction that queues its carrier.
#[derive(Debug, Clone)]
pub struct NewLinkCopy {
    /// SHA-256 (hex) of the link id in the carrier's URL; the id itself is not stored.
    pub link_hash: String,
    pub envelope_id: String,
    pub account_id: String,
    /// The envelope bytes (ciphertext).
    pub payload: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A kept copy, as read back.
#[derive(Debug, Clone)]
pub struct LinkCopy {
    pub envelope_id: String,
    pub account_id: String,
    pub payload: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

fn link_copy(r: &sqlx::any::AnyRow) -> Result<LinkCopy> {
    Ok(LinkCopy {
        envelope_id: text(r, "envelope_id")?,
        account_id: text(r, "account_id")?,
        payload: r.try_get("payload")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Store {
    /// Writes copies inside `tx`, one statement each: a payload can be megabytes, so rows are
    /// never batched into one statement.
    pub async fn insert_link_copies(&self, tx: &mut StoreTx, copies: &[NewLinkCopy]) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO link_copies (link_hash, envelope_id, account_id, payload, created_at, \
             expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        );
        for copy in copies {
            sqlx::query(&sql)
                .bind(&copy.link_hash)
                .bind(&copy.envelope_id)
                .bind(&copy.account_id)
                .bind(&copy.payload)
                .bind(copy.created_at)
                .bind(copy.expires_at)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The copy under `link_hash` if it belongs to `account_id` and has not expired at `now`.
    /// Unknown, expired and another account's copies all read as None.
    pub async fn link_copy(
        &self,
        link_hash: &str,
        account_id: &str,
        now: i64,
    ) -> Result<Option<LinkCopy>> {
        let row = sqlx::query(&self.sql(
            "SELECT envelope_id, account_id, payload, created_at, expires_at FROM link_copies \
             WHERE link_hash = ? AND account_id = ? AND expires_at > ?",
        ))
        .bind(link_hash)
        .bind(account_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(link_copy).transpose()
    }

    /// Every copy kept for an envelope, expired or not (what the database holds of it).
    pub async fn link_copies_for_envelope(&self, envelope_id: &str) -> Result<Vec<LinkCopy>> {
        let rows = sqlx::query(&self.sql(
            "SELECT envelope_id, account_id, payload, created_at, expires_at FROM link_copies \
             WHERE envelope_id = ? ORDER BY created_at",
        ))
        .bind(envelope_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(link_copy).collect()
    }

    /// Deletes the copies that expired at or before `now`; returns how many.
    pub async fn sweep_link_copies(&self, now: i64) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM link_copies WHERE expires_at <= ?"))
                .bind(now)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Deletes every copy of an envelope (revocation); returns how many.
    pub async fn delete_link_copies_for_envelope(&self, envelope_id: &str) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM link_copies WHERE envelope_id = ?"))
                .bind(envelope_id)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Moves the expiry of an envelope's copies, as if `delivery.link_days` had passed.
    #[cfg(feature = "testing")]
    pub async fn set_link_copies_expiry(&self, envelope_id: &str, expires_at: i64) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("UPDATE link_copies SET expires_at = ? WHERE envelope_id = ?"))
                .bind(expires_at)
                .bind(envelope_id)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
