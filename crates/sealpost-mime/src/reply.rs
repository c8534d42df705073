//! The reply a recipient writes in the portal.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use sealpost_i18n::{t, tf};

use crate::author::PortalAuthor;
use crate::disposition::attachment_part;
use crate::kind::MailKind;
use crate::outgoing::{common_headers, finish};
use crate::reply_source::{ReplySource, reply_subject};
use crate::util::{clean_address, find_ci, one_line, to_crlf};

/// One file attached to a secure reply.
pub struct ReplyAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Input for [`build_reply`]. Recipients are decided by the caller from the
/// original message (never from the reader's form).
pub struct ReplyInput<'a> {
    /// The recipient's (the replying person's) address: `Reply-To:` and the body's first line.
    pub from: &'a str,
    /// The gateway's notification address: `From:` (aligned with the signing domain) and
    /// `Sender:`.
    pub sender: &'a str,
    /// The organisation's name, for `From: "<reader> via <org>"`.
    pub org: &'a str,
    /// The first configured trigger keyword: the subject keeps it, so the advisor's answer
    /// to the reply is encrypted again.
    pub keyword: Option<&'a str>,
    pub to: &'a str,
    pub cc: &'a [String],
    pub source: &'a ReplySource,
    /// What the reader wrote.
    pub body: &'a str,
    pub attachments: &'a [ReplyAttachment],
    pub lang: &'a str,
    pub hostname: &'a str,
}

/// `Re: <subject>` with `keyword` appended unless the subject already contains it.
fn subject_with_keyword(subject: &str, keyword: Option<&str>) -> String {
    let subject = reply_subject(subject);
    match keyword.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) if find_ci(&subject, k).is_empty() => format!("{subject} {}", one_line(k)),
        _ => subject,
    }
}

/// Builds the reply a recipient writes in the portal: text/plain with the
/// original quoted, threaded by In-Reply-To/References, optional attachments.
/// From is the gateway on the reader's behalf ([`PortalAuthor`]).
pub fn build_reply(input: &ReplyInput) -> Vec<u8> {
    let source = input.source;
    let author = PortalAuthor {
        reader: input.from,
        org: input.org,
        notification_sender: input.sender,
    };
    let mut text = author.body_line(input.lang);
    text.push_str("\n\n");
    text.push_str(&input.body.replace("\r\n", "\n"));
    while text.ends_with('\n') {
        text.pop();
    }
    text.push_str("\n\n");
    let who = if source.from_display.trim().is_empty() {
        t(input.lang, "common.unknown_sender")
    } else {
        one_line(&source.from_display)
    };
    text.push_str(&tf(
        input.lang,
        "portal-reply-quote-intro",
        &[("date", &one_line(&source.date)), ("sender", &who)],
    ));
    text.push('\n');
    for line in source.text.replace("\r\n", "\n").lines() {
        if line.is_empty() {
            text.push_str(">\n");
        } else {
            text.push_str("> ");
            text.push_str(line);
            text.push('\n');
        }
    }

    let mut builder = author
        .apply(MessageBuilder::new())
        .to(Address::new_address(None::<&str>, clean_address(input.to)));
    if !input.cc.is_empty() {
        builder = builder.cc(Address::new_list(
            input
                .cc
                .iter()
                .map(|c| Address::new_address(None::<&str>, clean_address(c)))
                .collect(),
        ));
    }
    builder = builder
        .subject(Text::new(subject_with_keyword(
            &source.subject,
            input.keyword,
        )))
        .date(Date::now());
    let references: Vec<String> = source
        .references
        .iter()
        .map(|r| clean_address(r))
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(parent) = source.message_id.as_deref().map(clean_address)
        && !parent.is_empty()
    {
        builder = builder.in_reply_to(MessageId::new(parent));
    }
    if !references.is_empty() {
        builder = builder.references(MessageId::new_list(references.iter().map(String::as_str)));
    }
    builder = common_headers(builder, MailKind::Reply, input.hostname);
    let text_part = MimePart::new(
        ContentType::new("text/plain").attribute("charset", "utf-8"),
        BodyPart::Text(to_crlf(&text).into()),
    );
    if input.attachments.is_empty() {
        return finish(builder.body(text_part));
    }
    let mut parts = vec![text_part];
    for a in input.attachments {
        let ct = a.content_type.trim();
        let valid = !ct.is_empty()
            && ct.contains('/')
            && ct
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '+' | '-'));
        let ct = if valid {
            ct
        } else {
            "application/octet-stream"
        };
        parts.push(attachment_part(ct, &a.bytes, &a.filename));
    }
    finish(builder.body(MimePart::new("multipart/mixed", parts)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::reply_source::reply_source;
    use crate::reply_source::tests::ORIGINAL;
    use mail_parser::{MessageParser, MimeHeaders};

    #[test]
    fn reply_threads_quotes_and_attaches() {
        let src = reply_source(ORIGINAL.as_bytes()).unwrap();
        let cc = vec!["chef@bank.example".to_string()];
        let attachments = [ReplyAttachment {
            filename: "../scan.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: vec![0, 1, 2, 255],
        }];
        let raw = build_reply(&ReplyInput {
            from: "kundin@example.org",
            sender: "noreply@bank.example",
            org: "Bank AG",
            keyword: Some("[secure]"),
            to: src.addresses.reply_address().unwrap(),
            cc: &cc,
            source: &src,
            body: "Thank you!\n",
            attachments: &attachments,
            lang: "en",
            hostname: "gw.bank.example",
        });
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.subject(), Some("Re: Ihr Vertrag [secure]"));
        assert_eq!(msg.header_raw("X-Sealpost-Kind").unwrap().trim(), "reply");
        assert_eq!(msg.in_reply_to().as_text(), Some("orig@bank.example"));
        assert_eq!(
            msg.references().as_text_list().unwrap(),
            vec!["p1@x", "orig@bank.example"]
        );
        // From aligns with the gateway's (signing) domain; Reply-To reaches the reader.
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address.as_deref(), Some("noreply@bank.example"));
        assert_eq!(from.name.as_deref(), Some("kundin@example.org via Bank AG"));
        assert_eq!(
            msg.reply_to().unwrap().first().unwrap().address.as_deref(),
            Some("kundin@example.org")
        );
        assert_eq!(
            msg.sender().unwrap().first().unwrap().address.as_deref(),
            Some("noreply@bank.example")
        );
        assert_eq!(
            msg.cc().unwrap().first().unwrap().address.as_deref(),
            Some("chef@bank.example")
        );
        let text = msg.body_text(0).unwrap().replace("\r\n", "\n");
        let first = text.lines().next().unwrap();
        assert!(first.contains("kundin@example.org"), "{text}");
        assert!(text.contains("\n\nThank you!\n"), "{text}");
        assert!(text.contains("> Line one\n>\n> Line three"), "{text}");
        assert!(
            text.contains("Anna Advisor <Anna@Bank.example> wrote:"),
            "{text}"
        );
        let att = msg.attachment(0).unwrap();
        assert_eq!(att.contents(), &[0, 1, 2, 255]);
        assert!(att.is_content_type("application", "pdf"));
        assert!(!att.attachment_name().unwrap().contains('/'));
    }

    #[test]
    fn the_subject_keeps_the_trigger_keyword_once() {
        assert_eq!(
            subject_with_keyword("Kredit", Some("[secure]")),
            "Re: Kredit [secure]"
        );
        assert_eq!(
            subject_with_keyword("Re: Kredit [SECURE]", Some("[secure]")),
            "Re: Kredit [SECURE]"
        );
        assert_eq!(subject_with_keyword("Kredit", None), "Re: Kredit");
        assert_eq!(subject_with_keyword("Kredit", Some("  ")), "Re: Kredit");
    }

    #[test]
    fn non_ascii_attachment_names_use_rfc2231() {
        let src = reply_source(ORIGINAL.as_bytes()).unwrap();
        let attachments = [ReplyAttachment {
            filename: "Gehaltsnachweis März.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF".to_vec(),
        }];
        let raw = build_reply(&ReplyInput {
            from: "kundin@example.org",
            sender: "noreply@bank.example",
            org: "Bank AG",
            keyword: None,
            to: "anna@bank.example",
            cc: &[],
            source: &src,
            body: "anbei",
            attachments: &attachments,
            lang: "de",
            hostname: "gw.bank.example",
        });
        crate::outgoing::assert_crlf(&raw);
        let wire = String::from_utf8_lossy(&raw);
        assert!(
            wire.contains("filename=\"Gehaltsnachweis M_rz.pdf\""),
            "{wire}"
        );
        assert!(
            wire.contains("filename*=utf-8''Gehaltsnachweis%20M%C3%A4rz.pdf"),
            "{wire}"
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            msg.attachment(0).unwrap().attachment_name(),
            Some("Gehaltsnachweis März.pdf")
        );
        assert!(msg.message_id().unwrap().ends_with("@gw.bank.example"));
    }
}
