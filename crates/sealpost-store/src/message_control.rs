//! Message control (issue 16): the per-message secret of a version-2 envelope in its ledger
//! row, expiry and revocation, and the per-recipient timeline of events. Metadata only: the
//! message itself is never stored. The secret is kept only wrapped under the master key (the
//! caller wraps it), and deleting it is what makes revocation and expiry cryptographic.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{ROWS_PER_STATEMENT, Result, Store, StoreError, StoreTx, opt_text, text, value_rows};

/// What happened to one envelope; stored as its [`MessageEventKind::as_str`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageEventKind {
    /// The envelope was sealed and its carrier queued.
    Sealed,
    /// The carrier was handed to the next hop; detail = its reply.
    HandedOver,
    /// The next hop refused the carrier, or delivery gave up; detail = the reason.
    Bounced,
    /// The recipient opened it for the first time.
    FirstOpened,
    /// Every further open.
    Opened,
    /// A part or the whole message was downloaded; detail says which.
    Downloaded,
    /// The recipient replied through the portal.
    Replied,
    /// Revoked; detail = who.
    Revoked,
    /// Its expiry passed.
    Expired,
    /// The secret was deleted (after revocation or expiry): the envelope is unreadable.
    SecretDeleted,
}

impl MessageEventKind {
    pub const ALL: [MessageEventKind; 10] = [
        MessageEventKind::Sealed,
        MessageEventKind::HandedOver,
        MessageEventKind::Bounced,
        MessageEventKind::FirstOpened,
        MessageEventKind::Opened,
        MessageEventKind::Downloaded,
        MessageEventKind::Replied,
        MessageEventKind::Revoked,
        MessageEventKind::Expired,
        MessageEventKind::SecretDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageEventKind::Sealed => "sealed",
            MessageEventKind::HandedOver => "handed-over",
            MessageEventKind::Bounced => "bounced",
            MessageEventKind::FirstOpened => "first-opened",
            MessageEventKind::Opened => "opened",
            MessageEventKind::Downloaded => "downloaded",
            MessageEventKind::Replied => "replied",
            MessageEventKind::Revoked => "revoked",
            MessageEventKind::Expired => "expired",
            MessageEventKind::SecretDeleted => "secret-deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for MessageEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of an envelope's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    pub id: i64,
    pub envelope_id: String,
    pub at: i64,
    pub kind: MessageEventKind,
    pub detail: Option<String>,
    /// The client address as the `messages.client_address` setting allowed it to be kept.
    pub client: Option<String>,
}

/// A ledger row to insert for a newly sealed envelope, with its message-control columns.
#[derive(Clone)]
pub struct SealedEntry {
    pub entry: crate::LedgerEntry,
    /// The message (one inbound mail) this envelope belongs to; shared by its recipients.
    pub message_id: String,
    /// The outbound queue item of its carrier, so delivery results find the row.
    pub queue_id: Option<String>,
    /// The envelope's message secret wrapped under the master key (`None`: a v1 envelope).
    pub wrapped_secret: Option<Vec<u8>>,
    pub expires_at: Option<i64>,
    /// The subject, only where the policy lets it travel in clear anyway.
    pub subject: Option<String>,
    /// SHA-256 (hex) of the subject, for reports that must not name it.
    pub subject_hash: Option<String>,
}

impl std::fmt::Debug for SealedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedEntry")
            .field("envelope_id", &self.entry.envelope_id)
            .field("message_id", &self.message_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who revoked an envelope, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub at: i64,
    pub by: String,
    pub reason: Option<String>,
    /// Whether the reason may be shown to the recipient.
    pub reason_public: bool,
}

/// A ledger row with its message-control state.
#[derive(Clone)]
pub struct MessageEntry {
    pub envelope_id: String,
    pub message_id: String,
    pub queue_id: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub account_id: String,
    pub created_at: i64,
    pub first_opened_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revocation: Option<Revocation>,
    pub secret_deleted_at: Option<i64>,
    /// The wrapped message secret; `None` once deleted (or for a v1 envelope).
    pub wrapped_secret: Option<Vec<u8>>,
    pub subject: Option<String>,
    pub subject_hash: Option<String>,
}

impl std::fmt::Debug for MessageEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageEntry")
            .field("envelope_id", &self.envelope_id)
            .field("message_id", &self.message_id)
            .field("recipient", &self.recipient)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revocation", &self.revocation)
            .field("secret_deleted_at", &self.secret_deleted_at)
            .field("has_secret", &self.wrapped_secret.is_some())
            .finish_non_exhaustive()
    }
}

impl MessageEntry {
    /// Whether the expiry has passed at `now` (the sweeper may not have run yet).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Search criteria for the ledger (admin Messages page); empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Part of the sender address (case-insensitive as stored: addresses are lower-case).
    pub sender: Option<String>,
    /// Part of the recipient address.
    pub recipient: Option<String>,
    /// Created at or after (Unix seconds).
    pub from: Option<i64>,
    /// Created before (Unix seconds).
    pub until: Option<i64>,
    /// A message id or an envelope id, exactly.
    pub id: Option<String>,
}

const ENTRY_COLUMNS: &str = "envelope_id, message_id, queue_id, sender, recipient, account_id, \
     created_at, first_opened_at, expires_at, revoked_at, revoked_by, revoke_reason, \
     revoke_reason_public, secret_deleted_at, secret, subject, subject_hash";

fn entry_from_row(r: &AnyRow) -> Result<MessageEntry> {
    let envelope_id = text(r, "envelope_id")?;
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    let revocation = match revoked_at {
        Some(at) => Some(Revocation {
            at,
            by: opt_text(r, "revoked_by")?.unwrap_or_default(),
            reason: opt_text(r, "revoke_reason")?,
            reason_public: r.try_get::<i64, _>("revoke_reason_public")? != 0,
        }),
        None => None,
    };
    Ok(MessageEntry {
        message_id: opt_text(r, "message_id")?.unwrap_or_else(|| envelope_id.clone()),
        envelope_id,
        queue_id: opt_text(r, "queue_id")?,
        sender: text(r, "sender")?,
        recipient: text(r, "recipient")?,
        account_id: text(r, "account_id")?,
        created_at: r.try_get("created_at")?,
        first_opened_at: r.try_get("first_opened_at")?,
        expires_at: r.try_get("expires_at")?,
        revocation,
        secret_deleted_at: r.try_get("secret_deleted_at")?,
        wrapped_secret: r.try_get("secret")?,
        subject: opt_text(r, "subject")?,
        subject_hash: opt_text(r, "subject_hash")?,
    })
}

fn event_from_row(r: &AnyRow) -> Result<MessageEvent> {
    let kind = text(r, "kind")?;
    Ok(MessageEvent {
        id: r.try_get("id")?,
        envelope_id: text(r, "envelope_id")?,
        at: r.try_get("at")?,
        kind: MessageEventKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown message event {kind}")))?,
        detail: opt_text(r, "detail")?,
        client: opt_text(r, "client")?,
    })
}

/// A LIKE pattern matching `s` anywhere, `%`, `_` and `!` escaped with `ESCAPE '!'` (not a
/// backslash: MariaDB reads one in a string literal as an escape of the quote).
fn like_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// Inserts the ledger rows of newly sealed envelopes with their secrets, and a `sealed`
    /// event for each, in the caller's transaction (the one that queues the carriers).
    pub async fn insert_sealed_many(&self, tx: &mut StoreTx, rows: &[SealedEntry]) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let q = format!(
                "INSERT INTO message_ledger (envelope_id, sender, recipient, account_id, \
                 created_at, first_opened_at, message_id, queue_id, secret, expires_at, \
                 subject, subject_hash) VALUES {}",
                value_rows(chunk.len(), "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&row.entry.envelope_id)
                    .bind(&row.entry.sender)
                    .bind(&row.entry.recipient)
                    .bind(&row.entry.account_id)
                    .bind(row.entry.created_at)
                    .bind(row.entry.first_opened_at)
                    .bind(&row.message_id)
                    .bind(&row.queue_id)
                    .bind(&row.wrapped_secret)
                    .bind(row.expires_at)
                    .bind(&row.subject)
                    .bind(&row.subject_hash);
            }
            query
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_write)?;

            let q = format!(
                "INSERT INTO message_events (envelope_id, at, kind, detail, client) VALUES {}",
                value_rows(chunk.len(), "(?, ?, ?, NULL, NULL)")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&row.entry.envelope_id)
                    .bind(row.entry.created_at)
                    .bind(MessageEventKind::Sealed.as_str());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// One envelope's ledger row with its control state.
    pub async fn message_entry(&self, envelope_id: &str) -> Result<Option<MessageEntry>> {
        let q = format!("SELECT {ENTRY_COLUMNS} FROM message_ledger WHERE envelope_id = ?");
        let row = sqlx::query(&self.sql(&q))
            .bind(envelope_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// The rows of a message: all its recipients when `id` is a message id, or the one row
    /// when it is an envelope id. Ordered by recipient.
    pub async fn message_entries(&self, id: &str) -> Result<Vec<MessageEntry>> {
        let q = format!(
            "SELECT {ENTRY_COLUMNS} FROM message_ledger WHERE message_id = ? OR envelope_id = ? \
             ORDER BY recipient, envelope_id"
        );
        let rows = sqlx::query(&self.sql(&q))
            .bind(id)
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Ledger rows that still hold a message secret, by envelope id after `after` (key backups:
    /// a format-2 envelope opens only with its row's secret).
    pub async fn sealed_entries_after(&self, after: &str, limit: i64) -> Result<Vec<SealedEntry>> {
        let q = format!(
            "SELECT {ENTRY_COLUMNS} FROM message_ledger WHERE envelope_id > ? \
             AND secret IS NOT NULL ORDER BY envelope_id LIMIT ?"
        );
        let rows = sqlx::query(&self.sql(&q))
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let e = entry_from_row(r)?;
                Ok(SealedEntry {
                    entry: crate::LedgerEntry {
                        envelope_id: e.envelope_id,
                        sender: e.sender,
                        recipient: e.recipient,
                        account_id: e.account_id,
                        created_at: e.created_at,
                        first_opened_at: e.first_opened_at,
                    },
                    message_id: e.message_id,
                    // The queue is not backed up: its carriers have been delivered or retried.
                    queue_id: None,
                    wrapped_secret: e.wrapped_secret,
                    expires_at: e.expires_at,
                    subject: e.subject,
                    subject_hash: e.subject_hash,
                })
            })
            .collect()
    }

    /// The ledger row of the carrier queued as `queue_id`, if it is one.
    pub async fn message_entry_by_queue_id(&self, queue_id: &str) -> Result<Option<MessageEntry>> {
        let q = format!("SELECT {ENTRY_COLUMNS} FROM message_ledger WHERE queue_id = ?");
        let row = sqlx::query(&self.sql(&q))
            .bind(queue_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Ledger rows matching `filter`, newest first.
    pub async fn search_messages(
        &self,
        filter: &MessageFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<MessageEntry>> {
        let mut q = format!("SELECT {ENTRY_COLUMNS} FROM message_ledger WHERE 1 = 1");
        let mut texts: Vec<String> = Vec::new();
        let mut times: Vec<i64> = Vec::new();
        // Binds go in order: text parameters first, then times, then paging.
        if let Some(s) = filter.sender.as_deref().filter(|s| !s.is_empty()) {
            q.push_str(" AND sender LIKE ? ESCAPE '!'");
            texts.push(like_part(&s.to_lowercase()));
        }
        if let Some(r) = filter.recipient.as_deref().filter(|s| !s.is_empty()) {
            q.push_str(" AND recipient LIKE ? ESCAPE '!'");
            texts.push(like_part(&r.to_lowercase()));
        }
        if let Some(id) = filter.id.as_deref().filter(|s| !s.is_empty()) {
            q.push_str(" AND (message_id = ? OR envelope_id = ?)");
            texts.push(id.to_lowercase());
            texts.push(id.to_lowercase());
        }
        if let Some(from) = filter.from {
            q.push_str(" AND created_at >= ?");
            times.push(from);
        }
        if let Some(until) = filter.until {
            q.push_str(" AND created_at < ?");
            times.push(until);
        }
        q.push_str(" ORDER BY created_at DESC, envelope_id LIMIT ? OFFSET ?");
        let sql = self.sql(&q);
        let mut query = sqlx::query(&sql);
        for t in &texts {
            query = query.bind(t);
        }
        for t in &times {
            query = query.bind(*t);
        }
        let rows = query
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Appends an event to an envelope's timeline.
    pub async fn add_message_event(
        &self,
        envelope_id: &str,
        at: i64,
        kind: MessageEventKind,
        detail: Option<&str>,
        client: Option<&str>,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO message_events (envelope_id, at, kind, detail, client) \
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(envelope_id)
        .bind(at)
        .bind(kind.as_str())
        .bind(detail)
        .bind(client)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Appends an event to the envelope whose carrier was queued as `queue_id`, in the
    /// caller's transaction (the delivery outcome's); no row is written for other mail.
    pub async fn add_carrier_event(
        &self,
        tx: &mut StoreTx,
        queue_id: &str,
        at: i64,
        kind: MessageEventKind,
        detail: Option<&str>,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO message_events (envelope_id, at, kind, detail, client) \
             SELECT envelope_id, ?, ?, ?, NULL FROM message_ledger WHERE queue_id = ?",
        ))
        .bind(at)
        .bind(kind.as_str())
        .bind(detail)
        .bind(queue_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records an open: `first-opened` (and the ledger's first-open time) the first time,
    /// `opened` after. Returns whether it was the first.
    pub async fn record_open(
        &self,
        envelope_id: &str,
        now: i64,
        client: Option<&str>,
    ) -> Result<bool> {
        let first = sqlx::query(&self.sql(
            "UPDATE message_ledger SET first_opened_at = ? \
             WHERE envelope_id = ? AND first_opened_at IS NULL",
        ))
        .bind(now)
        .bind(envelope_id)
        .execute(self.pool())
        .await?
        .rows_affected()
            > 0;
        let kind = if first {
            MessageEventKind::FirstOpened
        } else {
            MessageEventKind::Opened
        };
        self.add_message_event(envelope_id, now, kind, None, client)
            .await?;
        Ok(first)
    }

    /// The timeline of the given envelopes, oldest first.
    pub async fn message_events(&self, envelope_ids: &[String]) -> Result<Vec<MessageEvent>> {
        let mut out = Vec::new();
        for chunk in envelope_ids.chunks(ROWS_PER_STATEMENT) {
            let q = format!(
                "SELECT id, envelope_id, at, kind, detail, client FROM message_events \
                 WHERE envelope_id IN ({}) ORDER BY at, id",
                value_rows(chunk.len(), "?")
            );
            let sql = self.sql(&q);
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(event_from_row(&row)?);
            }
        }
        out.sort_by_key(|e| (e.at, e.id));
        Ok(out)
    }

    /// Revokes one envelope: deletes its secret at once and records who, when and why, with
    /// `revoked` and `secret-deleted` events, in one transaction. Returns false when it was
    /// already revoked (or does not exist); a second revocation changes nothing.
    pub async fn revoke_envelope(
        &self,
        envelope_id: &str,
        now: i64,
        by: &str,
        reason: Option<&str>,
        reason_public: bool,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let had_secret: Option<Option<Vec<u8>>> =
            sqlx::query_scalar(&self.sql(
                "SELECT secret FROM message_ledger WHERE envelope_id = ? AND revoked_at IS NULL",
            ))
            .bind(envelope_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(had_secret) = had_secret else {
            return Ok(false);
        };
        let changed = sqlx::query(&self.sql(
            "UPDATE message_ledger SET secret = NULL, revoked_at = ?, revoked_by = ?, \
             revoke_reason = ?, revoke_reason_public = ?, \
             secret_deleted_at = COALESCE(secret_deleted_at, ?) \
             WHERE envelope_id = ? AND revoked_at IS NULL",
        ))
        .bind(now)
        .bind(by)
        .bind(reason)
        .bind(i64::from(reason_public))
        .bind(now)
        .bind(envelope_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        insert_event_tx(
            self,
            &mut tx,
            envelope_id,
            now,
            MessageEventKind::Revoked,
            Some(by),
        )
        .await?;
        if had_secret.is_some() {
            insert_event_tx(
                self,
                &mut tx,
                envelope_id,
                now,
                MessageEventKind::SecretDeleted,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Sets (or clears) an envelope's expiry, e.g. for tests and administrators.
    pub async fn set_message_expiry(
        &self,
        envelope_id: &str,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        Ok(
            sqlx::query(
                &self.sql("UPDATE message_ledger SET expires_at = ? WHERE envelope_id = ?"),
            )
            .bind(expires_at)
            .bind(envelope_id)
            .execute(self.pool())
            .await?
            .rows_affected()
                > 0,
        )
    }

    /// Deletes the secrets of up to `limit` envelopes whose expiry has passed at `now`, with
    /// `expired` and `secret-deleted` events. Returns how many were expired. Each envelope is
    /// its own short transaction, and only a row that still holds its secret is touched, so
    /// nodes sweeping at once record each expiry once.
    pub async fn sweep_expired(&self, now: i64, limit: i64) -> Result<u64> {
        let ids: Vec<String> = {
            let rows = sqlx::query(&self.sql(
                "SELECT envelope_id FROM message_ledger WHERE expires_at IS NOT NULL \
                 AND expires_at <= ? AND secret IS NOT NULL ORDER BY expires_at LIMIT ?",
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|r| text(r, "envelope_id"))
                .collect::<Result<_>>()?
        };
        let mut done = 0;
        for id in ids {
            let mut tx = self.begin().await?;
            let changed = sqlx::query(&self.sql(
                "UPDATE message_ledger SET secret = NULL, secret_deleted_at = ? \
                 WHERE envelope_id = ? AND secret IS NOT NULL",
            ))
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                continue;
            }
            insert_event_tx(self, &mut tx, &id, now, MessageEventKind::Expired, None).await?;
            insert_event_tx(
                self,
                &mut tx,
                &id,
                now,
                MessageEventKind::SecretDeleted,
                None,
            )
            .await?;
            tx.commit().await?;
            done += 1;
        }
        Ok(done)
    }

    /// Retention: deletes ledger rows created before `cutoff` with all their events, and any
    /// other event older than `cutoff`. Returns the number of ledger rows deleted.
    pub async fn delete_messages_before(&self, cutoff: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        sqlx::query(&self.sql(
            "DELETE FROM message_events WHERE at < ? OR envelope_id IN \
             (SELECT envelope_id FROM message_ledger WHERE created_at < ?)",
        ))
        .bind(cutoff)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(&self.sql("DELETE FROM message_ledger WHERE created_at < ?"))
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(rows)
    }

    /// A page of stored (wrapped) secrets after envelope id `after`, for re-wrapping them
    /// under a new master key.
    pub async fn message_secrets_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(&self.sql(
            "SELECT envelope_id, secret FROM message_ledger WHERE envelope_id > ? \
             AND secret IS NOT NULL ORDER BY envelope_id LIMIT ?",
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, "envelope_id")?, r.try_get("secret")?)))
            .collect()
    }

    /// Replaces a wrapped secret only if the row still holds `old` (not revoked, expired or
    /// re-wrapped meanwhile). Returns whether it did.
    pub async fn replace_message_secret(
        &self,
        envelope_id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        Ok(sqlx::query(
            &self.sql("UPDATE message_ledger SET secret = ? WHERE envelope_id = ? AND secret = ?"),
        )
        .bind(new)
        .bind(envelope_id)
        .bind(old)
        .execute(self.pool())
        .await?
        .rows_affected()
            > 0)
    }

    /// Events of one kind since `since` (dashboard counters: revocations, expiries, opens).
    pub async fn count_message_events_since(
        &self,
        kind: MessageEventKind,
        since: i64,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT COUNT(*) FROM message_events WHERE kind = ? AND at >= ?"),
        )
        .bind(kind.as_str())
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }
}

async fn insert_event_tx(
    store: &Store,
    tx: &mut StoreTx,
    envelope_id: &str,
    at: i64,
    kind: MessageEventKind,
    detail: Option<&str>,
) -> Result<()> {
    sqlx::query(&store.sql(
        "INSERT INTO message_events (envelope_id, at, kind, detail, client) \
         VALUES (?, ?, ?, ?, NULL)",
    ))
    .bind(envelope_id)
    .bind(at)
    .bind(kind.as_str())
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
