//! Errors as friendly, localised pages. Internal details go to the log, never to the page.
//! Refusals made by the framework rather than a handler (a form that does not parse, a body
//! over the limit, a method the route does not take, a request past its deadline) are turned
//! into the same page by [`brand_framework_errors`].

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
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
    #[error("the node is at its limit")]
    Busy,
    #[error("temporary open expired")]
    ExpiredOpen,
    /// `/m/{id}`: unknown, expired, or another account's link (one page for all three).
    #[error("message link expired")]
    ExpiredLink,
    /// `/s/...`: a sender's status link that is unknown, used or past its end, or a status
    /// page whose capability ended (one page for all).
    #[error("sender link used or expired")]
    SenderLinkUsed,
    #[error("cannot open: {0}")]
    Open(#[from] OpenError),
    #[error("store: {0}")]
    Store(#[from] sealpost_store::StoreError),
    #[error("core: {0}")]
    Core(#[from] sealpost_core::CoreError),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Xpi(#[from] crate::addins::XpiError),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    tr: Tr,
    brand: std::sync::Arc<crate::brand::PortalBrand>,
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
            WebError::ExpiredLink => (StatusCode::GONE, "portal-error-expired-link"),
            WebError::SenderLinkUsed => (StatusCode::GONE, "sender-link-used"),
            WebError::TooManyRequests => {
                (StatusCode::TOO_MANY_REQUESTS, "portal-error-rate-limited")
            }
            WebError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "portal-error-unavailable"),
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
                // The same page as a token that expired: see `post_open`.
                OpenError::NotForThisPortal => (StatusCode::GONE, "portal-error-expired-open"),
                // Message control: the texts name who and when (see `open_message_text`).
                OpenError::Revoked { .. } => (StatusCode::GONE, "portal-message-revoked"),
                OpenError::Expired { .. } => (StatusCode::GONE, "portal-message-expired"),
                OpenError::SecretGone => (StatusCode::GONE, "portal-message-gone"),
            },
            WebError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "portal-error-unavailable"),
            WebError::Core(_) | WebError::Template(_) | WebError::Xpi(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "portal-error-internal")
            }
        }
    }
}

/// Marks a response as one of our pages, so [`brand_framework_errors`] leaves it alone (also
/// the JSON refusals that /static/passkey.js reads, pages/passkey.rs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Branded;

/// The branded error page with `status` and the message `key`, in the request's language.
fn error_page(status: StatusCode, key: &str) -> Response {
    error_page_with(status, |tr| tr.t(key))
}

/// The text of a revoked or expired message's page: who revoked it and when (the reason
/// only if the revoker made it public), or whose message expired and when.
fn open_message_text(e: &OpenError, key: &str, tr: &Tr) -> String {
    let args: Vec<(&str, String)> = match e {
        OpenError::Revoked { by, at, reason } => {
            let mut text = sealpost_i18n::tf(
                tr.lang,
                key,
                &[("who", by), ("date", &crate::admin::fmt_time(*at))],
            );
            if let Some(reason) = reason {
                text.push(' ');
                text.push_str(&sealpost_i18n::tf(
                    tr.lang,
                    "portal-message-revoked-reason",
                    &[("reason", reason)],
                ));
            }
            return text;
        }
        OpenError::Expired { sender, at } => vec![
            ("sender", sender.clone()),
            ("date", crate::admin::fmt_time(*at)),
        ],
        _ => return tr.t(key),
    };
    let args: Vec<(&str, &str)> = args.iter().map(|(n, v)| (*n, v.as_str())).collect();
    sealpost_i18n::tf(tr.lang, key, &args)
}

fn error_page_with(status: StatusCode, message: impl FnOnce(&Tr) -> String) -> Response {
    let lang = REQUEST_LANG.try_with(|l| *l).unwrap_or("en");
    let tr = Tr { lang };
    let page = ErrorPage {
        message: message(&tr),
        tr,
        brand: crate::brand::PortalBrand::current(),
        status: status.as_u16(),
    };
    let mut response = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, "error").into_response(),
    };
    response.extensions_mut().insert(Branded);
    response
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, key) = self.status_and_key();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        if let WebError::Open(e) = &self {
            return error_page_with(status, |tr| open_message_text(e, key, tr));
        }
        error_page(status, key)
    }
}

/// The message for a refusal the framework made with `status`.
fn framework_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "portal-error-not-found",
        StatusCode::FORBIDDEN => "portal-error-forbidden",
        StatusCode::PAYLOAD_TOO_LARGE => "portal-error-too-large",
        StatusCode::TOO_MANY_REQUESTS => "portal-error-rate-limited",
        StatusCode::REQUEST_TIMEOUT => "portal-error-timeout",
        s if s == StatusCode::SERVICE_UNAVAILABLE || s == StatusCode::GATEWAY_TIMEOUT => {
            "portal-error-unavailable"
        }
        s if s.is_server_error() => "portal-error-internal",
        // 400, 405, 411, 415, 422 and the rest: the request was not one a page sends.
        _ => "portal-error-bad-request",
    }
}

/// Paths whose answers are for machines (probes, metrics): their texts stay as they are.
fn is_machine_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: an error response that is not one of our pages (axum's rejection texts, an
/// empty 405 or 408: not HTML, no [`Branded`] mark) becomes the branded page with the same status; headers such as `Allow`
/// are kept. The language is negotiated here, since this runs outside the router's layers.
pub async fn brand_framework_errors(
    State(default_language): State<LanguageSource>,
    request: Request,
    next: Next,
) -> Response {
    if is_machine_path(request.uri().path()) {
        return next.run(request).await;
    }
    let accept = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = next.run(request).await;
    let status = response.status();
    // Our own pages (a login form answered 401, an error page) are HTML already; what the
    // framework makes is plain text or empty.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error())
        || is_html
        || response.extensions().get::<Branded>().is_some()
    {
        return response;
    }
    let lang = sealpost_i18n::negotiate(accept.as_deref(), &default_language.get());
    let (mut parts, _) = response.into_parts();
    let page = REQUEST_LANG.sync_scope(lang, || error_page(status, framework_message(status)));
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        page_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("text/html; charset=utf-8")),
    );
    parts.extensions.insert(Branded);
    Response::from_parts(parts, body)
}

/// Where [`brand_framework_errors`] finds the portal's default language.
#[derive(Clone)]
pub struct LanguageSource(pub sealpost_core::SettingsHandle);

impl LanguageSource {
    fn get(&self) -> String {
        self.0.get().default_language.clone()
    }
}
