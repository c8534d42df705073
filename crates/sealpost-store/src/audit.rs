//! Audit events: who did what to which account, never message content or secrets.

use sqlx::Row;

use crate::{Result, Store, opt_text, text};

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Option<String>,
    pub ip: Option<String>,
}

impl Store {
    pub async fn audit(
        &self,
        now: i64,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        detail: Option<&str>,
        ip: Option<&str>,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO audit_events (at, actor, action, subject, detail, ip) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(ip)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(&self.sql(
            "SELECT at, actor, action, subject, detail, ip FROM audit_events ORDER BY id DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    at: r.try_get("at")?,
                    actor: text(r, "actor")?,
                    action: text(r, "action")?,
                    subject: opt_text(r, "subject")?,
                    detail: opt_text(r, "detail")?,
                    ip: opt_text(r, "ip")?,
                })
            })
            .collect()
    }

    pub async fn count_audit_since(&self, action: &str, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT COUNT(*) FROM audit_events WHERE action = ? AND at >= ?"),
        )
        .bind(action)
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }
}
