//! The opt-in `link` delivery profile, after the carrier has gone: the encrypted copy a
//! carrier's `{public_url}/m/{id}` opens, for its own account only, until it expires; and the
//! sweep that deletes expired copies. The copy is the envelope as sealed (ciphertext); it is
//! opened exactly like a posted secure.htm.

use sealpost_store::{Account, Store};

use crate::{CoreError, audit};

/// The envelope behind link id `link_id` for `account`, unless it is unknown, expired or
/// another account's (all three read the same). Only the hash of the id is looked up.
pub async fn envelope_for_reader(
    store: &Store,
    link_id: &str,
    account: &Account,
    now: i64,
) -> Result<Option<LinkedEnvelope>, CoreError> {
    let hash = sealpost_crypto::hash_token(link_id);
    Ok(store
        .link_copy(&hash, &account.id, now)
        .await?
        .map(|copy| LinkedEnvelope {
            envelope_id: copy.envelope_id,
            envelope: copy.payload,
        }))
}

/// A kept envelope, found for its reader.
pub struct LinkedEnvelope {
    /// The ledger id of the message.
    pub envelope_id: String,
    /// The envelope bytes (ciphertext).
    pub envelope: Vec<u8>,
}

/// Records that a reader followed a message link (the read itself is audited when the
/// message is shown).
pub async fn audit_opened(store: &Store, account: &Account, envelope_id: &str, client_ip: &str) {
    audit::account_event(
        store,
        account,
        audit::LINK_OPENED,
        Some(&format!("message {envelope_id}")),
        Some(client_ip),
    )
    .await;
}

/// Deletes the copies whose time is up; returns how many.
pub async fn sweep(store: &Store, now: i64) -> Result<u64, CoreError> {
    Ok(store.sweep_link_copies(now).await?)
}
