//! Password and secret-answer hashing (Argon2id), and generated passwords.
//!
//! Hashing deliberately takes tens of milliseconds and ~19 MiB of memory;
//! async callers must run it off the executor (Sealpost uses `sealpost_core::hashing`).

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng as HashOsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Argon2id memory cost in KiB (OWASP's recommended minimum: 19 MiB).
const M_COST_KIB: u32 = 19_456;
/// Argon2id iterations.
const T_COST: u32 = 2;
/// Argon2id lanes.
const P_COST: u32 = 1;

/// Stored hashes asking for more memory than this (1 GiB) are refused rather
/// than verified: a corrupted or hostile row must not exhaust the server.
const MAX_VERIFY_M_COST_KIB: u32 = 1024 * 1024;

/// Symbols of generated passwords: digits, lower and upper case letters
/// without the look-alikes 0 O o 1 l I. 56 symbols, log2(56) ≈ 5.81 bits each.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Symbols in a generated password: 16 × 5.81 ≈ 92.9 bits of entropy.
const PASSWORD_SYMBOLS: usize = 16;

/// Symbols per dash-separated group, for reading aloud and typing.
const GROUP: usize = 4;

/// Hashing failed (only on invalid parameters or an internal error).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The Argon2 implementation reported an error.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| PasswordError::Hash(e.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password or normalised secret answer with Argon2id
/// (m = 19456 KiB, t = 2, p = 1, random 128-bit salt) as a PHC string.
pub fn hash_secret(secret: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut HashOsRng);
    let hash = hasher()?
        .hash_password(secret.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Checks `secret` against a PHC hash string. The parameters are taken from
/// the hash, so hashes made with older (weaker or stronger) settings still
/// verify. Returns false for a malformed hash; never panics.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    match Params::try_from(&parsed) {
        Ok(p) if p.m_cost() <= MAX_VERIFY_M_COST_KIB => {}
        _ => return false,
    }
    Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the same time as a real verification, against a fixed hash that is
/// computed once per process, so that a login for an unknown user cannot be
/// told apart from a wrong password by its timing.
pub fn dummy_verify(secret: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_secret("sealpost dummy secret").ok());
    if let Some(hash) = hash {
        std::hint::black_box(verify_secret(secret, hash));
    }
}

/// Normalises a secret-question answer before hashing or checking it: trims,
/// collapses runs of (Unicode) whitespace to one space, and lower-cases, so
/// "  New   York " and "new york" match.
pub fn normalise_answer(answer: &str) -> String {
    answer
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A new readable password: 16 symbols from a 56-symbol alphabet without
/// look-alikes (≈ 92.9 bits), grouped as `abcd-efgh-jkmn-pqrs`, drawn from
/// the OS CSPRNG without modulo bias. The string is wiped on drop.
pub fn generate_password() -> Zeroizing<String> {
    let groups = PASSWORD_SYMBOLS / GROUP;
    // Allocate the final size up front so no reallocation leaves an unwiped
    // partial copy of the password behind.
    let mut out = Zeroizing::new(String::with_capacity(PASSWORD_SYMBOLS + groups - 1));
    let mut rng = OsRng;
    for i in 0..PASSWORD_SYMBOLS {
        if i > 0 && i % GROUP == 0 {
            out.push('-');
        }
        let idx = rng.gen_range(0..ALPHABET.len());
        out.push(char::from(ALPHABET[idx]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn alphabet_has_no_look_alikes_and_enough_entropy() {
        for c in b"0Oo1lI" {
            assert!(!ALPHABET.contains(c), "{}", char::from(*c));
        }
        let unique: HashSet<_> = ALPHABET.iter().collect();
        assert_eq!(unique.len(), ALPHABET.len());
        assert!(ALPHABET.len() >= 54);
        let bits = PASSWORD_SYMBOLS as f64 * (ALPHABET.len() as f64).log2();
        assert!(bits >= 92.0, "{bits}");
    }

    #[test]
    fn generated_passwords_have_the_format_and_do_not_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let p = generate_password();
            assert_eq!(p.len(), 19, "{}", p.as_str());
            let groups: Vec<&str> = p.split('-').collect();
            assert_eq!(groups.len(), 4);
            for g in &groups {
                assert_eq!(g.len(), 4);
                assert!(g.bytes().all(|b| ALPHABET.contains(&b)), "{}", p.as_str());
            }
            assert!(seen.insert(p.to_string()), "duplicate {}", p.as_str());
        }
        // Over 16000 symbols, nearly every one of the 56 symbols shows up;
        // a generator stuck on a subset of the alphabet would fail this.
        let used: HashSet<char> = seen.iter().flat_map(|p| p.chars()).collect();
        assert_eq!(used.len(), ALPHABET.len() + 1); // + the dash
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_secret("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("correct horsf", &h));
        assert!(!verify_secret("", &h));
        // Same secret, different salt.
        assert_ne!(h, hash_secret("correct horse").expect("hash"));
    }

    #[test]
    fn verify_rejects_malformed_hashes() {
        assert!(!verify_secret("x", ""));
        assert!(!verify_secret("x", "not a hash"));
        assert!(!verify_secret("x", "$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify_secret(
            "x",
            "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
    }

    #[test]
    fn dummy_verify_runs_twice() {
        dummy_verify("whatever");
        dummy_verify("whatever");
    }

    #[test]
    fn normalise_answer_cases() {
        assert_eq!(normalise_answer("  New   York  "), "new york");
        assert_eq!(normalise_answer("New\tYork\r\n"), "new york");
        assert_eq!(normalise_answer("ÄRGER  Über"), "ärger über");
        assert_eq!(normalise_answer("\u{00A0}Paris\u{2003}Nord"), "paris nord");
        assert_eq!(normalise_answer("   "), "");
        assert_eq!(normalise_answer("bello"), "bello");
    }
}
