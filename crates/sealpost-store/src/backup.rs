//! Whole-table access to recipient keys and accounts for `sealpost keys backup|restore` and
//! the master-key rotation. Paging is by primary key, so a scan never holds a long
//! transaction and running nodes are not blocked.

use sqlx::Row;

use crate::{Account, Result, Store, StoreError, StoreTx, text};

/// One stored (wrapped) recipient key version.
#[derive(Clone)]
pub struct StoredKey {
    pub account_id: String,
    pub version: u32,
    /// nonce || ciphertext || tag, wrapped under a master key; see `sealpost_crypto::keys`.
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("account_id", &self.account_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Up to `limit` keys ordered by (account id, version) that come after the given pair;
    /// start with `("", 0)`.
    pub async fn keys_after(
        &self,
        account_id: &str,
        version: u32,
        limit: i64,
    ) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(&self.sql(
            "SELECT account_id, version, wrapped, created_at FROM recipient_keys \
             WHERE account_id > ? OR (account_id = ? AND version > ?) \
             ORDER BY account_id, version LIMIT ?",
        ))
        .bind(account_id)
        .bind(account_id)
        .bind(i64::from(version))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let version: i64 = r.try_get("version")?;
                Ok(StoredKey {
                    account_id: text(r, "account_id")?,
                    version: u32::try_from(version)
                        .map_err(|_| StoreError::Corrupt(format!("key version {version}")))?,
                    wrapped: r.try_get("wrapped")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Replaces one wrapped key, but only if it still holds `old` (compare and swap), so a
    /// rotation never overwrites a concurrent change. Returns whether the row was replaced.
    pub async fn replace_wrapped_key(
        &self,
        account_id: &str,
        version: u32,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let done = sqlx::query(&self.sql(
            "UPDATE recipient_keys SET wrapped = ? WHERE account_id = ? AND version = ? AND wrapped = ?",
        ))
        .bind(new)
        .bind(account_id)
        .bind(i64::from(version))
        .bind(old)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Number of stored key versions of all accounts.
    pub async fn count_recipient_keys(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recipient_keys")
            .fetch_one(self.pool())
            .await?)
    }

    /// Whether there is no account and no key, the only state a restore writes into.
    pub async fn has_no_accounts_or_keys(&self) -> Result<bool> {
        Ok(self.count_accounts().await? == 0 && self.count_recipient_keys().await? == 0)
    }

    /// Inserts a key version exactly as it was backed up (inside the restore's transaction).
    pub async fn insert_restored_key(&self, tx: &mut StoreTx, key: &StoredKey) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO recipient_keys (account_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(&key.account_id)
        .bind(i64::from(key.version))
        .bind(&key.wrapped)
        .bind(key.created_at)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Inserts an account with every column as it was backed up (password and answer hashes,
    /// lockout counters, login history), inside the restore's transaction.
    pub async fn insert_restored_account(&self, tx: &mut StoreTx, a: &Account) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO accounts (id, address, password_hash, status, must_change_password, \
             language, secret_question, secret_answer_hash, failed_logins, failed_answers, \
             locked_until, created_at, created_by, last_login_at, last_login_ip, prev_login_at, \
             prev_login_ip, valid_until) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&a.id)
        .bind(&a.address)
        .bind(&a.password_hash)
        .bind(a.status.as_str())
        .bind(i64::from(a.must_change_password))
        .bind(&a.language)
        .bind(&a.secret_question)
        .bind(&a.secret_answer_hash)
        .bind(a.failed_logins)
        .bind(a.failed_answers)
        .bind(a.locked_until)
        .bind(a.created_at)
        .bind(&a.created_by)
        .bind(a.last_login_at)
        .bind(&a.last_login_ip)
        .bind(a.prev_login_at)
        .bind(&a.prev_login_ip)
        .bind(a.valid_until)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }
}
