//! Mails to an account holder about the account's own security: the one-time code of a
//! self-service reset (`code`), notices after a reset or a changed factor (`notice`), and the
//! one-time link of an administrator's reset (`password-reset`). They go to the account's own
//! address, so none of them carries a password; the code and the link are the only secrets,
//! short-lived and single-use.

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
use crate::util::{one_line, to_crlf};

/// Who the mail is from and to, and how it looks; shared by every mail of this module.
pub struct SecurityMailBase<'a> {
    pub from: &'a str,
    /// The account's address: the mail's only recipient.
    pub to: &'a str,
    pub lang: &'a str,
    pub branding: &'a Branding,
    pub hostname: &'a str,
}

/// What a notice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeEvent {
    /// Reset on the forgotten-password page (secret answer, with or without a code).
    ResetByAnswer,
    /// A password set through an administrator's one-time link.
    ResetByLink,
    /// An administrator reset the password and mailed it to the sender.
    ResetByAdmin,
    PasswordChanged,
    QuestionChanged,
    /// An authenticator app was enrolled as the second factor.
    TotpEnrolled,
    /// The authenticator app was removed.
    TotpRemoved,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRenewed,
    /// A recovery code stood in for the authenticator at a sign-in.
    RecoveryCodeUsed,
    /// An administrator reset the second factors.
    SecondFactorsReset,
    /// A passkey was registered for the account.
    PasskeyAdded,
    /// A passkey of the account was removed.
    PasskeyRemoved,
}

impl NoticeEvent {
    fn key(self) -> &'static str {
        match self {
            NoticeEvent::ResetByAnswer => "notice.reset_answer",
            NoticeEvent::ResetByLink => "notice.reset_link",
            NoticeEvent::ResetByAdmin => "notice.reset_admin",
            NoticeEvent::PasswordChanged => "notice.password_changed",
            NoticeEvent::QuestionChanged => "notice.question_changed",
            NoticeEvent::TotpEnrolled => "notice.totp_enrolled",
            NoticeEvent::TotpRemoved => "notice.totp_removed",
            NoticeEvent::RecoveryCodesRenewed => "notice.recovery_codes_renewed",
            NoticeEvent::RecoveryCodeUsed => "notice.recovery_code_used",
            NoticeEvent::SecondFactorsReset => "notice.second_factors_reset",
            NoticeEvent::PasskeyAdded => "notice.passkey_added",
            NoticeEvent::PasskeyRemoved => "notice.passkey_removed",
        }
    }
}

/// A one-time code for a self-service reset (`X-Sealpost-Kind: code`).
pub fn build_code_mail(base: &SecurityMailBase, code: &str, valid_minutes: i64) -> Vec<u8> {
    let lang = base.lang;
    let recipient = mailbox(base.to);
    let body = [
        tf(lang, "code.intro", &[("recipient", &recipient)]),
        tf(lang, "code.line", &[("code", &one_line(code))]),
        tf(
            lang,
            "code.validity",
            &[("minutes", &valid_minutes.to_string())],
        ),
        t(lang, "code.not_you"),
    ];
    build(base, MailKind::Code, &t(lang, "code.subject"), &body)
}

/// A one-time code to sign in to the portal (`X-Sealpost-Kind: code`): the first sign-in of
/// an account created under `recipients.first_contact = mailbox-code`, or "e-mail me a code".
pub fn build_sign_in_code_mail(base: &SecurityMailBase, code: &str, valid_minutes: i64) -> Vec<u8> {
    let lang = base.lang;
    let recipient = mailbox(base.to);
    let body = [
        tf(lang, "signin_code.intro", &[("recipient", &recipient)]),
        tf(lang, "code.line", &[("code", &one_line(code))]),
        tf(
            lang,
            "signin_code.validity",
            &[("minutes", &valid_minutes.to_string())],
        ),
        t(lang, "signin_code.not_you"),
    ];
    build(base, MailKind::Code, &t(lang, "signin_code.subject"), &body)
}

/// A notice of a security event (`X-Sealpost-Kind: notice`): what, when, from where.
pub fn build_notice(
    base: &SecurityMailBase,
    event: NoticeEvent,
    when: &str,
    client: Option<&str>,
) -> Vec<u8> {
    let lang = base.lang;
    let recipient = mailbox(base.to);
    let mut facts = tf(lang, "notice.when", &[("time", &one_line(when))]);
    if let Some(ip) = client {
        facts.push('\n');
        facts.push_str(&tf(lang, "notice.client", &[("ip", &one_line(ip))]));
    }
    let body = [
        tf(lang, event.key(), &[("recipient", &recipient)]),
        facts,
        t(lang, "notice.not_you"),
    ];
    build(base, MailKind::Notice, &t(lang, "notice.subject"), &body)
}

/// The one-time link of an administrator's reset (`X-Sealpost-Kind: password-reset`).
pub fn build_reset_link_mail(base: &SecurityMailBase, link: &str, valid_hours: i64) -> Vec<u8> {
    let lang = base.lang;
    let recipient = mailbox(base.to);
    let body = [
        tf(lang, "link.intro", &[("recipient", &recipient)]),
        // On a line of its own, so mail clients make it clickable and nothing sticks to it.
        one_line(link),
        tf(
            lang,
            "link.validity",
            &[("hours", &valid_hours.to_string())],
        ),
    ];
    build(
        base,
        MailKind::PasswordReset,
        &t(lang, "link.subject"),
        &body,
    )
}

/// A mailbox for `<…>` and the text: no whitespace, controls, brackets or commas, so an
/// address can never add header syntax or a second recipient.
pub(crate) fn mailbox(address: &str) -> String {
    address
        .trim()
        .chars()
        .filter(|c| !(c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',')))
        .collect()
}

/// Greeting, paragraphs, regards and signature, as one plain-text mail.
pub(crate) fn build(
    base: &SecurityMailBase,
    kind: MailKind,
    subject: &str,
    paragraphs: &[String],
) -> Vec<u8> {
    let lang = base.lang;
    let org = base.branding.org();
    let mut parts = vec![t(lang, "common.greeting")];
    parts.extend(paragraphs.iter().cloned());
    parts.push(format!("{}\n{org}", t(lang, "common.regards")));
    // The signature: "-- " line, the automatic-mail hint, the organisation's footer if any.
    let signature: Vec<String> = [
        "-- ".to_string(),
        tf(lang, "common.auto_generated", &[("org", org)]),
        base.branding.footer.trim().to_string(),
    ]
    .into_iter()
    .filter(|line| !line.is_empty())
    .collect();
    parts.push(signature.join("\n"));
    let mut text = parts.join("\n\n");
    text.push('\n');
    let builder = MessageBuilder::new()
        .from(Address::new_address(
            Some(org.to_string()),
            mailbox(base.from),
        ))
        .to(Address::new_address(None::<&str>, mailbox(base.to)))
        .subject(Text::new(subject.to_string()))
        .date(Date::now())
        .header("Auto-Submitted", Raw::new("auto-generated"));
    finish(
        common_headers(builder, kind, base.hostname).body(MimePart::new(
            "text/plain",
            BodyPart::Text(to_crlf(&text).into()),
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>(branding: &'a Branding, lang: &'a str) -> SecurityMailBase<'a> {
        SecurityMailBase {
            from: "sealpost@bank.example",
            to: "kunde@example.com",
            lang,
            branding,
            hostname: "gw.test",
        }
    }

    fn parsed(raw: &[u8]) -> (String, String) {
        let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
        let kind = msg
            .header_raw("X-Sealpost-Kind")
            .unwrap()
            .trim()
            .to_string();
        (kind, msg.body_text(0).unwrap().into_owned())
    }

    #[test]
    fn code_mail_carries_the_code_and_its_kind() {
        let b = Branding::default();
        let (kind, text) = parsed(&build_code_mail(&base(&b, "en"), "042917", 15));
        assert_eq!(kind, "code");
        assert!(text.lines().any(|l| l.trim() == "Code: 042917"), "{text}");
        assert!(text.contains("15 minutes"));
        let (_, de) = parsed(&build_code_mail(&base(&b, "de"), "042917", 15));
        assert!(de.contains("15 Minuten"), "{de}");
    }

    #[test]
    fn sign_in_code_mail_carries_the_code_and_says_what_it_is_for() {
        let branding = Branding::default();
        for lang in ["en", "de"] {
            let raw = build_sign_in_code_mail(&base(&branding, lang), "042917", 15);
            let (kind, body) = parsed(&raw);
            assert_eq!(kind, "code");
            let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
            assert_eq!(msg.subject(), Some(t(lang, "signin_code.subject").as_str()));
            assert!(body.contains("Code: 042917"), "{body}");
            assert!(body.contains("15"), "{body}");
        }
    }

    #[test]
    fn notice_says_what_when_and_from_where_without_secrets() {
        let b = Branding::default();
        let raw = build_notice(
            &base(&b, "en"),
            NoticeEvent::ResetByAnswer,
            "2026-12-01 10:00 UTC",
            Some("203.0.113.9"),
        );
        let (kind, text) = parsed(&raw);
        assert_eq!(kind, "notice");
        assert!(text.contains("kunde@example.com was reset"), "{text}");
        assert!(text.contains("2026-12-01 10:00 UTC"));
        assert!(text.contains("203.0.113.9"));
        assert!(text.contains("If this was not you"));
        assert!(!text.contains("Password:"));
    }

    #[test]
    fn reset_link_mail_has_the_link_on_its_own_line() {
        let b = Branding::default();
        let link = "https://portal.example/reset/abc";
        let (kind, text) = parsed(&build_reset_link_mail(&base(&b, "en"), link, 24));
        assert_eq!(kind, "password-reset");
        assert!(text.lines().any(|l| l.trim() == link), "{text}");
        assert!(!text.contains("Password:"));
    }
}
