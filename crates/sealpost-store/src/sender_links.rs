//! What the sender's control and the delivery reports keep beside the ledger: the subject of
//! each sealed copy as a report names it, and the sender's single-use status links with the
//! short-lived capability that following one leaves. Only hashes of tokens are stored.

use sqlx::Row;

use crate::{Result, Store, StoreError, StoreTx, opt_text, text};

/// A copy's subject for its report: always the SHA-256, the clear text only if policy said
/// so when it was sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSubject {
    pub envelope_id: String,
    pub subject_sha256: String,
    pub subject: Option<String>,
}

/// A new sender link: the hash of its token, the copy and sender it is bound to.
#[derive(Debug, Clone)]
pub struct NewSenderLink {
    pub token_hash: String,
    pub envelope_id: String,
    pub sender: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What a live link or capability grants: the status of this one copy, for this sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderGrant {
    pub envelope_id: String,
    pub sender: String,
    /// When the capability left by following the link ends.
    pub capability_expires_at: i64,
}

impl Store {
    pub async fn insert_message_subject(
        &self,
        tx: &mut StoreTx,
        subject: &MessageSubject,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO message_subjects (envelope_id, subject_sha256, subject) VALUES (?, ?, ?)",
        ))
        .bind(&subject.envelope_id)
        .bind(&subject.subject_sha256)
        .bind(&subject.subject)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    pub async fn message_subject(&self, envelope_id: &str) -> Result<Option<MessageSubject>> {
        let row = sqlx::query(&self.sql(
            "SELECT envelope_id, subject_sha256, subject FROM message_subjects WHERE envelope_id = ?",
        ))
        .bind(envelope_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(MessageSubject {
                envelope_id: text(&r, "envelope_id")?,
                subject_sha256: text(&r, "subject_sha256")?,
                subject: opt_text(&r, "subject")?,
            })
        })
        .transpose()
    }

    pub async fn insert_sender_link(&self, tx: &mut StoreTx, link: &NewSenderLink) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO sender_links (token_hash, envelope_id, sender, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(&link.token_hash)
        .bind(&link.envelope_id)
        .bind(&link.sender)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Uses up a live, unused link and leaves `capability_hash` in its place, valid until
    /// `capability_expires_at` (never past the link's own end). Exactly one caller gets the
    /// grant; a used, expired or unknown link gives `None`.
    pub async fn follow_sender_link(
        &self,
        token_hash: &str,
        capability_hash: &str,
        capability_expires_at: i64,
        now: i64,
    ) -> Result<Option<SenderGrant>> {
        let n = sqlx::query(&self.sql(
            "UPDATE sender_links SET used_at = ?, capability_hash = ?, \
             capability_expires_at = CASE WHEN expires_at < ? THEN expires_at ELSE ? END \
             WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        ))
        .bind(now)
        .bind(capability_hash)
        .bind(capability_expires_at)
        .bind(capability_expires_at)
        .bind(token_hash)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(None);
        }
        self.sender_capability(capability_hash, now).await
    }

    /// The grant of a live capability, without using it up.
    pub async fn sender_capability(
        &self,
        capability_hash: &str,
        now: i64,
    ) -> Result<Option<SenderGrant>> {
        let row = sqlx::query(&self.sql(
            "SELECT envelope_id, sender, capability_expires_at FROM sender_links \
             WHERE capability_hash = ? AND capability_expires_at > ?",
        ))
        .bind(capability_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SenderGrant {
                envelope_id: text(&r, "envelope_id")?,
                sender: text(&r, "sender")?,
                capability_expires_at: r.try_get("capability_expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a capability (after it was used to revoke); true for exactly one caller.
    pub async fn end_sender_capability(&self, capability_hash: &str) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE sender_links SET capability_hash = NULL, capability_expires_at = NULL \
             WHERE capability_hash = ?",
        ))
        .bind(capability_hash)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Every link of a copy stops working (the copy was revoked, expired or swept).
    pub async fn delete_sender_links(&self, envelope_id: &str) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM sender_links WHERE envelope_id = ?"))
                .bind(envelope_id)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Drops links past their end; returns how many.
    pub async fn sweep_sender_links(&self, now: i64) -> Result<u64> {
        Ok(
            sqlx::query(&self.sql("DELETE FROM sender_links WHERE expires_at <= ?"))
                .bind(now)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
