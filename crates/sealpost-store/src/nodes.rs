//! Node heartbeats, so every node (and the admin) sees which nodes are alive.

use sqlx::Row;

use crate::{Backend, Result, Store, text};

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub version: String,
    pub roles: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

impl Store {
    pub async fn heartbeat(&self, node: &NodeInfo) -> Result<()> {
        let q = match self.backend() {
            Backend::MySql => {
                "INSERT INTO nodes (name, version, roles, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE version = VALUES(version), roles = VALUES(roles), \
                 started_at = VALUES(started_at), heartbeat_at = VALUES(heartbeat_at)"
            }
            _ => {
                "INSERT INTO nodes (name, version, roles, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, roles = excluded.roles, \
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at"
            }
        };
        sqlx::query(&self.sql(q))
            .bind(&node.name)
            .bind(&node.version)
            .bind(&node.roles)
            .bind(node.started_at)
            .bind(node.heartbeat_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let rows = sqlx::query(
            "SELECT name, version, roles, started_at, heartbeat_at FROM nodes ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeInfo {
                    name: text(r, "name")?,
                    version: text(r, "version")?,
                    roles: text(r, "roles")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }
}
