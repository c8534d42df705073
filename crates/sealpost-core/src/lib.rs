//! The Sealpost domain: run-time settings, the encryption pipeline that turns an inbound mail
//! into queued outbound mails, the delivery worker, and the recipient account lifecycle.
//! No HTTP and no SMTP wire handling lives here.

pub mod accounts;
pub mod admin;
pub mod committer;
pub mod delivery;
pub mod hashing;
pub mod keyring;
pub mod metrics;
pub mod open;
pub mod password_policy;
pub mod pipeline;
pub mod reply;
pub mod sessions;
pub mod settings;

pub use keyring::KeyRing;
pub use settings::{Settings, SettingsHandle};

/// The X-Sealpost-Kind values of generated mails, also used as queue item kinds.
pub mod kind {
    pub const CARRIER: &str = "carrier";
    pub const CREDENTIALS: &str = "credentials";
    pub const PASSWORD_RESET: &str = "password-reset";
    pub const REPLY: &str = "reply";
    pub const BOUNCE: &str = "bounce";
    /// Mail passed through unchanged (not flagged, or to internal recipients).
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
    #[error("account {0} has no key")]
    MissingKey(String),
    #[error("background task failed")]
    Join,
}

/// Lower-cases the domain and the local part: recipients and the portal login must agree on
/// one spelling, and practically every mail system treats local parts case-insensitively.
pub fn normalise_address(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}

/// The domain part of an address, lower-cased.
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
}
