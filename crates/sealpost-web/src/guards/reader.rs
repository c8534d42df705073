//! The signed-in portal reader of a request.

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::accounts::must_change_password;
use sealpost_store::Account;

use super::csrf::ExpectedCsrf;
use super::next::{login_url, return_to, welcome_url};
use super::{PageCtx, cookies};
use crate::AppState;
use crate::error::WebError;
use crate::i18n::Tr;

/// A reader whose session is live (idle timeout, absolute lifetime, account active and
/// within validity, all checked now) and who has replaced any generated password.
pub struct Reader {
    pub account: Account,
    /// The session to keep when a password change ends the reader's other sessions.
    #[allow(dead_code)]
    pub token_hash: String,
    pub csrf: String,
    /// The page language: the account's, else the browser's, else the default.
    pub tr: Tr,
}

impl Reader {
    /// The context of a page shown to this reader.
    pub fn page(&self) -> PageCtx {
        PageCtx {
            tr: self.tr.clone(),
            address: self.account.address.clone(),
            csrf: self.csrf.clone(),
        }
    }

    /// For forms that are not url-encoded (the multipart reply): the submitted token must be
    /// this session's.
    pub fn verify_csrf(&self, submitted: &str) -> Result<(), WebError> {
        ExpectedCsrf(self.csrf.clone()).verify(submitted)
    }
}

/// Why a request has no [`Reader`]: a page navigation is sent to sign in or to replace the
/// generated password and come back; anything else (a form post, a framed sub-resource) is
/// refused.
pub enum ReaderRejection {
    SignIn(String),
    Welcome(String),
    Error(WebError),
}

impl IntoResponse for ReaderRejection {
    fn into_response(self) -> Response {
        match self {
            ReaderRejection::SignIn(next) => Redirect::to(&login_url(&next)).into_response(),
            ReaderRejection::Welcome(next) => Redirect::to(&welcome_url(&next)).into_response(),
            ReaderRejection::Error(e) => e.into_response(),
        }
    }
}

impl From<WebError> for ReaderRejection {
    fn from(e: WebError) -> Self {
        ReaderRejection::Error(e)
    }
}

/// A request whose rejection may redirect: a GET of a page, not of the sandboxed body frame
/// or its inline images (a redirect there would show a sign-in page inside the frame).
fn is_navigation(parts: &Parts) -> bool {
    let path = parts.uri.path();
    let framed = path.starts_with("/open/") && (path.ends_with("/html") || path.contains("/cid/"));
    matches!(parts.method, Method::GET | Method::HEAD) && !framed
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ReaderRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let settings = state.settings.get();
        let live = match cookies::value(&parts.headers, cookies::PORTAL) {
            Some(token) => sealpost_core::sessions::resume_reader(&state.store, &settings, token)
                .await
                .map_err(WebError::Core)?,
            None => None,
        };
        let navigation = is_navigation(parts);
        let refuse = |redirect: fn(String) -> ReaderRejection| {
            if navigation {
                redirect(return_to(parts.uri.path()))
            } else {
                ReaderRejection::Error(WebError::Forbidden)
            }
        };
        let Some(live) = live else {
            return Err(refuse(ReaderRejection::SignIn));
        };
        if must_change_password(&live.principal, &settings) {
            return Err(refuse(ReaderRejection::Welcome));
        }
        parts.extensions.insert(ExpectedCsrf(live.csrf.clone()));
        let tr = Tr::for_request(
            &parts.headers,
            live.principal.language.as_deref(),
            &settings.default_language,
        );
        Ok(Reader {
            account: live.principal,
            token_hash: live.token_hash,
            csrf: live.csrf,
            tr,
        })
    }
}
