//! The policy step: which recipients of a flagged message are relayed as they are (internal)
//! and which get an encrypted copy (external, each address once).

use crate::{Settings, normalise_address};

/// The recipients of a flagged message, split by the internal-domain policy.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RecipientSplit {
    /// Relayed unchanged, in the spelling of RCPT TO.
    pub internal: Vec<String>,
    /// Each external address once (the first spelling seen), as given in RCPT TO.
    pub external: Vec<String>,
}

impl RecipientSplit {
    pub fn of(settings: &Settings, rcpt_to: &[String]) -> Self {
        let mut split = RecipientSplit::default();
        for rcpt in rcpt_to {
            let address = normalise_address(rcpt);
            if settings.is_internal(&address) {
                split.internal.push(rcpt.clone());
            } else if !split
                .external
                .iter()
                .any(|e| normalise_address(e) == address)
            {
                split.external.push(rcpt.clone());
            }
        }
        split
    }

    /// The external recipients in their normalised form, the accounts' spelling.
    pub fn external_addresses(&self) -> Vec<String> {
        self.external.iter().map(|r| normalise_address(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_recipients_relay_and_external_ones_are_unique() {
        let settings = Settings {
            internal_domains: vec!["bank.example".into()],
            ..Settings::default()
        };
        let rcpts: Vec<String> = [
            "Colleague@Bank.example",
            "kunde@example.com",
            "<KUNDE@example.com>",
            "other@example.net",
        ]
        .map(String::from)
        .to_vec();
        let split = RecipientSplit::of(&settings, &rcpts);
        assert_eq!(split.internal, vec!["Colleague@Bank.example"]);
        assert_eq!(
            split.external,
            vec!["kunde@example.com", "other@example.net"]
        );
        assert_eq!(
            split.external_addresses(),
            vec!["kunde@example.com", "other@example.net"]
        );
    }
}
