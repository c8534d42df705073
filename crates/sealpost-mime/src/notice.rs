//! Mails to people about an account: the credentials of a new account and a password an
//! administrator reset.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use sealpost_i18n::{t, tf};

use crate::branding::Branding;
use crate::kind::MailKind;
use crate::outgoing::{common_headers, finish};
use crate::util::{clean_address, one_line, portal_base, to_crlf};

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
    /// First use only: the sender's single-use link to the message's status page (where it
    /// can be revoked) and the date it ends, as text.
    pub status_link: Option<(&'a str, &'a str)>,
}

/// Builds the credentials (first use) or password-reset mail, text/plain.
pub fn build_credentials(input: &CredentialsInput) -> Vec<u8> {
    let lang = input.lang;
    let url = portal_base(input.public_url);
    let recipient = clean_address(input.recipient);
    let org = input.branding.org();
    let (kind, subject) = match input.kind {
        CredentialsKind::FirstUse => (
            MailKind::Credentials,
            tf(lang, "credentials.subject", &[("recipient", &recipient)]),
        ),
        CredentialsKind::PasswordReset => (MailKind::PasswordReset, t(lang, "reset.subject")),
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
    if let (CredentialsKind::FirstUse, Some((link, until))) = (&input.kind, input.status_link) {
        text.push_str(&tf(
            lang,
            "sender_link.intro",
            &[("date", &one_line(until))],
        ));
        // On a line of its own, so mail clients make it clickable.
        text.push('\n');
        text.push_str(&one_line(link));
        text.push_str("\n\n");
    }
    text.push_str(&t(lang, "common.regards"));
    text.push('\n');
    text.push_str(org);
    text.push_str("\n\n-- \n");
    text.push_str(&tf(lang, "common.auto_generated", &[("org", org)]));
    text.push('\n');
    input.branding.push_text_footer(&mut text);

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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::outgoing::assert_crlf;
    use mail_parser::{MessageParser, MimeHeaders};

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
            status_link: Some(("https://secure.bank.example/s/TOKEN", "2027-01-01")),
        })
    }

    #[test]
    fn first_use_credentials_carry_the_senders_status_link_and_a_reset_does_not() {
        let body = |raw: Vec<u8>| {
            MessageParser::default()
                .parse(&raw)
                .unwrap()
                .body_text(0)
                .unwrap()
                .into_owned()
        };
        for lang in ["en", "de"] {
            let text = body(credentials(CredentialsKind::FirstUse, lang));
            assert!(
                text.lines()
                    .any(|l| l.trim() == "https://secure.bank.example/s/TOKEN"),
                "{lang}: {text}"
            );
            assert!(text.contains("2027-01-01"), "{lang}: {text}");
            let reset = body(credentials(CredentialsKind::PasswordReset, lang));
            assert!(!reset.contains("/s/TOKEN"), "{lang}: {reset}");
        }
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
}
