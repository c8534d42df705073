//! The one-time link of an administrator's reset (`/reset/{token}`). The token in the path is
//! the credential; its form carries a value derived from it in place of a session's CSRF
//! token, so [`super::CsrfForm`] checks it like any other form.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::csrf::{ExpectedCsrf, derived_form_token};
use crate::AppState;
use crate::error::WebError;

/// The link's token as it came in the path (not yet looked up) and the form token derived
/// from it.
pub struct ResetLink {
    pub token: String,
    pub csrf: String,
}

impl FromRequestParts<AppState> for ResetLink {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(token) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::NotFound)?;
        let csrf = derived_form_token("reset-form", &token);
        parts.extensions.insert(ExpectedCsrf(csrf.clone()));
        Ok(ResetLink { token, csrf })
    }
}
