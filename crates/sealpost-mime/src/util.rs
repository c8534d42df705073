//! Small helpers shared by the modules: escaping, header encoding, line ends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Reverses [`html_escape`] plus the numeric and common named entities a
/// browser or editor may have written when a secure.htm was saved again.
pub(crate) fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &after[..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An address usable inside `<…>`: no whitespace, controls or brackets, so a
/// configured or inbound value cannot inject header syntax.
pub(crate) fn clean_address(address: &str) -> String {
    // Quoted local parts ("john doe"@example.com) keep their quotes and inner spaces: they
    // are part of the mailbox name. Outside quotes, whitespace and commas go, so the value
    // can never become a second address in a header.
    let mut out = String::with_capacity(address.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in address.trim().chars() {
        if c.is_control() || matches!(c, '<' | '>') {
            continue;
        }
        if c == '"' && !escaped {
            quoted = !quoted;
            out.push(c);
            continue;
        }
        if !quoted && (c.is_whitespace() || c == ',') {
            continue;
        }
        escaped = quoted && c == '\\' && !escaped;
        out.push(c);
    }
    if quoted {
        // An unbalanced quote would swallow the rest of the header line.
        out.retain(|c| c != '"');
    }
    out
}

/// The portal's base URL without a trailing slash, so "{base}/open" never
/// contains "//open".
pub(crate) fn portal_base(public_url: &str) -> &str {
    public_url.trim().trim_end_matches('/')
}

/// Turns every line end (CRLF, lone LF, lone CR) into CRLF, as RFC 5322 wants.
pub(crate) fn to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    out
}

/// Removes folding from a raw header value and replaces any other control
/// character, so a value can be written again without injecting a header.
pub(crate) fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\r' | '\n' => {}
            c if c.is_control() && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// A header-safe single line: control characters (CR, LF, NUL, …) become spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Encodes `text` as RFC 2047 encoded-words (UTF-8, base64), each at most 75
/// characters, joined by folding whitespace. Characters are never split across
/// words, as RFC 2047 §5 requires.
pub(crate) fn rfc2047_encode(text: &str) -> String {
    // "=?utf-8?B?" + "?=" is 12 characters; 63 left hold 45 input bytes (15 groups).
    const MAX_BYTES: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(format!("=?utf-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// Base64 in lines of 76 characters with CRLF, as MIME bodies need.
pub(crate) fn base64_wrapped(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    // The base64 alphabet is ASCII, so slicing at any byte index is safe.
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
    out
}

/// Restricts a configured host name to characters valid in a Message-ID's
/// right-hand side, so a bad setting cannot corrupt headers.
pub(crate) fn safe_hostname(hostname: &str) -> String {
    let cleaned: String = hostname
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let cleaned = cleaned.trim_matches('.').to_string();
    if cleaned.is_empty() {
        "localhost".to_string()
    } else {
        cleaned
    }
}

/// A fresh Message-ID value without angle brackets.
pub(crate) fn new_message_id(hostname: &str) -> String {
    format!("{}@{}", uuid::Uuid::new_v4(), safe_hostname(hostname))
}

/// Case-insensitive (Unicode simple case folding per character) search;
/// returns byte ranges of non-overlapping matches in `haystack`.
pub(crate) fn find_ci(haystack: &str, needle: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    if needle.is_empty() {
        return found;
    }
    let mut start = 0;
    'outer: while start < haystack.len() {
        let mut hay = haystack[start..].char_indices();
        let mut matched_end = start;
        for n in needle.chars() {
            match hay.next() {
                Some((i, h)) if h.to_lowercase().eq(n.to_lowercase()) => {
                    matched_end = start + i + h.len_utf8();
                }
                _ => {
                    // Advance by one character of the haystack.
                    let step = haystack[start..].chars().next().map_or(1, char::len_utf8);
                    start += step;
                    continue 'outer;
                }
            }
        }
        found.push((start, matched_end));
        start = matched_end;
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn quoted_local_parts_survive_and_nothing_else_does() {
        assert_eq!(
            clean_address("\"john doe\"@example.com"),
            "\"john doe\"@example.com"
        );
        assert_eq!(clean_address(" <a@b.example> "), "a@b.example");
        assert_eq!(
            clean_address("a@b.example, evil@x.example"),
            "a@b.exampleevil@x.example"
        );
        assert_eq!(
            clean_address("a@b.example\r\nBcc: x@y"),
            "a@b.exampleBcc:x@y"
        );
        assert_eq!(
            clean_address("\"unbalanced@b.example"),
            "unbalanced@b.example"
        );
    }

    #[test]
    fn escape_round_trip() {
        let s = "a<b>&\"c' ü";
        assert_eq!(html_unescape(&html_escape(s)), s);
        assert_eq!(html_unescape("&#43;&#x2F;&bogus; & x"), "+/&bogus; & x");
    }

    #[test]
    fn encoded_words_are_short_and_decode() {
        let s = "Überweisung für Müller – Kontoauszüge März 2024 und noch viel mehr Text";
        let enc = rfc2047_encode(s);
        for word in enc.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
        }
        let raw = format!("Subject: {enc}\r\n\r\n");
        let msg = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(msg.subject(), Some(s));
    }

    #[test]
    fn find_ci_unicode() {
        assert_eq!(find_ci("Hallo [SECURE] x", "[secure]"), vec![(6, 14)]);
        assert_eq!(find_ci("ÄÖ [Sicher]", "[sicher]").len(), 1);
        assert_eq!(find_ci("aaa", "aa"), vec![(0, 2)]);
        assert!(find_ci("abc", "").is_empty());
    }

    #[test]
    fn crlf_normalised() {
        assert_eq!(to_crlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }
}
