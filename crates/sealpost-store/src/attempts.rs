//! Attempt reservations for everything that guesses a secret: sign-ins of recipients and
//! admins, secret answers, and the per-source budget in front of them.
//!
//! An attempt is counted *before* the secret is verified, by one conditional `UPDATE` that
//! only succeeds while the limit is not reached; its affected-row count says whether the
//! attempt may go ahead. That is atomic on all three backends (MariaDB has no
//! `UPDATE … RETURNING`), so parallel guesses can never exceed a limit, whichever node they
//! reach. A right secret then gives the reservation back; a wrong one keeps it.

use crate::{Result, Store, StoreError};

/// Whose sign-in counter an attempt is reserved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Account,
    Admin,
}

impl Principal {
    fn table(self) -> &'static str {
        match self {
            Principal::Account => "accounts",
            Principal::Admin => "admins",
        }
    }
}

/// How sign-in failures lock a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// Failed attempts that lock.
    pub threshold: i64,
    /// Length of the first lock; every further lock before the holder gets in doubles it.
    pub lock_secs: i64,
    /// The longest a lock may grow to.
    pub max_lock_secs: i64,
}

impl LockPolicy {
    /// The length of a principal's lock number `previous_locks + 1`.
    pub fn lock_length(&self, previous_locks: i64) -> i64 {
        let doublings = u32::try_from(previous_locks.clamp(0, 30)).unwrap_or(30);
        self.lock_secs
            .max(0)
            .saturating_mul(1_i64 << doublings)
            .min(self.max_lock_secs.max(self.lock_secs))
    }
}

/// The answer to a sign-in reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The secret may be checked. `locks` says that this attempt used the last one: the
    /// principal is locked already and stays so unless the secret turns out right.
    Proceed { locks: bool },
    /// Locked (or no such principal): the secret must not be checked.
    Refused,
}

impl Store {
    /// Reserves one sign-in attempt of an account or admin. An expired lock starts a fresh
    /// count; the attempt that reaches the threshold locks at once (see [`Reservation`]).
    pub async fn reserve_login_attempt(
        &self,
        principal: Principal,
        id: &str,
        policy: LockPolicy,
        now: i64,
    ) -> Result<Reservation> {
        let table = principal.table();
        let mut tx = self.begin().await?;
        // `failed_logins` is assigned first: MariaDB evaluates assignments left to right with
        // the new values, the others with the old ones; in this order both read the old lock.
        let reserved = sqlx::query(&self.sql(&format!(
            "UPDATE {table} SET \
             failed_logins = CASE WHEN locked_until IS NULL THEN failed_logins + 1 ELSE 1 END, \
             locked_until = NULL \
             WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?)"
        )))
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reserved != 1 {
            return Ok(Reservation::Refused);
        }
        // The row is write-locked by the UPDATE until commit, so this read is this attempt's.
        let row: (i64, i64) = sqlx::query_as(&self.sql(&format!(
            "SELECT failed_logins, lock_count FROM {table} WHERE id = ?"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let (failures, previous_locks) = row;
        let locks = failures >= policy.threshold.max(1);
        if locks {
            sqlx::query(&self.sql(&format!(
                "UPDATE {table} SET locked_until = ?, lock_count = lock_count + 1 WHERE id = ?"
            )))
            .bind(now.saturating_add(policy.lock_length(previous_locks)))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Reservation::Proceed { locks })
    }

    /// Gives a sign-in reservation back after the right secret: failures, lock and the lock
    /// growth start again from nothing.
    pub async fn release_login_attempt(&self, principal: Principal, id: &str) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET failed_logins = 0, locked_until = NULL, lock_count = 0 WHERE id = ?",
            principal.table()
        );
        self.execute_keyed(&sql, id).await
    }

    /// Reserves one secret-answer attempt of an account while fewer than `max` are used;
    /// returns the attempt's number (1-based), or None when the answers are used up.
    pub async fn reserve_answer_attempt(&self, account_id: &str, max: i64) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let reserved = sqlx::query(&self.sql(
            "UPDATE accounts SET failed_answers = failed_answers + 1 \
             WHERE id = ? AND failed_answers < ?",
        ))
        .bind(account_id)
        .bind(max)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reserved != 1 {
            return Ok(None);
        }
        let count: i64 =
            sqlx::query_scalar(&self.sql("SELECT failed_answers FROM accounts WHERE id = ?"))
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Some(count))
    }

    /// Reserves one attempt of a client address (the caller's key for it) in its window of
    /// `window_secs`: false when the source already has `limit` failures (or attempts in
    /// flight) in the window. A window starts at its first attempt.
    pub async fn reserve_source_attempt(
        &self,
        source: &str,
        limit: i64,
        window_secs: i64,
        now: i64,
    ) -> Result<bool> {
        let window_over = now.saturating_sub(window_secs.max(1));
        // A few tries: the first attempt of a source inserts its row, and a concurrent first
        // attempt that loses the insert race (or reads the row mid-change) counts again.
        for _ in 0..3 {
            // `failures` first, for MariaDB's left-to-right assignments (see above).
            let counted = sqlx::query(&self.sql(
                "UPDATE source_failures SET \
                 failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END, \
                 window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END \
                 WHERE source = ? AND (window_start <= ? OR failures < ?)",
            ))
            .bind(window_over)
            .bind(window_over)
            .bind(now)
            .bind(source)
            .bind(window_over)
            .bind(limit)
            .execute(self.pool())
            .await?
            .rows_affected();
            if counted == 1 {
                return Ok(true);
            }
            let row: Option<(i64, i64)> = sqlx::query_as(
                &self.sql("SELECT window_start, failures FROM source_failures WHERE source = ?"),
            )
            .bind(source)
            .fetch_optional(self.pool())
            .await?;
            match row {
                Some((start, failures)) if start > window_over && failures >= limit => {
                    return Ok(false);
                }
                // Made by a concurrent first attempt after our update: count on it.
                Some(_) => continue,
                None if limit < 1 => return Ok(false),
                None => {}
            }
            let inserted = sqlx::query(&self.sql(
                "INSERT INTO source_failures (source, window_start, failures) VALUES (?, ?, 1)",
            ))
            .bind(source)
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(StoreError::from_write);
            match inserted {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        // Still racing after three tries: refuse this one attempt rather than over-count.
        Ok(false)
    }

    /// Gives a source's reservation back after a right secret: only failures count.
    pub async fn release_source_attempt(&self, source: &str) -> Result<()> {
        self.execute_keyed(
            "UPDATE source_failures SET failures = failures - 1 WHERE source = ? AND failures > 0",
            source,
        )
        .await
    }

    /// Runs one statement whose only parameter is a row's key.
    async fn execute_keyed(&self, sql: &str, key: &str) -> Result<()> {
        sqlx::query(&self.sql(sql))
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets sources whose window began before `before` (housekeeping).
    pub async fn purge_source_failures(&self, before: i64) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM source_failures WHERE window_start < ?"))
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_up_to_the_cap() {
        let p = LockPolicy {
            threshold: 5,
            lock_secs: 900,
            max_lock_secs: 900 * 8,
        };
        assert_eq!(p.lock_length(0), 900);
        assert_eq!(p.lock_length(1), 1800);
        assert_eq!(p.lock_length(3), 7200);
        assert_eq!(p.lock_length(4), 7200);
        assert_eq!(p.lock_length(i64::MAX), 7200);
        assert_eq!(p.lock_length(-3), 900);
    }
}
