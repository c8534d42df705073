//! Cross-site request forgery: the same-origin layer on state-changing routes, and the
//! session's CSRF token in every state-changing form.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sealpost_core::url;
use serde::de::DeserializeOwned;

use crate::error::WebError;

/// The CSRF token of the request's session, left in the request's extensions by the session
/// guards ([`super::Reader`], [`super::AdminUser`]) for [`CsrfForm`] to compare with.
#[derive(Clone)]
pub(crate) struct ExpectedCsrf(pub(crate) String);

impl ExpectedCsrf {
    /// Constant-time comparison with the submitted token.
    pub(crate) fn verify(&self, submitted: &str) -> Result<(), WebError> {
        if sealpost_crypto::ct_eq(self.0.as_bytes(), submitted.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }
}

/// The form token of a page whose credential is a secret of its own rather than a session (a
/// reset link, a sender's status link or capability): derived from that secret under a
/// `label`, so it cannot be computed without the secret and one page's token fits no other.
pub(crate) fn derived_form_token(label: &str, secret: &str) -> String {
    sealpost_crypto::hash_token(&format!("{label}\n{secret}"))
}

/// A url-encoded form whose `csrf` field matched the session's token. Put it after a session
/// guard in the handler's arguments (extractors run in order); without a session it refuses.
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form without fields of its own (sign-out, actions on a record).
#[derive(serde::Deserialize)]
pub struct NoFields {}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let expected = request
            .extensions()
            .get::<ExpectedCsrf>()
            .cloned()
            .ok_or(WebError::Forbidden)?;
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| WebError::BadRequest)?;
        // The form is decoded twice (once for the token, once for the handler's type), so the
        // handler's type needs no `csrf` field. POST, because `Form` reads a GET's query.
        let decode = |bytes: axum::body::Bytes| {
            let mut r = Request::new(axum::body::Body::from(bytes));
            *r.method_mut() = axum::http::Method::POST;
            if let Some(ct) = content_type.clone() {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            r
        };
        let axum::Form(field) = axum::Form::<CsrfField>::from_request(decode(body.clone()), state)
            .await
            .map_err(|_| WebError::BadRequest)?;
        expected.verify(&field.csrf)?;
        let axum::Form(value) = axum::Form::<T>::from_request(decode(body), state)
            .await
            .map_err(|_| WebError::BadRequest)?;
        Ok(CsrfForm(value))
    }
}

/// A state-changing request must come from our own pages: the browser's Sec-Fetch-Site says
/// so directly; older browsers send an Origin we can compare with the Host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            url::authority(origin) == Some(host)
        }
    }
}

/// The layer on the state-changing route group: a cross-site POST is refused before any
/// handler runs. (`POST /open` is outside that group: it comes from a `file://` page.)
pub async fn require_same_origin(request: Request, next: Next) -> Response {
    if !request.method().is_safe() && !same_origin(request.headers()) {
        return WebError::Forbidden.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("portal.example"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://portal.example"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
