//! The rules a password chosen by a recipient must meet. Generated passwords never go through
//! here: they have more entropy than any rule could demand.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::normalise_address;

/// Longer input is refused so nobody can make the server hash megabytes per request.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a chosen password was refused; each has its own localised message (see [`Self::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the password is too short")]
    TooShort,
    #[error("the password is too long")]
    TooLong,
    #[error("the password is the e-mail address")]
    IsAddress,
    #[error("the password is a common password")]
    Common,
    #[error("the two passwords differ")]
    Mismatch,
}

impl PolicyViolation {
    /// The message key in the portal's catalogue.
    pub fn key(self) -> &'static str {
        match self {
            PolicyViolation::TooShort => "portal-pw-too-short",
            PolicyViolation::TooLong => "portal-pw-too-long",
            PolicyViolation::IsAddress => "portal-pw-is-address",
            PolicyViolation::Common => "portal-pw-common",
            PolicyViolation::Mismatch => "portal-pw-mismatch",
        }
    }
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Checks a newly chosen password (and its confirmation) for `address`.
pub fn check(
    password: &str,
    confirmation: &str,
    address: &str,
    min_length: usize,
) -> Result<(), PolicyViolation> {
    if !sealpost_crypto::ct_eq(password.as_bytes(), confirmation.as_bytes()) {
        return Err(PolicyViolation::Mismatch);
    }
    let chars = password.chars().count();
    if chars < min_length.max(1) {
        return Err(PolicyViolation::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    let folded = password.trim().to_lowercase();
    // A likeness test, not an identity: fold the address as fully as the password is folded.
    let address = normalise_address(address).to_lowercase();
    let local = address.rsplit_once('@').map_or("", |(local, _)| local);
    // The address (or its local part, alone or with digits around it) is the first thing an
    // attacker who knows whom to attack tries.
    let stripped = folded.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if folded == address || (!local.is_empty() && (folded == local || stripped == local)) {
        return Err(PolicyViolation::IsAddress);
    }
    // "password1!" and "qwertyuiop2024" are as guessable as the word they decorate.
    let unpunctuated = folded.trim_end_matches(|c: char| c.is_ascii_punctuation());
    let list = common_passwords();
    if [folded.as_str(), unpunctuated, stripped]
        .iter()
        .any(|p| !p.is_empty() && list.contains(p))
    {
        return Err(PolicyViolation::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "Max.Muster@Kunde.Example";

    fn ok(p: &str) -> Result<(), PolicyViolation> {
        check(p, p, ADDR, 10)
    }

    #[test]
    fn good_passwords_pass() {
        assert_eq!(ok("correct horse battery"), Ok(()));
        assert_eq!(ok("Tr0ub4dor&3xyz"), Ok(()));
    }

    #[test]
    fn each_rule_has_its_reason() {
        assert_eq!(ok("short1"), Err(PolicyViolation::TooShort));
        assert_eq!(ok(&"x".repeat(300)), Err(PolicyViolation::TooLong));
        assert_eq!(
            ok("max.muster@kunde.example"),
            Err(PolicyViolation::IsAddress)
        );
        assert_eq!(ok("MAX.MUSTER2024"), Err(PolicyViolation::IsAddress));
        assert_eq!(ok("Password123"), Err(PolicyViolation::Common));
        assert_eq!(ok("qwertyuiop"), Err(PolicyViolation::Common));
        assert_eq!(ok("1234567890!"), Err(PolicyViolation::Common));
        assert_eq!(
            check("correct horse battery", "correct horse batterY", ADDR, 10),
            Err(PolicyViolation::Mismatch)
        );
    }

    #[test]
    fn minimum_length_is_configurable_and_counts_characters() {
        assert_eq!(check("äöüäöü", "äöüäöü", ADDR, 6), Ok(()));
        assert_eq!(
            check("äöüäöü", "äöüäöü", ADDR, 7),
            Err(PolicyViolation::TooShort)
        );
    }

    #[test]
    fn the_embedded_list_is_substantial() {
        assert!(common_passwords().len() > 300);
    }
}
