//! Recipients the pipeline refuses after DATA (no account may be created for them, or their
//! carrier would exceed `carrier.max_size` and may not switch to a link): they are never
//! delivered in clear, and nothing too large is handed on. When nobody else receives the message the whole message is
//! refused with a 5xx; otherwise the others get it and the sender receives a bounce naming
//! the refused recipients. Every refusal is audited.

use sealpost_mime::{BounceInput, build_bounce};
use sealpost_store::Store;
use uuid::Uuid;

use crate::committer::WriteSet;
use crate::{kind, normalise_address};

use super::MessageContext;
use super::provision::NoCredentialsRoute;

/// A recipient the message is not delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RefusedRecipient {
    /// As given in RCPT TO.
    pub rcpt: String,
    pub reason: RefusalReason,
}

/// Why a recipient is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefusalReason {
    /// The credentials policy allows no account for them.
    NoCredentials(NoCredentialsRoute),
    /// The carrier would be larger than `carrier.max_size` (`max` bytes), and the recipient's
    /// domain may not receive a link instead (`delivery.link_fallback`).
    TooLarge { max: usize },
}

impl RefusalReason {
    /// The audit trail's short form.
    pub fn code(self) -> &'static str {
        match self {
            RefusalReason::NoCredentials(route) => route.code(),
            RefusalReason::TooLarge { .. } => "too-large",
        }
    }

    /// The SMTP status of the diagnostic.
    fn status(self) -> &'static str {
        match self {
            RefusalReason::NoCredentials(_) => "550 5.7.1",
            RefusalReason::TooLarge { .. } => "552 5.3.4",
        }
    }

    /// The sentence the sender reads (SMTP reply or bounce), after the status code.
    pub fn explanation(self) -> String {
        match self {
            RefusalReason::NoCredentials(route) => route.explanation().to_string(),
            RefusalReason::TooLarge { max } => format!(
                "the encrypted message would be larger than the {} MB this gateway hands on \
                 (carrier.max_size), and secure links are not enabled for this recipient's \
                 domain; send the documents in smaller parts",
                max.div_ceil(1024 * 1024)
            ),
        }
    }
}

impl RefusedRecipient {
    /// The SMTP-style diagnostic, as in the bounce's status report.
    pub fn diagnostic(&self) -> String {
        format!(
            "{} <{}>: {}",
            self.reason.status(),
            normalise_address(&self.rcpt),
            self.reason.explanation()
        )
    }
}

/// The reply text when every recipient is refused (the SMTP layer adds the code).
pub(super) fn whole_message_reason(refused: &[RefusedRecipient]) -> String {
    let reason = refused.first().map_or(
        RefusalReason::NoCredentials(NoCredentialsRoute::ExternalSender),
        |r| r.reason,
    );
    format!("Message refused: {}", reason.explanation())
}

/// Queues one bounce to the envelope sender listing the refused recipients. Only the original
/// Message-ID goes back (enough to match the bounce to the mail): MAIL FROM may be forged,
/// and the subject may be confidential.
pub(super) fn queue_bounce(
    writes: &mut WriteSet,
    message: &MessageContext,
    refused: &[RefusedRecipient],
) {
    if refused.is_empty() {
        return;
    }
    if message.mail_from.is_empty() {
        // A null sender has nobody to tell (RFC 5321 §6.1); the audit trail has it.
        tracing::warn!(
            recipients = refused.len(),
            "refused recipients of a null-sender mail dropped"
        );
        return;
    }
    let failures: Vec<(String, String)> = refused
        .iter()
        .map(|r| (normalise_address(&r.rcpt), r.diagnostic()))
        .collect();
    let headers = message
        .message_id
        .map(|id| {
            let id: String = id.chars().filter(|c| c.is_ascii_graphic()).collect();
            format!("Message-ID: <{id}>\r\n")
        })
        .unwrap_or_default();
    let from = format!("MAILER-DAEMON@{}", message.hostname);
    let bounce = build_bounce(&BounceInput {
        from: &from,
        to: message.mail_from,
        failures: &failures,
        original_headers: headers.as_bytes(),
        reporting_mta: message.hostname,
        // Refused here, before any next hop: no remote MTA, and arrival is the attempt.
        remote_mta: None,
        arrival_date: Some(message.now),
        last_attempt_date: Some(message.now),
        lang: &message.settings.default_language,
        hostname: message.hostname,
    });
    writes.enqueue(
        &Uuid::new_v4().simple().to_string(),
        kind::BOUNCE,
        "",
        &[message.mail_from.to_string()],
        bounce,
        message.now,
        message.give_up_at,
    );
}

/// Records each refusal: who sent, to whom, why. Best effort, like the other audit rows of
/// the mail path: the audit trail must not turn a decided message into a retry.
pub(super) async fn audit(
    store: &Store,
    message: &MessageContext<'_>,
    refused: &[RefusedRecipient],
) {
    let sender = normalise_address(message.mail_from);
    let sender = if sender.is_empty() { "<>" } else { &sender };
    for r in refused {
        let detail = format!("sender={sender}; reason={}", r.reason.code());
        let recipient = normalise_address(&r.rcpt);
        if let Err(e) = store
            .audit(
                message.now,
                "smtp",
                "account.refused",
                Some(&recipient),
                Some(&detail),
                None,
            )
            .await
        {
            tracing::warn!(error = %e, "audit write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diagnostic_carries_a_policy_status_and_the_reason() {
        let r = RefusedRecipient {
            rcpt: "<Kunde@Example.com>".into(),
            reason: RefusalReason::NoCredentials(NoCredentialsRoute::ExternalSender),
        };
        let d = r.diagnostic();
        assert!(d.starts_with("550 5.7.1 <kunde@example.com>: "), "{d}");
        assert!(d.contains("internal sender"), "{d}");
        assert!(whole_message_reason(&[r]).contains("internal sender"));
    }

    #[test]
    fn a_too_large_copy_says_so_with_the_limit() {
        let r = RefusedRecipient {
            rcpt: "kunde@example.com".into(),
            reason: RefusalReason::TooLarge {
                max: 20 * 1024 * 1024,
            },
        };
        let d = r.diagnostic();
        assert!(d.starts_with("552 5.3.4 <kunde@example.com>: "), "{d}");
        assert!(d.contains("larger than the 20 MB"), "{d}");
        assert_eq!(r.reason.code(), "too-large");
    }
}
