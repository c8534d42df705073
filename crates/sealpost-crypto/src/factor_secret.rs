//! Wrapping of a recipient's second-factor seed (the TOTP secret) under the master key, so the
//! database holds no seed in clear: a dump without the master key cannot mint codes.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::keys::{KeyError, MasterKey, NONCE_LEN, TAG_LEN};

/// HKDF purpose (under the master key) of the key that wraps factor seeds; distinct from the
/// recipient keys' KEK and the message secrets' key, so one wrapping is never taken for another.
const FACTOR_WRAP_PURPOSE: &str = "factor-secret-wrap";

/// Prefix of the wrapping's associated data, before the account id.
const WRAP_AAD_PREFIX: &[u8] = b"sealpost factor secret\0";

/// A seed is short (a base32 TOTP secret is 32 characters); anything longer is refused.
const MAX_SECRET_LEN: usize = 256;

fn wrap_aad(account_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_PREFIX.len() + account_id.len());
    aad.extend_from_slice(WRAP_AAD_PREFIX);
    aad.extend_from_slice(account_id.as_bytes());
    aad
}

impl MasterKey {
    /// Wraps the factor seed of the account `account_id`: nonce (24) ||
    /// XChaCha20-Poly1305(HKDF(master, "sealpost/v1/factor-secret-wrap"), nonce, seed,
    /// AAD = "sealpost factor secret\0" || account id). A wrapped seed copied to another
    /// account's row does not unwrap there.
    pub fn wrap_factor_secret(&self, account_id: &str, secret: &[u8]) -> Vec<u8> {
        if secret.len() > MAX_SECRET_LEN {
            // Fails closed: an empty wrapping never unwraps.
            return Vec::new();
        }
        let key = self.derive_subkey(FACTOR_WRAP_PURPOSE);
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = wrap_aad(account_id);
        match cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: secret,
                aad: &aad,
            },
        ) {
            Ok(ct) => {
                let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                out
            }
            Err(_) => Vec::new(),
        }
    }

    /// Reverses [`MasterKey::wrap_factor_secret`]; fails on another master key, another
    /// account id or changed bytes.
    pub fn unwrap_factor_secret(
        &self,
        account_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if wrapped.len() < NONCE_LEN + TAG_LEN {
            return Err(KeyError::UnwrapFailed);
        }
        let (nonce, ct) = wrapped
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(KeyError::UnwrapFailed)?;
        let key = self.derive_subkey(FACTOR_WRAP_PURPOSE);
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let aad = wrap_aad(account_id);
        let plain = cipher
            .decrypt(nonce.into(), Payload { msg: ct, aad: &aad })
            .map_err(|_| KeyError::UnwrapFailed)?;
        Ok(Zeroizing::new(plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_the_account_and_master_key() {
        let master = MasterKey::generate();
        let wrapped = master.wrap_factor_secret("acc-1", b"JBSWY3DPEHPK3PXP");
        assert!(!wrapped.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
        let back = master
            .unwrap_factor_secret("acc-1", &wrapped)
            .expect("unwrap");
        assert_eq!(back.as_slice(), b"JBSWY3DPEHPK3PXP");
        assert!(master.unwrap_factor_secret("acc-2", &wrapped).is_err());
        assert!(
            MasterKey::generate()
                .unwrap_factor_secret("acc-1", &wrapped)
                .is_err()
        );
        let mut bad = wrapped.clone();
        bad[30] ^= 1;
        assert!(master.unwrap_factor_secret("acc-1", &bad).is_err());
        assert!(master.unwrap_factor_secret("acc-1", &[]).is_err());
    }
}
