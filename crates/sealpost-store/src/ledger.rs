//! The message ledger: which envelope was sealed for whom and when it was first opened.
//! Metadata only; the message itself travels in the e-mail and is never stored.

use sqlx::Row;

use crate::{ROWS_PER_STATEMENT, Result, Store, StoreTx, text, value_rows};

#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub envelope_id: String,
    pub sender: String,
    pub recipient: String,
    pub account_id: String,
    pub created_at: i64,
    pub first_opened_at: Option<i64>,
}

impl Store {
    pub async fn insert_ledger(&self, tx: &mut StoreTx, entry: &LedgerEntry) -> Result<()> {
        self.insert_ledger_many(tx, std::slice::from_ref(entry))
            .await
    }

    /// One statement for many entries (one per carrier of a message, or of a commit group).
    pub async fn insert_ledger_many(
        &self,
        tx: &mut StoreTx,
        entries: &[LedgerEntry],
    ) -> Result<()> {
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let q = format!(
                "INSERT INTO message_ledger (envelope_id, sender, recipient, account_id, created_at, \
                 first_opened_at) VALUES {}",
                value_rows(chunk.len(), "(?, ?, ?, ?, ?, ?)")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql);
            for entry in chunk {
                query = query
                    .bind(&entry.envelope_id)
                    .bind(&entry.sender)
                    .bind(&entry.recipient)
                    .bind(&entry.account_id)
                    .bind(entry.created_at)
                    .bind(entry.first_opened_at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Records the first open; later opens leave the first time in place.
    pub async fn mark_opened(&self, envelope_id: &str, now: i64) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE message_ledger SET first_opened_at = ? WHERE envelope_id = ? AND first_opened_at IS NULL",
        ))
        .bind(now)
        .bind(envelope_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn ledger_entry(&self, envelope_id: &str) -> Result<Option<LedgerEntry>> {
        let row = sqlx::query(&self.sql(
            "SELECT envelope_id, sender, recipient, account_id, created_at, first_opened_at \
             FROM message_ledger WHERE envelope_id = ?",
        ))
        .bind(envelope_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(LedgerEntry {
                envelope_id: text(&r, "envelope_id")?,
                sender: text(&r, "sender")?,
                recipient: text(&r, "recipient")?,
                account_id: text(&r, "account_id")?,
                created_at: r.try_get("created_at")?,
                first_opened_at: r.try_get("first_opened_at")?,
            })
        })
        .transpose()
    }

    pub async fn count_ledger_since(&self, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT COUNT(*) FROM message_ledger WHERE created_at >= ?"),
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }
}
