//! The reply a recipient writes in the portal.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use sealpost_i18n::{t, tf};

use crate::filename::safe_filename;
use crate::kind::MailKind;
use crate::outgoing::{common_headers, finish};
use crate::reply_source::{ReplySource, reply_subject};
use crate::util::{clean_address, one_line, to_crlf};

/// One file attached to a secure reply.
pub struct ReplyAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Input for [`build_reply`]. Recipients are decided by the caller from the
/// original message (never from the reader's form).
pub struct ReplyInput<'a> {
    /// The recipient's (the replying person's) address.
    pub from: &'a str,
    /// The gateway's notification address, named as Sender (see the caller).
    pub sender: &'a str,
    pub to: &'a str,
    pub cc: &'a [String],
    pub source: &'a ReplySource,
    /// What the reader wrote.
    pub body: &'a str,
    pub attachments: &'a [ReplyAttachment],
    pub lang: &'a str,
    pub hostname: &'a str,
}

/// Builds the reply a recipient writes in the portal: text/plain with the
/// original quoted, threaded by In-Reply-To/References, optional attachments.
pub fn build_reply(input: &ReplyInput) -> Vec<u8> {
    let source = input.source;
    let mut text = input.body.replace("\r\n", "\n");
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

    let mut builder = MessageBuilder::new()
        .from(Address::new_address(
            None::<&str>,
            clean_address(input.from),
        ))
        .sender(Address::new_address(
            None::<&str>,
            clean_address(input.sender),
        ))
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
        .subject(Text::new(reply_subject(&source.subject)))
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
        parts.push(
            MimePart::new(
                ContentType::new(ct.to_string()),
                BodyPart::Binary(a.bytes.clone().into()),
            )
            .attachment(safe_filename(&a.filename)),
        );
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
            sender: "sealpost@bank.example",
            to: src.addresses.reply_address().unwrap(),
            cc: &cc,
            source: &src,
            body: "Thank you!\n",
            attachments: &attachments,
            lang: "en",
            hostname: "gw.bank.example",
        });
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.subject(), Some("Re: Ihr Vertrag"));
        assert_eq!(msg.header_raw("X-Sealpost-Kind").unwrap().trim(), "reply");
        assert_eq!(msg.in_reply_to().as_text(), Some("orig@bank.example"));
        assert_eq!(
            msg.references().as_text_list().unwrap(),
            vec!["p1@x", "orig@bank.example"]
        );
        assert_eq!(
            msg.from().unwrap().first().unwrap().address.as_deref(),
            Some("kundin@example.org")
        );
        assert_eq!(
            msg.cc().unwrap().first().unwrap().address.as_deref(),
            Some("chef@bank.example")
        );
        let text = msg.body_text(0).unwrap().replace("\r\n", "\n");
        assert!(text.starts_with("Thank you!"), "{text}");
        assert!(text.contains("> Line one\n>\n> Line three"), "{text}");
        assert!(
            text.contains("Anna Advisor <Anna@Bank.example> wrote:"),
            "{text}"
        );
        let att = msg.attachment(0).unwrap();
        assert_eq!(att.contents(), &[0, 1, 2, 255]);
        assert!(!att.attachment_name().unwrap().contains('/'));
    }
}
