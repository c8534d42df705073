//! A recipient's personal security phrase: optional text they choose, shown in every later
//! carrier (text and HTML part), so that a look-alike mail without it stands out. It is an
//! anti-phishing cue, not an authentication factor: it is mailed in clear with every carrier,
//! so it is stored as text (see docs/SECURITY.md). Changing it is audited (never the phrase
//! itself); the portal asks for the current password first.

use sealpost_store::{Account, Store};

use crate::{CoreError, audit, unix_now};

/// Longest phrase, in characters: it has to fit one line of the carrier.
pub const MAX_PHRASE_CHARS: usize = 60;

/// Audit actions.
pub const PHRASE_SET: &str = "portal.security_phrase_set";
pub const PHRASE_REMOVED: &str = "portal.security_phrase_removed";

/// The phrase is longer than [`MAX_PHRASE_CHARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the security phrase may have at most {MAX_PHRASE_CHARS} characters")]
pub struct PhraseTooLong;

/// The phrase as it is stored and shown: control characters dropped, runs of white space made
/// one space (it is one line in a mail header-less text part and in HTML), trimmed. None when
/// nothing is left (the holder removes the phrase).
pub fn normalise(input: &str) -> Result<Option<String>, PhraseTooLong> {
    let cleaned: String = input
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.chars().count() > MAX_PHRASE_CHARS {
        return Err(PhraseTooLong);
    }
    Ok((!cleaned.is_empty()).then_some(cleaned))
}

/// The account's current phrase.
pub async fn current(store: &Store, account: &Account) -> Result<Option<String>, CoreError> {
    Ok(store.security_phrase(&account.id).await?)
}

/// Sets (or with None removes) the account's phrase, already [`normalise`]d, and audits it.
pub async fn set(
    store: &Store,
    account: &Account,
    phrase: Option<&str>,
    ip: Option<&str>,
) -> Result<(), CoreError> {
    store
        .set_security_phrase(&account.id, phrase, unix_now())
        .await?;
    let action = if phrase.is_some() {
        PHRASE_SET
    } else {
        PHRASE_REMOVED
    };
    audit::account_event(store, account, action, None, ip).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_one_trimmed_line_of_at_most_sixty_characters() {
        assert_eq!(
            normalise("  blue\theron \r\n at dawn ").unwrap().as_deref(),
            Some("blue heron at dawn")
        );
        assert_eq!(normalise(" \n ").unwrap(), None);
        assert_eq!(normalise("").unwrap(), None);
        let sixty = "ä".repeat(60);
        assert_eq!(normalise(&sixty).unwrap().as_deref(), Some(sixty.as_str()));
        assert_eq!(normalise(&"ä".repeat(61)), Err(PhraseTooLong));
        assert_eq!(normalise("a\u{0}b").unwrap().as_deref(), Some("a b"));
    }
}
