//! Recovery secrets: the one-time code mailed to an account for a self-service reset, and the
//! one-time link an administrator's reset mails to the recipient. Only hashes are stored; every
//! check that uses up a try or the secret itself is one conditional statement, so parallel
//! requests cannot use a code more often than allowed or a link twice.

use crate::{Result, Store, StoreError};

impl Store {
    /// Stores a new recovery code for the account (replacing any earlier one, whose tries it
    /// resets) unless `max_per_window` codes were already sent within `window_secs`.
    /// Returns whether the code was stored (and may be mailed).
    pub async fn issue_recovery_code(
        &self,
        account_id: &str,
        code_hash: &str,
        now: i64,
        expires_at: i64,
        window_secs: i64,
        max_per_window: i64,
    ) -> Result<bool> {
        let window_over = now - window_secs;
        // MySQL assigns left to right with the new values, so the counter is set before the
        // window start it depends on.
        let updated = sqlx::query(&self.sql(
            "UPDATE recovery_codes SET code_hash = ?, attempts = 0, expires_at = ?, \
             sent_in_window = CASE WHEN window_start <= ? THEN 1 ELSE sent_in_window + 1 END, \
             window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END \
             WHERE account_id = ? AND (window_start <= ? OR sent_in_window < ?)",
        ))
        .bind(code_hash)
        .bind(expires_at)
        .bind(window_over)
        .bind(window_over)
        .bind(now)
        .bind(account_id)
        .bind(window_over)
        .bind(max_per_window)
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(true);
        }
        let inserted = sqlx::query(&self.sql(
            "INSERT INTO recovery_codes \
             (account_id, code_hash, attempts, expires_at, window_start, sent_in_window) \
             VALUES (?, ?, 0, ?, ?, 1)",
        ))
        .bind(account_id)
        .bind(code_hash)
        .bind(expires_at)
        .bind(now)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(true),
            // The row exists, so the update above found the window full.
            Err(e) => match StoreError::from_write(e) {
                StoreError::Conflict => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Uses up one try of the account's current code and returns its hash; None when there is
    /// no live code (none sent, expired, used, or out of tries).
    pub async fn try_recovery_code(
        &self,
        account_id: &str,
        now: i64,
        max_attempts: i64,
    ) -> Result<Option<String>> {
        let reserved = sqlx::query(&self.sql(
            "UPDATE recovery_codes SET attempts = attempts + 1 \
             WHERE account_id = ? AND attempts < ? AND expires_at > ? AND code_hash <> ''",
        ))
        .bind(account_id)
        .bind(max_attempts)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if reserved != 1 {
            return Ok(None);
        }
        let row =
            sqlx::query(&self.sql("SELECT code_hash FROM recovery_codes WHERE account_id = ?"))
                .bind(account_id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| crate::text(&r, "code_hash")).transpose()
    }

    /// Marks the account's code used if it is still `code_hash`; true for exactly one caller.
    pub async fn consume_recovery_code(&self, account_id: &str, code_hash: &str) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE recovery_codes SET code_hash = '', expires_at = 0 \
             WHERE account_id = ? AND code_hash = ?",
        ))
        .bind(account_id)
        .bind(code_hash)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Stores a reset link for the account; earlier links of the account (and expired links of
    /// any account) stop working.
    pub async fn insert_reset_link(
        &self,
        token_hash: &str,
        account_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(&self.sql("DELETE FROM reset_links WHERE account_id = ? OR expires_at <= ?"))
            .bind(account_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.sql(
            "INSERT INTO reset_links (token_hash, account_id, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(account_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        crate::commit(tx).await
    }

    /// The account a live reset link belongs to, without using it up.
    pub async fn reset_link_account(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            &self.sql("SELECT account_id FROM reset_links WHERE token_hash = ? AND expires_at > ?"),
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| crate::text(&r, "account_id")).transpose()
    }

    /// Uses up a live reset link; the account it belonged to, for exactly one caller.
    pub async fn consume_reset_link(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        let Some(account_id) = self.reset_link_account(token_hash, now).await? else {
            return Ok(None);
        };
        let n = sqlx::query(&self.sql("DELETE FROM reset_links WHERE token_hash = ?"))
            .bind(token_hash)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok((n == 1).then_some(account_id))
    }
}
