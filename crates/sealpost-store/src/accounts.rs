//! Recipient accounts and their versioned, wrapped keys.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError, StoreTx, opt_text, sql_for, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "disabled" => Ok(AccountStatus::Disabled),
            other => Err(StoreError::Corrupt(format!("account status {other:?}"))),
        }
    }
}

/// An account as the encryption pipeline needs it: where to seal and in which language.
pub struct SealingRecipient {
    pub account_id: String,
    pub address: String,
    pub language: Option<String>,
    /// The newest key version and its wrapped bytes.
    pub key: Option<(u32, Vec<u8>)>,
    /// The recipient's personal security phrase, shown in every carrier.
    pub security_phrase: Option<String>,
}

/// A recipient account. Secrets are only ever held as hashes.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    pub address: String,
    pub password_hash: String,
    pub status: AccountStatus,
    pub must_change_password: bool,
    pub language: Option<String>,
    pub secret_question: Option<String>,
    pub secret_answer_hash: Option<String>,
    pub failed_logins: i64,
    pub failed_answers: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub last_login_at: Option<i64>,
    pub last_login_ip: Option<String>,
    pub prev_login_at: Option<i64>,
    pub prev_login_ip: Option<String>,
    pub valid_until: Option<i64>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

pub struct NewAccount<'a> {
    pub id: &'a str,
    pub address: &'a str,
    pub password_hash: &'a str,
    pub language: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub created_at: i64,
    pub valid_until: Option<i64>,
    pub must_change_password: bool,
}

const ACCOUNT_COLUMNS: &str = "id, address, password_hash, status, must_change_password, language, \
    secret_question, secret_answer_hash, failed_logins, failed_answers, locked_until, created_at, \
    created_by, last_login_at, last_login_ip, prev_login_at, prev_login_ip, valid_until";

fn account_from_row(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        id: text(row, "id")?,
        address: text(row, "address")?,
        password_hash: text(row, "password_hash")?,
        status: AccountStatus::parse(&text(row, "status")?)?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        language: opt_text(row, "language")?,
        secret_question: opt_text(row, "secret_question")?,
        secret_answer_hash: opt_text(row, "secret_answer_hash")?,
        failed_logins: row.try_get("failed_logins")?,
        failed_answers: row.try_get("failed_answers")?,
        locked_until: row.try_get("locked_until")?,
        created_at: row.try_get("created_at")?,
        created_by: opt_text(row, "created_by")?,
        last_login_at: row.try_get("last_login_at")?,
        last_login_ip: opt_text(row, "last_login_ip")?,
        prev_login_at: row.try_get("prev_login_at")?,
        prev_login_ip: opt_text(row, "prev_login_ip")?,
        valid_until: row.try_get("valid_until")?,
    })
}

impl Store {
    pub async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let q = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?");
        let row = sqlx::query(&self.sql(&q))
            .bind(address)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Everything sealing needs for several addresses in one query: the account and its newest
    /// wrapped key (None when the account has no key, which sealing reports as an error).
    /// Addresses without an account are simply absent from the result.
    pub async fn sealing_recipients(&self, addresses: &[String]) -> Result<Vec<SealingRecipient>> {
        let mut found = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(crate::ROWS_PER_STATEMENT) {
            let q = format!(
                "SELECT a.id, a.address, a.language, k.version, k.wrapped, p.phrase FROM accounts a \
                 LEFT JOIN recipient_keys k ON k.account_id = a.id AND k.version = \
                 (SELECT MAX(version) FROM recipient_keys m WHERE m.account_id = a.id) \
                 LEFT JOIN security_phrases p ON p.account_id = a.id \
                 WHERE a.address IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql);
            for address in chunk {
                query = query.bind(address);
            }
            for row in query.fetch_all(self.pool()).await? {
                let version: Option<i64> = row.try_get("version")?;
                let key = match version {
                    Some(v) => Some((
                        u32::try_from(v)
                            .map_err(|_| StoreError::Corrupt(format!("key version {v}")))?,
                        row.try_get("wrapped")?,
                    )),
                    None => None,
                };
                found.push(SealingRecipient {
                    account_id: text(&row, "id")?,
                    address: text(&row, "address")?,
                    language: opt_text(&row, "language")?,
                    key,
                    security_phrase: opt_text(&row, "phrase")?,
                });
            }
        }
        Ok(found)
    }

    pub async fn account_by_id(&self, id: &str) -> Result<Option<Account>> {
        let q = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?");
        let row = sqlx::query(&self.sql(&q))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Accounts whose address contains `needle`, ordered by address, for admin search and paging.
    pub async fn search_accounts(
        &self,
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Account>> {
        let q = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address LIKE ? ORDER BY address LIMIT ? OFFSET ?"
        );
        let pattern = format!("%{}%", needle.replace(['%', '_'], ""));
        let rows = sqlx::query(&self.sql(&q))
            .bind(pattern)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    pub async fn count_accounts(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(self.pool())
            .await?)
    }

    /// Creates an account and its first key (version 1) inside the caller's transaction.
    pub async fn insert_account(
        &self,
        tx: &mut StoreTx,
        account: &NewAccount<'_>,
        wrapped_key: &[u8],
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO accounts (id, address, password_hash, status, must_change_password, language, \
             failed_logins, failed_answers, created_at, created_by, valid_until) \
             VALUES (?, ?, ?, 'active', ?, ?, 0, 0, ?, ?, ?)",
        ))
        .bind(account.id)
        .bind(account.address)
        .bind(account.password_hash)
        .bind(i64::from(account.must_change_password))
        .bind(account.language)
        .bind(account.created_at)
        .bind(account.created_by)
        .bind(account.valid_until)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_write)?;
        insert_key(
            self.backend,
            tx,
            account.id,
            1,
            wrapped_key,
            account.created_at,
        )
        .await
    }

    /// The newest key version of an account and its wrapped bytes.
    pub async fn current_key(&self, account_id: &str) -> Result<Option<(u32, Vec<u8>)>> {
        let row = sqlx::query(&self.sql(
            "SELECT version, wrapped FROM recipient_keys WHERE account_id = ? ORDER BY version DESC LIMIT 1",
        ))
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| -> Result<(u32, Vec<u8>)> {
            let version: i64 = r.try_get("version")?;
            let version = u32::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("key version {version}")))?;
            Ok((version, r.try_get("wrapped")?))
        })
        .transpose()
    }

    pub async fn key_version(&self, account_id: &str, version: u32) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT wrapped FROM recipient_keys WHERE account_id = ? AND version = ?"),
        )
        .bind(account_id)
        .bind(i64::from(version))
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn key_versions(&self, account_id: &str) -> Result<Vec<(u32, i64)>> {
        let rows = sqlx::query(&self.sql(
            "SELECT version, created_at FROM recipient_keys WHERE account_id = ? ORDER BY version",
        ))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let v: i64 = r.try_get("version")?;
                Ok((v as u32, r.try_get("created_at")?))
            })
            .collect()
    }

    /// Adds a key version; old versions stay so old envelopes remain readable. The caller
    /// chooses the number because it is bound into the wrapped key; two concurrent rotations
    /// to the same number give one [`StoreError::Conflict`].
    pub async fn add_key_version(
        &self,
        account_id: &str,
        version: u32,
        wrapped: &[u8],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_key(
            self.backend,
            &mut tx,
            account_id,
            i64::from(version),
            wrapped,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_login_success(&self, account_id: &str, ip: &str, now: i64) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE accounts SET prev_login_at = last_login_at, prev_login_ip = last_login_ip, \
             last_login_at = ?, last_login_ip = ?, failed_logins = 0, locked_until = NULL, lock_count = 0 WHERE id = ?",
        ))
        .bind(now)
        .bind(ip)
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Counts a failed login in the database (shared by all nodes) and locks the account for
    /// `lock_secs` once `threshold` is reached. Returns the new failure count.
    pub async fn record_login_failure(
        &self,
        account_id: &str,
        threshold: i64,
        lock_until: i64,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        sqlx::query(
            &self.sql("UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = ?"),
        )
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        let count: i64 =
            sqlx::query_scalar(&self.sql("SELECT failed_logins FROM accounts WHERE id = ?"))
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= threshold {
            sqlx::query(&self.sql("UPDATE accounts SET locked_until = ? WHERE id = ?"))
                .bind(lock_until)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Sets a new password hash; also revokes the account's remembered devices.
    pub async fn set_password(
        &self,
        account_id: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE accounts SET password_hash = ?, must_change_password = ?, failed_logins = 0, \
             locked_until = NULL, lock_count = 0 WHERE id = ?",
        ))
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(account_id)
        .execute(self.pool())
        .await?;
        // A remembered device skips the second factor; whoever changes the password (the
        // holder, a reset, an administrator) starts every device afresh.
        self.delete_remembered_devices_of(account_id).await?;
        Ok(())
    }

    pub async fn set_secret_question(
        &self,
        account_id: &str,
        question: &str,
        answer_hash: &str,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE accounts SET secret_question = ?, secret_answer_hash = ?, failed_answers = 0 WHERE id = ?",
        ))
        .bind(question)
        .bind(answer_hash)
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Counts a wrong secret answer without a limit; returns the new count. (The portal
    /// reserves its attempts with [`Store::reserve_answer_attempt`] instead.)
    pub async fn record_answer_failure(&self, account_id: &str) -> Result<i64> {
        self.reserve_answer_attempt(account_id, i64::MAX)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub async fn set_language(&self, account_id: &str, language: &str) -> Result<()> {
        sqlx::query(&self.sql("UPDATE accounts SET language = ? WHERE id = ?"))
            .bind(language)
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_status(&self, account_id: &str, status: AccountStatus) -> Result<()> {
        sqlx::query(&self.sql("UPDATE accounts SET status = ? WHERE id = ?"))
            .bind(status.as_str())
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn unlock_account(&self, account_id: &str) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE accounts SET failed_logins = 0, failed_answers = 0, locked_until = NULL, lock_count = 0 WHERE id = ?",
        ))
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn set_valid_until(&self, account_id: &str, valid_until: Option<i64>) -> Result<()> {
        sqlx::query(&self.sql("UPDATE accounts SET valid_until = ? WHERE id = ?"))
            .bind(valid_until)
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes an account with its keys and sessions (and its link copies and passkeys): envelopes sealed for
    /// it become unreadable.
    pub async fn delete_account(&self, account_id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        for q in [
            "DELETE FROM recipient_keys WHERE account_id = ?",
            "DELETE FROM sessions WHERE principal_id = ?",
            "DELETE FROM recovery_codes WHERE account_id = ?",
            "DELETE FROM reset_links WHERE account_id = ?",
            "DELETE FROM link_copies WHERE account_id = ?",
            "DELETE FROM security_phrases WHERE account_id = ?",
            "DELETE FROM account_totp WHERE account_id = ?",
            "DELETE FROM factor_recovery_codes WHERE account_id = ?",
            "DELETE FROM remembered_devices WHERE account_id = ?",
            "DELETE FROM pending_sign_ins WHERE account_id = ?",
            "DELETE FROM passkeys WHERE account_id = ?",
            "DELETE FROM passkey_challenges WHERE account_id = ?",
        ] {
            sqlx::query(&self.sql(q))
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        let gone = sqlx::query(&self.sql("DELETE FROM accounts WHERE id = ?"))
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone == 1)
    }

    /// Forgets wrong secret answers after a right one (the login lockout is left alone).
    pub async fn clear_answer_failures(&self, account_id: &str) -> Result<()> {
        sqlx::query(&self.sql("UPDATE accounts SET failed_answers = 0 WHERE id = ?"))
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

async fn insert_key(
    backend: crate::Backend,
    tx: &mut StoreTx,
    account_id: &str,
    version: i64,
    wrapped: &[u8],
    now: i64,
) -> Result<()> {
    sqlx::query(&sql_for(
        backend,
        "INSERT INTO recipient_keys (account_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)",
    ))
    .bind(account_id)
    .bind(version)
    .bind(wrapped)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

impl Store {
    /// Up to `limit` accounts with an id greater than `after`, ordered by id (start with ""),
    /// for a full scan in pages (key backup).
    pub async fn accounts_after(&self, after: &str, limit: i64) -> Result<Vec<Account>> {
        let q = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > ? ORDER BY id LIMIT ?");
        let rows = sqlx::query(&self.sql(&q))
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(account_from_row).collect()
    }
}
