//! Policy on the raw inbound message: is it flagged for encryption, remove the
//! trigger, and summarise the headers the generated mails reuse.
//!
//! Stripping works on the raw bytes, not on a parsed-and-rebuilt message:
//! the original is encrypted as it is, so everything but the trigger must stay
//! byte-identical (signatures, odd encodings and all).

use mail_parser::{Address, HeaderValue, MessageParser};

use crate::util::{find_ci, rfc2047_encode, unfold};

/// What marks a message for encryption.
pub struct TriggerPolicy<'a> {
    /// Subject keywords, e.g. "[secure]"; matched case-insensitively.
    pub keywords: &'a [String],
    /// The trigger header, usually "X-Sealpost-Encrypt".
    pub header: &'a str,
}

/// One header field in the raw message: its byte range including the line
/// end(s) of every continuation line.
struct Field {
    start: usize,
    end: usize,
    name_end: Option<usize>,
}

impl Field {
    fn name<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        match self.name_end {
            Some(end) => trim_ascii(&raw[self.start..end]),
            None => &[],
        }
    }

    fn is(&self, raw: &[u8], name: &str) -> bool {
        !name.is_empty() && self.name(raw).eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value bytes after the colon, including folding and the line end.
    fn value<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        match self.name_end {
            Some(colon) => &raw[colon + 1..self.end],
            None => &[],
        }
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Splits the header section into fields; returns them and the offset where
/// the blank separator line (and so everything copied verbatim) begins.
fn split_header(raw: &[u8]) -> (Vec<Field>, usize) {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            return (fields, pos);
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match fields.last_mut() {
            Some(last) if continuation => last.end = line_end,
            _ => {
                let name_end = line.iter().position(|&b| b == b':').map(|i| pos + i);
                fields.push(Field {
                    start: pos,
                    end: line_end,
                    name_end,
                });
            }
        }
        pos = line_end;
    }
    (fields, raw.len())
}

/// Decodes a Subject field value (RFC 2047, folding) the way mail clients do.
fn decode_subject(value: &[u8]) -> String {
    let mut field = Vec::with_capacity(value.len() + 16);
    field.extend_from_slice(b"Subject:");
    field.extend_from_slice(value);
    if !field.ends_with(b"\n") {
        field.extend_from_slice(b"\r\n");
    }
    field.extend_from_slice(b"\r\n");
    MessageParser::default()
        .parse_headers(&field[..])
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

fn is_yes(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value);
    let value = unfold(&value);
    ["yes", "true", "1"]
        .iter()
        .any(|v| value.eq_ignore_ascii_case(v))
}

fn keywords<'a>(policy: &TriggerPolicy<'a>) -> impl Iterator<Item = &'a str> {
    policy
        .keywords
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
}

/// Removes every keyword from `subject`, dropping one of the two spaces a
/// removal leaves between words, then trims.
fn remove_keywords(subject: &str, policy: &TriggerPolicy) -> String {
    let mut text = subject.to_string();
    for keyword in keywords(policy) {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end) in find_ci(&text, keyword) {
            // A match inside whitespace we already skipped cannot happen for a
            // trimmed keyword, but never slice backwards if it does.
            if start < last {
                continue;
            }
            out.push_str(&text[last..start]);
            // "a [secure] b" → "a  b" would keep two spaces; skip the one after.
            let ends_in_space = out.ends_with(char::is_whitespace);
            let mut next = end;
            if ends_in_space || out.is_empty() {
                while text[next..].starts_with([' ', '\t']) {
                    next += 1;
                }
            }
            last = next;
        }
        out.push_str(&text[last..]);
        text = out;
    }
    text.trim().to_string()
}

/// Writes a Subject field: encoded-words when the original used them (or the
/// text could be misread as one), plain otherwise.
fn write_subject(name: &[u8], subject: &str, was_encoded: bool, eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(subject.len() + 32);
    out.extend_from_slice(name);
    out.push(b':');
    if !subject.is_empty() {
        out.push(b' ');
        let needs_encoding = (was_encoded && !subject.is_ascii()) || subject.contains("=?");
        if needs_encoding {
            let encoded = rfc2047_encode(subject);
            let encoded = if eol == b"\n" {
                encoded.replace("\r\n", "\n")
            } else {
                encoded
            };
            out.extend_from_slice(encoded.as_bytes());
        } else {
            out.extend_from_slice(subject.as_bytes());
        }
    }
    out.extend_from_slice(eol);
    out
}

/// Header values of the original message that generated mails reuse.
#[derive(Debug, Clone, Default)]
pub struct OriginalHeaders {
    /// From as displayed: decoded, "Name <address>".
    pub from: String,
    pub from_address: Option<String>,
    pub reply_to_address: Option<String>,
    /// To as displayed: decoded, comma-separated.
    pub to: String,
    /// Cc as displayed: decoded, comma-separated.
    pub cc: String,
    /// The original Date header value, raw (unfolded).
    pub date: Option<String>,
    /// Decoded Subject.
    pub subject: String,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// References (or, when absent, In-Reply-To) ids without angle brackets.
    pub references: Vec<String>,
    /// Raw (unfolded, still RFC 2047-encoded) From value, so the carrier can
    /// reuse it exactly instead of re-encoding a display string.
    pub raw_from: Option<String>,
    /// Raw (unfolded) To value.
    pub raw_to: Option<String>,
    /// Raw (unfolded) Cc value.
    pub raw_cc: Option<String>,
    /// Raw (unfolded) Content-Language value, e.g. "de-DE, en".
    pub content_language: Option<String>,
}

impl OriginalHeaders {
    /// The language the original was written in, when Sealpost has it: the first tag of its
    /// Content-Language (RFC 3282), resolved to a supported language ("de-DE" → "de").
    pub fn language(&self) -> Option<&'static str> {
        let first = self.content_language.as_deref()?.split(',').next()?;
        sealpost_i18n::resolve(first)
    }
}

/// Formats an address header for display: "Name <addr>, addr2, Group: a;".
pub(crate) fn display_addresses(address: Option<&Address>) -> String {
    let Some(address) = address else {
        return String::new();
    };
    address
        .iter()
        .map(|a| match (a.name.as_deref(), a.address.as_deref()) {
            (Some(name), Some(addr)) if !name.trim().is_empty() => {
                format!("{} <{addr}>", name.trim())
            }
            (_, Some(addr)) => addr.to_string(),
            (Some(name), None) => name.trim().to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn ids(value: Option<&HeaderValue>) -> Vec<String> {
    match value {
        Some(HeaderValue::Text(id)) => vec![id.to_string()],
        Some(HeaderValue::TextList(list)) => list.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Summarises the original headers; never fails, missing headers stay empty.
pub fn original_headers(raw: &[u8]) -> OriginalHeaders {
    summarise(raw)
}

fn summarise(raw: &[u8]) -> OriginalHeaders {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return OriginalHeaders::default();
    };
    let first_address = |a: Option<&Address>| {
        a.and_then(|a| a.iter().find_map(|x| x.address.as_deref()))
            .map(str::to_string)
    };
    let raw_value = |name: &str| {
        msg.headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unfold(v))
            .filter(|v| !v.is_empty())
    };
    let mut references = ids(msg.header("References"));
    if references.is_empty() {
        references = ids(msg.header("In-Reply-To"));
    }
    OriginalHeaders {
        from: display_addresses(msg.from()),
        from_address: first_address(msg.from()),
        reply_to_address: first_address(msg.reply_to()),
        to: display_addresses(msg.to()),
        cc: display_addresses(msg.cc()),
        date: raw_value("Date"),
        subject: msg.subject().unwrap_or_default().trim().to_string(),
        message_id: msg.message_id().map(str::to_string),
        references,
        raw_from: raw_value("From"),
        raw_to: raw_value("To"),
        raw_cc: raw_value("Cc"),
        content_language: raw_value("Content-Language"),
    }
}

/// The header section of an inbound message, split, unfolded and decoded once: the policy
/// check ([`InboundHeader::is_flagged`]), trigger removal ([`InboundHeader::strip_trigger`])
/// and the carrier's header summary ([`InboundHeader::carrier_headers`]) all read this value
/// instead of each taking the raw bytes apart again.
pub struct InboundHeader<'a> {
    raw: &'a [u8],
    fields: Vec<Field>,
    /// Where the blank separator line (and so everything copied verbatim) begins.
    header_end: usize,
    /// The decoded text of every Subject field, by its index in `fields`.
    subjects: Vec<(usize, String)>,
    summary: OriginalHeaders,
}

impl<'a> InboundHeader<'a> {
    /// Parses the header section of `raw`; never fails (a message without headers has none).
    pub fn parse(raw: &'a [u8]) -> Self {
        let (fields, header_end) = split_header(raw);
        let subjects = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is(raw, "Subject"))
            .map(|(i, f)| (i, decode_subject(f.value(raw))))
            .collect();
        InboundHeader {
            raw,
            fields,
            header_end,
            subjects,
            summary: summarise(raw),
        }
    }

    /// The message's own header values, decoded (Subject still with any keyword).
    pub fn summary(&self) -> &OriginalHeaders {
        &self.summary
    }

    /// The decoded Subject, trimmed ("" when there is none).
    pub fn subject(&self) -> &str {
        &self.summary.subject
    }

    fn subject_of(&self, index: usize) -> &str {
        self.subjects
            .iter()
            .find(|(i, _)| *i == index)
            .map_or("", |(_, s)| s.as_str())
    }

    /// Flagged when a decoded Subject contains any keyword (case-insensitive) or the
    /// trigger header says yes/true/1.
    pub fn is_flagged(&self, policy: &TriggerPolicy) -> bool {
        let trigger = self
            .fields
            .iter()
            .any(|f| f.is(self.raw, policy.header) && is_yes(f.value(self.raw)));
        trigger
            || self
                .subjects
                .iter()
                .any(|(_, subject)| keywords(policy).any(|k| !find_ci(subject, k).is_empty()))
    }

    /// The message without the trigger header (all occurrences, with continuation lines)
    /// and without the keywords in its Subject; every other byte is left as it was.
    pub fn strip_trigger(&self, policy: &TriggerPolicy) -> Vec<u8> {
        self.strip_trigger_and(policy, &[])
    }

    /// The unfolded, trimmed value of the first field called `name` (case-insensitive),
    /// e.g. a control header such as `X-Sealpost-Expires`.
    pub fn field_value(&self, name: &str) -> Option<String> {
        self.fields.iter().find(|f| f.is(self.raw, name)).map(|f| {
            String::from_utf8_lossy(f.value(self.raw))
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// [`InboundHeader::strip_trigger`] that also drops every field named in `remove`
    /// (control headers meant for the gateway, not the recipient).
    pub fn strip_trigger_and(&self, policy: &TriggerPolicy, remove: &[&str]) -> Vec<u8> {
        let raw = self.raw;
        let mut out = Vec::with_capacity(raw.len());
        out.extend_from_slice(&raw[..self.fields.first().map_or(self.header_end, |f| f.start)]);
        for (index, field) in self.fields.iter().enumerate() {
            let bytes = &raw[field.start..field.end];
            if field.is(raw, policy.header) || remove.iter().any(|name| field.is(raw, name)) {
                continue;
            }
            if field.is(raw, "Subject") {
                let subject = self.subject_of(index);
                let stripped = remove_keywords(subject, policy);
                if stripped != subject.trim() {
                    let eol: &[u8] = if bytes.ends_with(b"\r\n") {
                        b"\r\n"
                    } else if bytes.ends_with(b"\n") {
                        b"\n"
                    } else {
                        b""
                    };
                    let was_encoded = field.value(raw).windows(2).any(|w| w == b"=?");
                    let name = &raw[field.start..field.name_end.unwrap_or(field.start)];
                    out.extend_from_slice(&write_subject(name, &stripped, was_encoded, eol));
                    continue;
                }
            }
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&raw[self.header_end..]);
        out
    }

    /// The summary as the message reads after [`InboundHeader::strip_trigger`]: the trigger
    /// header only ever decides the policy, so only the Subject differs (keywords removed).
    pub fn carrier_headers(&self, policy: &TriggerPolicy) -> OriginalHeaders {
        OriginalHeaders {
            subject: remove_keywords(&self.summary.subject, policy),
            ..self.summary.clone()
        }
    }
}

/// Flagged when the decoded Subject contains any keyword (case-insensitive)
/// or the trigger header says yes/true/1.
pub fn is_flagged(raw: &[u8], policy: &TriggerPolicy) -> bool {
    InboundHeader::parse(raw).is_flagged(policy)
}

/// Removes the trigger header (all occurrences, with continuation lines) and the
/// keywords from the Subject; every other byte is left as it was.
pub fn strip_trigger(raw: &[u8], policy: &TriggerPolicy) -> Vec<u8> {
    InboundHeader::parse(raw).strip_trigger(policy)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    fn policy(keywords: &[String]) -> TriggerPolicy<'_> {
        TriggerPolicy {
            keywords,
            header: "X-Sealpost-Encrypt",
        }
    }

    fn kw() -> Vec<String> {
        vec!["[secure]".to_string(), "[vertraulich]".to_string()]
    }

    const MAIL: &str = "Return-Path: <advisor@bank.example>\r\n\
Received: from mx.bank.example (mx.bank.example [192.0.2.1])\r\n\
\tby gw.bank.example with ESMTP id 123\r\n\
From: \"Berater, Hans\" <advisor@bank.example>\r\n\
To: Kundin <kundin@example.org>\r\n\
Subject: Ihr Kreditvertrag [secure] Entwurf\r\n\
Date: Tue, 5 Mar 2024 10:15:00 +0100\r\n\
Message-ID: <abc123@bank.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Guten Tag,\r\nSubject: [secure] im Body bleibt\r\nX-Sealpost-Encrypt: yes\r\n";

    #[test]
    fn flagged_by_subject_keyword_in_any_case() {
        let k = kw();
        assert!(is_flagged(MAIL.as_bytes(), &policy(&k)));
        for subject in [
            "[SECURE] Vertrag",
            "Vertrag [Secure]",
            "x[sEcUrE]y",
            "Angebot [VERTRAULICH]",
        ] {
            let mail = format!("From: a@b.example\r\nSubject: {subject}\r\n\r\nbody\r\n");
            assert!(is_flagged(mail.as_bytes(), &policy(&k)), "{subject}");
        }
    }

    #[test]
    fn flagged_by_encoded_subject() {
        let k = kw();
        // "Überweisung [secure]" encoded as B and as Q words.
        let b =
            "From: a@b.example\r\nSubject: =?utf-8?B?w5xiZXJ3ZWlzdW5nIFtzZWN1cmVd?=\r\n\r\nx\r\n";
        let q =
            "From: a@b.example\r\nSubject: =?UTF-8?Q?=C3=9Cberweisung_=5BSECURE=5D?=\r\n\r\nx\r\n";
        assert!(is_flagged(b.as_bytes(), &policy(&k)));
        assert!(is_flagged(q.as_bytes(), &policy(&k)));
    }

    #[test]
    fn flagged_by_header() {
        let k: Vec<String> = Vec::new();
        for value in ["yes", "YES", " true ", "1", "True"] {
            let mail = format!(
                "From: a@b.example\r\nx-sealpost-encrypt: {value}\r\nSubject: hi\r\n\r\nx\r\n"
            );
            assert!(is_flagged(mail.as_bytes(), &policy(&k)), "{value}");
        }
        let folded = "From: a@b.example\r\nX-Sealpost-Encrypt:\r\n yes\r\n\r\nx\r\n";
        assert!(is_flagged(folded.as_bytes(), &policy(&k)));
    }

    #[test]
    fn not_flagged_otherwise() {
        let k = kw();
        for mail in [
            "From: a@b.example\r\nSubject: secure tomorrow\r\n\r\n[secure] in body\r\n",
            "From: a@b.example\r\nSubject: hello\r\nX-Sealpost-Encrypt: no\r\n\r\nx\r\n",
            "From: a@b.example\r\nX-Sealpost-Encrypt: yesplease\r\n\r\nx\r\n",
            "From: a@b.example\r\nX-Other: [secure]\r\n\r\nx\r\n",
            "",
            "garbage without headers",
        ] {
            assert!(!is_flagged(mail.as_bytes(), &policy(&k)), "{mail:?}");
        }
        // Empty keyword never matches everything.
        let empty = vec![String::new()];
        assert!(!is_flagged(b"Subject: hi\r\n\r\n", &policy(&empty)));
    }

    #[test]
    fn strip_removes_keyword_and_keeps_everything_else() {
        let k = kw();
        let mail = MAIL.replace(
            "MIME-Version: 1.0\r\n",
            "X-Sealpost-Encrypt: yes\r\nMIME-Version: 1.0\r\nX-SEALPOST-ENCRYPT: true,\r\n\tfolded\r\n",
        );
        let out = strip_trigger(mail.as_bytes(), &policy(&k));
        let out = String::from_utf8(out).unwrap();
        let expected = MAIL.replace(
            "Subject: Ihr Kreditvertrag [secure] Entwurf",
            "Subject: Ihr Kreditvertrag Entwurf",
        );
        assert_eq!(out, expected);
        // The body, even with a look-alike header inside, is untouched.
        assert!(out.ends_with(
            "Guten Tag,\r\nSubject: [secure] im Body bleibt\r\nX-Sealpost-Encrypt: yes\r\n"
        ));
        assert!(!is_flagged(out.as_bytes(), &policy(&k)));
    }

    #[test]
    fn strip_trims_leading_and_trailing_keyword() {
        let k = kw();
        for (subject, expected) in [
            ("[secure] Vertrag", "Vertrag"),
            ("Vertrag [SECURE]", "Vertrag"),
            ("[secure]", ""),
            ("A [secure] [vertraulich] B", "A B"),
        ] {
            let mail = format!("From: a@b.example\nSubject: {subject}\nTo: c@d.example\n\nbody\n");
            let out = strip_trigger(mail.as_bytes(), &policy(&k));
            let want = if expected.is_empty() {
                "From: a@b.example\nSubject:\nTo: c@d.example\n\nbody\n".to_string()
            } else {
                format!("From: a@b.example\nSubject: {expected}\nTo: c@d.example\n\nbody\n")
            };
            assert_eq!(String::from_utf8(out).unwrap(), want, "{subject}");
        }
    }

    #[test]
    fn strip_reencodes_encoded_subject() {
        let k = kw();
        let mail = "From: a@b.example\r\nSubject: =?utf-8?B?w5xiZXJ3ZWlzdW5nIFtzZWN1cmVd?=\r\n =?utf-8?Q?_M=C3=A4rz?=\r\nTo: c@d.example\r\n\r\nbody\r\n";
        let out = strip_trigger(mail.as_bytes(), &policy(&k));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("From: a@b.example\r\nSubject: =?utf-8?B?"));
        assert!(text.ends_with("\r\nTo: c@d.example\r\n\r\nbody\r\n"));
        assert!(text.is_ascii());
        let parsed = MessageParser::default().parse(&out[..]).unwrap();
        assert_eq!(parsed.subject(), Some("Überweisung März"));
    }

    #[test]
    fn control_headers_are_read_and_removed() {
        let keywords = vec!["[secure]".to_string()];
        let policy = TriggerPolicy {
            keywords: &keywords,
            header: "X-Sealpost-Encrypt",
        };
        let raw = b"From: a@b.example\r\nx-sealpost-expires: 2030-01-01T00:00:00Z\r\nSubject: Hi [secure]\r\n\r\nX-Sealpost-Expires: body\r\n";
        let header = InboundHeader::parse(raw);
        assert_eq!(
            header.field_value("X-Sealpost-Expires").as_deref(),
            Some("2030-01-01T00:00:00Z")
        );
        assert_eq!(header.field_value("X-Other"), None);
        let out = header.strip_trigger_and(&policy, &["X-Sealpost-Expires"]);
        assert_eq!(
            out,
            b"From: a@b.example\r\nSubject: Hi\r\n\r\nX-Sealpost-Expires: body\r\n".to_vec()
        );
    }

    #[test]
    fn strip_without_trigger_is_identity() {
        let k = kw();
        let mail = "From: a@b.example\r\nSubject: hello\r\n\r\nbody";
        assert_eq!(strip_trigger(mail.as_bytes(), &policy(&k)), mail.as_bytes());
        assert_eq!(strip_trigger(b"", &policy(&k)), b"");
        assert_eq!(
            strip_trigger(b"no header end", &policy(&k)),
            b"no header end"
        );
    }

    #[test]
    fn original_headers_summary() {
        let mail = "From: =?utf-8?Q?M=C3=BCller=2C_Hans?= <hans@bank.example>\r\n\
Reply-To: team@bank.example\r\n\
To: Kundin <kundin@example.org>, b@example.org\r\n\
Cc: c@example.org\r\n\
Date: Tue, 5 Mar 2024\r\n 10:15:00 +0100\r\n\
Subject: =?utf-8?Q?Vertrag_f=C3=BCr_Sie?=\r\n\
Message-ID: <abc@bank.example>\r\n\
In-Reply-To: <p2@x>\r\n\
References: <p1@x> <p2@x>\r\n\r\nbody\r\n";
        let h = original_headers(mail.as_bytes());
        assert_eq!(h.from, "Müller, Hans <hans@bank.example>");
        assert_eq!(h.from_address.as_deref(), Some("hans@bank.example"));
        assert_eq!(h.reply_to_address.as_deref(), Some("team@bank.example"));
        assert_eq!(h.to, "Kundin <kundin@example.org>, b@example.org");
        assert_eq!(h.cc, "c@example.org");
        assert_eq!(h.date.as_deref(), Some("Tue, 5 Mar 2024 10:15:00 +0100"));
        assert_eq!(h.subject, "Vertrag für Sie");
        assert_eq!(h.message_id.as_deref(), Some("abc@bank.example"));
        assert_eq!(h.references, vec!["p1@x", "p2@x"]);
        assert_eq!(
            h.raw_from.as_deref(),
            Some("=?utf-8?Q?M=C3=BCller=2C_Hans?= <hans@bank.example>")
        );

        let empty = original_headers(b"");
        assert!(empty.from.is_empty() && empty.date.is_none());
        let only_irt = original_headers(b"In-Reply-To: <p@x>\r\n\r\n");
        assert_eq!(only_irt.references, vec!["p@x"]);
    }

    #[test]
    fn the_language_is_the_first_supported_content_language_tag() {
        let lang = |v: &str| {
            original_headers(format!("Content-Language: {v}\r\n\r\n").as_bytes()).language()
        };
        assert_eq!(lang("de-DE"), Some("de"));
        assert_eq!(lang("en-GB, de"), Some("en"));
        assert_eq!(lang("de-CH,\r\n fr"), Some("de"));
        // Only the first tag counts: a French mail is not read as German.
        assert_eq!(lang("fr-FR, de"), None);
        assert_eq!(original_headers(b"Subject: x\r\n\r\n").language(), None);
    }

    #[test]
    fn header_parsed_once_serves_policy_stripping_and_carrier_summary() {
        let k = kw();
        let mail = MAIL.replace(
            "MIME-Version: 1.0\r\n",
            "X-Sealpost-Encrypt: yes\r\nMIME-Version: 1.0\r\n",
        );
        let header = InboundHeader::parse(mail.as_bytes());
        assert!(header.is_flagged(&policy(&k)));
        assert_eq!(header.subject(), "Ihr Kreditvertrag [secure] Entwurf");
        assert_eq!(
            header.summary().from_address.as_deref(),
            Some("advisor@bank.example")
        );
        assert_eq!(
            header.summary().message_id.as_deref(),
            Some("abc123@bank.example")
        );
        let stripped = header.strip_trigger(&policy(&k));
        assert_eq!(stripped, strip_trigger(mail.as_bytes(), &policy(&k)));
        // The carrier summary is what a second parse of the stripped message would give.
        let carrier = header.carrier_headers(&policy(&k));
        let reparsed = original_headers(&stripped);
        assert_eq!(carrier.subject, "Ihr Kreditvertrag Entwurf");
        assert_eq!(carrier.subject, reparsed.subject);
        assert_eq!(carrier.raw_from, reparsed.raw_from);
        assert_eq!(carrier.raw_to, reparsed.raw_to);
        assert_eq!(carrier.message_id, reparsed.message_id);
        assert_eq!(carrier.date, reparsed.date);
    }

    #[test]
    fn carrier_summary_matches_a_reparse_for_encoded_and_empty_subjects() {
        let k = kw();
        for mail in [
            "From: a@b.example\r\nSubject: =?utf-8?B?w5xiZXJ3ZWlzdW5nIFtzZWN1cmVd?=\r\n =?utf-8?Q?_M=C3=A4rz?=\r\n\r\nx\r\n",
            "From: a@b.example\nSubject: [secure]\n\nx\n",
            "From: a@b.example\r\nX-Sealpost-Encrypt: 1\r\n\r\nx\r\n",
            "Subject: plain\r\n\r\n",
            "",
        ] {
            let header = InboundHeader::parse(mail.as_bytes());
            let reparsed = original_headers(&header.strip_trigger(&policy(&k)));
            assert_eq!(
                header.carrier_headers(&policy(&k)).subject,
                reparsed.subject,
                "{mail:?}"
            );
        }
    }
}
