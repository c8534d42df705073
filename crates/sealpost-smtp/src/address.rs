//! RFC 5321 mailbox syntax (with the RFC 6531 UTF-8 extension) and the one spelling of an
//! address that accounts, logins and comparisons use.
//!
//! Every address is an account key, so whatever the SMTP session accepts must name exactly
//! one mailbox: `a@b@c`, comma lists, empty local parts, spaces, control characters and
//! source routes are refused instead of being passed on for later code to guess at.

/// Longest mailbox RFC 5321 allows in a path (256 octets for the path minus the brackets).
pub const MAX_MAILBOX_LEN: usize = 254;
/// Longest local part (RFC 5321 4.5.3.1.1).
const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest domain (RFC 5321 4.5.3.1.2).
const MAX_DOMAIN_LEN: usize = 255;

/// Why a text is not an RFC 5321 mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty or too long")]
    Length,
    #[error("the address has no @ or more than one outside quotes")]
    At,
    #[error("the local part is not a dot-string or quoted string")]
    LocalPart,
    #[error("the domain is not a valid host name or address literal")]
    Domain,
}

/// Checks that `mailbox` is one RFC 5321 `Mailbox` (`Local-part "@" ( Domain / address-literal )`),
/// UTF-8 allowed as RFC 6531 does. No brackets, no source route, no surrounding spaces.
pub fn validate_mailbox(mailbox: &str) -> Result<(), AddressError> {
    if mailbox.is_empty() || mailbox.len() > MAX_MAILBOX_LEN {
        return Err(AddressError::Length);
    }
    let (local, domain) = split_mailbox(mailbox).ok_or(AddressError::At)?;
    validate_local_part(local)?;
    validate_domain(domain)
}

/// Splits at the `@` that separates local part and domain: the last one, since a quoted local
/// part may contain `@` but a domain never does.
fn split_mailbox(mailbox: &str) -> Option<(&str, &str)> {
    let (local, domain) = mailbox.rsplit_once('@')?;
    if domain.contains('"') {
        return None;
    }
    Some((local, domain))
}

fn validate_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() || local.len() > MAX_LOCAL_PART_LEN {
        return Err(AddressError::LocalPart);
    }
    let valid = if let Some(inner) = local.strip_prefix('"') {
        inner.strip_suffix('"').is_some_and(is_quoted_content)
    } else {
        local.split('.').all(is_atom)
    };
    if valid {
        Ok(())
    } else {
        Err(AddressError::LocalPart)
    }
}

/// `Atom = 1*atext`; RFC 6531 adds every non-ASCII UTF-8 character that is not a control.
fn is_atom(atom: &str) -> bool {
    !atom.is_empty()
        && atom.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || "!#$%&'*+-/=?^_`{|}~".contains(c)
                || (!c.is_ascii() && !c.is_control())
        })
}

/// `*QcontentSMTP` between the quotes: printable ASCII (space included) except `"` and `\`
/// unless escaped, plus non-ASCII non-control characters.
fn is_quoted_content(inner: &str) -> bool {
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let ok = match c {
            '\\' => chars.next().is_some_and(|e| (' '..='~').contains(&e)),
            '"' => false,
            ' '..='~' => true,
            c => !c.is_ascii() && !c.is_control(),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn validate_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN {
        return Err(AddressError::Domain);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(inner) if is_address_literal(inner) => Ok(()),
            _ => Err(AddressError::Domain),
        };
    }
    let ascii = if domain.is_ascii() {
        domain.to_string()
    } else {
        idna::domain_to_ascii_strict(domain).map_err(|_| AddressError::Domain)?
    };
    if ascii.len() <= MAX_DOMAIN_LEN && ascii.split('.').all(is_ldh_label) {
        Ok(())
    } else {
        Err(AddressError::Domain)
    }
}

/// `sub-domain = Let-dig [Ldh-str]`, at most 63 octets.
fn is_ldh_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// `IPv4-address-literal / IPv6-address-literal` (general literals are not accepted: no mail
/// system of ours routes them).
fn is_address_literal(inner: &str) -> bool {
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            inner[5..].parse::<std::net::Ipv6Addr>().is_ok()
        }
        _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// The one spelling of an address: surrounding spaces and angle brackets removed, ASCII letters
/// lower-cased in the local part, the domain in its lower-case Unicode form (UTS 46), so that
/// `Max@XN--MNCHEN-3YA.DE` and `max@München.de` are one account. Only ASCII is folded in the
/// local part: `ÄRGER@x` and `ärger@x` may be different mailboxes and must not share an account.
/// A domain that is not valid IDNA keeps its text with ASCII folded; address literals likewise.
pub fn normalise(address: &str) -> String {
    let trimmed = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let Some((local, domain)) = split_mailbox(trimmed) else {
        return trimmed.to_ascii_lowercase();
    };
    let mut out = local.to_ascii_lowercase();
    out.push('@');
    out.push_str(&normalise_domain(domain));
    out
}

/// A domain in its lower-case U-label form; text that is not a valid IDNA domain (or an
/// address literal) keeps its spelling with ASCII folded.
pub fn normalise_domain(domain: &str) -> String {
    if domain.starts_with('[') {
        return domain.to_ascii_lowercase();
    }
    match idna::domain_to_unicode(domain) {
        (unicode, Ok(())) => unicode,
        (_, Err(_)) => domain.to_ascii_lowercase(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_mailboxes() {
        for ok in [
            "a@b",
            "max.muster@kunde.example",
            "first+tag@sub.domain-x.example",
            "o'brien@x.example",
            "\"a b\"@h",
            "\"a@b\"@h",
            "\"q\\\"x\"@h",
            "user@[192.0.2.1]",
            "user@[IPv6:2001:db8::1]",
            "jörg@münchen.de",
            "jörg@xn--mnchen-3ya.de",
        ] {
            assert_eq!(validate_mailbox(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invalid_mailboxes() {
        for bad in [
            "",
            "a",
            "a@",
            "@b",
            "a@b@c",
            "a@b,c@d",
            "a,b@c",
            "a b@c",
            "a@b c",
            "a\u{1}@b",
            "a\t@b",
            "a@b\u{7f}",
            ".a@b",
            "a.@b",
            "a..b@c",
            "@r1,@r2:u@h",
            "@r1:u@h",
            "a@-b",
            "a@b-",
            "a@b..c",
            "a@b.",
            "a@[300.1.1.1]",
            "a@[IPv6:zz]",
            "\"unterminated@h",
            "\"a\"b@h",
            "a@b\"c",
            "a@b_c",
        ] {
            assert!(validate_mailbox(bad).is_err(), "{bad:?} was accepted");
        }
        let long_local = format!("{}@b", "x".repeat(65));
        assert!(validate_mailbox(&long_local).is_err());
        let long = format!("a@{}.example", "x".repeat(260));
        assert!(validate_mailbox(&long).is_err());
    }

    #[test]
    fn normalisation_folds_ascii_only_and_unifies_idna() {
        assert_eq!(
            normalise(" <Max.Muster@Kunde.Example> "),
            "max.muster@kunde.example"
        );
        assert_eq!(normalise("Jörg@XN--MNCHEN-3YA.DE"), "jörg@münchen.de");
        assert_eq!(normalise("jörg@München.de"), "jörg@münchen.de");
        // Unicode case is kept in the local part: these are two mailboxes.
        assert_ne!(normalise("ÄRGER@x.example"), normalise("ärger@x.example"));
        assert_eq!(normalise("ÄRGER@X.Example"), "Ärger@x.example");
        assert_eq!(
            normalise("User@[IPv6:2001:DB8::1]"),
            "user@[ipv6:2001:db8::1]"
        );
    }

    proptest! {
        #[test]
        fn normalise_is_idempotent(local in "[A-Za-z0-9.+À-ÿ]{1,12}", domain in "[A-Za-z0-9À-ÿ-]{1,12}(\\.[A-Za-z]{2,4})?") {
            let once = normalise(&format!("{local}@{domain}"));
            prop_assert_eq!(normalise(&once), once.clone());
        }

        #[test]
        fn ascii_case_never_matters(local in "[A-Za-z0-9.+_-]{1,20}", domain in "[A-Za-z0-9]{1,10}\\.[A-Za-z]{2,6}") {
            let a = format!("{local}@{domain}");
            prop_assert_eq!(normalise(&a.to_ascii_uppercase()), normalise(&a.to_ascii_lowercase()));
        }

        #[test]
        fn non_ascii_local_parts_are_never_merged(local in "[\\u{c0}-\\u{24f}]{1,10}") {
            let a = format!("{local}@x.example");
            let b = format!("{}@x.example", local.to_lowercase());
            prop_assert_eq!(normalise(&a) == normalise(&b), local == local.to_lowercase());
        }

        #[test]
        fn validation_never_panics(s in "\\PC{0,80}") {
            let _ = validate_mailbox(&s);
        }
    }
}
