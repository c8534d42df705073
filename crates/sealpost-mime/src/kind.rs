//! The kinds of mail Sealpost writes. Each kind's text is the value of the `X-Sealpost-Kind`
//! header every generated mail carries, and the outbound queue's item kind: a contract with
//! operators' mail filters, so the texts never change.

use std::fmt;

/// What a mail written by Sealpost is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// The readable wrapper around an envelope, with secure.htm attached.
    Carrier,
    /// A new account's password, to the sender of the first encrypted mail.
    Credentials,
    /// A password an administrator reset.
    PasswordReset,
    /// A reply a recipient wrote in the portal.
    Reply,
    /// A delivery status notification for recipients that could not be reached.
    Bounce,
    /// A recipient's new message to the organisation, written in the portal.
    Compose,
    /// A one-time sign-in code to a recipient.
    Code,
    /// A security notice to an account holder.
    Notice,
    /// An open notification to a sender.
    Receipt,
}

impl MailKind {
    /// Every kind, for tests and for callers that list them.
    pub const ALL: [MailKind; 9] = [
        MailKind::Carrier,
        MailKind::Credentials,
        MailKind::PasswordReset,
        MailKind::Reply,
        MailKind::Bounce,
        MailKind::Compose,
        MailKind::Code,
        MailKind::Notice,
        MailKind::Receipt,
    ];

    /// The `X-Sealpost-Kind` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            MailKind::Carrier => "carrier",
            MailKind::Credentials => "credentials",
            MailKind::PasswordReset => "password-reset",
            MailKind::Reply => "reply",
            MailKind::Bounce => "bounce",
            MailKind::Compose => "compose",
            MailKind::Code => "code",
            MailKind::Notice => "notice",
            MailKind::Receipt => "receipt",
        }
    }

    /// The kind whose `X-Sealpost-Kind` value is `value`, if any.
    pub fn from_header(value: &str) -> Option<MailKind> {
        let value = value.trim();
        MailKind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_documented_contract() {
        // The list in the design's "Mails that Sealpost generates", in its order.
        let documented = [
            "carrier",
            "credentials",
            "password-reset",
            "reply",
            "bounce",
            "compose",
            "code",
            "notice",
            "receipt",
        ];
        let values: Vec<&str> = MailKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(values, documented);
        for kind in MailKind::ALL {
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(MailKind::from_header(&format!(" {kind}\r\n")), Some(kind));
        }
        assert_eq!(MailKind::from_header("relay"), None);
    }
}
