//! What the carrier and secure.htm both say to make a message checkable: the portal's host in
//! words, dates in the reader's language, and the "Why did I get this, and is it genuine?"
//! block. Plain text here; each caller escapes for its own medium.

use mail_parser::DateTime;
use sealpost_i18n::{t, tf};

use crate::branding::Branding;
use crate::util::portal_base;

/// The portal's host name as a person reads it in the address bar: no scheme, port, path or
/// user part ("https://secure.bank.example:443/x" → "secure.bank.example").
pub(crate) fn host_of(public_url: &str) -> String {
    let base = portal_base(public_url);
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if authority.starts_with('[') {
        // An IPv6 literal keeps its brackets, without the port.
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

/// The origin (scheme, host, port) of the portal, for secure.htm's `form-action`.
pub(crate) fn origin_of(public_url: &str) -> String {
    let base = portal_base(public_url);
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => base.to_string(),
    }
}

/// "5 March 2024" / "5. März 2024".
fn long_date(lang: &str, date: &DateTime) -> String {
    let months = t(lang, "carrier.date_months");
    let month = months
        .split(',')
        .nth(usize::from(date.month).saturating_sub(1))
        .map(str::trim)
        .map(str::to_string)
        .unwrap_or_else(|| date.month.to_string());
    tf(
        lang,
        "carrier.date_long",
        &[
            ("day", &date.day.to_string()),
            ("month", &month),
            ("year", &date.year.to_string()),
        ],
    )
}

/// The day a message expires (Unix seconds), in UTC, in the reader's language.
pub(crate) fn expiry_date(lang: &str, expires_at: i64) -> String {
    long_date(lang, &DateTime::from_timestamp(expires_at))
}

/// The original's `Date:` as "5 March 2024, 10:15" (the sender's own time of day), or None
/// when it does not parse.
pub(crate) fn sent_date(lang: &str, raw: Option<&str>) -> Option<String> {
    let date = DateTime::parse_rfc822(raw?.trim())?;
    date.is_valid().then(|| {
        format!(
            "{}, {:02}:{:02}",
            long_date(lang, &date),
            date.hour,
            date.minute
        )
    })
}

/// The paragraphs of the "Why did I get this, and is it genuine?" block (heading first).
/// `with_phrase`: the mail shows the recipient's security phrase.
pub(crate) fn why_block(
    lang: &str,
    sender: &str,
    branding: &Branding,
    host: &str,
    with_phrase: bool,
) -> Vec<String> {
    let org = branding.org();
    let mut out = vec![
        t(lang, "carrier.why_heading"),
        tf(lang, "carrier.why_who", &[("sender", sender), ("org", org)]),
        tf(lang, "carrier.why_host", &[("host", host)]),
    ];
    let contact = branding.support_contact.trim();
    if !contact.is_empty() {
        out.push(tf(
            lang,
            "carrier.why_contact",
            &[("org", org), ("contact", contact)],
        ));
    }
    if with_phrase {
        out.push(tf(lang, "carrier.why_phrase", &[("org", org)]));
    }
    out.push(t(lang, "carrier.why_never"));
    out
}

/// `(label, url)` of the configured imprint and privacy links.
pub(crate) fn legal_links(lang: &str, branding: &Branding) -> Vec<(String, String)> {
    [
        ("carrier.imprint", branding.imprint_url.trim()),
        ("carrier.privacy", branding.privacy_url.trim()),
    ]
    .into_iter()
    .filter(|(_, url)| is_web_link(url))
    .map(|(key, url)| (t(lang, key), url.to_string()))
    .collect()
}

/// Only http(s) links without spaces or controls become links in a mail.
fn is_web_link(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_in_words() {
        for (url, host) in [
            ("https://secure.bank.example/", "secure.bank.example"),
            (
                "https://Secure.Bank.example:8443/portal",
                "secure.bank.example",
            ),
            ("https://user@p.example", "p.example"),
            ("https://[::1]:8443", "[::1]"),
            ("https://127.0.0.1:8443", "127.0.0.1"),
        ] {
            assert_eq!(host_of(url), host, "{url}");
        }
        assert_eq!(
            origin_of("https://127.0.0.1:8443/x/"),
            "https://127.0.0.1:8443"
        );
    }

    #[test]
    fn dates_in_both_languages() {
        // 2024-03-05 00:00:00 UTC
        assert_eq!(expiry_date("en", 1_709_596_800), "5 March 2024");
        assert_eq!(expiry_date("de", 1_709_596_800), "5. März 2024");
        assert_eq!(
            sent_date("de", Some("Tue, 5 Mar 2024 10:15:00 +0100")).as_deref(),
            Some("5. März 2024, 10:15")
        );
        assert_eq!(sent_date("en", Some("not a date")), None);
        assert_eq!(sent_date("en", None), None);
    }

    #[test]
    fn why_block_shows_contact_and_phrase_only_when_given() {
        let mut b = Branding::default();
        let plain = why_block("en", "Anna", &b, "p.example", false);
        assert!(plain.iter().any(|p| p.contains("p.example")));
        assert!(!plain.iter().any(|p| p.contains("If in doubt")));
        b.support_contact = "+49 30 1234".into();
        let full = why_block("en", "Anna", &b, "p.example", true);
        assert!(full.iter().any(|p| p.contains("+49 30 1234")));
        assert!(full.iter().any(|p| p.contains("security phrase")));
        for lang in ["en", "de"] {
            for p in why_block(lang, "Anna", &b, "p.example", true) {
                assert!(!p.to_lowercase().contains("end-to-end"));
                assert!(!p.to_lowercase().contains("ende-zu-ende"));
            }
        }
    }

    #[test]
    fn only_web_links_are_legal_links() {
        let b = Branding {
            imprint_url: "https://bank.example/imprint".into(),
            privacy_url: "javascript:alert(1)".into(),
            ..Branding::default()
        };
        let links = legal_links("de", &b);
        assert_eq!(
            links,
            vec![(
                "Impressum".to_string(),
                "https://bank.example/imprint".into()
            )]
        );
    }
}
