//! The carrier mail: the readable wrapper that replaces an encrypted message. It carries the
//! payload as the delivery profile says (secure.htm, `message.sealpost`, or a link with
//! secure.htm as the fallback), and shows what lets the recipient check it: the sender, the
//! portal's host, the security phrase, the expiry, the ledger id.

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
use crate::carrier_facts::{expiry_date, host_of, legal_links, why_block};
use crate::carrier_notes::{CarrierDelivery, CarrierNotes, FirstContact};
use crate::fold::address_list;
use crate::inbound::OriginalHeaders;
use crate::kind::MailKind;
use crate::outgoing::{common_headers, finish};
use crate::securehtm::{SecureHtm, render_secure_htm};
use crate::util::{clean_address, html_escape, one_line, portal_base, to_crlf};

/// The name of the data file attached under the `datafile` profile.
pub const DATAFILE_NAME: &str = "message.sealpost";

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
    pub notes: &'a CarrierNotes,
}

/// The ledger id as it may appear in a header: hex only (it is ours, but a header is no place
/// to trust that).
fn ledger_id(notes: &CarrierNotes) -> Option<&str> {
    notes
        .ledger_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The security phrase on one line, if any.
fn phrase(notes: &CarrierNotes) -> Option<String> {
    notes
        .security_phrase
        .as_deref()
        .map(one_line)
        .filter(|p| !p.trim().is_empty())
}

/// The numbered steps, and the main button's (label, target) for the delivery profile.
fn steps_and_button(input: &CarrierInput) -> (Vec<String>, String, String) {
    let lang = input.lang;
    let url = portal_base(input.public_url);
    match &input.notes.delivery {
        CarrierDelivery::Attachment => (
            vec![
                t(lang, "carrier.step_attachment"),
                tf(lang, "carrier.step_upload", &[("url", url)]),
            ],
            t(lang, "carrier.portal_link"),
            url.to_string(),
        ),
        CarrierDelivery::Datafile => {
            // The portal's start page is its upload page.
            let upload = format!("{url}/");
            (
                vec![
                    tf(lang, "carrier.datafile_step_portal", &[("url", &upload)]),
                    t(lang, "carrier.datafile_step_upload"),
                ],
                t(lang, "carrier.datafile_button"),
                upload,
            )
        }
        CarrierDelivery::Link { url: link, attach } => {
            let mut steps = vec![tf(lang, "carrier.link_step", &[("url", link)])];
            if *attach {
                steps.push(t(lang, "carrier.link_fallback"));
            }
            (steps, t(lang, "carrier.link_button"), link.clone())
        }
    }
}

fn first_contact_text(lang: &str, first: FirstContact) -> String {
    t(
        lang,
        match first {
            FirstContact::Existing => "carrier.first_existing",
            FirstContact::Sender => "carrier.first_sender",
            FirstContact::MailboxCode => "carrier.first_mailbox_code",
        },
    )
}

fn carrier_text(input: &CarrierInput, sender: &str) -> String {
    let lang = input.lang;
    let notes = input.notes;
    let url = portal_base(input.public_url);
    let org = input.branding.org();
    let (steps, button, target) = steps_and_button(input);
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
    text.push_str("\n\n");
    if let Some(phrase) = phrase(notes) {
        text.push_str(&tf(lang, "carrier.phrase", &[("phrase", &phrase)]));
        text.push('\n');
        text.push_str(&tf(lang, "carrier.phrase_hint", &[("org", org)]));
        text.push_str("\n\n");
    }
    for (n, step) in steps.iter().enumerate() {
        text.push_str(&format!("{}. {step}\n\n", n + 1));
    }
    if target != url {
        // The portal line below names the portal itself; other targets get their own line.
        text.push_str(&format!("{button}: {target}\n\n"));
    }
    if let Some(at) = notes.expires_at {
        text.push_str(&tf(
            lang,
            "carrier.expires",
            &[("date", &expiry_date(lang, at))],
        ));
        text.push_str("\n\n");
    }
    text.push_str(&t(lang, "carrier.portal_label"));
    text.push_str(": ");
    text.push_str(url);
    text.push('\n');
    text.push_str(&t(lang, "carrier.sender_label"));
    text.push_str(": ");
    text.push_str(sender);
    text.push_str("\n\n");
    text.push_str(&first_contact_text(lang, notes.first_contact));
    text.push('\n');
    text.push_str(&t(lang, "carrier.reply_hint"));
    text.push_str("\n\n");
    let why = why_block(
        lang,
        sender,
        input.branding,
        &host_of(input.public_url),
        phrase(notes).is_some(),
    );
    for paragraph in &why {
        text.push_str(paragraph);
        text.push('\n');
    }
    if let Some(id) = ledger_id(notes) {
        text.push('\n');
        text.push_str(&tf(lang, "carrier.message_id", &[("id", id)]));
        text.push('\n');
    }
    text.push_str("\n-- \n");
    text.push_str(org);
    text.push('\n');
    input.branding.push_text_footer(&mut text);
    for (label, link) in legal_links(lang, input.branding) {
        text.push_str(&format!("{label}: {link}\n"));
    }
    text
}

fn carrier_html(input: &CarrierInput, sender: &str) -> String {
    let lang = input.lang;
    let notes = input.notes;
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
    let (steps, button, target) = steps_and_button(input);
    let steps_html: String = steps
        .iter()
        .map(|step| {
            // Escape the sentence first, then make the URLs in it links.
            let mut escaped = html_escape(step);
            for known in [format!("{url}/"), url.to_string(), target.clone()] {
                let known_html = html_escape(&known);
                if escaped.contains(&format!(" {known_html}")) {
                    escaped = escaped.replacen(
                        &format!(" {known_html}"),
                        &format!(
                            " <a href=\"{known_html}\" style=\"color:{accent}\">{known_html}</a>"
                        ),
                        1,
                    );
                    break;
                }
            }
            format!("<li>{escaped}</li>\n")
        })
        .collect();
    let phrase_html = phrase(notes)
        .map(|phrase| {
            format!(
                "<p style=\"margin:0 0 16px;padding:10px 14px;border:2px solid {accent};border-radius:4px;\"><strong>{}</strong><br><span style=\"font-size:14px;color:#444;\">{}</span></p>\n",
                html_escape(&tf(lang, "carrier.phrase", &[("phrase", &phrase)])),
                html_escape(&tf(lang, "carrier.phrase_hint", &[("org", org)])),
            )
        })
        .unwrap_or_default();
    let expiry_html = notes
        .expires_at
        .map(|at| {
            format!(
                "<p><strong>{}</strong></p>\n",
                html_escape(&tf(
                    lang,
                    "carrier.expires",
                    &[("date", &expiry_date(lang, at))]
                ))
            )
        })
        .unwrap_or_default();
    let why = why_block(
        lang,
        sender,
        input.branding,
        &host_of(input.public_url),
        phrase(notes).is_some(),
    );
    let mut why_html = String::from(
        "<div style=\"background:#f4f5f7;padding:12px 16px;margin:24px 0 0;font-size:14px;color:#333;\">\n",
    );
    for (n, paragraph) in why.iter().enumerate() {
        if n == 0 {
            why_html.push_str(&format!(
                "<p style=\"margin:0 0 8px;font-weight:bold;\">{}</p>\n",
                html_escape(paragraph)
            ));
        } else {
            why_html.push_str(&format!(
                "<p style=\"margin:0 0 8px;\">{}</p>\n",
                html_escape(paragraph)
            ));
        }
    }
    why_html.push_str("</div>\n");
    let id_html = ledger_id(notes)
        .map(|id| {
            format!(
                "<p style=\"color:#777;font-size:12px;\">{}</p>\n",
                html_escape(&tf(lang, "carrier.message_id", &[("id", id)]))
            )
        })
        .unwrap_or_default();
    let mut footer = html_escape(input.branding.footer.trim());
    let legal: Vec<String> = legal_links(lang, input.branding)
        .into_iter()
        .map(|(label, href)| {
            format!(
                "<a href=\"{}\" style=\"color:#777;\">{}</a>",
                html_escape(&href),
                html_escape(&label)
            )
        })
        .collect();
    if !legal.is_empty() {
        if !footer.is_empty() {
            footer.push_str("<br>");
        }
        footer.push_str(&legal.join(" · "));
    }
    let html_lang = sealpost_i18n::resolve(lang).unwrap_or("en");
    format!(
        "<!DOCTYPE html>\n<html lang=\"{html_lang}\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
<body style=\"margin:0;padding:16px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#222;\">\n\
<div style=\"max-width:600px;margin:0 auto;background:#ffffff;border-top:6px solid {accent};padding:20px 24px;\">\n\
<p style=\"color:{accent};font-weight:bold;margin:0 0 8px;\">{org_html}</p>\n\
<h1 style=\"font-size:20px;margin:0 0 16px;\">{title}</h1>\n\
<p>{intro}</p>\n\
{phrase_html}<ol>\n{steps_html}</ol>\n\
<p style=\"margin:24px 0;\"><a href=\"{target_html}\" style=\"display:inline-block;padding:12px 20px;background:{accent};color:#ffffff;text-decoration:none;font-weight:bold;border-radius:4px;\">{button_html}</a></p>\n\
{expiry_html}<p>{portal_label}: {link}<br>\n{sender_label}: {sender_html}</p>\n\
<p style=\"color:#555;font-size:14px;\">{first_time}<br>{reply_hint}</p>\n\
{why_html}{id_html}\
<p style=\"color:#777;font-size:12px;border-top:1px solid #ddd;padding-top:12px;\">{org_html}<br>{footer}</p>\n\
</div>\n</body>\n</html>\n",
        title = e("carrier.heading"),
        org_html = html_escape(org),
        target_html = html_escape(&target),
        button_html = html_escape(&button),
        portal_label = e("carrier.portal_label"),
        sender_label = e("carrier.sender_label"),
        sender_html = html_escape(sender),
        first_time = html_escape(&first_contact_text(lang, notes.first_contact)),
        reply_hint = e("carrier.reply_hint"),
    )
}

/// secure.htm as an attachment: 7bit when it can be (the page is ASCII; every line must fit
/// the 998-octet limit), else quoted-printable, chosen by mail-builder. Never base64: the
/// payload inside is base64 already, and base64 of it costs a third more.
fn secure_htm_part(page: String) -> MimePart<'static> {
    let page = to_crlf(&page);
    let part = MimePart::new(
        ContentType::new("text/html").attribute("charset", "utf-8"),
        BodyPart::Text(page.clone().into()),
    )
    .attachment("secure.htm");
    if page.is_ascii() && page.split("\r\n").all(|line| line.len() <= 998) {
        part.transfer_encoding("7bit")
    } else {
        part
    }
}

/// `message.sealpost`: the payload (base64, lines of 76) as its own file, 7bit.
fn datafile_part(payload_b64: &str) -> MimePart<'static> {
    let mut content = to_crlf(payload_b64.trim());
    content.push_str("\r\n");
    // Binary, so no charset is added to the type; the bytes are ASCII lines, hence 7bit.
    MimePart::new(
        ContentType::new("application/octet-stream"),
        BodyPart::Binary(content.into_bytes().into()),
    )
    .attachment(DATAFILE_NAME)
    .transfer_encoding("7bit")
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
    // To and Cc as the sender wrote them, folded at 78 characters.
    builder = match original
        .raw_to
        .as_deref()
        .and_then(|raw| address_list("To", raw))
    {
        Some(to) => builder.header("To", to),
        None => builder.to(Address::new_address(
            None::<&str>,
            clean_address(input.recipient),
        )),
    };
    if let Some(cc) = original
        .raw_cc
        .as_deref()
        .and_then(|raw| address_list("Cc", raw))
    {
        builder = builder.header("Cc", cc);
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
    let mut references: Vec<String> = original
        .references
        .iter()
        .map(|r| clean_address(r))
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(parent) = references.last() {
        builder = builder.in_reply_to(MessageId::new(parent.clone()));
    }
    // The carrier refers to the mail it replaces, so a DSN or a reply to it can be matched.
    let original_id = input
        .notes
        .original_message_id
        .as_deref()
        .map(clean_address)
        .filter(|id| !id.is_empty());
    if let Some(id) = &original_id
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    if !references.is_empty() {
        builder = builder.references(MessageId::new_list(references.iter().map(String::as_str)));
    }
    if let Some(id) = &original_id {
        builder = builder.header(
            "X-Sealpost-Original-Message-Id",
            Raw::new(format!("<{id}>")),
        );
    }
    builder = common_headers(builder, MailKind::Carrier, input.hostname);

    if let Some(id) = ledger_id(input.notes) {
        builder = builder.header("X-Sealpost-Message", Raw::new(id.to_string()));
    }

    let text = to_crlf(&carrier_text(input, &sender));
    let html = to_crlf(&carrier_html(input, &sender));
    let secure_htm = || {
        secure_htm_part(render_secure_htm(&SecureHtm {
            public_url: input.public_url,
            payload_b64: input.payload_b64,
            lang: input.lang,
            branding: input.branding,
            sender: &sender,
            date: original.date.as_deref(),
            expires_at: input.notes.expires_at,
            auto_open: input.notes.auto_open,
        }))
    };
    let attachment = match &input.notes.delivery {
        CarrierDelivery::Attachment => Some(secure_htm()),
        CarrierDelivery::Datafile => Some(datafile_part(input.payload_b64)),
        CarrierDelivery::Link { attach, .. } => attach.then(secure_htm),
    };
    let alternative = MimePart::new(
        "multipart/alternative",
        vec![
            MimePart::new("text/plain", BodyPart::Text(text.into())),
            MimePart::new("text/html", BodyPart::Text(html.into())),
        ],
    );
    let body = match attachment {
        Some(attachment) => MimePart::new("multipart/mixed", vec![alternative, attachment]),
        None => alternative,
    };
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

    fn carrier_with(
        lang: &str,
        payload: &str,
        branding: &Branding,
        notes: &CarrierNotes,
    ) -> Vec<u8> {
        let original = orig();
        build_carrier(&CarrierInput {
            original: &original,
            recipient: "kundin@example.org",
            payload_b64: payload,
            public_url: "https://secure.bank.example/",
            lang,
            branding,
            hostname: "gw.bank.example",
            notes,
        })
    }

    fn carrier(lang: &str) -> Vec<u8> {
        carrier_with(
            lang,
            PAYLOAD,
            &Branding::default(),
            &CarrierNotes {
                original_message_id: Some("<orig@bank.example>".into()),
                ..CarrierNotes::default()
            },
        )
    }

    fn with_delivery(delivery: CarrierDelivery) -> Vec<u8> {
        let notes = CarrierNotes {
            delivery,
            ..CarrierNotes::default()
        };
        carrier_with("en", PAYLOAD, &Branding::default(), &notes)
    }

    #[test]
    fn one_attachment_per_profile() {
        let raw = with_delivery(CarrierDelivery::Attachment);
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.attachment_count(), 1);
        assert_eq!(
            msg.attachment(0).unwrap().attachment_name(),
            Some("secure.htm")
        );

        let raw = with_delivery(CarrierDelivery::Datafile);
        assert_crlf(&raw);
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.attachment_count(), 1);
        let att = msg.attachment(0).unwrap();
        assert_eq!(att.attachment_name(), Some(DATAFILE_NAME));
        assert!(att.is_content_type("application", "octet-stream"));
        // The same base64 payload as its content, and the upload route reads it.
        let content = String::from_utf8(att.contents().to_vec()).unwrap();
        assert_eq!(content.trim().replace("\r\n", "\n"), PAYLOAD);
        assert_eq!(
            crate::securehtm::extract_payload(att.contents()).as_deref(),
            Some(PAYLOAD)
        );
        let text = msg.body_text(0).unwrap();
        assert!(text.contains("message.sealpost"));
        assert!(text.contains("Open the upload page: https://secure.bank.example/"));
        assert!(!text.contains("secure.htm"), "{text}");
        let html = msg.body_html(0).unwrap();
        assert!(html.contains("href=\"https://secure.bank.example/\""));

        let url = "https://secure.bank.example/m/0123abcd".to_string();
        let raw = with_delivery(CarrierDelivery::Link {
            url: url.clone(),
            attach: false,
        });
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.attachment_count(), 0);
        let html = msg.body_html(0).unwrap();
        assert!(html.contains(&format!("href=\"{url}\" style=\"display:inline-block")));
        assert!(
            msg.body_text(0)
                .unwrap()
                .contains(&format!("Read the message: {url}"))
        );

        let raw = with_delivery(CarrierDelivery::Link { url, attach: true });
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.attachment_count(), 1);
        assert_eq!(
            msg.attachment(0).unwrap().attachment_name(),
            Some("secure.htm")
        );
    }

    #[test]
    fn notes_are_rendered_in_text_and_html() {
        let branding = Branding {
            org_name: "Bank Example".into(),
            support_contact: "+49 30 1234-0".into(),
            imprint_url: "https://bank.example/imprint".into(),
            privacy_url: "https://bank.example/privacy".into(),
            ..Branding::default()
        };
        let notes = CarrierNotes {
            ledger_id: Some("00ff00ff00ff00ff00ff00ff00ff00ff".into()),
            expires_at: Some(1_709_596_800),
            security_phrase: Some("Blue heron at dawn".into()),
            first_contact: FirstContact::MailboxCode,
            ..CarrierNotes::default()
        };
        for (lang, words) in [
            (
                "en",
                [
                    "Message ID: 00ff00ff00ff00ff00ff00ff00ff00ff",
                    "This message can be read until 5 March 2024.",
                    "Your security phrase: Blue heron at dawn",
                    "A mail without it is not from us.",
                    "Why did I get this, and is it genuine?",
                    "secure.bank.example and nowhere else",
                    "If in doubt, contact Bank Example: +49 30 1234-0",
                    "We never ask for your password",
                    "a one-time code will be sent to this e-mail address",
                ],
            ),
            (
                "de",
                [
                    "Nachrichten-ID: 00ff00ff00ff00ff00ff00ff00ff00ff",
                    "Diese Nachricht kann bis zum 5. März 2024 gelesen werden.",
                    "Ihr Sicherheitssatz: Blue heron at dawn",
                    "Eine E-Mail ohne ihn stammt nicht von uns.",
                    "Warum erhalte ich diese Nachricht, und ist sie echt?",
                    "secure.bank.example und nirgends sonst",
                    "Im Zweifel wenden Sie sich an Bank Example: +49 30 1234-0",
                    "niemals per E-Mail oder Telefon nach Ihrem Passwort",
                    "ein Einmalcode an diese E-Mail-Adresse gesendet",
                ],
            ),
        ] {
            let raw = carrier_with(lang, PAYLOAD, &branding, &notes);
            let msg = MessageParser::default().parse(&raw).unwrap();
            assert_eq!(
                msg.header_raw("X-Sealpost-Message").unwrap().trim(),
                "00ff00ff00ff00ff00ff00ff00ff00ff"
            );
            let text = msg.body_text(0).unwrap();
            let html = crate::util::html_unescape(&msg.body_html(0).unwrap());
            for word in words {
                assert!(text.contains(word), "{lang} text lacks {word}: {text}");
                assert!(html.contains(word), "{lang} html lacks {word}: {html}");
            }
            assert!(html.contains("href=\"https://bank.example/imprint\""));
            assert!(html.contains("href=\"https://bank.example/privacy\""));
            assert!(!text.to_lowercase().contains("end-to-end"));
            // The expiry is in secure.htm too.
            let page = crate::util::html_unescape(&String::from_utf8_lossy(
                msg.attachment(0).unwrap().contents(),
            ));
            assert!(page.contains(words[1]), "{page}");
        }
    }

    #[test]
    fn first_contact_texts_and_defaults() {
        let text_for = |first| {
            let notes = CarrierNotes {
                first_contact: first,
                ..CarrierNotes::default()
            };
            let raw = carrier_with("en", PAYLOAD, &Branding::default(), &notes);
            MessageParser::default()
                .parse(&raw)
                .unwrap()
                .body_text(0)
                .unwrap()
                .into_owned()
        };
        assert!(
            text_for(FirstContact::Existing)
                .contains("Sign in with your e-mail address and your password.")
        );
        assert!(
            text_for(FirstContact::Sender).contains("the sender will give you your login details")
        );
        let plain = text_for(FirstContact::Existing);
        assert!(!plain.contains("Message ID"));
        assert!(!plain.contains("security phrase:"));
        assert!(!plain.contains("can be read until"));
        assert!(!plain.contains("If in doubt"));
        let msg_raw = carrier("en");
        let msg = MessageParser::default().parse(&msg_raw).unwrap();
        assert!(msg.header_raw("X-Sealpost-Message").is_none());
    }

    #[test]
    fn a_bad_ledger_id_is_not_a_header() {
        let notes = CarrierNotes {
            ledger_id: Some("ab\r\nX-Evil: 1".into()),
            ..CarrierNotes::default()
        };
        let raw = carrier_with("en", PAYLOAD, &Branding::default(), &notes);
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert!(msg.header_raw("X-Evil").is_none());
        assert!(msg.header_raw("X-Sealpost-Message").is_none());
    }

    #[test]
    fn no_base64_around_the_payload() {
        use base64::Engine as _;
        // A 100 kB message, incompressible: its envelope is some 100 kB, the payload 136 kB.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let bytes: Vec<u8> = (0..100 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let payload: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let payload = payload.join("\n");
        for lang in ["en", "de"] {
            let raw = carrier_with(
                lang,
                &payload,
                &Branding::default(),
                &CarrierNotes::default(),
            );
            let msg = MessageParser::default().parse(&raw).unwrap();
            let att = msg.attachment(0).unwrap();
            assert_eq!(att.content_transfer_encoding(), Some("7bit"));
            assert_eq!(
                crate::securehtm::extract_payload(att.contents()).as_deref(),
                Some(payload.as_str())
            );
            // Before: the same page as base64 (76-character CRLF lines).
            let page = att.contents();
            let page_b64 = base64::engine::general_purpose::STANDARD.encode(page);
            let before_part = page_b64.len() + page_b64.len().div_ceil(76) * 2;
            let before = raw.len() - page.len() + before_part;
            assert!(
                raw.len() * 100 <= before * 80,
                "{lang}: {} bytes now, {before} before",
                raw.len()
            );
            // The text and HTML parts are not base64 either.
            for part in msg.text_bodies().chain(msg.html_bodies()) {
                assert_ne!(part.content_transfer_encoding(), Some("base64"));
            }
        }
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
            assert_eq!(
                msg.references().as_text_list().unwrap(),
                vec!["p1@x", "p2@x", "orig@bank.example"]
            );
            assert_eq!(
                msg.header_raw("X-Sealpost-Original-Message-Id")
                    .unwrap()
                    .trim(),
                "<orig@bank.example>"
            );

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
            assert_eq!(att.content_transfer_encoding(), Some("7bit"));
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
        // Without the original's Message-ID nothing refers to it.
        assert!(msg.header_raw("X-Sealpost-Original-Message-Id").is_none());
        assert!(msg.header_raw("References").is_none());
        assert!(msg.date().is_some());
        assert_eq!(msg.attachment_count(), 1);
    }

    #[test]
    fn long_to_and_cc_are_folded_at_78() {
        let to = (0..10)
            .map(|i| format!("Kundin Nummer {i} <kundin.{i}@example.org>"))
            .collect::<Vec<_>>()
            .join(", ");
        let original = crate::inbound::original_headers(
            format!("From: a@bank.example\r\nTo: {to}\r\nCc: {to}\r\nSubject: x\r\n\r\n")
                .as_bytes(),
        );
        let branding = Branding::default();
        let raw = build_carrier(&CarrierInput {
            original: &original,
            recipient: "kundin.3@example.org",
            payload_b64: PAYLOAD,
            public_url: "https://p.example",
            lang: "en",
            branding: &branding,
            hostname: "gw.bank.example",
            notes: &crate::CarrierNotes::default(),
        });
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        for line in String::from_utf8_lossy(&raw[..end]).split("\r\n") {
            assert!(line.len() <= 78, "{} {line:?}", line.len());
        }
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.to().unwrap().iter().count(), 10);
        assert_eq!(msg.cc().unwrap().iter().count(), 10);
        assert_eq!(
            msg.to().unwrap().first().unwrap().name.as_deref(),
            Some("Kundin Nummer 0")
        );
    }
}
