//! Message control after sending (issue 16): expiry, revocation, the per-recipient timeline
//! and the sweeper. Revocation and expiry delete the envelope's message secret from the
//! ledger, which makes a version-2 envelope unreadable for good (see docs/ENVELOPE.md); the
//! flags beside it only say who did it and when, for the page the recipient then sees.

use sealpost_crypto::MessageSecret;
use sealpost_store::{MessageEntry, MessageEvent, MessageEventKind, Store};

use crate::settings::ClientAddress;
use crate::{CoreError, KeyRing};

/// The header with which a sender sets one mail's lifetime: whole days, or an RFC 3339 date.
/// It is removed before anything is delivered.
pub const EXPIRES_HEADER: &str = "X-Sealpost-Expires";

const DAY: i64 = 86_400;

/// The expiry an `X-Sealpost-Expires` value asks for, at `now`: `N` (days, N ≥ 1) or an RFC
/// 3339 date-time (which may lie in the past: the message is then expired at once). `None`
/// for anything else, which leaves the policy's default in force.
pub fn parse_expires(value: &str, now: i64) -> Option<i64> {
    let value = value.trim();
    if let Ok(days) = value.parse::<u32>() {
        return (days > 0).then(|| now.saturating_add(i64::from(days) * DAY));
    }
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The expiry of a message sealed at `now`: the header's if it gave a valid one, else
/// `messages.expiry_days` (already resolved for the recipient's domain; 0 = never).
pub fn expiry(header: Option<&str>, expiry_days: usize, now: i64) -> Option<i64> {
    header.and_then(|h| parse_expires(h, now)).or_else(|| {
        (expiry_days > 0).then(|| now.saturating_add((expiry_days as i64).saturating_mul(DAY)))
    })
}

/// Why a message-control request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum MessageControlError {
    #[error("no message with id {0}")]
    NotFound(String),
    #[error("message {id} was not sent to {recipient}")]
    NoSuchRecipient { id: String, recipient: String },
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<sealpost_store::StoreError> for MessageControlError {
    fn from(e: sealpost_store::StoreError) -> Self {
        MessageControlError::Core(CoreError::Store(e))
    }
}

/// What [`revoke`] did, per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Envelopes revoked now (recipient, envelope id).
    pub revoked: Vec<(String, String)>,
    /// Envelopes that were revoked before and stay as they were.
    pub already: Vec<(String, String)>,
}

/// Who revokes: the name the recipient's page shows, and the actor the audit log records
/// (an administrator's account name need not be shown to an outside recipient).
#[derive(Debug, Clone, Copy)]
pub struct Revoker<'a> {
    pub shown_as: &'a str,
    pub audit_actor: &'a str,
}

/// A name that is shown and audited alike (the CLI's `--by`).
impl<'a> From<&'a str> for Revoker<'a> {
    fn from(name: &'a str) -> Self {
        Revoker {
            shown_as: name,
            audit_actor: name,
        }
    }
}

/// Revokes message `id` (a message id for all its recipients, or one envelope id) for every
/// recipient, or only `recipient`: each envelope's secret is deleted at once and `by`, the
/// time and the reason are recorded. Used by the CLI, the admin UI and the sender's link.
pub async fn revoke<'a>(
    store: &Store,
    id: &str,
    recipient: Option<&str>,
    by: impl Into<Revoker<'a>>,
    reason: Option<&str>,
    reason_public: bool,
    now: i64,
) -> Result<Revoked, MessageControlError> {
    let id = id.trim().to_ascii_lowercase();
    let entries = store.message_entries(&id).await?;
    if entries.is_empty() {
        return Err(MessageControlError::NotFound(id));
    }
    let wanted = recipient.map(crate::normalise_address);
    let targets: Vec<&MessageEntry> = entries
        .iter()
        .filter(|e| wanted.as_deref().is_none_or(|w| e.recipient == w))
        .collect();
    if targets.is_empty() {
        return Err(MessageControlError::NoSuchRecipient {
            id,
            recipient: wanted.unwrap_or_default(),
        });
    }
    let by = by.into();
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut out = Revoked {
        revoked: Vec::new(),
        already: Vec::new(),
    };
    for entry in targets {
        let pair = (entry.recipient.clone(), entry.envelope_id.clone());
        if store
            .revoke_envelope(&entry.envelope_id, now, by.shown_as, reason, reason_public)
            .await?
        {
            // A link copy (the opt-in link profile) could no longer be opened either; it goes
            // at once rather than at its own expiry.
            store
                .delete_link_copies_for_envelope(&entry.envelope_id)
                .await?;
            out.revoked.push(pair);
        } else {
            out.already.push(pair);
        }
    }
    if let Err(e) = store
        .audit(
            now,
            by.audit_actor,
            "message.revoked",
            Some(&id),
            Some(&format!("{} envelope(s)", out.revoked.len())),
            None,
        )
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
    Ok(out)
}

/// A message's rows and the timeline of all its envelopes.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub entries: Vec<MessageEntry>,
    /// Oldest first, across all recipients.
    pub events: Vec<MessageEvent>,
}

/// The rows and events of message `id` (message id or envelope id); `None` if unknown.
pub async fn timeline(store: &Store, id: &str) -> Result<Option<Timeline>, CoreError> {
    let id = id.trim().to_ascii_lowercase();
    let entries = store.message_entries(&id).await?;
    if entries.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = entries.iter().map(|e| e.envelope_id.clone()).collect();
    let events = store.message_events(&ids).await?;
    Ok(Some(Timeline { entries, events }))
}

/// Records an event for an envelope, best effort (a failed write is logged, never turns a
/// served page into an error). `client` is kept as `messages.client_address` says. True when
/// this was the envelope's first open.
pub async fn record(
    store: &Store,
    envelope_id: &str,
    kind: MessageEventKind,
    detail: Option<&str>,
    client: Option<&str>,
    client_address: ClientAddress,
) -> bool {
    let client = client.and_then(|ip| client_address.apply(ip));
    let now = crate::unix_now();
    let result = match kind {
        MessageEventKind::FirstOpened | MessageEventKind::Opened => {
            store.record_open(envelope_id, now, client.as_deref()).await
        }
        _ => store
            .add_message_event(envelope_id, now, kind, detail, client.as_deref())
            .await
            .map(|_| false),
    };
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, kind = %kind, "message event not recorded");
        false
    })
}

/// Why a version-2 envelope cannot be opened any more; each has its own page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawn {
    Revoked {
        by: String,
        at: i64,
        /// Only when the revoker marked it public.
        reason: Option<String>,
    },
    Expired {
        sender: String,
        at: i64,
    },
    /// The secret is gone and the ledger says nothing more (metadata past retention).
    Gone,
}

/// The message secret of a version-2 envelope and its expiry (for the page to show), or why
/// there is none. Revocation is checked first, then expiry (also before the sweeper has run),
/// then the secret itself.
pub async fn secret_for(
    store: &Store,
    keys: &KeyRing,
    envelope_id: &[u8; 16],
    now: i64,
) -> Result<Result<(MessageSecret, Option<i64>), Withdrawn>, CoreError> {
    let Some(entry) = store.message_entry(&hex::encode(envelope_id)).await? else {
        return Ok(Err(Withdrawn::Gone));
    };
    if let Some(r) = entry.revocation {
        return Ok(Err(Withdrawn::Revoked {
            by: r.by,
            at: r.at,
            reason: r.reason.filter(|_| r.reason_public),
        }));
    }
    if let Some(at) = entry.expires_at.filter(|at| *at <= now) {
        return Ok(Err(Withdrawn::Expired {
            sender: entry.sender,
            at,
        }));
    }
    match entry.wrapped_secret {
        Some(wrapped) => Ok(Ok((
            keys.unwrap_message_secret(envelope_id, &wrapped)?,
            entry.expires_at,
        ))),
        None => Ok(Err(Withdrawn::Gone)),
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: u64,
    pub deleted_rows: u64,
    /// Sender status links past their end.
    pub sender_links: u64,
}

/// Envelopes expired per sweep at most (the next sweep takes the rest).
const EXPIRE_BATCH: i64 = 500;

/// The periodic sweep: deletes the secrets of expired messages (`expired`, `secret-deleted`
/// events), sender status links past their end, and ledger rows and events older than
/// `messages.retention_days`.
pub async fn sweep(
    store: &Store,
    retention_days: usize,
    now: i64,
) -> Result<SweepReport, CoreError> {
    let expired = store.sweep_expired(now, EXPIRE_BATCH).await?;
    let deleted_rows = if retention_days > 0 {
        let cutoff = now.saturating_sub((retention_days as i64).saturating_mul(DAY));
        store.delete_messages_before(cutoff).await?
    } else {
        0
    };
    let sender_links = store.sweep_sender_links(now).await?;
    Ok(SweepReport {
        expired,
        deleted_rows,
        sender_links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_header_days_dates_and_nonsense() {
        let now = 1_700_000_000;
        assert_eq!(parse_expires("3", now), Some(now + 3 * DAY));
        assert_eq!(parse_expires(" 1 ", now), Some(now + DAY));
        assert_eq!(parse_expires("0", now), None);
        assert_eq!(parse_expires("-2", now), None);
        assert_eq!(
            parse_expires("2023-11-14T22:13:20Z", now),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_expires("2023-11-15T00:13:20+02:00", now),
            Some(1_700_000_000)
        );
        // A date in the past is taken as it is: the message is expired at once.
        assert_eq!(
            parse_expires("2000-01-01T00:00:00Z", now),
            Some(946_684_800)
        );
        assert_eq!(parse_expires("tomorrow", now), None);
        assert_eq!(parse_expires("", now), None);
        // The header wins over the policy; a bad header leaves the policy in force.
        assert_eq!(expiry(Some("2"), 30, now), Some(now + 2 * DAY));
        assert_eq!(expiry(Some("soon"), 30, now), Some(now + 30 * DAY));
        assert_eq!(expiry(None, 0, now), None);
    }
}
