//! Daily statistics counters shared by all nodes, and the counts the dashboard derives from
//! other tables. Days are UTC day numbers (Unix seconds / 86 400).

use sqlx::Row;

use crate::{Backend, Result, Store, text};

/// The UTC day number of a Unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

impl Store {
    /// Adds `by` to a counter in memory only. Writing each event at once would add a database
    /// write to every accepted mail; [`Store::flush_counters`] writes the sums (the node's
    /// housekeeping does every few seconds, and readers before they read).
    pub fn buffer_counter(&self, name: &str, day: i64, by: i64) {
        let mut pending = self
            .pending_counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pending.iter_mut().find(|(n, d, _)| n == name && *d == day) {
            Some(entry) => entry.2 += by,
            None => pending.push((name.to_string(), day, by)),
        }
    }

    /// Writes buffered counter increments; those that fail stay buffered for the next flush.
    pub async fn flush_counters(&self) {
        let batch = std::mem::take(
            &mut *self
                .pending_counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (name, day, by) in batch {
            if let Err(e) = self.bump_counter(&name, day, by).await {
                tracing::warn!(error = %e, counter = %name, "counter update failed; kept for later");
                self.buffer_counter(&name, day, by);
            }
        }
    }

    /// Adds `by` to the counter `name` of `day`; every node may do so at the same time.
    pub async fn bump_counter(&self, name: &str, day: i64, by: i64) -> Result<()> {
        let q = match self.backend() {
            Backend::MySql => {
                "INSERT INTO stat_counters (day, name, value) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE value = value + VALUES(value)"
            }
            _ => {
                "INSERT INTO stat_counters (day, name, value) VALUES (?, ?, ?) \
                 ON CONFLICT (day, name) DO UPDATE SET value = stat_counters.value + excluded.value"
            }
        };
        sqlx::query(&self.sql(q))
            .bind(day)
            .bind(name)
            .bind(by)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every counter row from `from_day` on, as (day, name, value). Summing happens in Rust
    /// because SUM decodes as NUMERIC/DECIMAL on PostgreSQL/MariaDB, which `Any` cannot read.
    pub async fn counters_since(&self, from_day: i64) -> Result<Vec<(i64, String, i64)>> {
        let rows = sqlx::query(
            &self.sql("SELECT day, name, value FROM stat_counters WHERE day >= ? ORDER BY day"),
        )
        .bind(from_day)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, text(r, "name")?, r.try_get("value")?)))
            .collect()
    }

    pub async fn count_accounts_created_since(&self, since: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar(&self.sql("SELECT COUNT(*) FROM accounts WHERE created_at >= ?"))
                .bind(since)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Envelopes opened for the first time since `since`.
    pub async fn count_opens_since(&self, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT COUNT(*) FROM message_ledger WHERE first_opened_at >= ?"),
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    /// Accounts locked right now after too many failed logins.
    pub async fn count_locked_accounts(&self, now: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar(&self.sql("SELECT COUNT(*) FROM accounts WHERE locked_until > ?"))
                .bind(now)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
