//! The administrators' web UI under `/admin`, plus `/metrics`: the routes. Every admin page
//! needs an admin session (`guards::AdminUser`: its own cookie and session kind, so a portal
//! session never counts); every form is a `guards::CsrfForm`. On the public listener the
//! admin UI answers only `admin.allowed_networks` (`guards::admin_network_gate`).
//!
//! Texts of the admin UI are English only and live in the templates (`templates/admin/`).

mod addins;
mod audit;
mod auth;
mod calendar;
mod chart;
mod dashboard;
mod messages;
mod settings;
mod users;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::WebError;
pub(crate) use crate::guards::AdminUser;
pub(crate) use calendar::{fmt_date, fmt_opt_time, fmt_time, parse_date_end};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/", get(dashboard::page))
        .route("/admin/login", get(auth::form).post(auth::submit))
        .route("/admin/logout", post(auth::logout))
        .route(
            "/admin/password",
            get(auth::password_form).post(auth::password_submit),
        )
        .route("/admin/totp", get(auth::totp_form).post(auth::totp_submit))
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}", get(users::show))
        .route(
            "/admin/users/{id}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/admin/users/{id}/{action}", post(users::action))
        .route(
            "/admin/settings/{section}",
            get(settings::form).post(settings::submit),
        )
        .route(
            "/admin/settings/network/metrics-token",
            post(settings::new_metrics_token),
        )
        .route("/admin/settings/mail/test-hop", post(settings::test_hop))
        .route(
            "/admin/settings/{section}/domain",
            post(settings::set_domain_override),
        )
        .route("/admin/audit", get(audit::page))
        .route("/admin/addins", get(addins::page))
        .route(
            "/admin/addins/outlook-manifest.xml",
            get(addins::outlook_manifest),
        )
        .route(
            "/admin/addins/sealpost-thunderbird.xpi",
            get(addins::thunderbird_xpi),
        )
        .route("/admin/messages", get(messages::list))
        .route("/admin/messages/{id}", get(messages::show))
        .route("/admin/messages/{id}/revoke", post(messages::revoke))
        .route("/admin/messages/{id}/{file}", get(messages::report))
        .route("/admin/static/admin.css", get(css))
        .route_layer(axum::middleware::from_fn(
            crate::guards::csrf::require_same_origin,
        ))
}

/// `/metrics`: outside the admin network gate, because a bearer token also opens it.
pub fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(dashboard::metrics))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/admin/admin.css"),
    )
}

/// Renders an admin page.
pub fn render(page: &impl askama::Template) -> Result<Response, WebError> {
    Ok(Html(page.render()?).into_response())
}

pub fn render_status(
    status: StatusCode,
    page: &impl askama::Template,
) -> Result<Response, WebError> {
    Ok((status, Html(page.render()?)).into_response())
}
