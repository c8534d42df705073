//! The message of `/m/{id}` (the `link` delivery profile): a [`Reader`] and the encrypted
//! copy behind the id, kept for that reader's account and not yet expired. An unknown id, an
//! expired copy and another account's copy are refused alike, with the "link has expired"
//! page, so an id tells nobody whether it ever existed.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use sealpost_core::link::{LinkedEnvelope, envelope_for_reader};

use super::opened::valid_token;
use super::{Reader, ReaderRejection};
use crate::AppState;
use crate::error::WebError;

pub struct Linked {
    pub reader: Reader,
    pub copy: LinkedEnvelope,
}

/// A link id has the form of a one-time token (256 bits, unpadded base64url).
pub(crate) fn valid_link_id(id: &str) -> bool {
    valid_token(id)
}

impl FromRequestParts<AppState> for Linked {
    type Rejection = ReaderRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::ExpiredLink)?;
        let id = params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, value)| value.to_string())
            .filter(|id| valid_link_id(id))
            .ok_or(WebError::ExpiredLink)?;
        // Unauthenticated: to the sign-in page, and back to this link afterwards.
        let reader = Reader::from_request_parts(parts, state).await?;
        let now = sealpost_store::unix_now();
        let copy = envelope_for_reader(&state.store, &id, &reader.account, now)
            .await
            .map_err(WebError::from)?
            .ok_or(WebError::ExpiredLink)?;
        Ok(Linked { reader, copy })
    }
}
