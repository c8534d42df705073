//! Content detectors. Each counts the distinct valid findings in a text; a finding is only
//! counted when its check digits hold, so random digit runs (order numbers, phone numbers)
//! do not make a mail "contain an IBAN". Findings are never returned in full: callers that
//! explain a decision get a masked form ([`mask`]).

use regex::{Regex, RegexBuilder};

/// What a rule looks for in a mail's text.
#[derive(Debug, Clone)]
pub enum Detector {
    /// IBANs with a known country length and a valid ISO 13616 mod-97 check.
    Iban,
    /// Payment card numbers: 12–19 digits (spaces or dashes allowed between groups) with a
    /// valid Luhn check and an issuer prefix whose length rules they meet.
    PaymentCard,
    /// German tax identification numbers (Steuerliche Identifikationsnummer): 11 digits, the
    /// first not 0, the digit pattern the Federal Central Tax Office issues, ISO 7064 MOD 11,10.
    GermanTaxId,
    /// A custom regular expression (linear-time engine, bounded size).
    Pattern(Regex),
    /// Any of these words or phrases, case-insensitive, at word boundaries.
    Keywords(Regex),
}

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("the pattern is not a valid regular expression: {0}")]
    Pattern(String),
    #[error("the keyword list is empty")]
    NoKeywords,
}

/// A compiled pattern may take at most this much memory: a rule cannot make the gateway
/// allocate without bound.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl Detector {
    /// A custom pattern, compiled with a size limit.
    pub fn pattern(source: &str) -> Result<Detector, DetectorError> {
        RegexBuilder::new(source)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Detector::Pattern)
            .map_err(|e| DetectorError::Pattern(e.to_string()))
    }

    /// A keyword list (each matched as a whole word or phrase, case-insensitive).
    pub fn keywords<S: AsRef<str>>(words: &[S]) -> Result<Detector, DetectorError> {
        let alternatives: Vec<String> = words
            .iter()
            .map(|w| w.as_ref().trim())
            .filter(|w| !w.is_empty())
            .map(regex::escape)
            .collect();
        if alternatives.is_empty() {
            return Err(DetectorError::NoKeywords);
        }
        RegexBuilder::new(&format!(r"\b(?:{})\b", alternatives.join("|")))
            .case_insensitive(true)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Detector::Keywords)
            .map_err(|e| DetectorError::Pattern(e.to_string()))
    }

    /// The findings in `text`, each once (masked as [`mask`] does is the caller's choice).
    pub fn findings(&self, text: &str) -> Vec<String> {
        let mut found: Vec<String> = match self {
            Detector::Iban => ibans(text),
            Detector::PaymentCard => digit_runs(text)
                .into_iter()
                .filter(|d| is_payment_card(d))
                .collect(),
            Detector::GermanTaxId => digit_runs(text)
                .into_iter()
                .filter(|d| is_german_tax_id(d))
                .collect(),
            Detector::Pattern(re) => re.find_iter(text).map(|m| m.as_str().to_string()).collect(),
            Detector::Keywords(re) => re
                .find_iter(text)
                .map(|m| m.as_str().to_lowercase())
                .collect(),
        };
        found.sort();
        found.dedup();
        found
    }

    /// How many distinct findings `text` holds.
    pub fn count(&self, text: &str) -> usize {
        self.findings(text).len()
    }
}

/// A finding as a dry run may show it: its first two and last two characters, the rest
/// replaced, so an administrator sees what fired without the page holding the value.
pub fn mask(finding: &str) -> String {
    let chars: Vec<char> = finding.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

/// IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, n)| *n)
}

/// ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 = 1.
pub fn iban_checks(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    if bytes.len() < 5 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let mut rest: u32 = 0;
    for &b in bytes[4..].iter().chain(&bytes[..4]) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            b'a'..=b'z' => u32::from(b - b'a') + 10,
            _ => return false,
        };
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
}

/// IBANs in `text`, written together or in groups separated by single spaces, upper or lower
/// case; normalised (no spaces, upper case).
fn ibans(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= chars.len() {
        let at_boundary = i == 0 || !chars[i - 1].is_alphanumeric();
        let country: String = chars[i..i + 2]
            .iter()
            .collect::<String>()
            .to_ascii_uppercase();
        let starts = at_boundary
            && chars[i].is_ascii_alphabetic()
            && chars[i + 1].is_ascii_alphabetic()
            && chars[i + 2].is_ascii_digit()
            && chars[i + 3].is_ascii_digit();
        let Some(length) = starts.then(|| iban_length(&country)).flatten() else {
            i += 1;
            continue;
        };
        // Collect `length` alphanumerics, allowing one space between characters.
        let mut iban = String::with_capacity(length);
        let mut j = i;
        while j < chars.len() && iban.len() < length {
            let c = chars[j];
            if c.is_ascii_alphanumeric() {
                iban.push(c.to_ascii_uppercase());
            } else if !(c == ' ' && j + 1 < chars.len() && chars[j + 1].is_ascii_alphanumeric()) {
                break;
            }
            j += 1;
        }
        let ends = j >= chars.len() || !chars[j].is_alphanumeric();
        if iban.len() == length && ends && iban_checks(&iban) {
            out.push(iban);
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Runs of 11–19 digits in `text`, with single spaces or dashes allowed between digits, not
/// glued to other digits or letters.
fn digit_runs(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_boundary = i == 0 || !chars[i - 1].is_alphanumeric();
        if !(at_boundary && chars[i].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits.push(c);
            } else if !(matches!(c, ' ' | '-')
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
                && chars[j - 1].is_ascii_digit())
            {
                break;
            }
            j += 1;
        }
        let glued = j < chars.len() && chars[j].is_alphanumeric();
        if (11..=19).contains(&digits.len()) && !glued {
            out.push(digits);
        }
        i = j.max(i + 1);
    }
    out
}

/// The Luhn check over a digit string.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (k, b) in digits.bytes().rev().enumerate() {
        let Some(mut d) = (b as char).to_digit(10) else {
            return false;
        };
        if k % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Issuer prefixes (as numeric ranges over the leading digits) and the lengths they issue.
const CARD_RULES: &[(u32, u32, usize, &[usize])] = &[
    // (from, to, digits of the prefix, lengths)
    (4, 4, 1, &[13, 16, 19]),                           // Visa
    (51, 55, 2, &[16]),                                 // Mastercard
    (2221, 2720, 4, &[16]),                             // Mastercard 2-series
    (34, 34, 2, &[15]),                                 // American Express
    (37, 37, 2, &[15]),                                 // American Express
    (6011, 6011, 4, &[16, 17, 18, 19]),                 // Discover
    (644, 649, 3, &[16, 17, 18, 19]),                   // Discover
    (65, 65, 2, &[16, 17, 18, 19]),                     // Discover
    (3528, 3589, 4, &[16, 17, 18, 19]),                 // JCB
    (300, 305, 3, &[14, 15, 16, 17, 18, 19]),           // Diners Club
    (36, 36, 2, &[14, 15, 16, 17, 18, 19]),             // Diners Club
    (38, 39, 2, &[16, 17, 18, 19]),                     // Diners Club
    (62, 62, 2, &[16, 17, 18, 19]),                     // UnionPay
    (5018, 5018, 4, &[12, 13, 14, 15, 16, 17, 18, 19]), // Maestro
    (5020, 5020, 4, &[12, 13, 14, 15, 16, 17, 18, 19]), // Maestro
    (5038, 5038, 4, &[12, 13, 14, 15, 16, 17, 18, 19]), // Maestro
    (6304, 6304, 4, &[12, 13, 14, 15, 16, 17, 18, 19]), // Maestro
    (6759, 6759, 4, &[12, 13, 14, 15, 16, 17, 18, 19]), // Maestro
    (6761, 6763, 4, &[12, 13, 14, 15, 16, 17, 18, 19]), // Maestro
];

/// A payment card number: an issuer prefix with one of its lengths, and the Luhn check.
pub fn is_payment_card(digits: &str) -> bool {
    if !(12..=19).contains(&digits.len()) || !luhn(digits) {
        return false;
    }
    CARD_RULES.iter().any(|(from, to, width, lengths)| {
        digits
            .get(..*width)
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| (*from..=*to).contains(&p))
            && lengths.contains(&digits.len())
    })
}

/// A German tax identification number: 11 digits, the first not 0; among the first ten,
/// exactly one digit occurs twice or three times (three times not all adjacent) and every
/// other at most once; the eleventh is the ISO 7064 MOD 11,10 check digit.
pub fn is_german_tax_id(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 11 || digits.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let repeated: Vec<usize> = (0..10).filter(|&k| counts[k] > 1).collect();
    let [digit] = repeated.as_slice() else {
        return false;
    };
    match counts[*digit] {
        2 => {}
        3 => {
            if d[..10]
                .windows(3)
                .any(|w| w.iter().all(|&x| x as usize == *digit))
            {
                return false;
            }
        }
        _ => return false,
    }
    let mut product = 10;
    for &x in &d[..10] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = match 11 - product {
        10 => 0,
        c => c,
    };
    check == d[10]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn ibans_are_found_in_groups_or_together_only_with_a_valid_check() {
        let text = "Bitte überweisen Sie auf DE89 3704 0044 0532 0130 00, oder gb82west12345698765432. \
                    Nicht: DE89 3704 0044 0532 0130 01 (Prüfziffer falsch), XX89370400440532013000, \
                    DE8937040044053201300 (zu kurz).";
        let found = Detector::Iban.findings(text);
        assert_eq!(
            found,
            vec!["DE89370400440532013000", "GB82WEST12345698765432"]
        );
        // Each once, however often it is written.
        let twice = "DE89370400440532013000 und nochmal DE89 3704 0044 0532 0130 00";
        assert_eq!(Detector::Iban.count(twice), 1);
        // Glued to other letters or digits it is not an IBAN.
        assert_eq!(Detector::Iban.count("REF-ADE89370400440532013000"), 0);
        assert_eq!(Detector::Iban.count("DE893704004405320130009"), 0);
        for valid in [
            "FR14 2004 1010 0505 0001 3M02 606",
            "AT61 1904 3002 3457 3201",
            "CH93 0076 2011 6238 5295 7",
            "NL91 ABNA 0417 1643 00",
        ] {
            assert_eq!(Detector::Iban.count(valid), 1, "{valid}");
        }
    }

    #[test]
    fn random_digits_are_not_ibans() {
        // Every two-letter-two-digit start with the right length but a wrong check.
        let mut matched = 0;
        for n in 0..1000u32 {
            let candidate = format!("DE{:02}37040044053201{:04}", n % 100, n);
            matched += Detector::Iban.count(&candidate);
        }
        // mod 97 lets about one in 97 through; with n%100 check digits fixed per n, few do.
        assert!(matched < 30, "{matched}");
    }

    #[test]
    fn payment_cards_need_luhn_and_an_issuer_prefix_with_its_length() {
        let text = "Visa 4111 1111 1111 1111, MC 5555-5555-5555-4444, Amex 378282246310005, \
                    Mastercard (2-series) 2223 0031 2200 3222, Discover 6011111111111117.";
        assert_eq!(Detector::PaymentCard.count(text), 5);
        // Passes Luhn but no issuer starts with 9.
        let luhn_only = (0..10)
            .map(|k| format!("911111111111111{k}"))
            .find(|d| luhn(d))
            .unwrap();
        assert!(!is_payment_card(&luhn_only), "{luhn_only}");
        // Amex prefix with a Visa length: refused even though Luhn holds.
        let amex16 = (0..10)
            .map(|k| format!("37828224631000{k}5"))
            .find(|d| luhn(d))
            .unwrap();
        assert!(!is_payment_card(&amex16), "{amex16}");
        // A wrong Luhn digit.
        assert_eq!(Detector::PaymentCard.count("4111 1111 1111 1112"), 0);
        // Phone numbers and order numbers do not count.
        assert_eq!(
            Detector::PaymentCard.count("Tel. +49 30 1234 5678, Auftrag 2026-11-26-0001"),
            0
        );
    }

    #[test]
    fn german_tax_ids_need_the_digit_pattern_and_the_check_digit() {
        for valid in ["86095742719", "47036892816", "65929970489", "57549285017"] {
            assert!(is_german_tax_id(valid), "{valid}");
            assert_eq!(
                Detector::GermanTaxId.count(&format!("Steuer-ID: {valid}.")),
                1
            );
        }
        assert!(!is_german_tax_id("86095742718"), "wrong check digit");
        assert!(!is_german_tax_id("06095742719"), "leading zero");
        assert!(!is_german_tax_id("12345678903"), "no repeated digit");
        assert!(!is_german_tax_id("1111111111"), "too short");
        // Three equal digits side by side are never issued, whatever the check digit.
        for k in 0..10 {
            assert!(!is_german_tax_id(&format!("1115678902{k}")), "{k}");
        }
        // Three equal digits apart are: one of the ten check digits is the right one.
        assert_eq!(
            (0..10)
                .filter(|k| is_german_tax_id(&format!("1315178902{k}")))
                .count(),
            1
        );
    }

    #[test]
    fn patterns_and_keywords() {
        let p = Detector::pattern(r"\bPAT-\d{6}\b").unwrap();
        assert_eq!(p.count("PAT-123456 and PAT-654321, not PAT-12"), 2);
        assert!(matches!(
            Detector::pattern("(unclosed"),
            Err(DetectorError::Pattern(_))
        ));
        let k = Detector::keywords(&["Diagnose", "Befund", "ICD-10"]).unwrap();
        assert_eq!(
            k.count("Der BEFUND und die diagnose (ICD-10 F32.1); Befunde"),
            3
        );
        assert!(matches!(
            Detector::keywords::<&str>(&[" ", ""]),
            Err(DetectorError::NoKeywords)
        ));
    }

    #[test]
    fn masks_show_only_the_ends() {
        assert_eq!(mask("DE89370400440532013000"), "DE******************00");
        assert_eq!(mask("abc"), "***");
    }
}
