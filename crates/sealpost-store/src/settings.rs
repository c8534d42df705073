//! Run-time settings shared by all nodes, as name/value text pairs.

use crate::{Backend, Result, Store, text};

impl Store {
    pub async fn all_settings(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, value FROM settings")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((text(r, "name")?, text(r, "value")?)))
            .collect()
    }

    pub async fn set_setting(&self, name: &str, value: &str, now: i64) -> Result<()> {
        let q = match self.backend() {
            Backend::MySql => {
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)"
            }
            _ => {
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
            }
        };
        sqlx::query(&self.sql(q))
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stores a default only when the setting has never been set, so config defaults seed the
    /// database once and an administrator's later changes win.
    pub async fn seed_setting(&self, name: &str, value: &str, now: i64) -> Result<()> {
        let q = match self.backend() {
            Backend::MySql => {
                "INSERT IGNORE INTO settings (name, value, updated_at) VALUES (?, ?, ?)"
            }
            _ => {
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"
            }
        };
        sqlx::query(&self.sql(q))
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest change time, so nodes can reload settings only when something changed.
    pub async fn settings_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(updated_at) FROM settings")
            .fetch_one(self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }
}
