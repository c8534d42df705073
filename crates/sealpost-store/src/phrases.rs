//! Recipients' personal security phrases (one per account, optional). The phrase is shown in
//! clear in every carrier sent to its account, so it is not a secret and is kept as text.

use crate::{Backend, Result, Store, opt_text};

impl Store {
    /// The account's security phrase, if it chose one.
    pub async fn security_phrase(&self, account_id: &str) -> Result<Option<String>> {
        let row =
            sqlx::query(&self.sql("SELECT phrase FROM security_phrases WHERE account_id = ?"))
                .bind(account_id)
                .fetch_optional(self.pool())
                .await?;
        match row {
            Some(row) => opt_text(&row, "phrase"),
            None => Ok(None),
        }
    }

    /// Sets the account's phrase, or removes it (`None`).
    pub async fn set_security_phrase(
        &self,
        account_id: &str,
        phrase: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let Some(phrase) = phrase else {
            sqlx::query(&self.sql("DELETE FROM security_phrases WHERE account_id = ?"))
                .bind(account_id)
                .execute(self.pool())
                .await?;
            return Ok(());
        };
        let q = match self.backend() {
            Backend::MySql => {
                "INSERT INTO security_phrases (account_id, phrase, updated_at) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE phrase = VALUES(phrase), updated_at = VALUES(updated_at)"
            }
            _ => {
                "INSERT INTO security_phrases (account_id, phrase, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (account_id) DO UPDATE SET phrase = excluded.phrase, updated_at = excluded.updated_at"
            }
        };
        sqlx::query(&self.sql(q))
            .bind(account_id)
            .bind(phrase)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
