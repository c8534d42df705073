//! The per-message secret of a version-2 envelope (message control, issue 16): 256 random
//! bits kept, wrapped under the master key, in the ledger row of one message and recipient.
//! The envelope's content key is derived from the recipient key *and* this secret, so deleting
//! the stored secret (revocation, expiry) makes that one envelope unreadable for good, even
//! to someone who later holds the database and the master key. See `docs/ENVELOPE.md`.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::{KEY_LEN, KeyError, MasterKey, NONCE_LEN, TAG_LEN};

/// HKDF purpose (under the master key) of the key that wraps message secrets; distinct from
/// the recipient keys' KEK, so one wrapping can never be mistaken for the other.
const SECRET_WRAP_PURPOSE: &str = "message-secret-wrap";

/// Prefix of the wrapping's associated data, before the 16-byte envelope id.
const WRAP_AAD_PREFIX: &[u8] = b"sealpost message secret";

/// Length of a wrapped secret: nonce || encrypted secret || tag.
pub const WRAPPED_SECRET_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// A message secret. Zeroised on drop; `Debug` hides it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageSecret([u8; KEY_LEN]);

impl fmt::Debug for MessageSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageSecret(...)")
    }
}

impl MessageSecret {
    /// A new random secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut s = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut s);
        Self(s)
    }

    /// Wraps raw bytes (e.g. from a test vector).
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Self {
        Self(b)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

fn wrap_aad(envelope_id: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_PREFIX.len() + 16);
    aad.extend_from_slice(WRAP_AAD_PREFIX);
    aad.extend_from_slice(envelope_id);
    aad
}

impl MasterKey {
    /// Wraps the secret of the envelope `envelope_id` for the ledger: nonce (24) ||
    /// XChaCha20-Poly1305(HKDF(master, "sealpost/v1/message-secret-wrap"), nonce, secret,
    /// AAD = "sealpost message secret" || envelope id). A wrapped secret copied to another
    /// envelope's row does not unwrap there.
    pub fn wrap_message_secret(&self, envelope_id: &[u8; 16], secret: &MessageSecret) -> Vec<u8> {
        let key = self.derive_subkey(SECRET_WRAP_PURPOSE);
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = wrap_aad(envelope_id);
        match cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            },
        ) {
            Ok(ct) => {
                let mut out = Vec::with_capacity(WRAPPED_SECRET_LEN);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                out
            }
            // Cannot happen for 32 bytes; an empty result fails closed on unwrap.
            Err(_) => Vec::new(),
        }
    }

    /// Reverses [`MasterKey::wrap_message_secret`]; fails on another master key, another
    /// envelope id or changed bytes.
    pub fn unwrap_message_secret(
        &self,
        envelope_id: &[u8; 16],
        wrapped: &[u8],
    ) -> Result<MessageSecret, KeyError> {
        if wrapped.len() != WRAPPED_SECRET_LEN {
            return Err(KeyError::UnwrapFailed);
        }
        let (nonce, ct) = wrapped
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(KeyError::UnwrapFailed)?;
        let key = self.derive_subkey(SECRET_WRAP_PURPOSE);
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let aad = wrap_aad(envelope_id);
        let plain = Zeroizing::new(
            cipher
                .decrypt(nonce.into(), Payload { msg: ct, aad: &aad })
                .map_err(|_| KeyError::UnwrapFailed)?,
        );
        let arr: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::UnwrapFailed)?;
        Ok(MessageSecret(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_the_envelope_id_and_master_key() {
        let master = MasterKey::generate();
        let secret = MessageSecret::generate();
        let id = [7u8; 16];
        let wrapped = master.wrap_message_secret(&id, &secret);
        assert_eq!(wrapped.len(), WRAPPED_SECRET_LEN);
        let back = master.unwrap_message_secret(&id, &wrapped).expect("unwrap");
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert!(master.unwrap_message_secret(&[8u8; 16], &wrapped).is_err());
        assert!(
            MasterKey::generate()
                .unwrap_message_secret(&id, &wrapped)
                .is_err()
        );
        let mut bad = wrapped.clone();
        bad[30] ^= 1;
        assert!(master.unwrap_message_secret(&id, &bad).is_err());
        assert!(master.unwrap_message_secret(&id, &wrapped[1..]).is_err());
        assert_eq!(format!("{secret:?}"), "MessageSecret(...)");
    }
}
