//! The mails Sealpost writes: carrier, credentials / password reset, bounce.
//!
//! Every generated mail carries `X-Sealpost-Kind`, a fresh Message-ID, a Date
//! and MIME-Version, uses CRLF line ends, and takes its texts from
//! sealpost-i18n in the reader's language.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use sealpost_i18n::{t, tf};

use crate::inbound::OriginalHeaders;
use crate::securehtm::{portal_base, render_secure_htm};
use crate::util::{base64_wrapped, html_escape, new_message_id, one_line, to_crlf};

/// Per-organisation look of generated mails and secure.htm.
#[derive(Debug, Clone)]
pub struct Branding {
    pub org_name: String,
    /// "#RRGGBB"; anything else is replaced by the default when used.
    pub accent_color: String,
    pub footer: String,
}

const DEFAULT_ACCENT: &str = "#1f5fa8";

impl Default for Branding {
    fn default() -> Self {
        Self {
            org_name: "Sealpost".to_string(),
            accent_color: DEFAULT_ACCENT.to_string(),
            footer: String::new(),
        }
    }
}

impl Branding {
    /// The accent colour, validated: it is pasted into CSS, so only a strict
    /// "#RRGGBB" passes (an admin typo must not break or inject styles).
    pub fn accent(&self) -> &str {
        let c = self.accent_color.trim();
        let valid =
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
        if valid { c } else { DEFAULT_ACCENT }
    }

    fn org(&self) -> &str {
        let org = self.org_name.trim();
        if org.is_empty() { "Sealpost" } else { org }
    }
}

/// Serialises a builder. Writing into a Vec cannot fail; should mail-builder
/// ever report an error anyway, an empty Vec is returned (callers treat an
/// empty mail as a failure to queue) instead of panicking.
fn finish(builder: MessageBuilder<'_>) -> Vec<u8> {
    builder.write_to_vec().unwrap_or_default()
}

/// An address usable inside `<…>`: no whitespace, controls or brackets, so a
/// configured or inbound value cannot inject header syntax.
fn clean_address(address: &str) -> String {
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

/// Headers every generated mail has, in this order after the caller's own.
fn common_headers<'x>(
    builder: MessageBuilder<'x>,
    kind: &'static str,
    hostname: &str,
) -> MessageBuilder<'x> {
    builder
        .message_id(MessageId::new(new_message_id(hostname)))
        .header("MIME-Version", Raw::new("1.0"))
        .header("X-Sealpost-Kind", Raw::new(kind))
}

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
}

fn carrier_text(input: &CarrierInput, sender: &str) -> String {
    let lang = input.lang;
    let url = portal_base(input.public_url);
    let org = input.branding.org();
    let mut text = String::new();
    text.push_str(&t(lang, "carrier.heading"));
    text.push_str("\n\n");
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
    let footer = input.branding.footer.trim();
    if !footer.is_empty() {
        text.push_str(footer);
        text.push('\n');
    }
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
    builder = common_headers(builder, "carrier", input.hostname);

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

/// Which credentials mail to write.
pub enum CredentialsKind {
    /// First encrypted mail to an address: goes to the sender.
    FirstUse,
    /// An admin reset the password: goes to the recipient.
    PasswordReset,
}

/// Input for [`build_credentials`].
pub struct CredentialsInput<'a> {
    pub kind: CredentialsKind,
    /// Notification sender address.
    pub from: &'a str,
    /// Who receives the credentials (original sender, or recipient for a reset).
    pub to: &'a str,
    /// The account address.
    pub recipient: &'a str,
    pub password: &'a str,
    pub public_url: &'a str,
    pub lang: &'a str,
    pub branding: &'a Branding,
    pub hostname: &'a str,
}

/// Builds the credentials (first use) or password-reset mail, text/plain.
pub fn build_credentials(input: &CredentialsInput) -> Vec<u8> {
    let lang = input.lang;
    let url = portal_base(input.public_url);
    let recipient = clean_address(input.recipient);
    let org = input.branding.org();
    let (kind, subject) = match input.kind {
        CredentialsKind::FirstUse => (
            "credentials",
            tf(lang, "credentials.subject", &[("recipient", &recipient)]),
        ),
        CredentialsKind::PasswordReset => ("password-reset", t(lang, "reset.subject")),
    };

    let mut text = String::new();
    text.push_str(&t(lang, "common.greeting"));
    text.push_str("\n\n");
    match input.kind {
        CredentialsKind::FirstUse => {
            text.push_str(&tf(lang, "credentials.intro", &[("recipient", &recipient)]));
            text.push_str("\n\n");
            text.push_str(&t(lang, "credentials.pass_on"));
        }
        CredentialsKind::PasswordReset => text.push_str(&t(lang, "reset.intro")),
    }
    text.push_str("\n\n");
    text.push_str(&tf(lang, "credentials.portal_line", &[("url", url)]));
    text.push('\n');
    text.push_str(&tf(
        lang,
        "credentials.account_line",
        &[("recipient", &recipient)],
    ));
    text.push('\n');
    // The password stays on a line of its own so it can be copied (and found
    // by tests and scripts) without surrounding text.
    text.push_str(&tf(
        lang,
        "credentials.password_line",
        &[("password", &one_line(input.password))],
    ));
    text.push_str("\n\n");
    text.push_str(&t(
        lang,
        match input.kind {
            CredentialsKind::FirstUse => "credentials.change_hint",
            CredentialsKind::PasswordReset => "reset.change_hint",
        },
    ));
    text.push_str("\n\n");
    text.push_str(&t(lang, "common.regards"));
    text.push('\n');
    text.push_str(org);
    text.push_str("\n\n-- \n");
    text.push_str(&tf(lang, "common.auto_generated", &[("org", org)]));
    text.push('\n');
    let footer = input.branding.footer.trim();
    if !footer.is_empty() {
        text.push_str(footer);
        text.push('\n');
    }

    let builder = MessageBuilder::new()
        .from(Address::new_address(
            Some(org.to_string()),
            clean_address(input.from),
        ))
        .to(Address::new_address(None::<&str>, clean_address(input.to)))
        .subject(Text::new(subject))
        .date(Date::now())
        .header("Auto-Submitted", Raw::new("auto-generated"));
    let builder = common_headers(builder, kind, input.hostname);
    finish(builder.body(MimePart::new(
        "text/plain",
        BodyPart::Text(to_crlf(&text).into()),
    )))
}

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
        crate::util::safe_hostname(input.hostname)
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
    let builder = common_headers(builder, "bounce", input.hostname);
    finish(builder.body(report))
}

/// What a reply needs to know about the message it answers, read from the
/// decrypted original. Addresses are lower-cased.
#[derive(Debug, Clone, Default)]
pub struct ReplySource {
    /// Reply-To if present, else From: where a reply goes.
    pub reply_address: Option<String>,
    /// The original's From as displayed ("Name <addr>"), for the quote line.
    pub from_display: String,
    /// Every address in To and Cc, in order, without duplicates.
    pub to_and_cc: Vec<String>,
    pub subject: String,
    pub date: String,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// The original's References (or In-Reply-To), without angle brackets.
    pub references: Vec<String>,
    /// The text body (mail-parser converts an HTML-only body to text).
    pub text: String,
}

/// Where a reply to a message may go, from its top-level headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyAddresses {
    /// Reply-To if present, else From. Lower-cased.
    pub reply_address: Option<String>,
    /// Every address in To and Cc, in order, without duplicates. Lower-cased.
    pub to_and_cc: Vec<String>,
}

fn reply_addresses_of(msg: &mail_parser::Message<'_>) -> ReplyAddresses {
    let first = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.iter().find_map(|x| x.address.as_deref()))
            .map(|s| clean_address(s).to_lowercase())
            .filter(|s| s.contains('@'))
    };
    let mut to_and_cc: Vec<String> = Vec::new();
    for list in [msg.to(), msg.cc()].into_iter().flatten() {
        for addr in list.iter().filter_map(|x| x.address.as_deref()) {
            let addr = clean_address(addr).to_lowercase();
            if addr.contains('@') && !to_and_cc.contains(&addr) {
                to_and_cc.push(addr);
            }
        }
    }
    ReplyAddresses {
        reply_address: first(msg.reply_to()).or_else(|| first(msg.from())),
        to_and_cc,
    }
}

/// [`ReplySource`]'s addresses from the headers alone: the body (with any large attachment)
/// is not parsed or decoded. None when no header parses.
pub fn reply_addresses(raw: &[u8]) -> Option<ReplyAddresses> {
    let msg = mail_parser::MessageParser::default().parse_headers(raw)?;
    Some(reply_addresses_of(&msg))
}

/// Reads the reply-relevant parts of a message; None when it does not parse.
pub fn reply_source(raw: &[u8]) -> Option<ReplySource> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let ReplyAddresses {
        reply_address,
        to_and_cc,
    } = reply_addresses_of(&msg);
    let original = crate::inbound::original_headers(raw);
    let mut references = original.references.clone();
    if let Some(id) = &original.message_id {
        // References of a reply: the parent's references, then the parent itself.
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    Some(ReplySource {
        reply_address,
        from_display: original.from.clone(),
        to_and_cc,
        subject: original.subject.clone(),
        date: original.date.clone().unwrap_or_default(),
        message_id: original.message_id.clone(),
        references,
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
    })
}

/// "Re: subject", without stacking prefixes ("Re: Re: …") and without
/// translating an existing German "AW:".
pub fn reply_subject(subject: &str) -> String {
    let s = one_line(subject);
    let lower = s.to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("aw:") {
        s
    } else if s.is_empty() {
        "Re:".to_string()
    } else {
        format!("Re: {s}")
    }
}

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
    builder = common_headers(builder, "reply", input.hostname);
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
            .attachment(crate::display::safe_filename(&a.filename)),
        );
    }
    finish(builder.body(MimePart::new("multipart/mixed", parts)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

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
        })
    }

    fn assert_crlf(raw: &[u8]) {
        for (i, b) in raw.iter().enumerate() {
            if *b == b'\n' {
                assert!(i > 0 && raw[i - 1] == b'\r', "bare LF at {i}");
            }
        }
        // Header section ends with a blank line.
        assert!(raw.windows(4).any(|w| w == b"\r\n\r\n"));
        let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        for line in raw[..header_end].split(|b| *b == b'\n') {
            assert!(line.len() <= 998);
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

    fn credentials(kind: CredentialsKind, lang: &str) -> Vec<u8> {
        build_credentials(&CredentialsInput {
            kind,
            from: "sealpost@bank.example",
            to: "hans@bank.example",
            recipient: "kundin@example.org",
            password: "Xk7-pq9R-mT4w-zz3A",
            public_url: "https://secure.bank.example",
            lang,
            branding: &Branding::default(),
            hostname: "gw.bank.example",
        })
    }

    #[test]
    fn credentials_have_password_on_its_own_line() {
        for (kind, lang, label, expected_kind) in [
            (CredentialsKind::FirstUse, "en", "Password: ", "credentials"),
            (CredentialsKind::FirstUse, "de", "Passwort: ", "credentials"),
            (
                CredentialsKind::PasswordReset,
                "en",
                "Password: ",
                "password-reset",
            ),
            (
                CredentialsKind::PasswordReset,
                "de-CH",
                "Passwort: ",
                "password-reset",
            ),
        ] {
            let raw = credentials(kind, lang);
            assert_crlf(&raw);
            let msg = MessageParser::default().parse(&raw).unwrap();
            assert_eq!(
                msg.header_raw("X-Sealpost-Kind").unwrap().trim(),
                expected_kind
            );
            assert!(msg.content_type().unwrap().ctype() == "text");
            let text = msg.body_text(0).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.contains(&format!("{label}Xk7-pq9R-mT4w-zz3A").as_str()),
                "{lang}: {text}"
            );
            assert!(lines.iter().any(|l| l.ends_with(": kundin@example.org")));
            assert_eq!(
                msg.to().unwrap().first().unwrap().address.as_deref(),
                Some("hans@bank.example")
            );
        }
        let en = credentials(CredentialsKind::FirstUse, "en");
        let text = MessageParser::default()
            .parse(&en)
            .unwrap()
            .body_text(0)
            .unwrap()
            .into_owned();
        assert!(
            text.contains("telephone")
                && text.contains("SMS")
                && text.contains("unencrypted e-mail")
        );
        let de = credentials(CredentialsKind::FirstUse, "de");
        let text = MessageParser::default()
            .parse(&de)
            .unwrap()
            .body_text(0)
            .unwrap()
            .into_owned();
        assert!(text.contains("telefonisch") && text.contains("unverschlüsselter E-Mail"));
    }

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

    #[test]
    fn accent_validation() {
        let mut b = Branding::default();
        assert_eq!(b.accent(), "#1f5fa8");
        b.accent_color = "#AA00ff".into();
        assert_eq!(b.accent(), "#AA00ff");
        for bad in ["red", "#12345", "#1234567", "#12345g", "#ä1234", ""] {
            b.accent_color = bad.into();
            assert_eq!(b.accent(), "#1f5fa8", "{bad}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod reply_tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    const ORIGINAL: &str = "From: Anna Advisor <Anna@Bank.example>\r\n\
To: kundin@example.org, chef@bank.example\r\n\
Cc: Other <other@example.net>\r\n\
Subject: Ihr Vertrag\r\n\
Date: Tue, 5 Mar 2024 10:15:00 +0100\r\n\
Message-ID: <orig@bank.example>\r\n\
References: <p1@x>\r\n\r\n\
Line one\r\n\r\nLine three\r\n";

    #[test]
    fn reply_source_reads_recipients_and_thread() {
        let src = reply_source(ORIGINAL.as_bytes()).unwrap();
        assert_eq!(src.reply_address.as_deref(), Some("anna@bank.example"));
        assert_eq!(
            src.to_and_cc,
            vec![
                "kundin@example.org",
                "chef@bank.example",
                "other@example.net"
            ]
        );
        assert_eq!(src.references, vec!["p1@x", "orig@bank.example"]);
        let with_reply_to = ORIGINAL.replace("Subject:", "Reply-To: team@bank.example\r\nSubject:");
        let src = reply_source(with_reply_to.as_bytes()).unwrap();
        assert_eq!(src.reply_address.as_deref(), Some("team@bank.example"));
    }

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
            to: src.reply_address.as_deref().unwrap(),
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

    #[test]
    fn subjects_do_not_stack() {
        assert_eq!(reply_subject("Hallo"), "Re: Hallo");
        assert_eq!(reply_subject("RE: Hallo"), "RE: Hallo");
        assert_eq!(reply_subject("AW: Hallo"), "AW: Hallo");
        assert_eq!(reply_subject(""), "Re:");
    }
}
