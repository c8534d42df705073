//! The carrier mail: the readable wrapper that replaces an encrypted message, with
//! secure.htm attached.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use sealpost_i18n::{t, tf};

use crate::branding::Branding;
use crate::inbound::OriginalHeaders;
use crate::kind::MailKind;
use crate::outgoing::{common_headers, finish};
use crate::securehtm::render_secure_htm;
use crate::util::{base64_wrapped, clean_address, html_escape, one_line, portal_base, to_crlf};

/// Splits a displayed "Name <addr>" into the name part, if any.
fn display_name(display: &str) -> Option<String> {
    let display = display.trim();
    let open = display.rfind('<')?;
    display.ends_with('>').then_some(())?;
    let name = display[..open].trim().trim_matches('"').trim();
    (!name.is_empty()).then(|| one_line(name))
}

/// Input for [`build_carrier`].
pub struct CarrierInput<'a> {
    pub original: &'a OriginalHeaders,
    pub recipient: &'a str,
    pub payload_b64: &'a str,
    pub public_url: &'a str,
    pub lang: &'a str,
    pub branding: &'a Branding,
    pub hostname: &'a str,
    /// Facts of other features the carrier shows (ledger id, expiry, phrase, delivery, ...).
    pub notes: &'a crate::carrier_notes::CarrierNotes,
}

fn carrier_text(input: &CarrierInput, sender: &str) -> String {
    let lang = input.lang;
    let url = portal_base(input.public_url);
    let org = input.branding.org();
    let mut text = String::new();
    text.push_str(&t(lang, "carrier.heading"));
    text.push_str("\n\n");
    // phrase: rendered fully by the carrier helper
    if let Some(phrase) = &input.notes.security_phrase {
        text.push_str(phrase);
        text.push_str("\n\n");
    }
    text.push_str(&tf(
        lang,
        "carrier.intro",
        &[("sender", sender), ("org", org)],
    ));
    text.push_str("\n\n1. ");
    text.push_str(&t(lang, "carrier.step_attachment"));
    text.push_str("\n\n2. ");
    text.push_str(&tf(lang, "carrier.step_upload", &[("url", url)]));
    text.push_str("\n\n");
    text.push_str(&t(lang, "carrier.portal_label"));
    text.push_str(": ");
    text.push_str(url);
    text.push_str("\n\n");
    text.push_str(&t(lang, "carrier.sender_label"));
    text.push_str(": ");
    text.push_str(sender);
    text.push_str("\n\n");
    text.push_str(&t(lang, "carrier.first_time"));
    text.push('\n');
    text.push_str(&t(lang, "carrier.reply_hint"));
    text.push_str("\n\n-- \n");
    text.push_str(org);
    text.push('\n');
    input.branding.push_text_footer(&mut text);
    text
}

fn carrier_html(input: &CarrierInput, sender: &str) -> String {
    let lang = input.lang;
    let url = portal_base(input.public_url);
    let org = input.branding.org();
    let accent = input.branding.accent();
    let e = |key: &str| html_escape(&t(lang, key));
    let url_html = html_escape(url);
    let link = format!("<a href=\"{url_html}\" style=\"color:{accent}\">{url_html}</a>");
    let intro = html_escape(&tf(
        lang,
        "carrier.intro",
        &[("sender", sender), ("org", org)],
    ));
    // Escape the sentence first, then insert the link markup for {url}.
    let upload = e("carrier.step_upload").replace("{url}", &link);
    let footer = html_escape(input.branding.footer.trim());
    let html_lang = sealpost_i18n::resolve(lang).unwrap_or("en");
    format!(
        "<!DOCTYPE html>\n<html lang=\"{html_lang}\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
<body style=\"margin:0;padding:16px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#222;\">\n\
<div style=\"max-width:600px;margin:0 auto;background:#ffffff;border-top:6px solid {accent};padding:20px 24px;\">\n\
<p style=\"color:{accent};font-weight:bold;margin:0 0 8px;\">{org_html}</p>\n\
<h1 style=\"font-size:20px;margin:0 0 16px;\">{title}</h1>\n\
<p>{intro}</p>\n\
<ol>\n<li>{step1}</li>\n<li>{upload}</li>\n</ol>\n\
<p style=\"margin:24px 0;\"><a href=\"{url_html}\" style=\"display:inline-block;padding:12px 20px;background:{accent};color:#ffffff;text-decoration:none;font-weight:bold;border-radius:4px;\">{portal_link}</a></p>\n\
<p>{portal_label}: {link}</p>\n\
<p>{sender_label}: {sender_html}</p>\n\
<p style=\"color:#555;font-size:14px;\">{first_time}<br>{reply_hint}</p>\n\
<p style=\"color:#777;font-size:12px;border-top:1px solid #ddd;padding-top:12px;\">{org_html}<br>{footer}</p>\n\
</div>\n</body>\n</html>\n",
        title = e("carrier.heading"),
        org_html = html_escape(org),
        step1 = e("carrier.step_attachment"),
        portal_link = e("carrier.portal_link"),
        portal_label = e("carrier.portal_label"),
        sender_label = e("carrier.sender_label"),
        sender_html = html_escape(sender),
        first_time = e("carrier.first_time"),
        reply_hint = e("carrier.reply_hint"),
    )
}

/// Builds the carrier mail: the readable wrapper with secure.htm attached.
pub fn build_carrier(input: &CarrierInput) -> Vec<u8> {
    let original = input.original;
    let sender = [
        original.from.trim(),
        original.from_address.as_deref().unwrap_or_default().trim(),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .map(one_line)
    .unwrap_or_else(|| t(input.lang, "common.unknown_sender"));

    let mut builder = MessageBuilder::new();
    // Reuse the original raw values (already correctly encoded by the sender's
    // client) so the carrier looks exactly like the mail it replaces.
    if let Some(raw) = original.raw_from.as_deref() {
        builder = builder.header("From", Raw::new(one_line(raw)));
    } else if let Some(address) = original.from_address.as_deref() {
        builder = builder.from(Address::new_address(
            display_name(&original.from),
            clean_address(address),
        ));
    }
    builder = match original.raw_to.as_deref() {
        Some(raw) => builder.header("To", Raw::new(one_line(raw))),
        None => builder.to(Address::new_address(
            None::<&str>,
            clean_address(input.recipient),
        )),
    };
    if let Some(raw) = original.raw_cc.as_deref() {
        builder = builder.header("Cc", Raw::new(one_line(raw)));
    }
    let subject = if original.subject.trim().is_empty() {
        t(input.lang, "carrier.subject_fallback")
    } else {
        one_line(&original.subject)
    };
    builder = builder.subject(Text::new(subject));
    builder = match original.date.as_deref() {
        Some(date) if !date.trim().is_empty() => builder.header("Date", Raw::new(one_line(date))),
        _ => builder.date(Date::now()),
    };
    let references: Vec<String> = original
        .references
        .iter()
        .map(|r| clean_address(r))
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(parent) = references.last() {
        builder = builder
            .in_reply_to(MessageId::new(parent.clone()))
            .references(MessageId::new_list(references.iter().map(String::as_str)));
    }
    builder = common_headers(builder, MailKind::Carrier, input.hostname);

    let page = render_secure_htm(
        input.public_url,
        input.payload_b64,
        input.lang,
        input.branding,
    );
    let text = to_crlf(&carrier_text(input, &sender));
    let html = to_crlf(&carrier_html(input, &sender));
    let attachment = MimePart::new(
        ContentType::new("text/html").attribute("charset", "utf-8"),
        BodyPart::Text(base64_wrapped(page.as_bytes()).into()),
    )
    .attachment("secure.htm")
    // Pre-encoded above: mail-builder would otherwise pick quoted-printable
    // for HTML, and some mobile clients mangle long QP attachments.
    .transfer_encoding("base64");
    let body = MimePart::new(
        "multipart/mixed",
        vec![
            MimePart::new(
                "multipart/alternative",
                vec![
                    MimePart::new("text/plain", BodyPart::Text(text.into())),
                    MimePart::new("text/html", BodyPart::Text(html.into())),
                ],
            ),
            attachment,
        ],
    );
    finish(builder.body(body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::outgoing::assert_crlf;
    use mail_parser::{MessageParser, MimeHeaders};

    fn orig() -> OriginalHeaders {
        crate::inbound::original_headers(
            "From: =?utf-8?Q?M=C3=BCller=2C_Hans?= <hans@bank.example>\r\n\
To: Kundin <kundin@example.org>\r\n\
Cc: chef@bank.example\r\n\
Date: Tue, 5 Mar 2024 10:15:00 +0100\r\n\
Subject: =?utf-8?Q?Ihr_Vertrag_f=C3=BCr_M=C3=A4rz?=\r\n\
Message-ID: <orig@bank.example>\r\n\
References: <p1@x> <p2@x>\r\n\r\n"
                .as_bytes(),
        )
    }

    const PAYLOAD: &str = "U1BYAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkrLw==";

    fn carrier(lang: &str) -> Vec<u8> {
        let original = orig();
        let branding = Branding::default();
        build_carrier(&CarrierInput {
            original: &original,
            recipient: "kundin@example.org",
            payload_b64: PAYLOAD,
            public_url: "https://secure.bank.example/",
            lang,
            branding: &branding,
            hostname: "gw.bank.example",
            notes: &crate::CarrierNotes::default(),
        })
    }

    #[test]
    fn carrier_parses_back() {
        for (lang, needle) in [
            ("en", "You have received an encrypted message"),
            ("de", "Sie haben eine verschlüsselte Nachricht erhalten"),
        ] {
            let raw = carrier(lang);
            assert_crlf(&raw);
            let msg = MessageParser::default().parse(&raw).unwrap();
            assert_eq!(msg.subject(), Some("Ihr Vertrag für März"));
            let from = msg.from().unwrap().first().unwrap();
            assert_eq!(from.address.as_deref(), Some("hans@bank.example"));
            assert_eq!(from.name.as_deref(), Some("Müller, Hans"));
            assert_eq!(
                msg.to().unwrap().first().unwrap().address.as_deref(),
                Some("kundin@example.org")
            );
            assert_eq!(
                msg.cc().unwrap().first().unwrap().address.as_deref(),
                Some("chef@bank.example")
            );
            assert_eq!(
                msg.header_raw("Date").unwrap().trim(),
                "Tue, 5 Mar 2024 10:15:00 +0100"
            );
            assert_eq!(msg.header_raw("X-Sealpost-Kind").unwrap().trim(), "carrier");
            assert_eq!(msg.header_raw("MIME-Version").unwrap().trim(), "1.0");
            let id = msg.message_id().unwrap();
            assert!(id.ends_with("@gw.bank.example") && id != "orig@bank.example");
            assert_eq!(msg.in_reply_to().as_text(), Some("p2@x"));
            assert_eq!(msg.references().as_text_list().map(|l| l.len()), Some(2));

            let text = msg.body_text(0).unwrap();
            assert!(text.contains(needle), "{lang}: {text}");
            assert!(text.contains("https://secure.bank.example"));
            assert!(text.contains("Müller, Hans <hans@bank.example>"));
            assert!(text.contains("secure.htm"));
            let html_part = msg.html_part(0).unwrap();
            assert!(html_part.is_text_html());
            let html = msg.body_html(0).unwrap();
            assert!(html.contains("href=\"https://secure.bank.example\""));
            assert!(html.contains(&html_escape(needle)));

            assert_eq!(msg.attachment_count(), 1);
            let att = msg.attachment(0).unwrap();
            assert_eq!(att.attachment_name(), Some("secure.htm"));
            assert!(att.is_content_type("text", "html"));
            assert_eq!(att.content_transfer_encoding(), Some("base64"));
            assert_eq!(
                crate::securehtm::extract_payload(att.contents()).as_deref(),
                Some(PAYLOAD)
            );
        }
    }

    #[test]
    fn carrier_without_raw_headers_falls_back() {
        let original = OriginalHeaders {
            from: "Hans Müller <hans@bank.example>".into(),
            from_address: Some("hans@bank.example".into()),
            ..Default::default()
        };
        let branding = Branding::default();
        let raw = build_carrier(&CarrierInput {
            original: &original,
            recipient: "kundin@example.org",
            payload_b64: PAYLOAD,
            public_url: "https://p.example",
            lang: "de",
            branding: &branding,
            hostname: "bad host\r\nX-Evil: 1",
            notes: &crate::CarrierNotes::default(),
        });
        assert_crlf(&raw);
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.subject(), Some("Verschlüsselte Nachricht"));
        assert_eq!(
            msg.from().unwrap().first().unwrap().name.as_deref(),
            Some("Hans Müller")
        );
        assert_eq!(
            msg.to().unwrap().first().unwrap().address.as_deref(),
            Some("kundin@example.org")
        );
        assert!(msg.header_raw("X-Evil").is_none());
        assert!(msg.date().is_some());
        assert_eq!(msg.attachment_count(), 1);
    }
}
