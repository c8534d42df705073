//! The message of `/open/{token}/…`, opened for the signed-in reader. This is the one place
//! where an envelope is decrypted for a reader.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use sealpost_core::open::{OpenedMessage, open_for_account};
use sealpost_store::Account;

use super::{Reader, ReaderRejection};
use crate::AppState;
use crate::error::WebError;

pub struct Opened {
    pub reader: Reader,
    /// The one-time token of the parked envelope (valid syntax).
    pub token: String,
    pub message: OpenedMessage,
}

/// A token is 43 characters of unpadded base64url (256 bits); anything else is refused
/// before any lookup.
pub(crate) fn valid_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FromRequestParts<AppState> for Opened {
    type Rejection = ReaderRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::ExpiredOpen)?;
        let token = params
            .iter()
            .find(|(name, _)| *name == "token")
            .map(|(_, value)| value.to_string())
            .filter(|t| valid_token(t))
            .ok_or(WebError::ExpiredOpen)?;
        let reader = Reader::from_request_parts(parts, state).await?;
        let message = load(state, &reader.account, &token).await?;
        Ok(Opened {
            reader,
            token,
            message,
        })
    }
}

/// Loads the parked envelope (from this node's hand-off, else the database) and opens it
/// for `account`.
async fn load(state: &AppState, account: &Account, token: &str) -> Result<OpenedMessage, WebError> {
    let token_hash = sealpost_crypto::hash_token(token);
    let now = sealpost_store::unix_now();
    let envelope = match crate::handoff::take(&token_hash, now) {
        Some(envelope) => envelope,
        None => sealpost_core::open::parked_envelope(&state.store, &token_hash, now)
            .await?
            .ok_or(WebError::ExpiredOpen)?,
    };
    let max = state.settings.get().max_open_size;
    Ok(open_for_account(&state.store, &state.keys, account, envelope, max).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_before_any_lookup() {
        let (token, _) = sealpost_crypto::new_token();
        assert!(valid_token(&token));
        assert!(!valid_token("../../etc/passwd"));
        assert!(!valid_token(""));
    }
}
