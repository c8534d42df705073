//! Errors as friendly, localised pages. Internal details go to the log, never to the page.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use sealpost_core::open::OpenError;

use crate::i18n::Tr;

tokio::task_local! {
    /// The language negotiated for the current request, so error pages made far from the
    /// handler (e.g. by `?` on a database error) still speak the visitor's language.
    pub static REQUEST_LANG: &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("bad request")]
    BadRequest,
    #[error("no payload in upload")]
    NoPayload,
    #[error("too many requests")]
    TooManyRequests,
    #[error("temporary open expired")]
    ExpiredOpen,
    #[error("cannot open: {0}")]
    Open(#[from] OpenError),
    #[error("store: {0}")]
    Store(#[from] sealpost_store::StoreError),
    #[error("core: {0}")]
    Core(#[from] sealpost_core::CoreError),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    tr: Tr,
    message: String,
    status: u16,
}

impl WebError {
    fn status_and_key(&self) -> (StatusCode, &'static str) {
        match self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "portal-error-not-found"),
            WebError::Forbidden => (StatusCode::FORBIDDEN, "portal-error-forbidden"),
            WebError::BadRequest => (StatusCode::BAD_REQUEST, "portal-error-bad-request"),
            WebError::NoPayload => (StatusCode::BAD_REQUEST, "portal-error-no-payload"),
            WebError::ExpiredOpen => (StatusCode::GONE, "portal-error-expired-open"),
            WebError::TooManyRequests => {
                (StatusCode::TOO_MANY_REQUESTS, "portal-error-rate-limited")
            }
            WebError::Open(e) => match e {
                OpenError::Damaged => (StatusCode::BAD_REQUEST, "portal-error-damaged"),
                OpenError::UnsupportedVersion(_) => {
                    (StatusCode::BAD_REQUEST, "portal-error-version")
                }
                OpenError::WrongRecipient => {
                    (StatusCode::FORBIDDEN, "portal-error-wrong-recipient")
                }
                OpenError::KeyDeleted => (StatusCode::GONE, "portal-error-key-deleted"),
                OpenError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "portal-error-too-large"),
                OpenError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "portal-error-internal"),
            },
            WebError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "portal-error-unavailable"),
            WebError::Core(_) | WebError::Template(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "portal-error-internal")
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, key) = self.status_and_key();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let lang = REQUEST_LANG.try_with(|l| *l).unwrap_or("en");
        let tr = Tr { lang };
        let page = ErrorPage {
            message: tr.t(key),
            tr,
            status: status.as_u16(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}
