//! Access to recipient keys: unwraps stored keys with the master key. Unwrapped keys live only
//! as long as the caller holds them and are zeroised on drop by `RecipientKey`.

use std::sync::Arc;

use sealpost_crypto::{KeyId, MasterKey, RecipientKey};
use sealpost_store::Store;
use uuid::Uuid;

use crate::CoreError;

#[derive(Clone)]
pub struct KeyRing {
    master: Arc<MasterKey>,
}

impl KeyRing {
    pub fn new(master: MasterKey) -> Self {
        KeyRing {
            master: Arc::new(master),
        }
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

    pub fn unwrap(&self, key_id: &KeyId, wrapped: &[u8]) -> Result<RecipientKey, CoreError> {
        Ok(self.master.unwrap_recipient_key(key_id, wrapped)?)
    }

    /// The newest key of an account, for sealing.
    pub async fn current(
        &self,
        store: &Store,
        account_id: &str,
    ) -> Result<(KeyId, RecipientKey), CoreError> {
        let uuid = parse_account_id(account_id)?;
        let (version, wrapped) = store
            .current_key(account_id)
            .await?
            .ok_or_else(|| CoreError::MissingKey(account_id.to_string()))?;
        let key_id = KeyId {
            account_id: uuid,
            version,
        };
        let key = self.unwrap(&key_id, &wrapped)?;
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
}

fn parse_account_id(account_id: &str) -> Result<Uuid, CoreError> {
    Uuid::parse_str(account_id).map_err(|_| CoreError::MissingKey(account_id.to_string()))
}
