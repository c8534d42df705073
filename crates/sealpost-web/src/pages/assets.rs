//! Static assets compiled into the binary, and the two that come from the branding settings
//! (the accent colour's style sheet and the logo), served from this origin so the strict CSP
//! needs no exception.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::WebError;

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/portal.css"),
    )
}

/// `--accent` from `branding.accent_color`; revalidated on every use (`no-cache`), so a change
/// shows on the next page, not an hour or a minute later.
pub async fn brand_css(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        crate::brand::accent_css(&state.settings.get()),
    )
}

/// The logo of `branding.logo`, with the type its bytes were checked to have; nosniff keeps a
/// browser from reading it as anything else.
pub async fn logo(State(state): State<AppState>) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let image = settings.logo.image().ok_or(WebError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, image.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_DISPOSITION, "inline; filename=\"logo\""),
        ],
        image.bytes.clone(),
    )
        .into_response())
}
