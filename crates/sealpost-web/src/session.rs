//! The optional portal session, for the pages that are reachable with or without one (and the
//! pages not yet converted to [`crate::guards::Reader`]). The lifecycle itself is
//! `sealpost_core::sessions`; the cookie is [`crate::guards::cookies`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sealpost_store::Account;

use crate::AppState;
use crate::error::WebError;
use crate::guards::cookies;
use crate::guards::csrf::ExpectedCsrf;

/// The logged-in recipient of this request.
pub struct PortalUser {
    pub account: Account,
    pub token_hash: String,
    pub csrf: String,
}

/// Some(user) when a live session cookie came with the request (whether or not the
/// generated password was replaced yet).
pub struct MaybeUser(pub Option<PortalUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookies::value(&parts.headers, cookies::PORTAL) else {
            return Ok(MaybeUser(None));
        };
        let live =
            sealpost_core::sessions::resume_reader(&state.store, &state.settings.get(), token)
                .await?;
        Ok(MaybeUser(live.map(|live| {
            parts.extensions.insert(ExpectedCsrf(live.csrf.clone()));
            PortalUser {
                account: live.principal,
                token_hash: live.token_hash,
                csrf: live.csrf,
            }
        })))
    }
}
