//! Delivery status notifications (RFC 3464) for recipients that could not be reached.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
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
    /// The next hop that refused the recipients (`Remote-MTA: dns; …`); None for refusals
    /// decided here.
    pub remote_mta: Option<&'a str>,
    /// When the failed mail arrived (Unix seconds): `Arrival-Date`.
    pub arrival_date: Option<i64>,
    /// The last delivery attempt (Unix seconds): each recipient's `Last-Attempt-Date`.
    pub last_attempt_date: Option<i64>,
    pub lang: &'a str,
    pub hostname: &'a str,
}

/// The Message-ID the sender knows the failed mail by: a carrier names the original it
/// replaces (`X-Sealpost-Original-Message-Id`), any other mail is its own original.
fn original_message_id(headers: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(headers)?;
    let own = parsed
        .header_raw("X-Sealpost-Original-Message-Id")
        .map(clean_address)
        .filter(|v| !v.is_empty());
    own.or_else(|| parsed.message_id().map(clean_address))
        .filter(|v| !v.is_empty())
}

/// `text` with every byte outside printable ASCII (and tab) replaced: the headers part is
/// declared 7bit, and a UTF-8 header (RFC 6532) would break that promise.
fn seven_bit(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || matches!(c, ' ' | '\t' | '\r' | '\n') {
                c
            } else {
                '?'
            }
        })
        .collect()
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
    if let Some(at) = input.arrival_date {
        status.push_str(&format!("Arrival-Date: {}\r\n", Date::new(at).to_rfc822()));
    }
    let remote = input
        .remote_mta
        .map(|r| dsn_field(r, 200))
        .filter(|r| !r.is_empty());
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
        if let Some(remote) = &remote {
            status.push_str(&format!("Remote-MTA: dns; {remote}\r\n"));
        }
        if !diag.is_empty() {
            status.push_str(&format!("Diagnostic-Code: smtp; {diag}\r\n"));
        }
        if let Some(at) = input.last_attempt_date {
            status.push_str(&format!(
                "Last-Attempt-Date: {}\r\n",
                Date::new(at).to_rfc822()
            ));
        }
    }
    human.push('\n');
    human.push_str(&t(lang, "bounce.headers_hint"));
    human.push('\n');

    let original_id = original_message_id(input.original_headers);
    let mut headers = seven_bit(&to_crlf(&String::from_utf8_lossy(input.original_headers)));
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
            )
            // Made 7-bit above; a header section needs no further encoding.
            .transfer_encoding("7bit"),
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
    // The report refers to the mail that failed, so the sender's client can match them.
    let builder = match &original_id {
        Some(id) => builder
            .in_reply_to(MessageId::new(id.clone()))
            .references(MessageId::new(id.clone())),
        None => builder,
    };
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
        let headers = "From: hans@bank.example\r\nTo: kundin@example.org\r\nSubject: Vertrag für März\r\n\
Message-ID: <carrier1@gw.bank.example>\r\nX-Sealpost-Original-Message-Id: <orig@bank.example>\r\n\r\nbody must not appear";
        let headers = headers.as_bytes();
        let raw = build_bounce(&BounceInput {
            from: "MAILER-DAEMON@gw.bank.example",
            to: "hans@bank.example",
            failures: &failures,
            original_headers: headers,
            reporting_mta: "gw.bank.example",
            remote_mta: Some("mx.example.org"),
            arrival_date: Some(1_709_630_100),
            last_attempt_date: Some(1_709_633_700),
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
        assert!(status.starts_with("Reporting-MTA: dns; gw.bank.example\r\nArrival-Date: "));
        assert_eq!(
            status
                .matches("Remote-MTA: dns; mx.example.org\r\n")
                .count(),
            2
        );
        assert_eq!(status.matches("Last-Attempt-Date: ").count(), 2);
        let arrival = status
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("Arrival-Date: ");
        let date = format!("Date: {arrival}\r\n\r\n");
        let date = MessageParser::default()
            .parse_headers(date.as_bytes())
            .unwrap();
        assert_eq!(date.date().map(|d| d.to_timestamp()), Some(1_709_630_100));
        // The report refers to the original the sender wrote, not to the carrier.
        assert_eq!(msg.in_reply_to().as_text(), Some("orig@bank.example"));
        assert_eq!(msg.references().as_text(), Some("orig@bank.example"));
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
        assert_eq!(hdrs.content_transfer_encoding(), Some("7bit"));
        let hdrs = String::from_utf8_lossy(hdrs.contents()).into_owned();
        assert!(hdrs.is_ascii());
        assert!(hdrs.contains("Subject: Vertrag f?r M?rz"));
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
