//! The settings that pick one of a few behaviours, as types instead of magic strings. Their
//! text forms (`FromStr` / `Display`) are what the database, the CLI and the form carry.

use std::fmt;
use std::str::FromStr;

/// Who receives the credentials mail of a new recipient account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsTo {
    /// The sender of the mail that created the account (text `sender`).
    Sender,
    /// One fixed address for all credentials mails.
    Address(String),
}

impl FromStr for CredentialsTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "sender" {
            return Ok(CredentialsTo::Sender);
        }
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !s.contains(|c: char| c.is_whitespace() || c.is_control()) =>
            {
                Ok(CredentialsTo::Address(s.to_string()))
            }
            _ => Err("\"sender\" or an e-mail address".to_string()),
        }
    }
}

impl fmt::Display for CredentialsTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsTo::Sender => f.write_str("sender"),
            CredentialsTo::Address(a) => f.write_str(a),
        }
    }
}

/// Declares an enum of fixed text values with `FromStr`, `Display` and the form's choices.
macro_rules! choice {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $text:literal : $label:literal ),+ $(,)? }
        $(aliases { $($alias:literal => $target:ident),+ })?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $( $(#[$vdoc])* $variant ),+ }

        impl $name {
            /// (stored text, label) for the admin form.
            pub const CHOICES: &'static [(&'static str, &'static str)] = &[$(($text, $label)),+];
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    $($($alias => Ok($name::$target),)+)?
                    _ => Err(format!(
                        "one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($name::$variant => $text),+ })
            }
        }
    };
}

choice! {
    /// How a recipient's password reset reaches them.
    ResetDelivery {
        /// A reset link to the recipient's own address.
        Link = "link": "the recipient (a reset link)",
        /// The new password to the last sender, who passes it on.
        Sender = "sender": "the last sender",
    }
    // Installations before the typed setting stored the recipient as `recipient`.
    aliases { "recipient" => Link }
}

choice! {
    /// What a recipient must show to reset a forgotten password.
    RecoveryPolicy {
        /// The secret answer and a code mailed to the recipient.
        AnswerAndCode = "answer+code": "secret answer and a mailed code",
        /// The secret answer alone.
        AnswerOnly = "answer-only": "secret answer only",
    }
}

choice! {
    /// How the carrier brings the payload to a recipient's domain (`delivery.profile`).
    DeliveryProfile {
        /// secure.htm attached (no script unless `carrier.auto_open`).
        Attachment = "attachment": "attachment (secure.htm)",
        /// `message.sealpost` attached, for domains that block HTML attachments, and a link
        /// to the portal's upload page.
        Datafile = "datafile": "data file (message.sealpost) and upload link",
        /// Opt-in: the main button opens a copy kept on the server, encrypted, for
        /// `delivery.link_days`.
        Link = "link": "link (ciphertext kept on the server for a while)",
    }
}

choice! {
    /// What a proof-of-delivery report says about the subject (`messages.report_subject`).
    ReportSubject {
        /// Only its SHA-256: the report proves which subject was meant without showing it.
        Hash = "hash": "its SHA-256 only",
        /// The subject in clear (kept in the ledger from sealing on).
        Clear = "clear": "the subject in clear",
    }
}

choice! {
    /// How a new recipient account gets its first way in (`recipients.first_contact`).
    FirstContact {
        /// A generated password to the internal sender, changed at the first sign-in.
        Sender = "sender": "a generated password to the sender",
        /// No password: the recipient asks for a one-time code to their own address.
        MailboxCode = "mailbox-code": "a code to the recipient's own mailbox",
    }
}

impl FirstContact {
    /// The text stored with the account (`accounts.first_contact`).
    pub fn as_str(self) -> &'static str {
        match self {
            FirstContact::Sender => "sender",
            FirstContact::MailboxCode => "mailbox-code",
        }
    }
}

choice! {
    /// Whether recipients of a domain must use a second factor (`recipients.second_factor`).
    SecondFactorPolicy {
        /// A recipient may enrol an authenticator in the profile.
        Optional = "optional": "optional (recipients may enrol one)",
        /// Every recipient enrols one at the next sign-in and uses it from then on.
        Required = "required": "required at every sign-in",
    }
}

choice! {
    /// How much of a reader's client address the message timeline keeps
    /// (`messages.client_address`).
    ClientAddress {
        /// The whole address.
        Full = "full": "the full address",
        /// IPv4 /24 or IPv6 /48 (the network, not the machine).
        Truncated = "truncated": "truncated (IPv4 /24, IPv6 /48)",
        /// Nothing.
        None = "none": "none",
    }
}

impl ClientAddress {
    /// What of `ip` to keep; an unparsable address is kept only in `Full` mode.
    pub fn apply(self, ip: &str) -> Option<String> {
        match self {
            ClientAddress::None => None,
            ClientAddress::Full => Some(ip.to_string()),
            ClientAddress::Truncated => match ip.parse::<std::net::IpAddr>().ok()? {
                std::net::IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    Some(format!("{a}.{b}.{c}.0/24"))
                }
                std::net::IpAddr::V6(v6) => {
                    if let Some(v4) = v6.to_ipv4_mapped() {
                        let [a, b, c, _] = v4.octets();
                        return Some(format!("{a}.{b}.{c}.0/24"));
                    }
                    let s = v6.segments();
                    let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                    Some(format!("{net}/48"))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        for c in [
            CredentialsTo::Sender,
            CredentialsTo::Address("ops@bank.example".into()),
        ] {
            assert_eq!(c.to_string().parse::<CredentialsTo>(), Ok(c));
        }
        for (text, _) in ResetDelivery::CHOICES {
            assert_eq!(text.parse::<ResetDelivery>().unwrap().to_string(), *text);
        }
        for (text, _) in DeliveryProfile::CHOICES {
            assert_eq!(text.parse::<DeliveryProfile>().unwrap().to_string(), *text);
        }
        for (text, _) in RecoveryPolicy::CHOICES {
            assert_eq!(text.parse::<RecoveryPolicy>().unwrap().to_string(), *text);
        }
        for (text, _) in DeliveryProfile::CHOICES {
            assert_eq!(text.parse::<DeliveryProfile>().unwrap().to_string(), *text);
        }
        for (text, _) in FirstContact::CHOICES {
            let parsed = text.parse::<FirstContact>().unwrap();
            assert_eq!(parsed.to_string(), *text);
            assert_eq!(parsed.as_str(), *text);
        }
    }

    #[test]
    fn client_addresses_are_kept_as_configured() {
        assert_eq!(
            ClientAddress::Truncated.apply("192.0.2.77").as_deref(),
            Some("192.0.2.0/24")
        );
        assert_eq!(
            ClientAddress::Truncated
                .apply("2001:db8:abcd:12::1")
                .as_deref(),
            Some("2001:db8:abcd::/48")
        );
        assert_eq!(
            ClientAddress::Truncated
                .apply("::ffff:198.51.100.9")
                .as_deref(),
            Some("198.51.100.0/24")
        );
        assert_eq!(ClientAddress::Truncated.apply("not an ip"), None);
        assert_eq!(
            ClientAddress::Full.apply("192.0.2.77").as_deref(),
            Some("192.0.2.77")
        );
        assert_eq!(ClientAddress::None.apply("192.0.2.77"), None);
        for (text, _) in ClientAddress::CHOICES {
            assert_eq!(text.parse::<ClientAddress>().unwrap().to_string(), *text);
        }
    }

    #[test]
    fn old_and_bad_texts() {
        assert_eq!("recipient".parse(), Ok(ResetDelivery::Link));
        assert!("everyone".parse::<ResetDelivery>().is_err());
        assert!("answer".parse::<RecoveryPolicy>().is_err());
        assert!("htm".parse::<DeliveryProfile>().is_err());
        assert!("nobody".parse::<CredentialsTo>().is_err());
        assert!("a b@c.example".parse::<CredentialsTo>().is_err());
        assert!("@c.example".parse::<CredentialsTo>().is_err());
    }
}
