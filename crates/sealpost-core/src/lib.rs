//! The Sealpost domain: the settings registry, the encryption pipeline that turns an inbound
//! mail into queued outbound mails, the delivery worker, recipient accounts and their
//! recovery, sessions of both kinds, the administrators' operations, audit and metrics, and the
//! URL helpers every crate above this one shares. No HTTP and no SMTP wire handling lives
//! here: the SMTP client and the next-hop probe are in `sealpost-smtp`.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod committer;
pub mod delivery;
pub mod dkim;
pub mod hashing;
pub mod keyring;
pub mod link;
pub mod lockout;
pub mod mailbox_code;
pub mod message_report;
pub mod messages;
pub mod metrics;
pub mod open;
pub mod passkeys;
pub mod password_policy;
pub mod phrase;
pub mod pipeline;
pub mod recovery;
pub mod reply;
pub mod second_factor;
pub mod sender_control;
pub mod sessions;
pub mod settings;
pub mod totp;
pub mod url;

pub use keyring::KeyRing;
pub use settings::{Settings, SettingsHandle};

/// Queue item kinds: the `X-Sealpost-Kind` value of each generated mail (owned by
/// [`sealpost_mime::MailKind`]), plus `relay` for mail passed through unchanged.
pub mod kind {
    use sealpost_mime::MailKind;

    pub const CARRIER: &str = MailKind::Carrier.as_str();
    pub const CREDENTIALS: &str = MailKind::Credentials.as_str();
    pub const PASSWORD_RESET: &str = MailKind::PasswordReset.as_str();
    pub const REPLY: &str = MailKind::Reply.as_str();
    pub const BOUNCE: &str = MailKind::Bounce.as_str();
    /// A one-time code to an account holder (self-service recovery).
    pub const CODE: &str = MailKind::Code.as_str();
    /// A security notice to an account holder (a reset, a changed factor).
    pub const NOTICE: &str = MailKind::Notice.as_str();
    /// An open notification to a sender (`messages.receipts`).
    pub const RECEIPT: &str = MailKind::Receipt.as_str();
    /// Mail passed through unchanged (not flagged, or to internal recipients): not a mail
    /// Sealpost writes, so it has no `X-Sealpost-Kind`.
    pub const RELAY: &str = "relay";
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] sealpost_store::StoreError),
    #[error("key error: {0}")]
    Key(#[from] sealpost_crypto::KeyError),
    #[error("envelope error: {0}")]
    Envelope(#[from] sealpost_crypto::EnvelopeError),
    #[error("password hashing failed")]
    Hashing,
    #[error("a generated mail could not be built")]
    MailBuild,
    #[error("account {0} has no key")]
    MissingKey(String),
    #[error("background task failed")]
    Join,
}

/// The one spelling of an address that accounts, logins, recipient lists and comparisons use:
/// brackets and surrounding spaces removed, ASCII letters lower-cased in the local part, the
/// domain in its lower-case Unicode (UTS 46) form, so that the U-label and A-label spellings of
/// a domain are one account. Non-ASCII letters in the local part are kept as written: folding
/// them could merge two distinct mailboxes into one account.
pub fn normalise_address(address: &str) -> String {
    sealpost_smtp::address::normalise(address)
}

/// A mail domain in the spelling `normalise_address` gives it (for lists of domains such as
/// the internal ones, so they compare equal to the domain of a normalised address).
pub fn normalise_domain(domain: &str) -> String {
    sealpost_smtp::address::normalise_domain(domain.trim())
}

/// The domain part of an address as written; normalise the address first to compare it.
pub fn address_domain(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d)
}

pub use sealpost_store::unix_now;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            normalise_address(" <Max.Muster@Kunde.Example> "),
            "max.muster@kunde.example"
        );
        assert_eq!(address_domain("a@b.example"), Some("b.example"));
        assert_eq!(address_domain("nodomain"), None);
    }

    #[test]
    fn one_domain_in_two_spellings_is_one_account() {
        assert_eq!(
            normalise_address("jörg@xn--mnchen-3ya.de"),
            normalise_address("Jörg@MÜNCHEN.de".replace('J', "j").as_str())
        );
        assert_eq!(
            normalise_address("x@XN--MNCHEN-3YA.DE"),
            normalise_address("x@münchen.de")
        );
        assert_eq!(normalise_domain(" XN--MNCHEN-3YA.DE "), "münchen.de");
    }

    #[test]
    fn only_ascii_is_folded_in_local_parts() {
        assert_eq!(normalise_address("MAX@x.example"), "max@x.example");
        assert_ne!(
            normalise_address("ÖMER@x.example"),
            normalise_address("ömer@x.example")
        );
        // Unicode folding would have merged the Kelvin sign with an ASCII k.
        assert_ne!(
            normalise_address("\u{212A}@x.example"),
            normalise_address("k@x.example")
        );
    }
}
