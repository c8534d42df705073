//! Access to recipient keys: unwraps stored keys with the master key. Unwrapped keys live only
//! as long as the caller holds them and are zeroised on drop by `RecipientKey`.

use std::sync::Arc;

use sealpost_crypto::{KeyId, MasterKey, MessageSecret, RecipientKey};
use sealpost_store::Store;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::CoreError;

#[derive(Clone)]
pub struct KeyRing {
    master: Arc<MasterKey>,
    /// The old master key during a master-key rotation: accepted for unwrapping, never used
    /// to wrap, so that keys not yet re-wrapped stay readable on every node.
    previous: Option<Arc<MasterKey>>,
}

/// What [`KeyRing::rewrap_all`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Keys that were wrapped under another master key and now are under the target.
    pub rewrapped: u64,
    /// Keys that already were under the target key (an earlier, interrupted run).
    pub already: u64,
    /// Keys that changed or vanished while being re-wrapped (a concurrent delete); skipped.
    pub skipped: u64,
}

impl KeyRing {
    pub fn new(master: MasterKey) -> Self {
        KeyRing {
            master: Arc::new(master),
            previous: None,
        }
    }

    /// A key ring during a master-key rotation: wraps under `master`, unwraps under either.
    pub fn with_previous(master: MasterKey, previous: Option<MasterKey>) -> Self {
        KeyRing {
            master: Arc::new(master),
            previous: previous.map(Arc::new),
        }
    }

    /// Whether an old master key is still accepted (a rotation is in progress).
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// A fresh key for a new account (version 1) and its wrapped form for storage.
    pub fn new_account_key(&self, account_id: Uuid) -> (KeyId, RecipientKey, Vec<u8>) {
        let key_id = KeyId {
            account_id,
            version: 1,
        };
        let key = RecipientKey::generate();
        let wrapped = self.master.wrap_recipient_key(&key_id, &key);
        (key_id, key, wrapped)
    }

    /// Unwraps under the current master key, then under the previous one (during a rotation).
    pub fn unwrap(&self, key_id: &KeyId, wrapped: &[u8]) -> Result<RecipientKey, CoreError> {
        match self.master.unwrap_recipient_key(key_id, wrapped) {
            Ok(key) => Ok(key),
            Err(e) => match &self.previous {
                Some(previous) => Ok(previous.unwrap_recipient_key(key_id, wrapped)?),
                None => Err(e.into()),
            },
        }
    }

    /// Wraps a recipient's second-factor seed (the TOTP secret) for storage.
    pub fn wrap_factor_secret(&self, account_id: &str, secret: &[u8]) -> Vec<u8> {
        self.master.wrap_factor_secret(account_id, secret)
    }

    /// Unwraps a stored second-factor seed under the current, then the previous master key.
    pub fn unwrap_factor_secret(
        &self,
        account_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        match self.master.unwrap_factor_secret(account_id, wrapped) {
            Ok(secret) => Ok(secret),
            Err(e) => match &self.previous {
                Some(previous) => Ok(previous.unwrap_factor_secret(account_id, wrapped)?),
                None => Err(e.into()),
            },
        }
    }

    /// A fresh message secret for the envelope `envelope_id` and its wrapped form for the
    /// ledger (always under the current master key).
    pub fn new_message_secret(&self, envelope_id: &[u8; 16]) -> (MessageSecret, Vec<u8>) {
        let secret = MessageSecret::generate();
        let wrapped = self.master.wrap_message_secret(envelope_id, &secret);
        (secret, wrapped)
    }

    /// Wraps a message secret for the ledger under the current master key.
    pub fn wrap_message_secret(&self, envelope_id: &[u8; 16], secret: &MessageSecret) -> Vec<u8> {
        self.master.wrap_message_secret(envelope_id, secret)
    }

    /// Unwraps a ledger row's message secret under the current, then the previous master key.
    pub fn unwrap_message_secret(
        &self,
        envelope_id: &[u8; 16],
        wrapped: &[u8],
    ) -> Result<MessageSecret, CoreError> {
        match self.master.unwrap_message_secret(envelope_id, wrapped) {
            Ok(secret) => Ok(secret),
            Err(e) => match &self.previous {
                Some(previous) => Ok(previous.unwrap_message_secret(envelope_id, wrapped)?),
                None => Err(e.into()),
            },
        }
    }

    /// The newest key of an account, for sealing.
    pub async fn current(
        &self,
        store: &Store,
        account_id: &str,
    ) -> Result<(KeyId, RecipientKey), CoreError> {
        let (version, wrapped) = store
            .current_key(account_id)
            .await?
            .ok_or_else(|| CoreError::MissingKey(account_id.to_string()))?;
        self.unwrap_stored(account_id, version, &wrapped)
    }

    /// Unwraps a key row read by the caller (e.g. with [`Store::sealing_recipients`]).
    pub fn unwrap_stored(
        &self,
        account_id: &str,
        version: u32,
        wrapped: &[u8],
    ) -> Result<(KeyId, RecipientKey), CoreError> {
        let key_id = KeyId {
            account_id: parse_account_id(account_id)?,
            version,
        };
        let key = self.unwrap(&key_id, wrapped)?;
        Ok((key_id, key))
    }

    /// A specific key version, for opening; None when it was deleted.
    pub async fn version(
        &self,
        store: &Store,
        key_id: &KeyId,
    ) -> Result<Option<RecipientKey>, CoreError> {
        let Some(wrapped) = store
            .key_version(&key_id.account_id.to_string(), key_id.version)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.unwrap(key_id, &wrapped)?))
    }

    /// Adds a new key version for an account (rotation); old versions stay readable.
    pub async fn rotate(&self, store: &Store, account_id: &str) -> Result<u32, CoreError> {
        let uuid = parse_account_id(account_id)?;
        let (current, _) = store
            .current_key(account_id)
            .await?
            .ok_or_else(|| CoreError::MissingKey(account_id.to_string()))?;
        let key_id = KeyId {
            account_id: uuid,
            version: current + 1,
        };
        let key = RecipientKey::generate();
        let wrapped = self.master.wrap_recipient_key(&key_id, &key);
        store
            .add_key_version(account_id, key_id.version, &wrapped, crate::unix_now())
            .await?;
        Ok(key_id.version)
    }

    /// Re-wraps every stored recipient key under `target` (a master-key rotation), in pages of
    /// `batch` keys. Each row is replaced by its own short statement, and only if it still
    /// holds the bytes that were read, so nodes keep running and a concurrent change is never
    /// overwritten. Keys already under `target` are left alone, so an interrupted run can
    /// simply be started again. Key ids do not change: the wrapping binds account and version.
    pub async fn rewrap_all(
        &self,
        store: &Store,
        target: &MasterKey,
        batch: i64,
    ) -> Result<RewrapReport, CoreError> {
        let mut report = RewrapReport::default();
        let mut after = (String::new(), 0u32);
        loop {
            let page = store.keys_after(&after.0, after.1, batch.max(1)).await?;
            let Some(last) = page.last() else { break };
            after = (last.account_id.clone(), last.version);
            for row in &page {
                let key_id = KeyId {
                    account_id: parse_account_id(&row.account_id)?,
                    version: row.version,
                };
                if target.unwrap_recipient_key(&key_id, &row.wrapped).is_ok() {
                    report.already += 1;
                    continue;
                }
                let key = self.unwrap(&key_id, &row.wrapped)?;
                let wrapped = target.wrap_recipient_key(&key_id, &key);
                if store
                    .replace_wrapped_key(&row.account_id, row.version, &row.wrapped, &wrapped)
                    .await?
                {
                    report.rewrapped += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        // The message secrets of version-2 envelopes are wrapped under the master key too:
        // one left under the old key would become unreadable once it is retired.
        let mut after = String::new();
        loop {
            let page = store.message_secrets_after(&after, batch.max(1)).await?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            for (envelope_id, wrapped) in &page {
                let Some(id) = hex::decode(envelope_id)
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                else {
                    report.skipped += 1;
                    continue;
                };
                if target.unwrap_message_secret(&id, wrapped).is_ok() {
                    report.already += 1;
                    continue;
                }
                let secret = self.unwrap_message_secret(&id, wrapped)?;
                let rewrapped = target.wrap_message_secret(&id, &secret);
                if store
                    .replace_message_secret(envelope_id, wrapped, &rewrapped)
                    .await?
                {
                    report.rewrapped += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        // Recipients' TOTP seeds too: one left under the old key would lock its holder out
        // of the second factor once the old key is retired.
        let mut after = String::new();
        loop {
            let page = store.totp_seeds_after(&after, batch.max(1)).await?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            for (account_id, secret, pending) in &page {
                for (is_pending, wrapped) in [(false, secret), (true, pending)] {
                    let Some(wrapped) = wrapped else { continue };
                    if target.unwrap_factor_secret(account_id, wrapped).is_ok() {
                        report.already += 1;
                        continue;
                    }
                    let seed = self.unwrap_factor_secret(account_id, wrapped)?;
                    let rewrapped = target.wrap_factor_secret(account_id, &seed);
                    if store
                        .replace_totp_seed(account_id, is_pending, wrapped, &rewrapped)
                        .await?
                    {
                        report.rewrapped += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}

fn parse_account_id(account_id: &str) -> Result<Uuid, CoreError> {
    Uuid::parse_str(account_id).map_err(|_| CoreError::MissingKey(account_id.to_string()))
}
