//! Administrator accounts (separate from recipient accounts) and the queries only the admin UI
//! and CLI need: account search with a total for paging, single setting values.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError, opt_text, text};

/// An administrator. The password is held only as an Argon2id hash.
#[derive(Clone)]
pub struct Admin {
    pub id: String,
    pub name: String,
    pub password_hash: String,
    /// Base32 TOTP secret once the admin enrolled a second factor.
    pub totp_secret: Option<String>,
    pub must_change_password: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

const ADMIN_COLUMNS: &str = "id, name, password_hash, totp_secret, must_change_password, \
    failed_logins, locked_until, created_at, last_login_at";

fn admin_from_row(row: &AnyRow) -> Result<Admin> {
    Ok(Admin {
        id: text(row, "id")?,
        name: text(row, "name")?,
        password_hash: text(row, "password_hash")?,
        totp_secret: opt_text(row, "totp_secret")?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        created_at: row.try_get("created_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

/// The LIKE pattern of an address search; `%` and `_` are dropped as `search_accounts` does,
/// so the total and the page agree.
fn search_pattern(needle: &str) -> String {
    format!("%{}%", needle.to_lowercase().replace(['%', '_'], ""))
}

impl Store {
    pub async fn insert_admin(
        &self,
        id: &str,
        name: &str,
        password_hash: &str,
        must_change_password: bool,
        now: i64,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO admins (id, name, password_hash, must_change_password, failed_logins, created_at) \
             VALUES (?, ?, ?, ?, 0, ?)",
        ))
        .bind(id)
        .bind(name)
        .bind(password_hash)
        .bind(i64::from(must_change_password))
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    pub async fn admin_by_name(&self, name: &str) -> Result<Option<Admin>> {
        let q = format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE name = ?");
        let row = sqlx::query(&self.sql(&q))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(admin_from_row).transpose()
    }

    pub async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>> {
        let q = format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE id = ?");
        let row = sqlx::query(&self.sql(&q))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(admin_from_row).transpose()
    }

    pub async fn list_admins(&self) -> Result<Vec<Admin>> {
        let q = format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY name");
        let rows = sqlx::query(&q).fetch_all(self.pool()).await?;
        rows.iter().map(admin_from_row).collect()
    }

    pub async fn count_admins(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM admins")
            .fetch_one(self.pool())
            .await?)
    }

    /// Sets a new password hash and clears failures and lock; returns false for an unknown id.
    pub async fn set_admin_password(
        &self,
        id: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE admins SET password_hash = ?, must_change_password = ?, failed_logins = 0, \
             locked_until = NULL, lock_count = 0 WHERE id = ?",
        ))
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Sets (or clears) the TOTP secret; a new secret starts without a used time step.
    pub async fn set_admin_totp(&self, id: &str, secret: Option<&str>) -> Result<()> {
        sqlx::query(
            &self.sql("UPDATE admins SET totp_secret = ?, totp_last_step = NULL WHERE id = ?"),
        )
        .bind(secret)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims a TOTP time step for an admin: true only when `step` is newer than every step
    /// used before. One conditional UPDATE, so two requests racing with one code cannot both
    /// win.
    pub async fn claim_admin_totp_step(&self, id: &str, step: i64) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE admins SET totp_last_step = ? \
             WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
        ))
        .bind(step)
        .bind(id)
        .bind(step)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn record_admin_login_success(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE admins SET last_login_at = ?, failed_logins = 0, locked_until = NULL, lock_count = 0 WHERE id = ?",
        ))
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Counts a failed admin login and locks at `threshold`; returns the new count.
    pub async fn record_admin_login_failure(
        &self,
        id: &str,
        threshold: i64,
        lock_until: i64,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        sqlx::query(&self.sql("UPDATE admins SET failed_logins = failed_logins + 1 WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let count: i64 =
            sqlx::query_scalar(&self.sql("SELECT failed_logins FROM admins WHERE id = ?"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= threshold {
            sqlx::query(&self.sql("UPDATE admins SET locked_until = ? WHERE id = ?"))
                .bind(lock_until)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Number of accounts whose address contains `needle` (the total for paging a search).
    pub async fn count_accounts_matching(&self, needle: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar(&self.sql("SELECT COUNT(*) FROM accounts WHERE address LIKE ?"))
                .bind(search_pattern(needle))
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// The sender of the newest envelope sealed for an account (where a reset may be mailed).
    pub async fn last_sender(&self, account_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(&self.sql(
            "SELECT sender FROM message_ledger WHERE account_id = ? ORDER BY created_at DESC LIMIT 1",
        ))
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| text(&r, "sender")).transpose()
    }

    /// One stored setting by name, for values the typed settings do not model.
    pub async fn setting_value(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query(&self.sql("SELECT value FROM settings WHERE name = ?"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| text(&r, "value")).transpose()
    }
}
