//! The administrators' web UI under `/admin`, plus `/metrics`. Every admin page needs an admin
//! session (its own cookie and session kind, so a portal session never counts); every form
//! carries the session's CSRF token. The admin UI can be restricted to networks
//! (`admin.allowed_networks`); outside them it answers 404 as if it did not exist.
//!
//! Texts of the admin UI are English only and live in the templates (`templates/admin/`).

mod audit;
mod auth;
mod chart;
mod dashboard;
mod settings;
mod users;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sealpost_core::admin::Actor;
use sealpost_store::{Admin, SessionKind};

use crate::AppState;
use crate::error::WebError;
pub(crate) use crate::security::client_ip;
use crate::security::same_origin;
use crate::session::cookie_value;

pub const COOKIE: &str = "__Host-sealpost-admin";
/// An admin session ends after this long even when in use.
const SESSION_MAX_SECS: i64 = 8 * 3600;

pub fn routes() -> Router<AppState> {
    let admin = Router::new()
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
        .route("/admin/audit", get(audit::page))
        .route("/admin/static/admin.css", get(css));
    Router::new()
        .merge(admin)
        .route("/metrics", get(dashboard::metrics))
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

/// Admin pages requested from outside the configured admin networks get a 404, as if the
/// admin UI did not exist.
pub(crate) async fn ensure_admin_network(
    state: &AppState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(), WebError> {
    let ip = client_ip(&state.settings.get(), peer, headers);
    match in_admin_network(state, ip).await? {
        Some(false) => Err(WebError::NotFound),
        _ => Ok(()),
    }
}

/// Some(true/false) when admin networks are configured, None when they are not.
pub(crate) async fn in_admin_network(
    state: &AppState,
    ip: Option<IpAddr>,
) -> Result<Option<bool>, WebError> {
    let settings = state.settings.get();
    let nets = &settings.admin_allowed_networks;
    if nets.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
    ))
}

/// The logged-in administrator of a request.
pub struct AdminUser {
    pub admin: Admin,
    pub token_hash: String,
    pub csrf: String,
    pub ip: String,
}

impl AdminUser {
    pub fn actor(&self) -> Actor {
        Actor::admin(&self.admin.name, &self.ip)
    }

    /// A state-changing request must come from our own page and carry this session's token.
    pub fn check_csrf(&self, headers: &HeaderMap, csrf: &str) -> Result<(), WebError> {
        if !same_origin(headers) || !sealpost_crypto::ct_eq(self.csrf.as_bytes(), csrf.as_bytes()) {
            return Err(WebError::Forbidden);
        }
        Ok(())
    }
}

/// Why a request did not get an [`AdminUser`].
pub enum AdminRejection {
    Login(String),
    Redirect(&'static str),
    Error(WebError),
}

impl IntoResponse for AdminRejection {
    fn into_response(self) -> Response {
        match self {
            AdminRejection::Login(next) => {
                Redirect::to(&format!("/admin/login?next={}", encode_path(&next))).into_response()
            }
            AdminRejection::Redirect(to) => Redirect::to(to).into_response(),
            AdminRejection::Error(e) => e.into_response(),
        }
    }
}

fn encode_path(p: &str) -> String {
    p.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl From<WebError> for AdminRejection {
    fn from(e: WebError) -> Self {
        AdminRejection::Error(e)
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AdminRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let path = parts.uri.path().to_string();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        ensure_admin_network(&state, peer, &parts.headers).await?;
        let login = || {
            let next = if parts.method == axum::http::Method::GET {
                parts.uri.path().to_string()
            } else {
                "/admin".to_string()
            };
            AdminRejection::Login(next)
        };
        let Some(token) = cookie_value(&parts.headers, COOKIE) else {
            return Err(login());
        };
        let token_hash = sealpost_crypto::hash_token(token);
        let now = sealpost_store::unix_now();
        let store_err = |e: sealpost_store::StoreError| AdminRejection::Error(e.into());
        let Some(record) = state
            .store
            .session(&token_hash, SessionKind::Admin, now)
            .await
            .map_err(store_err)?
        else {
            return Err(login());
        };
        if now - record.created_at > SESSION_MAX_SECS {
            state
                .store
                .delete_session(&token_hash)
                .await
                .map_err(store_err)?;
            return Err(login());
        }
        let Some(admin) = state
            .store
            .admin_by_id(&record.principal_id)
            .await
            .map_err(store_err)?
        else {
            return Err(login());
        };
        let settings = state.settings.get();
        if now - record.last_seen_at > 30 {
            state
                .store
                .touch_session(&token_hash, now, now + settings.admin_session_idle_secs)
                .await
                .map_err(store_err)?;
        }
        // A one-time password must be replaced, and a mandatory second factor enrolled,
        // before anything else.
        if admin.must_change_password && path != "/admin/password" && path != "/admin/logout" {
            return Err(AdminRejection::Redirect("/admin/password"));
        }
        if settings.admin_totp_required
            && admin.totp_secret.is_none()
            && !matches!(
                path.as_str(),
                "/admin/totp" | "/admin/password" | "/admin/logout"
            )
        {
            return Err(AdminRejection::Redirect("/admin/totp"));
        }
        let ip = client_ip(&settings, peer, &parts.headers)
            .map(|i| i.to_string())
            .unwrap_or_default();
        Ok(AdminUser {
            admin,
            token_hash,
            csrf: record.csrf_token,
            ip,
        })
    }
}

pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
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

/// "2026-01-31 14:05 UTC" for a Unix time.
pub fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

pub fn fmt_opt_time(t: Option<i64>) -> String {
    t.map(fmt_time).unwrap_or_else(|| "—".to_string())
}

/// "2026-01-31" for a Unix time.
pub fn fmt_date(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses "YYYY-MM-DD" into the Unix time of the end of that day (UTC).
pub fn parse_date_end(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject dates like 2026-02-31 that would roll over.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    Some(days * 86_400 + 86_399)
}

// Howard Hinnant's civil calendar algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Requests that arrive under a legacy host name (network settings) are redirected to the
/// public URL with the same path. 308 keeps the method and body, so a `POST /open` from an
/// old secure.htm still arrives with its payload.
pub async fn legacy_host_redirect(
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
    let bare = strip_port(&host);
    let is_legacy = settings.legacy_hosts.iter().any(|l| {
        let l = l
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_ascii_lowercase();
        l == host || l == bare
    });
    let public_host = settings
        .public_url
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or_default().to_ascii_lowercase())
        .unwrap_or_default();
    if !is_legacy || public_host == host || strip_port(&public_host) == bare {
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

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map_or(host, |h| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealpost_core::Settings;

    #[test]
    fn dates_round_trip() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_time(1_700_000_000), "2023-11-14 22:13 UTC");
        let end = parse_date_end("2024-02-29").unwrap();
        assert_eq!(fmt_date(end), "2024-02-29");
        assert_eq!(fmt_time(end), "2024-02-29 23:59 UTC");
        assert!(parse_date_end("2023-02-29").is_none());
        assert!(parse_date_end("2023-13-01").is_none());
        assert!(parse_date_end("yesterday").is_none());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let settings = Settings {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Settings::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let direct: SocketAddr = "198.51.100.1:1".parse().unwrap();
        assert_eq!(
            client_ip(&settings, Some(proxy), &h),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&settings, Some(direct), &h),
            Some("198.51.100.1".parse().unwrap())
        );
    }
}
