//! Recipient passkeys (WebAuthn credentials) and the ceremonies in progress. The store keeps
//! the serialised credential and ceremony state as opaque text; what they mean is
//! `sealpost_core::passkeys`'s business. A ceremony row is taken by one DELETE, so of two
//! requests (on one node or two) finishing the same ceremony exactly one gets its state.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError, opt_text, text};

/// What a ceremony in progress is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// Registering a new passkey for a signed-in account.
    Register,
    /// A passwordless sign-in (the account is not known until it finishes).
    Auth,
}

impl ChallengeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Register => "register",
            ChallengeKind::Auth => "auth",
        }
    }
}

/// A ceremony taken out of the store to be finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallenge {
    pub account_id: Option<String>,
    /// The serialised ceremony state.
    pub state: String,
}

/// A passkey to store.
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    /// SHA-256 (hex) of the raw credential id: unique over all accounts.
    pub credential_key: &'a str,
    /// The serialised credential.
    pub passkey: &'a str,
    pub name: &'a str,
    pub now: i64,
    pub counter: i64,
}

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: String,
    pub account_id: String,
    pub credential_key: String,
    pub passkey: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub counter: i64,
}

const COLUMNS: &str =
    "id, account_id, credential_key, passkey, name, created_at, last_used_at, counter";

fn passkey_of(row: &AnyRow) -> Result<StoredPasskey> {
    Ok(StoredPasskey {
        id: text(row, "id")?,
        account_id: text(row, "account_id")?,
        credential_key: text(row, "credential_key")?,
        passkey: text(row, "passkey")?,
        name: text(row, "name")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        counter: row.try_get("counter")?,
    })
}

impl Store {
    /// Stores a new passkey; [`StoreError::Conflict`] when its credential is already
    /// registered (to any account).
    pub async fn insert_passkey(&self, p: &NewPasskey<'_>) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO passkeys \
             (id, account_id, credential_key, passkey, name, created_at, last_used_at, counter) \
             VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
        ))
        .bind(p.id)
        .bind(p.account_id)
        .bind(p.credential_key)
        .bind(p.passkey)
        .bind(p.name)
        .bind(p.now)
        .bind(p.counter)
        .execute(self.pool())
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// The passkeys of an account, oldest first.
    pub async fn passkeys_of(&self, account_id: &str) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE account_id = ? ORDER BY created_at, id"
        )))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(passkey_of).collect()
    }

    /// The passkey of `account_id` with this credential, if it is that account's.
    pub async fn passkey_by_credential(
        &self,
        account_id: &str,
        credential_key: &str,
    ) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE account_id = ? AND credential_key = ?"
        )))
        .bind(account_id)
        .bind(credential_key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(passkey_of).transpose()
    }

    /// Records a sign-in with a passkey: its updated credential, counter and time. Only
    /// while the stored counter is still `previous_counter`, so of two sign-ins racing with
    /// one counter value only one is recorded; false when the passkey is gone or moved on.
    pub async fn record_passkey_use(
        &self,
        id: &str,
        passkey: &str,
        previous_counter: i64,
        counter: i64,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE passkeys SET passkey = ?, counter = ?, last_used_at = ? \
             WHERE id = ? AND counter = ?",
        ))
        .bind(passkey)
        .bind(counter)
        .bind(now)
        .bind(id)
        .bind(previous_counter)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Renames a passkey of the account; false when it has none with this id.
    pub async fn rename_passkey(&self, account_id: &str, id: &str, name: &str) -> Result<bool> {
        // MariaDB counts only changed rows as affected, so an unchanged name is looked up.
        let n =
            sqlx::query(&self.sql("UPDATE passkeys SET name = ? WHERE account_id = ? AND id = ?"))
                .bind(name)
                .bind(account_id)
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected();
        if n == 1 {
            return Ok(true);
        }
        let exists =
            sqlx::query(&self.sql("SELECT id FROM passkeys WHERE account_id = ? AND id = ?"))
                .bind(account_id)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(exists.is_some())
    }

    /// Removes a passkey of the account; false when it has none with this id.
    pub async fn delete_passkey(&self, account_id: &str, id: &str) -> Result<bool> {
        let n = sqlx::query(&self.sql("DELETE FROM passkeys WHERE account_id = ? AND id = ?"))
            .bind(account_id)
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Removes every passkey of the account (an administrator's reset of its second factors);
    /// returns how many.
    pub async fn delete_passkeys_of(&self, account_id: &str) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM passkeys WHERE account_id = ?"))
                .bind(account_id)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Stores the state of a ceremony just started (and drops ceremonies that ran out).
    pub async fn insert_passkey_challenge(
        &self,
        id: &str,
        kind: ChallengeKind,
        account_id: Option<&str>,
        state: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM passkey_challenges WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(&self.sql(
            "INSERT INTO passkey_challenges (id, kind, account_id, state, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(kind.as_str())
        .bind(account_id)
        .bind(state)
        .bind(expires_at)
        .execute(self.pool())
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Takes a live ceremony of `kind` out of the store: its state for exactly one caller,
    /// None when it is unknown, of the other kind, expired or already taken. An expired
    /// ceremony is removed too.
    pub async fn take_passkey_challenge(
        &self,
        id: &str,
        kind: ChallengeKind,
        now: i64,
    ) -> Result<Option<PasskeyChallenge>> {
        let row = sqlx::query(&self.sql(
            "SELECT account_id, state, expires_at FROM passkey_challenges \
             WHERE id = ? AND kind = ?",
        ))
        .bind(id)
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let found = PasskeyChallenge {
            account_id: opt_text(&row, "account_id")?,
            state: text(&row, "state")?,
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        let n = sqlx::query(&self.sql("DELETE FROM passkey_challenges WHERE id = ? AND kind = ?"))
            .bind(id)
            .bind(kind.as_str())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok((n == 1 && expires_at > now).then_some(found))
    }
}
