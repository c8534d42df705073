//! `Content-Disposition: attachment` for every file Sealpost attaches to a mail it writes.
//!
//! RFC 2047 encoded-words are not allowed inside a quoted parameter (RFC 2047 §5), so a
//! non-ASCII name is written as RFC 2231 `filename*=utf-8''…` (percent-encoded, split into
//! numbered continuations so no line grows past 78 characters), preceded by an ASCII
//! `filename="…"` that clients without RFC 2231 show instead.

use mail_builder::mime::{BodyPart, MimePart};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::filename::safe_filename;
use crate::util::base64_wrapped;

/// RFC 2231 `attribute-char`s besides letters and digits stay as they are; everything else
/// (including `'`, `%`, `*` and space, which have meaning in an extended value) is encoded.
const EXTENDED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Longest piece of an encoded value on one continuation line: with the tab, the
/// `filename*NN*=` and the `;` the line stays under 78 characters.
const PIECE: usize = 50;

/// Longest ASCII fallback, so `filename="…";` fits on its continuation line.
const FALLBACK: usize = 60;

/// An ASCII stand-in for `name`: letters outside ASCII become `_`, so the extension (the part
/// a client acts on) survives; quotes and backslashes are already gone ([`safe_filename`]).
fn ascii_fallback(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Keep the fallback on one line of its own; the tail holds the extension.
    let skip = ascii.chars().count().saturating_sub(FALLBACK);
    ascii.chars().skip(skip).collect()
}

/// The value of a `Content-Disposition` header for an attachment called `name` (made safe
/// first), folded with CRLF-TAB, without the header name or final line end.
pub fn attachment_disposition(name: &str) -> String {
    let name = safe_filename(name);
    let fallback = ascii_fallback(&name);
    if name == fallback {
        return format!("attachment; filename=\"{fallback}\"");
    }
    // The extended value first: parsers that take the first `filename` (mail-parser, and so
    // the portal) read the real name; RFC 2231-aware clients prefer it wherever it stands.
    let mut value = "attachment".to_string();
    {
        let encoded = utf8_percent_encode(&name, EXTENDED).to_string();
        let mut pieces = Vec::new();
        let mut rest = encoded.as_str();
        while !rest.is_empty() {
            // Never split a %XX triplet: step back to before a '%' in the last two places.
            let mut end = rest.len().min(PIECE);
            if end < rest.len()
                && let Some(pct) = rest[..end].rfind('%').filter(|&p| p + 3 > end)
            {
                end = pct;
            }
            pieces.push(&rest[..end]);
            rest = &rest[end..];
        }
        if pieces.len() == 1 {
            value.push_str(&format!(";\r\n\tfilename*=utf-8''{}", pieces[0]));
        } else {
            for (i, piece) in pieces.iter().enumerate() {
                let charset = if i == 0 { "utf-8''" } else { "" };
                value.push_str(&format!(";\r\n\tfilename*{i}*={charset}{piece}"));
            }
        }
    }
    value.push_str(&format!(";\r\n\tfilename=\"{fallback}\""));
    value
}

/// A base64 attachment part of type `content_type` (a valid `type/subtype`, checked by the
/// caller) called `name`, with the disposition of [`attachment_disposition`].
///
/// The part is written whole, headers included: mail-builder would quote the extended
/// `filename*` value (which RFC 2231 forbids) and fold only where it chooses.
pub(crate) fn attachment_part(content_type: &str, bytes: &[u8], name: &str) -> MimePart<'static> {
    let mut part = format!(
        "Content-Type: {content_type}\r\nContent-Disposition: {}\r\n\
Content-Transfer-Encoding: base64\r\n\r\n",
        attachment_disposition(name)
    );
    part.push_str(&base64_wrapped(bytes));
    // mail-builder puts the CRLF before the next boundary itself.
    if part.ends_with("\r\n") {
        part.truncate(part.len() - 2);
    }
    MimePart::raw(BodyPart::Text(part.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use mail_builder::MessageBuilder;
    use mail_parser::{MessageParser, MimeHeaders};

    fn round_trip(name: &str) -> (String, String) {
        let part = attachment_part("application/pdf", &[1, 2, 3], name);
        let raw = MessageBuilder::new()
            .subject("x")
            .body(MimePart::new(
                "multipart/mixed",
                vec![MimePart::new("text/plain", "hi"), part],
            ))
            .write_to_vec()
            .unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        for line in text.lines() {
            assert!(line.len() <= 78, "{line:?}");
        }
        let msg = MessageParser::default().parse(&raw).unwrap();
        let att = msg.attachment(0).unwrap();
        assert!(att.is_content_type("application", "pdf"));
        assert_eq!(att.contents(), &[1, 2, 3]);
        let name = att.attachment_name().unwrap().to_string();
        (name, text)
    }

    #[test]
    fn ascii_names_are_plain_quoted_parameters() {
        let (name, text) = round_trip("Kontoauszug 2024.pdf");
        assert_eq!(name, "Kontoauszug 2024.pdf");
        assert!(text.contains("filename=\"Kontoauszug 2024.pdf\""), "{text}");
        assert!(!text.contains("filename*"), "{text}");
    }

    #[test]
    fn non_ascii_names_use_rfc2231_with_an_ascii_fallback() {
        let (name, text) = round_trip("Überweisung für Müller.pdf");
        assert_eq!(name, "Überweisung für Müller.pdf");
        assert!(
            text.contains("filename=\"_berweisung f_r M_ller.pdf\""),
            "{text}"
        );
        assert!(
            text.contains("filename*=utf-8''%C3%9Cberweisung%20f%C3%BCr%20M%C3%BCller.pdf"),
            "{text}"
        );
        // No encoded-word inside a parameter.
        assert!(!text.contains("=?"), "{text}");
    }

    #[test]
    fn long_names_continue_on_numbered_lines() {
        let long = format!("{}.pdf", "Ä".repeat(60));
        let (name, text) = round_trip(&long);
        assert_eq!(name, long);
        assert!(text.contains("filename*0*=utf-8''%C3%84"), "{text}");
        assert!(text.contains("filename*1*=%C3%84"), "{text}");
    }

    #[test]
    fn unsafe_names_are_cleaned_first() {
        let (name, _) = round_trip("../x\"y\r\n.pdf");
        assert!(!name.contains('/') && !name.contains('"'), "{name}");
    }
}
