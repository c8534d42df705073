//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps) for administrators and recipients: new
//! secrets, the otpauth:// URI of the enrolment QR code, and checking a code with the time
//! step it matched, which the caller claims in the store so a code works only once.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::unix_now;

/// A new random TOTP secret (160 bit, base32 as authenticator apps expect).
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

/// Codes of one step before and after the current one are accepted (clock drift of up to
/// 30 s either way).
const TOTP_SKEW_STEPS: i64 = 1;
const TOTP_STEP_SECS: i64 = 30;

fn totp(secret: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().ok()?;
    // Skew is handled by `totp_step`, which needs to know which step matched.
    TOTP::new(Algorithm::SHA1, 6, 0, TOTP_STEP_SECS as u64, bytes).ok()
}

/// The time step whose code `code` is (within the allowed skew around `now`), if any. The
/// comparison is constant-time; every candidate step is compared.
pub fn totp_step(secret: &str, code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 {
        return None;
    }
    let totp = totp(secret)?;
    let current = now.div_euclid(TOTP_STEP_SECS);
    let mut matched = None;
    for step in current - TOTP_SKEW_STEPS..=current + TOTP_SKEW_STEPS {
        let Ok(time) = u64::try_from(step * TOTP_STEP_SECS) else {
            continue;
        };
        if sealpost_crypto::ct_eq(totp.generate(time).as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched
}

/// Checks a 6-digit code against a base32 secret at the current time.
pub fn totp_check(secret: &str, code: &str) -> bool {
    totp_step(secret, code, unix_now()).is_some()
}

/// The otpauth:// URI an authenticator app imports (`account_name`: an admin's name or a
/// recipient's address).
pub fn totp_uri(secret: &str, account_name: &str, issuer: &str) -> String {
    let enc = |s: &str| crate::url::encode(s, crate::url::COMPONENT);
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account_name),
        enc(issuer)
    )
}

/// A 6-digit code in the form an authenticator shows it (spaces removed), or None.
pub fn normalise_code(code: &str) -> Option<String> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_codes_verify() {
        let secret = new_totp_secret();
        let t = totp(&secret).expect("valid secret");
        let code = t.generate_current().expect("clock");
        assert!(totp_check(&secret, &code));
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert!(!totp_check(&secret, wrong));
        assert!(!totp_check(&secret, ""));
        assert!(!totp_check("not base32!", &code));
        assert!(totp_uri(&secret, "root", "Bank AG").contains("issuer=Bank%20AG"));
    }

    #[test]
    fn totp_steps_name_the_matching_window() {
        let secret = new_totp_secret();
        let t = totp(&secret).expect("valid secret");
        let now = 1_700_000_015;
        let code = t.generate(now as u64);
        assert_eq!(totp_step(&secret, &code, now), Some(now / 30));
        // One step of drift either way, not two.
        assert_eq!(totp_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now - 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now + 60), None);
    }

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(normalise_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(normalise_code("12345"), None);
        assert_eq!(normalise_code("12345a"), None);
    }
}
