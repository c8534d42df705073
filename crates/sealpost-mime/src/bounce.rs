//! Delivery status notifications (RFC 3464) for recipients that could not be reached.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use sealpost_i18n::{t, tf};

use crate::kind::MailKind;
use crate::outgoing::{common_headers, finish};
use crate::util::{clean_address, one_line, safe_hostname, to_crlf};

/// Input for [`build_bounce`].
pub struct BounceInput<'a> {
    /// e.g. "MAILER-DAEMON@host".
    pub from: &'a str,
    /// The envelope sender.
    pub to: &'a str,
    /// (recipient, diagnostic text incl. code).
    pub failures: &'a [(String, String)],
    /// Header section of the failed mail.
    pub original_headers: &'a [u8],
    pub reporting_mta: &'a str,
    pub lang: &'a str,
    pub hostname: &'a str,
}

/// Printable ASCII on one line, at most `max` characters: message/delivery-status
/// fields must be 7-bit and a diagnostic from a remote server is untrusted.
fn dsn_field(text: &str, max: usize) -> String {
    let cleaned: String = one_line(text)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(max)
        .collect();
    cleaned.trim().to_string()
}

/// The enhanced status code (RFC 3463) in a diagnostic, e.g. "5.1.1" in
/// "550 5.1.1 user unknown"; only permanent or persistent-transient classes,
/// otherwise "5.0.0".
fn status_code(diagnostic: &str) -> String {
    diagnostic
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';'))
        .find(|word| {
            let mut parts = word.split('.');
            let class = parts.next().unwrap_or_default();
            let subject = parts.next().unwrap_or_default();
            let detail = parts.next().unwrap_or_default();
            parts.next().is_none()
                && matches!(class, "4" | "5")
                && (1..=3).contains(&subject.len())
                && (1..=3).contains(&detail.len())
                && subject
                    .chars()
                    .chain(detail.chars())
                    .all(|c| c.is_ascii_digit())
        })
        .map_or_else(|| "5.0.0".to_string(), str::to_string)
}

/// Builds an RFC 3464 delivery status notification for failed recipients.
pub fn build_bounce(input: &BounceInput) -> Vec<u8> {
    let lang = input.lang;
    let mta = dsn_field(input.reporting_mta, 200);
    let mta = if mta.is_empty() {
        safe_hostname(input.hostname)
    } else {
        mta
    };

    let mut human = tf(lang, "bounce.intro", &[("host", &mta)]);
    human.push_str("\n\n");
    human.push_str(&t(lang, "bounce.recipients_label"));
    human.push_str("\n\n");
    let mut status = format!("Reporting-MTA: dns; {mta}\r\n");
    for (recipient, diagnostic) in input.failures {
        let rcpt = dsn_field(recipient, 300);
        let diag = dsn_field(diagnostic, 900);
        human.push_str(&format!(
            "<{}>: {}\n",
            one_line(recipient),
            one_line(diagnostic)
        ));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {}\r\n",
            status_code(diagnostic)
        ));
        if !diag.is_empty() {
            status.push_str(&format!("Diagnostic-Code: smtp; {diag}\r\n"));
        }
    }
    human.push('\n');
    human.push_str(&t(lang, "bounce.headers_hint"));
    human.push('\n');

    let mut headers = to_crlf(&String::from_utf8_lossy(input.original_headers));
    // The part holds only the header section: cut at the first blank line.
    if let Some(end) = headers.find("\r\n\r\n") {
        headers.truncate(end + 2);
    }
    if !headers.is_empty() && !headers.ends_with("\r\n") {
        headers.push_str("\r\n");
    }

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", BodyPart::Text(to_crlf(&human).into())),
            MimePart::new(
                ContentType::new("message/delivery-status"),
                BodyPart::Binary(status.into_bytes().into()),
            )
            // message/* allows only 7bit/8bit/binary; the fields are 7-bit ASCII.
            .transfer_encoding("7bit"),
            MimePart::new(
                ContentType::new("text/rfc822-headers"),
                BodyPart::Binary(headers.into_bytes().into()),
            ),
        ],
    );

    let builder = MessageBuilder::new()
        .from(Address::new_address(
            Some(t(lang, "bounce.from_name")),
            clean_address(input.from),
        ))
        .to(Address::new_address(None::<&str>, clean_address(input.to)))
        .subject(Text::new(t(lang, "bounce.subject")))
        .date(Date::now())
        .header("Auto-Submitted", Raw::new("auto-replied"));
    let builder = common_headers(builder, MailKind::Bounce, input.hostname);
    finish(builder.body(report))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::outgoing::assert_crlf;
    use mail_parser::{MessageParser, MimeHeaders};

    #[test]
    fn bounce_is_a_delivery_status_report() {
        let failures = vec![
            (
                "kundin@example.org".to_string(),
                "550 5.1.1 <kundin@example.org>: user unknown".to_string(),
            ),
            (
                "b@example.net".to_string(),
                "connection refused, gave up".to_string(),
            ),
        ];
        let headers = b"From: hans@bank.example\r\nTo: kundin@example.org\r\nSubject: Vertrag\r\n\r\nbody must not appear";
        let raw = build_bounce(&BounceInput {
            from: "MAILER-DAEMON@gw.bank.example",
            to: "hans@bank.example",
            failures: &failures,
            original_headers: headers,
            reporting_mta: "gw.bank.example",
            lang: "de",
            hostname: "gw.bank.example",
        });
        assert_crlf(&raw);
        let msg = MessageParser::default().parse(&raw).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(msg.header_raw("X-Sealpost-Kind").unwrap().trim(), "bounce");
        assert_eq!(
            msg.header_raw("Auto-Submitted").unwrap().trim(),
            "auto-replied"
        );
        let text = msg.body_text(0).unwrap();
        assert!(text.contains("nicht zugestellt"));
        assert!(text.contains("kundin@example.org"));

        let status = msg
            .parts
            .iter()
            .find(|p| p.is_content_type("message", "delivery-status"))
            .unwrap();
        let status = String::from_utf8_lossy(status.contents()).into_owned();
        assert!(status.starts_with("Reporting-MTA: dns; gw.bank.example\r\n"));
        assert!(status.contains(
            "Final-Recipient: rfc822; kundin@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(status.contains(
            "Final-Recipient: rfc822; b@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n"
        ));
        assert!(
            status.contains("Diagnostic-Code: smtp; 550 5.1.1 <kundin@example.org>: user unknown")
        );

        let hdrs = msg
            .parts
            .iter()
            .find(|p| p.is_content_type("text", "rfc822-headers"))
            .unwrap();
        let hdrs = String::from_utf8_lossy(hdrs.contents()).into_owned();
        assert!(hdrs.contains("Subject: Vertrag"));
        assert!(!hdrs.contains("body must not appear"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code("550 5.7.1 relaying denied"), "5.7.1");
        assert_eq!(status_code("452 4.2.2 mailbox full"), "4.2.2");
        assert_eq!(status_code("550 mailbox unavailable"), "5.0.0");
        assert_eq!(status_code("version 5.1.1.1"), "5.0.0");
        assert_eq!(status_code(""), "5.0.0");
    }
}
