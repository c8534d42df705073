//! Recipients' second factor: the TOTP state of an account (seed wrapped under the master key
//! by the caller, never in clear here), its single-use recovery codes (hashes only), remembered
//! devices (token hashes only) and sign-ins waiting for their second factor. Every "use once"
//! is one conditional UPDATE or DELETE, so two nodes racing with one code or one pending
//! sign-in cannot both win.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Result, Store, StoreError, text};

/// The TOTP state of an account. The seeds are wrapped (see `KeyRing::wrap_factor_secret`).
#[derive(Clone, Default)]
pub struct TotpState {
    /// The confirmed seed, wrapped; None when no authenticator is enrolled.
    pub secret_wrapped: Option<Vec<u8>>,
    pub enrolled_at: Option<i64>,
    /// The seed shown on the enrolment page, waiting for the first code.
    pub pending_wrapped: Option<Vec<u8>>,
    /// The newest time step used.
    pub last_step: Option<i64>,
    /// An administrator asked for a new enrolment at the next sign-in.
    pub must_enrol: bool,
}

impl TotpState {
    pub fn enrolled(&self) -> bool {
        self.secret_wrapped.is_some()
    }
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState")
            .field("enrolled_at", &self.enrolled_at)
            .field("pending", &self.pending_wrapped.is_some())
            .field("must_enrol", &self.must_enrol)
            .finish_non_exhaustive()
    }
}

/// A remembered device of an account, as listed in the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedDevice {
    /// The SHA-256 of the device token (not the token): names the device for revocation.
    pub token_hash: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
}

/// A sign-in that passed its first factor and waits for the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub account_id: String,
    /// How the first factor was shown (`password`, `mailbox-code`).
    pub first_method: String,
    /// Where the reader goes once signed in (already checked as a safe local path).
    pub next_path: String,
    pub ip: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A pending sign-in to store: the token's hash, never the token.
#[derive(Debug, Clone, Copy)]
pub struct NewPendingSignIn<'a> {
    pub token_hash: &'a str,
    pub account_id: &'a str,
    pub first_method: &'a str,
    pub next_path: &'a str,
    pub ip: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

impl Store {
    /// The TOTP state of an account (a default, empty state when it never had one).
    pub async fn totp_state(&self, account_id: &str) -> Result<TotpState> {
        let row = sqlx::query(&self.sql(
            "SELECT secret_wrapped, enrolled_at, pending_wrapped, last_step, must_enrol \
             FROM account_totp WHERE account_id = ?",
        ))
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(TotpState::default());
        };
        Ok(TotpState {
            secret_wrapped: r.try_get("secret_wrapped")?,
            enrolled_at: r.try_get("enrolled_at")?,
            pending_wrapped: r.try_get("pending_wrapped")?,
            last_step: r.try_get("last_step")?,
            must_enrol: flag(&r, "must_enrol")?,
        })
    }

    /// Makes sure the account has a TOTP row (for the conditional updates below).
    async fn ensure_totp_row(&self, account_id: &str) -> Result<()> {
        let q = match self.backend() {
            Backend::MySql => {
                "INSERT IGNORE INTO account_totp (account_id, must_enrol) VALUES (?, 0)"
            }
            _ => {
                "INSERT INTO account_totp (account_id, must_enrol) VALUES (?, 0) \
                 ON CONFLICT (account_id) DO NOTHING"
            }
        };
        sqlx::query(&self.sql(q))
            .bind(account_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Keeps a new seed (wrapped) to be confirmed by its first code; an enrolled seed stays
    /// in force until then.
    pub async fn set_totp_pending(&self, account_id: &str, wrapped: &[u8]) -> Result<()> {
        self.ensure_totp_row(account_id).await?;
        sqlx::query(&self.sql("UPDATE account_totp SET pending_wrapped = ? WHERE account_id = ?"))
            .bind(wrapped)
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Makes the pending seed the enrolled one, with `step` (the confirming code's) as used.
    /// False when there was no pending seed (e.g. a second, racing confirmation).
    pub async fn confirm_totp(&self, account_id: &str, step: i64, now: i64) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE account_totp SET secret_wrapped = pending_wrapped, pending_wrapped = NULL, \
             enrolled_at = ?, last_step = ?, must_enrol = 0 \
             WHERE account_id = ? AND pending_wrapped IS NOT NULL",
        ))
        .bind(now)
        .bind(step)
        .bind(account_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Claims a TOTP time step: true only when `step` is newer than every step used before.
    /// One conditional UPDATE, so two requests (on any nodes) racing with one code cannot
    /// both win.
    pub async fn claim_totp_step(&self, account_id: &str, step: i64) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE account_totp SET last_step = ? \
             WHERE account_id = ? AND secret_wrapped IS NOT NULL \
             AND (last_step IS NULL OR last_step < ?)",
        ))
        .bind(step)
        .bind(account_id)
        .bind(step)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Removes the authenticator (enrolled and pending seed); `must_enrol` asks for a new
    /// enrolment at the next sign-in.
    pub async fn clear_totp(&self, account_id: &str, must_enrol: bool) -> Result<()> {
        self.ensure_totp_row(account_id).await?;
        sqlx::query(&self.sql(
            "UPDATE account_totp SET secret_wrapped = NULL, pending_wrapped = NULL, \
             enrolled_at = NULL, last_step = NULL, must_enrol = ? WHERE account_id = ?",
        ))
        .bind(i64::from(must_enrol))
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A page of wrapped TOTP seeds (enrolled, pending) in account order after `after`, for a
    /// master-key rotation.
    pub async fn totp_seeds_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<Vec<u8>>, Option<Vec<u8>>)>> {
        let rows = sqlx::query(&self.sql(
            "SELECT account_id, secret_wrapped, pending_wrapped FROM account_totp \
             WHERE account_id > ? ORDER BY account_id LIMIT ?",
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    text(r, "account_id")?,
                    r.try_get("secret_wrapped")?,
                    r.try_get("pending_wrapped")?,
                ))
            })
            .collect()
    }

    /// Replaces one wrapped seed (the enrolled one, or the pending one) only if it still
    /// holds `old`, so a concurrent enrolment is never overwritten.
    pub async fn replace_totp_seed(
        &self,
        account_id: &str,
        pending: bool,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let q = if pending {
            "UPDATE account_totp SET pending_wrapped = ? WHERE account_id = ? AND pending_wrapped = ?"
        } else {
            "UPDATE account_totp SET secret_wrapped = ? WHERE account_id = ? AND secret_wrapped = ?"
        };
        let n = sqlx::query(&self.sql(q))
            .bind(new)
            .bind(account_id)
            .bind(old)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Replaces the account's recovery codes by these hashes (all unused).
    pub async fn replace_factor_recovery_codes(
        &self,
        account_id: &str,
        hashes: &[String],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(&self.sql("DELETE FROM factor_recovery_codes WHERE account_id = ?"))
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query(&self.sql(
                "INSERT INTO factor_recovery_codes (account_id, code_hash, created_at) VALUES (?, ?, ?)",
            ))
            .bind(account_id)
            .bind(hash.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_write)?;
        }
        crate::commit(tx).await
    }

    /// Uses one recovery code: true only for an unused code of this account, and only once.
    pub async fn use_factor_recovery_code(
        &self,
        account_id: &str,
        code_hash: &str,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE factor_recovery_codes SET used_at = ? \
             WHERE account_id = ? AND code_hash = ? AND used_at IS NULL",
        ))
        .bind(now)
        .bind(account_id)
        .bind(code_hash)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// How many of the account's recovery codes are still unused.
    pub async fn unused_factor_recovery_codes(&self, account_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(&self.sql(
            "SELECT COUNT(*) FROM factor_recovery_codes WHERE account_id = ? AND used_at IS NULL",
        ))
        .bind(account_id)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn delete_factor_recovery_codes(&self, account_id: &str) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM factor_recovery_codes WHERE account_id = ?"))
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn insert_remembered_device(
        &self,
        token_hash: &str,
        account_id: &str,
        user_agent: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO remembered_devices (token_hash, account_id, user_agent, created_at, last_used_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(account_id)
        .bind(user_agent)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Records a use of a remembered device: true only when the token is this account's and
    /// has not expired.
    pub async fn use_remembered_device(
        &self,
        token_hash: &str,
        account_id: &str,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE remembered_devices SET last_used_at = ? \
             WHERE token_hash = ? AND account_id = ? AND expires_at > ?",
        ))
        .bind(now)
        .bind(token_hash)
        .bind(account_id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The account's live remembered devices, most recently used first.
    pub async fn remembered_devices(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Vec<RememberedDevice>> {
        let rows = sqlx::query(&self.sql(
            "SELECT token_hash, user_agent, created_at, last_used_at, expires_at FROM remembered_devices \
             WHERE account_id = ? AND expires_at > ? ORDER BY last_used_at DESC, token_hash",
        ))
        .bind(account_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RememberedDevice {
                    token_hash: text(r, "token_hash")?,
                    user_agent: text(r, "user_agent")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes one device of the account; false when it is not the account's.
    pub async fn delete_remembered_device(
        &self,
        account_id: &str,
        token_hash: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            &self.sql("DELETE FROM remembered_devices WHERE account_id = ? AND token_hash = ?"),
        )
        .bind(account_id)
        .bind(token_hash)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Revokes every remembered device of the account (after a password or factor change).
    pub async fn delete_remembered_devices_of(&self, account_id: &str) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM remembered_devices WHERE account_id = ?"))
                .bind(account_id)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    pub async fn create_pending_sign_in(&self, p: &NewPendingSignIn<'_>) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO pending_sign_ins (token_hash, account_id, first_method, next_path, ip, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(p.token_hash)
        .bind(p.account_id)
        .bind(p.first_method)
        .bind(p.next_path)
        .bind(p.ip)
        .bind(p.now)
        .bind(p.expires_at)
        .execute(self.pool())
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// A live pending sign-in, or None when unknown or expired.
    pub async fn pending_sign_in(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<PendingSignIn>> {
        let row = sqlx::query(&self.sql(
            "SELECT account_id, first_method, next_path, ip, created_at, expires_at \
             FROM pending_sign_ins WHERE token_hash = ? AND expires_at > ?",
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(PendingSignIn {
                account_id: text(&r, "account_id")?,
                first_method: text(&r, "first_method")?,
                next_path: text(&r, "next_path")?,
                ip: text(&r, "ip")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a pending sign-in; true only for the one caller that ended a live one, so a
    /// pending state turns into at most one session.
    pub async fn take_pending_sign_in(&self, token_hash: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(
            &self.sql("DELETE FROM pending_sign_ins WHERE token_hash = ? AND expires_at > ?"),
        )
        .bind(token_hash)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Ends every pending sign-in of the account (its factors changed).
    pub async fn delete_pending_sign_ins_of(&self, account_id: &str) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM pending_sign_ins WHERE account_id = ?"))
                .bind(account_id)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
