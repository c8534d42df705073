//! Session and one-time tokens. Only a token's hash is stored, so a leaked
//! database does not hand out live sessions or links.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A new 256-bit random token, as `(token, hash)`: the token is URL-safe
/// base64 without padding (43 characters, fits in URLs and cookies) and goes
/// to the client; the hash (lower-case hex SHA-256 of the token string) goes
/// to the database.
pub fn new_token() -> (String, String) {
    let mut raw = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(raw.as_mut_slice());
    let token = URL_SAFE_NO_PAD.encode(raw.as_slice());
    let hash = hash_token(&token);
    (token, hash)
}

/// Lower-case hex SHA-256 of the token string, as stored in the database.
/// A plain hash suffices (no salt or slow hash): the token has 256 bits of
/// entropy, so it cannot be guessed from its hash.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality (time does not depend on where the inputs first
/// differ). Inputs of different lengths are unequal; lengths are not secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_and_hash() {
        let (t, h) = new_token();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).expect("decode").len(), 32);
        assert_eq!(h, hash_token(&t));
        assert_eq!(h.len(), 64);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let (t2, h2) = new_token();
        assert_ne!(t, t2);
        assert_ne!(h, h2);
    }

    #[test]
    fn hash_token_known_vector() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ct_eq_cases() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"abc", b""));
    }
}
