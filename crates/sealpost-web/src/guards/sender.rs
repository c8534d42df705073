//! The sender's status page (issue 16, [`sealpost_core::sender_control`]).
//!
//! - [`SenderLink`]: the single-use token of `/s/{token}` as it came in the path (not yet
//!   looked up) and the form token derived from it, which [`super::CsrfForm`] checks; the
//!   GET only shows a button, so a mail scanner that fetches the link does not use it up.
//! - [`SenderControl`]: the live capability of the cookie a followed link left: one copy,
//!   one sender, for [`sealpost_core::sender_control::CAPABILITY_SECS`]; its forms carry a
//!   token derived from it.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use sealpost_store::SenderGrant;
use zeroize::Zeroizing;

use super::cookies;
use super::csrf::{ExpectedCsrf, derived_form_token};
use super::opened::valid_token;
use crate::AppState;
use crate::error::WebError;

pub struct SenderLink {
    pub token: String,
    pub csrf: String,
}

impl FromRequestParts<AppState> for SenderLink {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(token) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::SenderLinkUsed)?;
        // Not of the form of a token: the same page as a used one.
        if !valid_token(&token) {
            return Err(WebError::SenderLinkUsed);
        }
        let csrf = derived_form_token("sender-link-form", &token);
        parts.extensions.insert(ExpectedCsrf(csrf.clone()));
        Ok(SenderLink { token, csrf })
    }
}

pub struct SenderControl {
    pub grant: SenderGrant,
    pub capability: Zeroizing<String>,
    pub csrf: String,
}

impl FromRequestParts<AppState> for SenderControl {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let capability = cookies::value(&parts.headers, cookies::SENDER)
            .filter(|c| valid_token(c))
            .map(|c| Zeroizing::new(c.to_string()))
            .ok_or(WebError::SenderLinkUsed)?;
        let grant = sealpost_core::sender_control::grant(
            &state.store,
            &capability,
            sealpost_store::unix_now(),
        )
        .await?
        .ok_or(WebError::SenderLinkUsed)?;
        let csrf = derived_form_token("sender-form", &capability);
        parts.extensions.insert(ExpectedCsrf(csrf.clone()));
        Ok(SenderControl {
            grant,
            capability,
            csrf,
        })
    }
}
