//! Login sessions of recipients and administrators. Only the SHA-256 of the session token is
//! stored, so a database dump does not hand out live sessions.

use sqlx::Row;

use crate::{Result, Store, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Portal,
    Admin,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Portal => "portal",
            SessionKind::Admin => "admin",
        }
    }
}

#[derive(Clone)]
pub struct SessionRecord {
    pub principal_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("principal_id", &self.principal_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A session to store: the token's hash, never the token.
#[derive(Clone, Copy)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub kind: SessionKind,
    pub principal_id: &'a str,
    pub csrf_token: &'a str,
    pub ip: &'a str,
    pub now: i64,
    /// The first idle expiry; sliding moves it, the absolute lifetime bounds it.
    pub expires_at: i64,
}

impl Store {
    pub async fn create_session(&self, session: &NewSession<'_>) -> Result<()> {
        let NewSession {
            token_hash,
            kind,
            principal_id,
            csrf_token,
            ip,
            now,
            expires_at,
        } = *session;
        sqlx::query(&self.sql(
            "INSERT INTO sessions (token_hash, kind, principal_id, csrf_token, ip, created_at, last_seen_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(kind.as_str())
        .bind(principal_id)
        .bind(csrf_token)
        .bind(ip)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A live session of the given kind, or None when unknown or expired.
    pub async fn session(
        &self,
        token_hash: &str,
        kind: SessionKind,
        now: i64,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(&self.sql(
            "SELECT principal_id, csrf_token, created_at, last_seen_at, expires_at FROM sessions \
             WHERE token_hash = ? AND kind = ? AND expires_at > ?",
        ))
        .bind(token_hash)
        .bind(kind.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                principal_id: text(&r, "principal_id")?,
                csrf_token: text(&r, "csrf_token")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Slides the idle expiry forward.
    pub async fn touch_session(&self, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query(
            &self.sql("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE token_hash = ?"),
        )
        .bind(now)
        .bind(expires_at)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM sessions WHERE token_hash = ?"))
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of a principal except `keep` (e.g. after a password change).
    pub async fn delete_sessions_of(&self, principal_id: &str, keep: Option<&str>) -> Result<u64> {
        let n = sqlx::query(
            &self.sql("DELETE FROM sessions WHERE principal_id = ? AND token_hash <> ?"),
        )
        .bind(principal_id)
        .bind(keep.unwrap_or(""))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n)
    }

    /// Removes expired sessions and temporary opens; run periodically by any node.
    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let a = sqlx::query(&self.sql("DELETE FROM sessions WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        let b = sqlx::query(&self.sql("DELETE FROM temp_opens WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        let c = sqlx::query(&self.sql("DELETE FROM pending_sign_ins WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        let d = sqlx::query(&self.sql("DELETE FROM remembered_devices WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(a + b + c + d)
    }
}
