//! The open notification to a sender (`X-Sealpost-Kind: receipt`, policy `messages.receipts`):
//! who opened which message when, and the single-use link to the message's status page, where
//! the sender can also revoke it. It goes only to internal senders and names no content but
//! the subject, which the sender wrote.

use sealpost_i18n::{t, tf};

use crate::kind::MailKind;
use crate::security_mail::{SecurityMailBase, build, mailbox};
use crate::util::one_line;

/// What a receipt reports; `base.to` is the sender.
pub struct ReceiptInput<'a> {
    pub base: SecurityMailBase<'a>,
    /// The recipient who opened the copy.
    pub recipient: &'a str,
    /// The subject as sent, when policy keeps it (else the mail says "your secure message").
    pub subject: Option<&'a str>,
    /// The ledger id of the message (as in its carrier's `X-Sealpost-Message`).
    pub message_id: &'a str,
    /// When it was first opened, as text (UTC).
    pub opened_at: &'a str,
    /// The sender's single-use status link and the date it ends, as text.
    pub status_link: &'a str,
    pub link_until: &'a str,
}

/// Builds the receipt, text/plain in the sender's (the organisation's) language.
pub fn build_receipt(input: &ReceiptInput) -> Vec<u8> {
    let lang = input.base.lang;
    let recipient = mailbox(input.recipient);
    let subject = input.subject.map(one_line).filter(|s| !s.is_empty());
    let opened = match &subject {
        Some(subject) => tf(
            lang,
            "receipt.opened_subject",
            &[
                ("recipient", &recipient),
                ("subject", subject),
                ("time", &one_line(input.opened_at)),
            ],
        ),
        None => tf(
            lang,
            "receipt.opened",
            &[
                ("recipient", &recipient),
                ("time", &one_line(input.opened_at)),
            ],
        ),
    };
    let body = [
        opened,
        tf(
            lang,
            "receipt.message_id",
            &[("id", &one_line(input.message_id))],
        ),
        format!(
            "{}\n{}",
            tf(
                lang,
                "sender_link.intro",
                &[("date", &one_line(input.link_until))]
            ),
            // On a line of its own, so mail clients make it clickable and nothing sticks to it.
            one_line(input.status_link)
        ),
        t(lang, "receipt.why"),
    ];
    let title = match &subject {
        Some(subject) => tf(lang, "receipt.subject_named", &[("subject", subject)]),
        None => t(lang, "receipt.subject"),
    };
    build(&input.base, MailKind::Receipt, &title, &body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::Branding;

    fn receipt(lang: &str, subject: Option<&str>) -> (String, String, String) {
        let branding = Branding::default();
        let raw = build_receipt(&ReceiptInput {
            base: SecurityMailBase {
                from: "noreply@bank.example",
                to: "berater@bank.example",
                lang,
                branding: &branding,
                hostname: "gw.bank.example",
            },
            recipient: "kundin@example.org",
            subject,
            message_id: "0123abcd",
            opened_at: "2026-12-02 10:15 UTC",
            status_link: "https://secure.bank.example/s/TOKEN",
            link_until: "2027-01-01",
        });
        let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
        (
            msg.header_raw("X-Sealpost-Kind")
                .unwrap()
                .trim()
                .to_string(),
            msg.subject().unwrap().to_string(),
            msg.body_text(0).unwrap().into_owned(),
        )
    }

    #[test]
    fn a_receipt_names_the_reader_the_time_and_carries_the_link_on_its_own_line() {
        for lang in ["en", "de"] {
            let (kind, subject, body) = receipt(lang, Some("Kontoauszug März"));
            assert_eq!(kind, "receipt");
            assert!(subject.contains("Kontoauszug März"), "{subject}");
            assert!(body.contains("kundin@example.org"), "{body}");
            assert!(body.contains("2026-12-02 10:15 UTC"), "{body}");
            assert!(body.contains("0123abcd"), "{body}");
            assert!(
                body.lines()
                    .any(|l| l.trim() == "https://secure.bank.example/s/TOKEN"),
                "{body}"
            );
        }
    }

    #[test]
    fn without_a_kept_subject_the_receipt_names_none() {
        let (_, subject, body) = receipt("en", None);
        assert!(!subject.is_empty());
        assert!(!body.contains("“"), "{body}");
        // A subject line is folded to one line: no header or paragraph can be injected.
        let (_, subject, _) = receipt("en", Some("a\r\nBcc: x@evil.example"));
        assert!(!subject.contains('\n'), "{subject}");
    }
}
