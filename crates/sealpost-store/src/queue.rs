//! The outbound queue. Several nodes deliver from one queue: an item is claimed by writing a
//! lease (owner, until) with a conditional UPDATE, so only one worker holds it at a time and a
//! crashed node's items become due again when its lease runs out.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    Backend, ROWS_PER_STATEMENT, Result, Store, StoreError, StoreTx, opt_text, text, value_rows,
};

pub struct NewQueuedMail<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub data: &'a [u8],
    pub now: i64,
    pub give_up_at: i64,
}

#[derive(Clone)]
pub struct QueueItem {
    pub id: String,
    pub kind: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub created_at: i64,
    pub attempts: i64,
    pub give_up_at: i64,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for QueueItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueItem")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("recipients", &self.rcpt_to.len())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    pub queued: i64,
    pub deferred: i64,
    pub oldest_created_at: Option<i64>,
}

fn join_rcpts(rcpts: &[String]) -> String {
    rcpts.join("\n")
}

fn split_rcpts(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn item_from_row(row: &AnyRow) -> Result<QueueItem> {
    Ok(QueueItem {
        id: text(row, "id")?,
        kind: text(row, "kind")?,
        mail_from: text(row, "mail_from")?,
        rcpt_to: split_rcpts(&text(row, "rcpt_to")?),
        data: row.try_get("data")?,
        created_at: row.try_get("created_at")?,
        attempts: row.try_get("attempts")?,
        give_up_at: row.try_get("give_up_at")?,
        last_error: opt_text(row, "last_error")?,
    })
}

impl Store {
    /// Adds a mail to the queue inside the caller's transaction (the SMTP 250 waits for its commit).
    pub async fn enqueue(&self, tx: &mut StoreTx, mail: &NewQueuedMail<'_>) -> Result<()> {
        self.enqueue_many(tx, std::slice::from_ref(mail)).await
    }

    /// Adds several mails with as few statements as possible: a message with ten recipients
    /// becomes ten carriers, and one round trip per row to the database was most of their cost.
    pub async fn enqueue_many(&self, tx: &mut StoreTx, mails: &[NewQueuedMail<'_>]) -> Result<()> {
        for chunk in mails.chunks(ROWS_PER_STATEMENT) {
            let q = format!(
                "INSERT INTO outbound_queue (id, kind, mail_from, rcpt_to, data, created_at, \
                 next_attempt_at, give_up_at, attempts) VALUES {}",
                value_rows(chunk.len(), "(?, ?, ?, ?, ?, ?, ?, ?, 0)")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql);
            for mail in chunk {
                query = query
                    .bind(mail.id)
                    .bind(mail.kind)
                    .bind(mail.mail_from)
                    .bind(join_rcpts(mail.rcpt_to))
                    .bind(mail.data)
                    .bind(mail.now)
                    .bind(mail.now)
                    .bind(mail.give_up_at);
            }
            query
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_write)?;
        }
        Ok(())
    }

    /// Claims up to `limit` due items for `owner` until `lease_until` and returns them.
    pub async fn lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<QueueItem>> {
        if self.backend() != Backend::MySql {
            return self
                .lease_due_returning(owner, now, lease_until, limit)
                .await;
        }
        // MariaDB has neither UPDATE … RETURNING nor LIMIT in an IN-subquery: claim row by row.
        let candidates: Vec<String> = sqlx::query_scalar(&self.sql(
            "SELECT id FROM outbound_queue WHERE next_attempt_at <= ? \
             AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?",
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut items = Vec::with_capacity(candidates.len());
        for id in candidates {
            // The condition repeats the due check: if another worker claimed the row in the
            // meantime, no row changes and we skip it.
            let claimed = sqlx::query(&self.sql(
                "UPDATE outbound_queue SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 \
                 WHERE id = ? AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)",
            ))
            .bind(owner)
            .bind(lease_until)
            .bind(&id)
            .bind(now)
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
            if claimed != 1 {
                continue;
            }
            let row = sqlx::query(&self.sql(
                "SELECT id, kind, mail_from, rcpt_to, data, created_at, attempts, give_up_at, last_error \
                 FROM outbound_queue WHERE id = ? AND lease_owner = ?",
            ))
            .bind(&id)
            .bind(owner)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                items.push(item_from_row(&row)?);
            }
        }
        Ok(items)
    }

    /// Claims and returns due items in one statement (SQLite, PostgreSQL). On PostgreSQL the
    /// candidates are locked with SKIP LOCKED, so two nodes leasing at the same moment take
    /// different rows instead of the same ones; SQLite runs one writer at a time anyway.
    async fn lease_due_returning(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<QueueItem>> {
        let lock = if self.backend() == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let q = format!(
            "UPDATE outbound_queue SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbound_queue WHERE next_attempt_at <= ? \
             AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?{lock}) \
             RETURNING id, kind, mail_from, rcpt_to, data, created_at, attempts, give_up_at, last_error"
        );
        let rows = sqlx::query(&self.sql(&q))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// Removes a delivered (or bounced) item, only while we still hold its lease.
    pub async fn complete(&self, tx: &mut StoreTx, id: &str, owner: &str) -> Result<bool> {
        Ok(self.complete_many(tx, &[id.to_string()], owner).await? == 1)
    }

    /// Removes several delivered items held by `owner` in one statement; returns how many went.
    pub async fn complete_many(
        &self,
        tx: &mut StoreTx,
        ids: &[String],
        owner: &str,
    ) -> Result<u64> {
        let mut removed = 0;
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let q = format!(
                "DELETE FROM outbound_queue WHERE lease_owner = ? AND id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql).bind(owner);
            for id in chunk {
                query = query.bind(id);
            }
            removed += query.execute(&mut **tx).await?.rows_affected();
        }
        Ok(removed)
    }

    /// Keeps the recipients still to be tried and releases the lease until the next attempt.
    pub async fn reschedule(
        &self,
        tx: &mut StoreTx,
        id: &str,
        owner: &str,
        remaining: &[String],
        next_attempt_at: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE outbound_queue SET rcpt_to = ?, next_attempt_at = ?, last_error = ?, \
             lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
        ))
        .bind(join_rcpts(remaining))
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn queue_stats(&self, now: i64) -> Result<QueueStats> {
        // Only COUNT/MIN: SUM gives NUMERIC/DECIMAL on PostgreSQL/MariaDB, which `Any` cannot decode.
        let row = sqlx::query(&self.sql(
            "SELECT (SELECT COUNT(*) FROM outbound_queue) AS queued, \
             (SELECT COUNT(*) FROM outbound_queue WHERE attempts > 0 AND next_attempt_at > ?) AS deferred, \
             (SELECT MIN(created_at) FROM outbound_queue) AS oldest",
        ))
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(QueueStats {
            queued: row.try_get("queued")?,
            deferred: row.try_get("deferred")?,
            oldest_created_at: row.try_get("oldest")?,
        })
    }

    pub async fn queue_recent_errors(&self, limit: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(&self.sql(
            "SELECT id, last_error FROM outbound_queue WHERE last_error IS NOT NULL \
             ORDER BY next_attempt_at DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, "id")?, text(r, "last_error")?)))
            .collect()
    }
}
