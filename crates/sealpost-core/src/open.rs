//! Opening an envelope for a logged-in recipient: only envelopes sealed for that very account,
//! with a key that still exists, and whose authentication tag verifies.

use sealpost_crypto::{EnvelopeError, EnvelopeHeader};
use sealpost_store::{Account, Store};

use crate::{CoreError, KeyRing, audit, metrics, unix_now};

/// Why an envelope cannot be shown; each has its own page in the portal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the secure message is damaged or incomplete")]
    Damaged,
    #[error("the secure message was made by a newer version (format {0})")]
    UnsupportedVersion(u8),
    #[error("the secure message is addressed to another account")]
    WrongRecipient,
    #[error("the key of this secure message no longer exists")]
    KeyDeleted,
    #[error("the secure message is too large to open")]
    TooLarge,
    #[error("internal error")]
    Internal,
    /// Refused at upload: no account and key on this portal match the envelope's header. The
    /// portal shows the same page for every reason (unknown address, other account id, key
    /// version gone), so an upload never tells a stranger whether an address has an account.
    #[error("the secure message was not sealed for an account and key of this portal")]
    NotForThisPortal,
    /// Revoked (message control): its secret is deleted. `reason` only if marked public.
    #[error("the secure message was revoked")]
    Revoked {
        by: String,
        at: i64,
        reason: Option<String>,
    },
    /// Its expiry passed: its secret is (or is about to be) deleted.
    #[error("the secure message has expired")]
    Expired { sender: String, at: i64 },
    /// A version-2 envelope whose secret is gone with nothing more on record.
    #[error("the secure message can no longer be opened")]
    SecretGone,
}

pub struct OpenedMessage {
    pub header: EnvelopeHeader,
    /// The original RFC 5322 message; held in memory only while a page is rendered.
    pub raw: Vec<u8>,
    /// Until when it can be read (version 2 with an expiry; read with its secret).
    pub expires_at: Option<i64>,
}

impl From<EnvelopeError> for OpenError {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::UnsupportedVersion(v) => OpenError::UnsupportedVersion(v),
            EnvelopeError::TooLarge => OpenError::TooLarge,
            EnvelopeError::SecretMissing => OpenError::SecretGone,
            _ => OpenError::Damaged,
        }
    }
}

/// Parses a posted payload (base64 text) into envelope bytes, checking the header early so a
/// damaged upload is rejected before it is stored.
pub fn parse_payload(payload: &str) -> Result<(EnvelopeHeader, Vec<u8>), OpenError> {
    let bytes = sealpost_crypto::decode_payload(payload)?;
    let header = sealpost_crypto::read_header(&bytes)?;
    Ok((header, bytes))
}

/// Checks that envelope bytes (e.g. a streamed upload) start with a header this build reads,
/// before they are stored.
pub fn check_envelope(envelope: &[u8]) -> Result<EnvelopeHeader, OpenError> {
    Ok(sealpost_crypto::read_header(envelope)?)
}

/// Checks an uploaded envelope before anything of it is stored: its header must parse, and the
/// account and key version it names must exist here (address, account id and key version
/// all matching). Envelopes forged with random ciphertext for an unknown recipient are thus
/// refused before they take memory or disk. Both lookups run whatever the first finds, so
/// the time taken says little about which part failed.
pub async fn check_upload(store: &Store, envelope: &[u8]) -> Result<EnvelopeHeader, OpenError> {
    let header = check_envelope(envelope)?;
    let account_id = header.key_id.account_id.to_string();
    let account = store.account_by_address(&header.recipient).await;
    let key = store.key_version(&account_id, header.key_id.version).await;
    match (account, key) {
        (Ok(Some(account)), Ok(Some(_))) if account.id == account_id => Ok(header),
        (Ok(_), Ok(_)) => Err(OpenError::NotForThisPortal),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "recipient lookup for an upload failed");
            Err(OpenError::Internal)
        }
    }
}

/// The parked envelope of a temporary open by the hash of its token, unless it has expired
/// (or was never parked here).
pub async fn parked_envelope(
    store: &Store,
    token_hash: &str,
    now: i64,
) -> Result<Option<Vec<u8>>, CoreError> {
    Ok(store.temp_open(token_hash, now).await?)
}

/// Opens `envelope` (taken: it is decrypted in place, then wiped) for `account`.
pub async fn open_for_account(
    store: &Store,
    keys: &KeyRing,
    account: &Account,
    envelope: Vec<u8>,
    max_plaintext: usize,
) -> Result<OpenedMessage, OpenError> {
    let header = sealpost_crypto::read_header(&envelope)?;
    if header.recipient != account.address {
        return Err(OpenError::WrongRecipient);
    }
    // Same address, other account: addresses are unique, so the account the envelope was
    // sealed for was deleted (with its keys) and this is a new one.
    if header.key_id.account_id.to_string() != account.id {
        return Err(OpenError::KeyDeleted);
    }
    let key = match keys.version(store, &header.key_id).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(OpenError::KeyDeleted),
        Err(CoreError::Key(_)) => return Err(OpenError::Damaged),
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            return Err(OpenError::Internal);
        }
    };
    // Version 2: the secret in the ledger is the other half of the content key; a revoked
    // or expired message has none, and its page says why.
    let (secret, expires_at) = if header.secret_check.is_some() {
        match crate::messages::secret_for(store, keys, &header.message_id, unix_now()).await {
            Ok(Ok((secret, expires_at))) => (Some(secret), expires_at),
            Ok(Err(withdrawn)) => return Err(withdrawn.into()),
            Err(CoreError::Key(_)) => return Err(OpenError::Damaged),
            Err(e) => {
                // Key errors are answered above, so `e` is a store error: sqlx names the query
                // or column, never a bound or fetched value, so neither the wrapped secret nor
                // any content can be in it.
                tracing::error!(error = %e, "message secret lookup failed");
                return Err(OpenError::Internal);
            }
        }
    } else {
        (None, None)
    };
    // First and further opens are recorded by `content_access` (once per page shown).
    let (header, raw) =
        sealpost_crypto::open_owned_with_secret(&key, secret.as_ref(), envelope, max_plaintext)?;
    Ok(OpenedMessage {
        header,
        raw,
        expires_at,
    })
}

impl From<crate::messages::Withdrawn> for OpenError {
    fn from(w: crate::messages::Withdrawn) -> Self {
        use crate::messages::Withdrawn;
        match w {
            Withdrawn::Revoked { by, at, reason } => OpenError::Revoked { by, at, reason },
            Withdrawn::Expired { sender, at } => OpenError::Expired { sender, at },
            Withdrawn::Gone => OpenError::SecretGone,
        }
    }
}

/// What a reader did with decrypted content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentAccess {
    /// The message was shown in the portal.
    Read,
    /// Part number `index` of the message (attachment, inline image, HTML body) was fetched.
    Part { index: usize },
    /// The whole message was downloaded as `.eml`.
    Eml,
}

/// Records an access to decrypted content (audit event and `/metrics` counter); the portal's
/// handlers call it once per page, part or download they serve.
pub async fn content_access(
    store: &Store,
    account: &Account,
    message_id: &str,
    access: ContentAccess,
    client_ip: &str,
    settings: &crate::Settings,
) {
    // The message timeline (issue 16): the page is an open, a part or .eml a download.
    let (kind, what) = match access {
        ContentAccess::Read => (sealpost_store::MessageEventKind::Opened, None),
        ContentAccess::Part { index } => (
            sealpost_store::MessageEventKind::Downloaded,
            Some(format!("part {index}")),
        ),
        ContentAccess::Eml => (
            sealpost_store::MessageEventKind::Downloaded,
            Some("eml".to_string()),
        ),
    };
    let first_open = crate::messages::record(
        store,
        message_id,
        kind,
        what.as_deref(),
        Some(client_ip),
        settings.message_client_address,
    )
    .await;
    // The sender's open notification (`messages.receipts`, per recipient domain; off by
    // default, so most first opens cost nothing more). `send_receipt` checks again with the
    // ledger's recipient and sender.
    if first_open && settings.for_address(&account.address).message_receipts {
        crate::sender_control::send_receipt_detached(store, settings, message_id, unix_now());
    }
    let (action, counter, detail) = match access {
        ContentAccess::Read => (
            audit::MESSAGE_READ,
            metrics::CONTENT_READS,
            format!("message {message_id}"),
        ),
        ContentAccess::Part { index } => (
            audit::PART_DOWNLOADED,
            metrics::PART_DOWNLOADS,
            format!("message {message_id} part {index}"),
        ),
        ContentAccess::Eml => (
            audit::EML_DOWNLOADED,
            metrics::EML_DOWNLOADS,
            format!("message {message_id}"),
        ),
    };
    metrics::record(store, counter, 1);
    audit::account_event(store, account, action, Some(&detail), Some(client_ip)).await;
}
