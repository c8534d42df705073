//! Old public host names (network settings) keep working: a request under one of them is
//! redirected to the public URL with the same path. Runs in front of every route.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sealpost_core::url;

use crate::AppState;

/// Requests that arrive under a legacy host name (network settings) are redirected to the
/// public URL with the same path. 308 keeps the method and body, so a `POST /open` from an
/// old secure.htm still arrives with its payload.
pub async fn redirect(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let settings = state.settings.get();
    if settings.legacy_hosts.is_empty() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bare = url::strip_port(&host);
    let is_legacy = settings.legacy_hosts.iter().any(|l| {
        let l = l.trim().to_ascii_lowercase();
        let l = url::authority(&l).unwrap_or(l.trim_end_matches('/'));
        l == host || l == bare
    });
    let public_host = url::authority(&settings.public_url)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !is_legacy || public_host == host || url::strip_port(&public_host) == bare {
        return next.run(request).await;
    }
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = format!("{}{}", settings.public_url.trim_end_matches('/'), path);
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, target)]).into_response()
}
