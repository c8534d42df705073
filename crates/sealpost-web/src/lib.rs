//! Sealpost's web front: the recipient portal (login, `/open`, reading messages), the
//! administrators' UI under `/admin` (with `/metrics`), and the health endpoints. Pages are
//! server-rendered (askama), work without JavaScript, and every response carries strict
//! security headers. What a handler may assume is stated by its request guards (`guards`).

mod addins;
mod admin;
mod brand;
mod error;
mod guards;
mod handoff;
mod i18n;
mod legacy_host;
mod pages;
pub mod ratelimit;
mod security;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use sealpost_core::{KeyRing, SettingsHandle};
use sealpost_store::Store;

pub use error::{LanguageSource, WebError, brand_framework_errors};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: KeyRing,
    pub settings: SettingsHandle,
    pub web: Arc<WebConfig>,
    /// Wakes this node's delivery worker when the portal queues mail (a reply).
    pub delivery_wake: Arc<tokio::sync::Notify>,
    /// Per-client request limits of this node.
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// The node's delivery-report signer (admin Messages page).
    pub reports: Arc<sealpost_core::message_report::ReportSigner>,
}

/// Boot-time web settings (from the configuration file, not the database).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The largest request body accepted by `/open` (a base64 payload of a large message).
    pub max_upload_bytes: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            max_upload_bytes: 300 * 1024 * 1024,
        }
    }
}

/// Portal and admin UI on one public listener (the default): the admin UI answers only
/// `admin.allowed_networks`, and nobody while that is empty.
pub fn router(state: AppState) -> Router {
    build_router(state, true, Some(guards::AdminListener::Public))
}

/// Portal and admin UI on one listener that is itself internal (`web.listen_is_internal`):
/// the admin UI answers whoever reaches it, or the admin networks when set.
pub fn internal_router(state: AppState) -> Router {
    build_router(state, true, Some(guards::AdminListener::Internal))
}

/// Only the recipient portal: the public listener when the admin UI has its own.
pub fn portal_router(state: AppState) -> Router {
    build_router(state, true, None)
}

/// Only the admin UI (and /metrics), for a listener on an internal network.
pub fn admin_router(state: AppState) -> Router {
    build_router(state, false, Some(guards::AdminListener::Internal))
}

fn build_router(state: AppState, portal: bool, admin: Option<guards::AdminListener>) -> Router {
    let mut router = Router::new();
    if portal {
        router = router.merge(portal_routes(&state));
    }
    if let Some(listener) = admin {
        let admin_routes = admin::routes()
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                guards::admin_network_gate,
            ))
            .layer(axum::Extension(listener));
        router = router.merge(admin_routes.merge(admin::metrics_routes()));
    }
    router
        .route("/static/portal.css", get(pages::assets::css))
        .route("/static/brand.css", get(pages::assets::brand_css))
        .route("/static/passkey.js", get(pages::passkey::script))
        .route("/brand/logo", get(pages::assets::logo))
        .route("/healthz", get(pages::health::healthz))
        .route("/readyz", get(pages::health::readyz))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn(time_request))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            language_scope,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            legacy_host::redirect,
        ))
        .with_state(state)
}

/// The recipient portal. Every route but `POST /open` (which comes cross-site from a
/// `file://` page and changes nothing but a short-lived temporary) is behind the same-origin
/// layer.
fn portal_routes(state: &AppState) -> Router<AppState> {
    let upload_limit = state.web.max_upload_bytes;
    let same_site = Router::new()
        .route("/", get(pages::home::home))
        .route("/login", get(pages::login::form).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route("/m/{id}", get(pages::link::open_link))
        .route("/login/code", post(pages::login_code::request))
        .route("/login/code/verify", post(pages::login_code::verify))
        .route(
            "/login/second",
            get(pages::second_factor::form).post(pages::second_factor::submit),
        )
        .route(
            "/login/second/enrol",
            get(pages::second_factor::enrol_form).post(pages::second_factor::enrol_submit),
        )
        .route("/open/{token}", get(pages::open::show))
        .route("/open/{token}/html", get(pages::open::html_body))
        .route("/open/{token}/part/{index}", get(pages::open::part))
        .route("/open/{token}/cid/{cid}", get(pages::open::cid))
        .route("/open/{token}/message.eml", get(pages::open::eml))
        .route(
            "/open/{token}/reply",
            post(pages::reply::send).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/open/{token}/sent", get(pages::reply::sent))
        .route(
            "/welcome",
            get(pages::welcome::form).post(pages::welcome::submit),
        )
        .route(
            "/forgot",
            get(pages::forgot::form).post(pages::forgot::submit_address),
        )
        .route("/forgot/answer", post(pages::forgot::submit_answer))
        .route(
            "/reset/{token}",
            get(pages::reset::form).post(pages::reset::submit),
        )
        .route("/profile", get(pages::profile::show))
        .route("/profile/password", post(pages::profile::change_password))
        .route("/profile/question", post(pages::profile::change_question))
        .route("/profile/language", post(pages::profile::change_language))
        .route("/profile/phrase", post(pages::profile::change_phrase))
        .route("/s/status", get(pages::sender::status))
        .route("/s/revoke", post(pages::sender::revoke))
        .route(
            "/s/{token}",
            get(pages::sender::landing).post(pages::sender::follow),
        )
        .route("/profile/totp", post(pages::profile_factors::start))
        .route(
            "/profile/totp/confirm",
            post(pages::profile_factors::confirm),
        )
        .route("/profile/totp/remove", post(pages::profile_factors::remove))
        .route(
            "/profile/recovery-codes",
            post(pages::profile_factors::renew_codes),
        )
        .route(
            "/profile/devices/revoke",
            post(pages::profile_factors::revoke_device),
        )
        // Passkeys (pages/passkey.rs).
        .route(
            "/profile/passkeys/register/start",
            post(pages::passkey::register_start),
        )
        .route(
            "/profile/passkeys/register/finish",
            post(pages::passkey::register_finish),
        )
        .route(
            "/profile/passkeys/{id}/rename",
            post(pages::passkey::rename),
        )
        .route(
            "/profile/passkeys/{id}/remove",
            post(pages::passkey::remove),
        )
        .route("/login/passkey/start", post(pages::passkey::login_start))
        .route("/login/passkey/finish", post(pages::passkey::login_finish))
        .route(
            "/login/second/passkey/start",
            post(pages::second_factor::passkey_start),
        )
        .route(
            "/login/second/passkey/finish",
            post(pages::second_factor::passkey_finish),
        )
        .route_layer(axum::middleware::from_fn(guards::csrf::require_same_origin));
    Router::new()
        .merge(same_site)
        // The Outlook add-in's files: public, Outlook loads them without a session.
        .route("/addins/outlook/{file}", get(addins::public_file))
        .route(
            "/open",
            post(pages::open::post_open).layer(DefaultBodyLimit::max(upload_limit)),
        )
}

/// The connection info type handlers extract the peer address from.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;

/// Runs the request with its negotiated language and the organisation's brand in scope, for
/// every page including error pages.
async fn language_scope(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let accept = request
        .headers()
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let settings = state.settings.get();
    let lang = sealpost_i18n::negotiate(accept, &settings.default_language);
    let brand = brand::PortalBrand::of(&settings);
    brand
        .scope(error::REQUEST_LANG.scope(lang, next.run(request)))
        .await
}

/// Feeds the request latency histogram of `/metrics`.
async fn time_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    sealpost_core::metrics::live::observe_request(started.elapsed());
    response
}

/// Refuses a client over its per-address limit on the endpoints where guessing happens.
async fn rate_limit(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::ConnectInfo(peer): Peer,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.method() == axum::http::Method::POST {
        let limiter = match request.uri().path() {
            "/login"
            | "/login/code"
            | "/login/code/verify"
            | "/login/second"
            | "/login/second/enrol"
            | "/forgot"
            | "/forgot/answer"
            | "/admin/login"
            | "/admin/totp"
            | "/login/passkey/start"
            | "/login/passkey/finish"
            | "/login/second/passkey/start"
            | "/login/second/passkey/finish" => Some(&state.rate_limits.auth),
            "/open" => Some(&state.rate_limits.open),
            // A reset link sets a password: guessing links is an attempt like guessing one.
            path if path.starts_with("/reset/") => Some(&state.rate_limits.auth),
            // Likewise a sender's status link: it can revoke a message.
            path if path.starts_with("/s/") => Some(&state.rate_limits.auth),
            _ => None,
        };
        if let Some(limiter) = limiter {
            let ip =
                guards::client_ip::client_ip(&state.settings.get(), Some(peer), request.headers())
                    .unwrap_or(peer.ip());
            if !limiter.allow(ip) {
                tracing::warn!(client = %ip, path = %request.uri().path(), "rate limit reached");
                return WebError::TooManyRequests.into_response();
            }
        }
    }
    next.run(request).await
}
