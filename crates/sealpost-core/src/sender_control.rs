//! The sender's control over a sealed copy, with nothing to install (issue 16): every
//! credentials mail and every open notification (`messages.receipts`) carries a single-use
//! link `{public_url}/s/{token}` to a small page with the copy's status and a button to
//! revoke it.
//!
//! The link is a random 256-bit capability; only its SHA-256 is stored, bound to one copy
//! (envelope) and its sender, and it ends with the message (or with the metadata's
//! retention when the message never expires). Following it (a POST from the page the link
//! opens, so a mail scanner's GET cannot use it up) trades it for a second capability, held
//! in a short-lived cookie, that shows that one copy's status and can revoke it, once. It
//! grants nothing else: no other copy, no content, no account.

use sealpost_mime::security_mail::SecurityMailBase;
use sealpost_mime::{ReceiptInput, build_receipt};
use sealpost_store::{MessageEventKind, NewQueuedMail, NewSenderLink, SenderGrant, Store};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::messages::{self, MessageControlError};
use crate::recovery::utc_text;
use crate::{CoreError, Settings, kind};

/// The path under which the links are served.
pub const LINK_PATH: &str = "/s/";

/// How long the status page stays usable after the link was followed (seconds).
pub const CAPABILITY_SECS: i64 = 30 * 60;

const DAY: i64 = 86_400;

/// A link made for a mail: its URL (a secret until mailed), its end, and the row to store
/// with that mail, in the same transaction.
pub struct IssuedLink {
    pub url: Zeroizing<String>,
    pub until: i64,
    pub row: NewSenderLink,
}

impl IssuedLink {
    /// Its end as the mails show it ("2027-01-05").
    pub fn until_text(&self) -> String {
        utc_text(self.until)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// A new link to copy `envelope_id` for `sender`, which ends with the copy's expiry, or
/// after `messages.retention_days` (at least a day) for a copy that never expires.
pub fn issue(
    settings: &Settings,
    envelope_id: &str,
    sender: &str,
    now: i64,
    expires_at: Option<i64>,
) -> IssuedLink {
    let (token, token_hash) = sealpost_crypto::new_token();
    let token = Zeroizing::new(token);
    let retention = (settings.message_retention_days.max(1) as i64).saturating_mul(DAY);
    let until = expires_at.unwrap_or_else(|| now.saturating_add(retention));
    IssuedLink {
        url: Zeroizing::new(format!(
            "{}{LINK_PATH}{}",
            settings.public_url.trim_end_matches('/'),
            token.as_str()
        )),
        until,
        row: NewSenderLink {
            token_hash,
            envelope_id: envelope_id.to_string(),
            sender: sender.to_string(),
            created_at: now,
            expires_at: until,
        },
    }
}

/// The cookie-held capability a followed link leaves; its hash is in the link's row.
pub struct Capability(pub Zeroizing<String>);

/// The audit action of a followed status link (the sender looked at a copy's status).
pub const LINK_USED: &str = "message.status_link_used";

/// Uses up link `token` and returns the capability it leaves, or `None` for a link that is
/// unknown, used or past its end (all alike, to the caller and in timing). A followed link
/// is audited with the copy and the client.
pub async fn follow(
    store: &Store,
    token: &str,
    now: i64,
    client: &str,
) -> Result<Option<(Capability, SenderGrant)>, CoreError> {
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let (capability, capability_hash) = sealpost_crypto::new_token();
    let grant = store
        .follow_sender_link(
            &sealpost_crypto::hash_token(token),
            &capability_hash,
            now.saturating_add(CAPABILITY_SECS),
            now,
        )
        .await?;
    let Some(grant) = grant else {
        return Ok(None);
    };
    crate::audit::write(
        store,
        &format!("sender:{}", grant.sender),
        LINK_USED,
        Some(&grant.envelope_id),
        None,
        Some(client),
    )
    .await;
    Ok(Some((Capability(Zeroizing::new(capability)), grant)))
}

/// What a live capability grants, without using it.
pub async fn grant(
    store: &Store,
    capability: &str,
    now: i64,
) -> Result<Option<SenderGrant>, CoreError> {
    let capability = capability.trim();
    if capability.is_empty() || capability.len() > 128 {
        return Ok(None);
    }
    Ok(store
        .sender_capability(&sealpost_crypto::hash_token(capability), now)
        .await?)
}

/// One copy's state as its sender sees it: times and kinds of events, never the reader's
/// client address.
#[derive(Debug, Clone)]
pub struct SenderStatus {
    pub envelope_id: String,
    pub message_id: String,
    pub recipient: String,
    pub sent_at: i64,
    pub subject: Option<String>,
    pub expires_at: Option<i64>,
    pub first_opened_at: Option<i64>,
    /// Who revoked it, and when.
    pub revoked: Option<(String, i64)>,
    pub expired: bool,
    pub events: Vec<(i64, MessageEventKind)>,
}

impl SenderStatus {
    /// Whether a revoke button still makes sense.
    pub fn can_revoke(&self) -> bool {
        self.revoked.is_none() && !self.expired
    }
}

/// The status of the copy `grant` is for; `None` when its ledger row is gone (retention) or
/// belongs to another sender than the link was made for.
pub async fn status(
    store: &Store,
    grant: &SenderGrant,
    now: i64,
) -> Result<Option<SenderStatus>, CoreError> {
    let Some(entry) = store.message_entry(&grant.envelope_id).await? else {
        return Ok(None);
    };
    if entry.sender != grant.sender {
        return Ok(None);
    }
    let events = store
        .message_events(std::slice::from_ref(&entry.envelope_id))
        .await?
        .into_iter()
        .map(|e| (e.at, e.kind))
        .collect();
    let expired = entry.expires_at.is_some_and(|at| at <= now);
    Ok(Some(SenderStatus {
        envelope_id: entry.envelope_id,
        message_id: entry.message_id,
        recipient: entry.recipient,
        sent_at: entry.created_at,
        subject: entry.subject,
        expires_at: entry.expires_at,
        first_opened_at: entry.first_opened_at,
        revoked: entry.revocation.map(|r| (r.by, r.at)),
        expired,
        events,
    }))
}

/// Revokes the copy `grant` is for, as its sender, and ends the capability: a second POST
/// with the same cookie does nothing. False when the capability was already used.
pub async fn revoke(
    store: &Store,
    grant: &SenderGrant,
    capability: &str,
    now: i64,
) -> Result<bool, MessageControlError> {
    // The capability ends first: of two parallel POSTs, exactly one revokes.
    if !store
        .end_sender_capability(&sealpost_crypto::hash_token(capability.trim()))
        .await?
    {
        return Ok(false);
    }
    let actor = format!("sender:{}", grant.sender);
    messages::revoke(
        store,
        &grant.envelope_id,
        None,
        messages::Revoker {
            shown_as: &grant.sender,
            audit_actor: &actor,
        },
        None,
        false,
        now,
    )
    .await?;
    // Every other link to this copy is of no use any more.
    store.delete_sender_links(&grant.envelope_id).await?;
    Ok(true)
}

/// Mails the sender of copy `envelope_id` that it was first opened at `opened_at`, with a new
/// status link, when `messages.receipts` is on for the recipient's domain and the sender is
/// internal (an outside sender is never told anything). The mail and its link are written in
/// one transaction.
pub async fn send_receipt(
    store: &Store,
    settings: &Settings,
    envelope_id: &str,
    opened_at: i64,
) -> Result<bool, CoreError> {
    let Some(entry) = store.message_entry(envelope_id).await? else {
        return Ok(false);
    };
    if !settings.for_address(&entry.recipient).message_receipts
        || !settings.is_internal(&entry.sender)
    {
        return Ok(false);
    }
    let link = issue(
        settings,
        &entry.envelope_id,
        &entry.sender,
        opened_at,
        entry.expires_at,
    );
    let branding = settings.branding();
    let mail = build_receipt(&ReceiptInput {
        base: SecurityMailBase {
            from: &settings.notification_from,
            to: &entry.sender,
            lang: &settings.default_language,
            branding: &branding,
            hostname: &settings.hostname,
        },
        recipient: &entry.recipient,
        subject: entry.subject.as_deref(),
        message_id: &entry.message_id,
        opened_at: &utc_text(opened_at),
        status_link: &link.url,
        link_until: &link.until_text(),
    });
    if mail.is_empty() {
        return Err(CoreError::MailBuild);
    }
    let to = [entry.sender.clone()];
    let mut tx = store.begin().await?;
    store
        .enqueue(
            &mut tx,
            &NewQueuedMail {
                id: &Uuid::new_v4().simple().to_string(),
                kind: kind::RECEIPT,
                mail_from: &settings.notification_from,
                rcpt_to: &to,
                data: &mail,
                now: opened_at,
                give_up_at: opened_at + settings.retry_give_up_secs,
            },
        )
        .await?;
    store.insert_sender_link(&mut tx, &link.row).await?;
    sealpost_store::commit(tx).await?;
    Ok(true)
}

/// [`send_receipt`] in the background: the reader's page does not wait for it, and a failure
/// is logged (it names no secret: the link's token is only in the mail).
pub fn send_receipt_detached(store: &Store, settings: &Settings, envelope_id: &str, at: i64) {
    let (store, settings, envelope_id) = (store.clone(), settings.clone(), envelope_id.to_string());
    tokio::spawn(async move {
        if let Err(e) = send_receipt(&store, &settings, &envelope_id, at).await {
            tracing::warn!(envelope = %envelope_id, error = %e, "open notification not queued");
        }
    });
}
