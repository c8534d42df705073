//! The signed-in portal reader of a request.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
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

/// A portal reader whose session is live (idle timeout, absolute lifetime, account active and
/// within validity, all checked now), whether or not a generated password is still to be
/// replaced: for the pages that work during the forced change (the welcome page, sign-out).
/// As `Option<SignedIn>` it takes the optional session and refuses nothing.
pub struct SignedIn {
    pub account: Account,
    /// The session to keep when a password change ends the reader's other sessions.
    pub token_hash: String,
    pub csrf: String,
    /// The page language: the account's, else the browser's, else the default.
    pub tr: Tr,
}

/// A [`SignedIn`] reader who has replaced any generated password: every other portal page.
pub struct Reader {
    pub account: Account,
    /// The session to keep when a password change ends the reader's other sessions.
    pub token_hash: String,
    pub csrf: String,
    /// The page language: the account's, else the browser's, else the default.
    pub tr: Tr,
}

impl SignedIn {
    /// The context of a page shown to this reader.
    pub fn page(&self) -> PageCtx {
        page_of(&self.account, &self.csrf, &self.tr)
    }

    /// The live session of the request's cookie, if any; leaves its CSRF token for
    /// [`super::CsrfForm`].
    async fn of_request(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, WebError> {
        let Some(token) = cookies::value(&parts.headers, cookies::PORTAL) else {
            return Ok(None);
        };
        let settings = state.settings.get();
        let live = sealpost_core::sessions::resume_reader(&state.store, &settings, token).await?;
        Ok(live.map(|live| {
            parts.extensions.insert(ExpectedCsrf(live.csrf.clone()));
            let tr = Tr::for_request(
                &parts.headers,
                live.principal.language.as_deref(),
                &settings.default_language,
            );
            SignedIn {
                account: live.principal,
                token_hash: live.token_hash,
                csrf: live.csrf,
                tr,
            }
        }))
    }
}

impl Reader {
    /// The context of a page shown to this reader.
    pub fn page(&self) -> PageCtx {
        page_of(&self.account, &self.csrf, &self.tr)
    }

    /// For forms that are not url-encoded (the multipart reply): the submitted token must be
    /// this session's.
    pub fn verify_csrf(&self, submitted: &str) -> Result<(), WebError> {
        ExpectedCsrf(self.csrf.clone()).verify(submitted)
    }
}

fn page_of(account: &Account, csrf: &str, tr: &Tr) -> PageCtx {
    PageCtx {
        tr: tr.clone(),
        address: account.address.clone(),
        csrf: csrf.to_string(),
        brand: crate::brand::PortalBrand::current(),
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

/// Refuses a request without the guard's reader: a navigation is redirected, anything else
/// is forbidden.
fn refuse(parts: &Parts, redirect: fn(String) -> ReaderRejection) -> ReaderRejection {
    if is_navigation(parts) {
        redirect(return_to(parts.uri.path()))
    } else {
        ReaderRejection::Error(WebError::Forbidden)
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ReaderRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match SignedIn::of_request(parts, state).await? {
            Some(signed_in) => Ok(signed_in),
            None => Err(refuse(parts, ReaderRejection::SignIn)),
        }
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        SignedIn::of_request(parts, state).await
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ReaderRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let signed_in =
            <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if must_change_password(&signed_in.account, &state.settings.get()) {
            return Err(refuse(parts, ReaderRejection::Welcome));
        }
        Ok(Reader {
            account: signed_in.account,
            token_hash: signed_in.token_hash,
            csrf: signed_in.csrf,
            tr: signed_in.tr,
        })
    }
}
