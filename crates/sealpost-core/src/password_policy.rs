//! The rules a password chosen by a recipient must meet. Generated passwords never go through
//! here: they have more entropy than any rule could demand.

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

/// The breached-password list as embedded in the binary: read-only data the operating system
/// pages in from the executable on demand, so looking a password up allocates nothing and
/// the list never sits in the heap (a set of 400,000 strings would take some 30 MB).
const BREACHED_FILE: &[u8] = include_bytes!("breached_passwords.txt");

/// The sorted entries, after the file's header (which ends at the first empty line).
fn breached_list() -> &'static [u8] {
    BREACHED_FILE
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(BREACHED_FILE, |i| &BREACHED_FILE[i + 2..])
}

/// Whether `candidate` is a line of the sorted, newline-separated `list`: a binary search
/// over byte offsets, each probe widened to the line it falls in, so no index is needed.
fn sorted_lines_contain(list: &[u8], candidate: &[u8]) -> bool {
    let (mut low, mut high) = (0usize, list.len());
    while low < high {
        let mid = low + (high - low) / 2;
        // The line holding `mid`: from after the previous newline to the next one.
        let start = list[..mid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = list[mid..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(list.len(), |i| mid + i);
        match list[start..end].cmp(candidate) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => low = end + 1,
            std::cmp::Ordering::Greater => high = start,
        }
    }
    false
}

/// Whether `folded` (a lower-cased password) is on the breached-password list.
fn is_breached(folded: &str) -> bool {
    !folded.is_empty() && sorted_lines_contain(breached_list(), folded.as_bytes())
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
    if [folded.as_str(), unpunctuated, stripped]
        .iter()
        .any(|p| is_breached(p))
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
    fn the_embedded_list_is_large_sorted_and_searchable() {
        let list = breached_list();
        let lines: Vec<&[u8]> = list
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert!(lines.len() >= 100_000, "{} entries", lines.len());
        assert!(
            lines.windows(2).all(|w| w[0] < w[1]),
            "the list is sorted by byte value and has no duplicates"
        );
        // Every entry is found, the first and the last included, and nothing between them.
        for line in lines
            .iter()
            .step_by(997)
            .chain([&lines[0], &lines[lines.len() - 1]])
        {
            assert!(
                sorted_lines_contain(list, line),
                "{}",
                String::from_utf8_lossy(line)
            );
            let mut longer = line.to_vec();
            longer.push(0x7f);
            assert!(!sorted_lines_contain(list, &longer));
        }
        assert!(!sorted_lines_contain(list, b""));
        assert!(!sorted_lines_contain(b"", b"x"));
    }

    #[test]
    fn passwords_from_deep_in_the_breach_list_are_refused() {
        // Lines 250,020 and 400,014 of the source list, far past its first 50,000.
        assert_eq!(ok("roundandround"), Err(PolicyViolation::Common));
        assert_eq!(ok("RicardoArjona"), Err(PolicyViolation::Common));
        assert_eq!(ok("ricardoarjona2!"), Err(PolicyViolation::Common));
        // A random passphrase is not on it.
        assert_eq!(ok("vivid-otter-mantle-quorum-7"), Ok(()));
    }
}
