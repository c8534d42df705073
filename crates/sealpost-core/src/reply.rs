//! Secure replies written in the portal. The recipients are always derived here from the
//! decrypted original (its From/Reply-To, and internal addresses of its To/Cc), never taken
//! from the reader's form, so the portal cannot be used to send mail anywhere else.
//!
//! A reply leaves in plaintext with the decrypted original quoted, so it may only go to
//! internal addresses: mail between the organisation's own servers. An external Reply-To
//! (set by whoever wrote the original, perhaps to harvest the answer) is refused, never
//! silently replaced.

use sealpost_mime::{
    CarrierInput, MailKind, ReplyAddresses, ReplyAttachment, ReplyInput, ReplySource,
    build_carrier, build_reply, reply_addresses, reply_source,
};
use sealpost_store::{Account, LedgerEntry, NewQueuedMail, SealedEntry, Store};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{CoreError, KeyRing, Settings, normalise_address, unix_now};

/// Longest reply text accepted (characters), far above any hand-written message.
pub const MAX_BODY_CHARS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("the original has no address to reply to")]
    NoSender,
    /// The original's Reply-To, or its From when no internal address of the thread can take
    /// its place, is outside the organisation: a plaintext reply there would carry the
    /// decrypted original out.
    #[error("the reply would go to an address outside the organisation")]
    ExternalRecipient,
    #[error("a recipient that the original does not allow was requested")]
    NotAllowed,
    #[error("the attachments exceed the configured size")]
    TooLarge,
    #[error("the reply is empty")]
    Empty,
    #[error("the original message cannot be parsed")]
    Unparseable,
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl ReplyError {
    /// The portal catalogue's key (`portal.messages`) of the message the reply form shows for this
    /// error; None for failures that are not the reader's to understand (tampering, internal
    /// errors), which get the generic error pages. The size message takes a `size` argument.
    pub fn catalogue_key(&self) -> Option<&'static str> {
        match self {
            ReplyError::NoSender | ReplyError::Unparseable => Some("portal-reply-no-sender"),
            ReplyError::ExternalRecipient => Some("portal-reply-external"),
            ReplyError::TooLarge => Some("portal-reply-too-large"),
            ReplyError::Empty => Some("portal-reply-empty"),
            ReplyError::NotAllowed | ReplyError::Core(_) => None,
        }
    }
}

impl From<sealpost_store::StoreError> for ReplyError {
    fn from(e: sealpost_store::StoreError) -> Self {
        ReplyError::Core(CoreError::Store(e))
    }
}

/// Who a reply to the original may go to; every address is internal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRecipients {
    /// Reply-To, else From, of the original; when From is external (the reader's own
    /// encrypted copy of a reply, say), the first internal address of its To/Cc if reply-all
    /// is allowed.
    pub to: String,
    /// Internal addresses of the original's To/Cc the reader may add (reply-all); empty
    /// when the setting forbids it.
    pub cc_options: Vec<String>,
}

/// Reads the original and decides the possible recipients for `own_address`'s reply.
pub fn recipients(
    original: &[u8],
    settings: &Settings,
    own_address: &str,
) -> Result<(ReplySource, ReplyRecipients), ReplyError> {
    let source = reply_source(original).ok_or(ReplyError::Unparseable)?;
    let allowed = allowed(&source.addresses, settings, own_address)?;
    Ok((source, allowed))
}

/// [`recipients`] without the rest of the original: only its headers are read, so showing
/// the reply form does not parse (or decode the attachments of) a large message again.
pub fn reply_recipients(
    original: &[u8],
    settings: &Settings,
    own_address: &str,
) -> Result<ReplyRecipients, ReplyError> {
    let addresses = reply_addresses(original).ok_or(ReplyError::Unparseable)?;
    allowed(&addresses, settings, own_address)
}

fn allowed(
    addresses: &ReplyAddresses,
    settings: &Settings,
    own_address: &str,
) -> Result<ReplyRecipients, ReplyError> {
    let own = normalise_address(own_address);
    let mut thread: Vec<&String> = if settings.reply_allow_internal_all {
        addresses
            .to_and_cc
            .iter()
            .filter(|a| **a != own && settings.is_internal(a))
            .collect()
    } else {
        Vec::new()
    };
    let to = match (&addresses.reply_to, &addresses.from) {
        (Some(reply_to), _) if settings.is_internal(reply_to) => reply_to.clone(),
        (Some(_), _) => return Err(ReplyError::ExternalRecipient),
        (None, Some(from)) if settings.is_internal(from) => from.clone(),
        (None, Some(_)) if !thread.is_empty() => thread.remove(0).clone(),
        (None, Some(_)) => return Err(ReplyError::ExternalRecipient),
        (None, None) => return Err(ReplyError::NoSender),
    };
    let cc_options = thread.into_iter().filter(|a| **a != to).cloned().collect();
    Ok(ReplyRecipients { to, cc_options })
}

/// A reply as the reader wrote it.
pub struct ReplyDraft<'a> {
    pub account: &'a Account,
    /// The decrypted original (re-opened from the envelope for this request).
    pub original: &'a [u8],
    pub body: &'a str,
    /// Reply-all choices; each must be one of [`ReplyRecipients::cc_options`].
    pub cc: &'a [String],
    pub attachments: &'a [ReplyAttachment],
    /// Language for the quote line and the encrypted copy's carrier.
    pub lang: &'a str,
}

#[derive(Debug, Clone)]
pub struct QueuedReply {
    pub to: String,
    pub cc: Vec<String>,
    pub encrypted_copy: bool,
}

/// Builds the reply and commits it (and, if configured, the reader's encrypted copy) to the
/// outbound queue in one transaction; returns only after the commit, so a confirmation page
/// shown afterwards never lies.
pub async fn queue_reply(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    wake: Option<&Notify>,
    hostname: &str,
    draft: &ReplyDraft<'_>,
) -> Result<QueuedReply, ReplyError> {
    if draft.body.trim().is_empty() && draft.attachments.is_empty() {
        return Err(ReplyError::Empty);
    }
    let total: usize = draft.attachments.iter().map(|a| a.bytes.len()).sum();
    if total > settings.reply_max_attachment_bytes || draft.body.chars().count() > MAX_BODY_CHARS {
        return Err(ReplyError::TooLarge);
    }
    let own = draft.account.address.clone();
    let (source, allowed) = recipients(draft.original, settings, &own)?;
    let mut cc: Vec<String> = Vec::new();
    for wanted in draft.cc {
        let wanted = normalise_address(wanted);
        if !allowed.cc_options.contains(&wanted) {
            return Err(ReplyError::NotAllowed);
        }
        if !cc.contains(&wanted) {
            cc.push(wanted);
        }
    }
    // Envelope and headers, chosen for SPF/DKIM/DMARC and for bounces: the mail leaves
    // through the organisation's own mail server, so the envelope sender and From are the
    // gateway's notification address in the organisation's (signing) domain: SPF and DKIM
    // align, and a bounce reaches the gateway instead of an outside domain we cannot speak
    // for. The reader is named in From's display name, in Reply-To (the advisor's "Reply"
    // reaches them) and on the body's first line ([`sealpost_mime::PortalAuthor`]). The
    // subject keeps the first trigger keyword, so the advisor's answer is encrypted again.
    let branding = settings.branding();
    let raw = build_reply(&ReplyInput {
        from: &own,
        sender: &settings.notification_from,
        org: branding.org(),
        keyword: settings.trigger_keywords.first().map(String::as_str),
        to: &allowed.to,
        cc: &cc,
        source: &source,
        body: draft.body,
        attachments: draft.attachments,
        lang: draft.lang,
        hostname,
    });
    if raw.is_empty() {
        return Err(ReplyError::Unparseable);
    }
    let mut rcpts = vec![allowed.to.clone()];
    rcpts.extend(cc.iter().cloned());

    let copy = if settings.reply_encrypted_copy {
        Some(encrypted_copy(store, keys, settings, draft, hostname, &raw).await?)
    } else {
        None
    };

    let now = unix_now();
    let give_up_at = now + settings.retry_give_up_secs;
    let mut tx = store.begin().await?;
    let id = Uuid::new_v4().simple().to_string();
    store
        .enqueue(
            &mut tx,
            &NewQueuedMail {
                id: &id,
                kind: MailKind::Reply.as_str(),
                mail_from: &settings.notification_from,
                rcpt_to: &rcpts,
                data: &raw,
                now,
                give_up_at,
            },
        )
        .await?;
    if let Some((carrier, sealed)) = &copy {
        let id = Uuid::new_v4().simple().to_string();
        store
            .enqueue(
                &mut tx,
                &NewQueuedMail {
                    id: &id,
                    kind: MailKind::Carrier.as_str(),
                    mail_from: &settings.notification_from,
                    rcpt_to: std::slice::from_ref(&own),
                    data: carrier,
                    now,
                    give_up_at,
                },
            )
            .await?;
        let sealed = SealedEntry {
            queue_id: Some(id.clone()),
            ..sealed.clone()
        };
        store
            .insert_sealed_many(&mut tx, std::slice::from_ref(&sealed))
            .await?;
    }
    sealpost_store::commit(tx).await?;
    if let Some(wake) = wake {
        wake.notify_one();
    }
    if let Err(e) = store
        .audit(
            now,
            &own,
            "portal.reply_sent",
            Some(&draft.account.id),
            Some(&rcpts.join(", ")),
            None,
        )
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
    crate::metrics::record(store, crate::metrics::REPLIES, 1);
    Ok(QueuedReply {
        to: allowed.to,
        cc,
        encrypted_copy: copy.is_some(),
    })
}

/// The reader's own copy of their reply, sealed like any other secure message to them.
async fn encrypted_copy(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    draft: &ReplyDraft<'_>,
    hostname: &str,
    raw: &[u8],
) -> Result<(Vec<u8>, SealedEntry), ReplyError> {
    let account = draft.account;
    let now = unix_now();
    let (key_id, key) = keys.current(store, &account.id).await?;
    // Format version 2 like every new envelope: its secret can be revoked like any other.
    let secret = sealpost_crypto::MessageSecret::generate();
    let (header, sealed) =
        sealpost_crypto::seal_v2(&key, &secret, key_id, &account.address, now, raw)
            .map_err(CoreError::from)?;
    let wrapped_secret = keys.wrap_message_secret(&header.message_id, &secret);
    let expires_at = crate::messages::expiry(
        None,
        crate::address_domain(&account.address)
            .map_or(settings, |d| settings.for_domain(d))
            .message_expiry_days,
        now,
    );
    let payload = sealpost_crypto::encode_payload(&sealed);
    let original = sealpost_mime::original_headers(raw);
    let branding = settings.branding();
    let lang = account
        .language
        .clone()
        .unwrap_or_else(|| draft.lang.to_string());
    let carrier = build_carrier(&CarrierInput {
        original: &original,
        recipient: &account.address,
        payload_b64: &payload,
        public_url: &settings.public_url,
        lang: &lang,
        branding: &branding,
        hostname,
        notes: &sealpost_mime::CarrierNotes {
            ledger_id: Some(header.message_id_hex()),
            auto_open: settings.carrier_auto_open,
            delivery: crate::pipeline::carrier_delivery(
                crate::address_domain(&account.address)
                    .map_or(settings, |domain| settings.for_domain(domain))
                    .delivery_profile,
            ),
            expires_at,
            ..sealpost_mime::CarrierNotes::default()
        },
    });
    let envelope_id = header.message_id_hex();
    let sealed = SealedEntry {
        entry: LedgerEntry {
            envelope_id: envelope_id.clone(),
            sender: normalise_address(&account.address),
            recipient: account.address.clone(),
            account_id: account.id.clone(),
            created_at: now,
            first_opened_at: None,
        },
        message_id: envelope_id,
        queue_id: None,
        wrapped_secret: Some(wrapped_secret),
        expires_at,
        subject: None,
        subject_hash: Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            original.subject.as_bytes(),
        ))),
    };
    Ok((carrier, sealed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    const ORIGINAL: &[u8] = b"From: Anna <anna@bank.example>\r\n\
To: kunde@example.com, chef@bank.example, other@example.net\r\n\
Cc: team@bank.example, Kunde@Example.com\r\n\
Subject: x\r\nMessage-ID: <m1@bank.example>\r\n\r\nbody\r\n";

    #[test]
    fn only_internal_addresses_of_the_original_are_offered() {
        let settings = Settings {
            internal_domains: vec!["bank.example".into()],
            ..Settings::default()
        };
        let (_, r) = recipients(ORIGINAL, &settings, "kunde@example.com").unwrap();
        assert_eq!(r.to, "anna@bank.example");
        assert_eq!(r.cc_options, vec!["chef@bank.example", "team@bank.example"]);
        let off = Settings {
            reply_allow_internal_all: false,
            ..settings.clone()
        };
        let (_, r) = recipients(ORIGINAL, &off, "kunde@example.com").unwrap();
        assert!(r.cc_options.is_empty());
        // The header-only reading used by the message page decides the same.
        for s in [&settings, &off] {
            let (_, full) = recipients(ORIGINAL, s, "kunde@example.com").unwrap();
            let headers = reply_recipients(ORIGINAL, s, "kunde@example.com").unwrap();
            assert_eq!(full, headers);
        }
    }

    #[test]
    fn an_original_without_sender_cannot_be_answered() {
        let settings = Settings::default();
        assert!(matches!(
            recipients(b"Subject: x\r\n\r\nbody\r\n", &settings, "a@b.example"),
            Err(ReplyError::NoSender)
        ));
        assert!(matches!(
            reply_recipients(b"Subject: x\r\n\r\nbody\r\n", &settings, "a@b.example"),
            Err(ReplyError::NoSender)
        ));
    }

    #[test]
    fn a_reply_never_goes_to_an_external_address() {
        let settings = Settings {
            internal_domains: vec!["bank.example".into()],
            ..Settings::default()
        };
        let no_all = Settings {
            reply_allow_internal_all: false,
            ..settings.clone()
        };
        let with = |header: &str| {
            let text = String::from_utf8_lossy(ORIGINAL)
                .replace("Subject:", &format!("{header}\r\nSubject:"));
            text.into_bytes()
        };
        // An external Reply-To is refused, even beside an internal From.
        let external_reply_to = with("Reply-To: harvest@attacker.example");
        for s in [&settings, &no_all] {
            assert!(matches!(
                recipients(&external_reply_to, s, "kunde@example.com"),
                Err(ReplyError::ExternalRecipient)
            ));
            assert!(matches!(
                reply_recipients(&external_reply_to, s, "kunde@example.com"),
                Err(ReplyError::ExternalRecipient)
            ));
        }
        // An internal Reply-To is where the reply goes.
        let team = with("Reply-To: Team <Team@Bank.example>");
        let r = reply_recipients(&team, &settings, "kunde@example.com").unwrap();
        assert_eq!(r.to, "team@bank.example");
        assert_eq!(r.cc_options, vec!["chef@bank.example"]);
        // An external From (the reader's own copy of a reply, say) gives way to the thread's
        // internal addresses when reply-all is allowed, and is refused otherwise.
        let own_copy = b"From: kunde@example.com\r\nTo: anna@bank.example, chef@bank.example\r\n\
Subject: Re: x\r\n\r\nbody\r\n";
        let r = reply_recipients(own_copy, &settings, "kunde@example.com").unwrap();
        assert_eq!(r.to, "anna@bank.example");
        assert_eq!(r.cc_options, vec!["chef@bank.example"]);
        assert!(matches!(
            reply_recipients(own_copy, &no_all, "kunde@example.com"),
            Err(ReplyError::ExternalRecipient)
        ));
        let outsider = b"From: someone@example.net\r\nTo: kunde@example.com\r\n\r\nbody\r\n";
        assert!(matches!(
            reply_recipients(outsider, &settings, "kunde@example.com"),
            Err(ReplyError::ExternalRecipient)
        ));
        assert_eq!(
            ReplyError::ExternalRecipient.catalogue_key(),
            Some("portal-reply-external")
        );
    }
}
