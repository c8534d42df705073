//! A sign-in past its first factor and waiting for the second (`/login/second`): the pending
//! cookie names a live pending state in the database (so any node continues it), whose
//! account may still sign in.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::second_factor::{self, Pending};

use super::{PageCtx, cookies};
use crate::AppState;
use crate::error::WebError;
use crate::i18n::Tr;

/// The pending sign-in of the request, and the page context in the account's language.
pub struct PendingSecond {
    pub pending: Pending,
    pub ctx: PageCtx,
}

impl std::fmt::Debug for PendingSecond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSecond").finish_non_exhaustive()
    }
}

/// No (live) pending state: a page is sent back to sign in, a form post is refused.
pub enum PendingRejection {
    SignIn,
    Error(WebError),
}

impl IntoResponse for PendingRejection {
    fn into_response(self) -> Response {
        match self {
            PendingRejection::SignIn => Redirect::to("/login").into_response(),
            PendingRejection::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for PendingSecond {
    type Rejection = PendingRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refuse = if parts.method == axum::http::Method::GET {
            PendingRejection::SignIn
        } else {
            PendingRejection::Error(WebError::Forbidden)
        };
        let Some(token) = cookies::value(&parts.headers, cookies::PENDING) else {
            return Err(refuse);
        };
        let pending = second_factor::resume_pending(&state.store, token)
            .await
            .map_err(|e| PendingRejection::Error(e.into()))?;
        let Some(pending) = pending else {
            return Err(refuse);
        };
        let settings = state.settings.get();
        let tr = Tr::for_request(
            &parts.headers,
            pending.account.language.as_deref(),
            &settings.default_language,
        );
        let ctx = PageCtx {
            tr,
            address: String::new(),
            csrf: String::new(),
            brand: crate::brand::PortalBrand::current(),
        };
        Ok(PendingSecond { pending, ctx })
    }
}
