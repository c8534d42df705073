//! The signed-in administrator of a request, and the network rule of the admin UI.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::admin::Actor;
use sealpost_store::Admin;

use super::client_ip::{client_ip, parse_network};
use super::cookies;
use super::csrf::ExpectedCsrf;
use super::next::query_escape;
use crate::AppState;
use crate::error::WebError;

/// Setting (name/value in the database): networks the admin UI and /metrics answer from on
/// the public listener.
pub const ALLOWED_NETWORKS: &str = "admin.allowed_networks";

/// The networks the admin UI answers from on the public listener (empty: from nowhere; the
/// admin UI is then only on `web.admin_listen`). The one place this setting is read.
pub async fn admin_allowed_networks(state: &AppState) -> Result<Vec<ipnet::IpNet>, WebError> {
    let configured = state
        .store
        .setting_value(ALLOWED_NETWORKS)
        .await?
        .unwrap_or_default();
    Ok(configured
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(parse_network)
        .collect())
}

/// Whether `ip` is in one of the admin networks.
pub async fn in_admin_network(state: &AppState, ip: Option<IpAddr>) -> Result<bool, WebError> {
    let nets = admin_allowed_networks(state).await?;
    Ok(ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))))
}

/// Setting: SHA-256 (hex) of the bearer token that may read /metrics.
pub const METRICS_TOKEN_HASH: &str = "metrics.token_sha256";

/// `/metrics` is open to a bearer token whose hash an admin set, or to the admin networks.
pub async fn metrics_access(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    ip: IpAddr,
) -> Result<bool, WebError> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = bearer
        && let Some(expected) = state.store.setting_value(METRICS_TOKEN_HASH).await?
        && !expected.is_empty()
        && sealpost_crypto::ct_eq(
            sealpost_crypto::hash_token(token.trim()).as_bytes(),
            expected.as_bytes(),
        )
    {
        return Ok(true);
    }
    in_admin_network(state, Some(ip)).await
}

/// What kind of listener serves the admin UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminListener {
    /// The portal's public listener: only the admin networks, nobody while none are set.
    Public,
    /// A listener of its own (`web.admin_listen`): whoever reaches it, or the admin networks
    /// when set.
    Internal,
}

/// The layer on the admin routes: outside the admin networks they answer 404, as if the
/// admin UI did not exist.
pub async fn admin_network_gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let listener = request
        .extensions()
        .get::<AdminListener>()
        .copied()
        .unwrap_or(AdminListener::Public);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(&state.settings.get(), peer, request.headers());
    let allowed = match admin_allowed_networks(&state).await {
        Ok(nets) if nets.is_empty() => listener == AdminListener::Internal,
        Ok(nets) => ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
        Err(e) => return e.into_response(),
    };
    if allowed {
        next.run(request).await
    } else {
        WebError::NotFound.into_response()
    }
}

/// The logged-in administrator of a request, past the forced password change and, when
/// required, the TOTP enrolment.
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
                Redirect::to(&format!("/admin/login?next={}", query_escape(&next))).into_response()
            }
            AdminRejection::Redirect(to) => Redirect::to(to).into_response(),
            AdminRejection::Error(e) => e.into_response(),
        }
    }
}

impl From<WebError> for AdminRejection {
    fn from(e: WebError) -> Self {
        AdminRejection::Error(e)
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AdminRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path().to_string();
        let settings = state.settings.get();
        let login = || {
            let next = if parts.method == axum::http::Method::GET {
                path.clone()
            } else {
                "/admin".to_string()
            };
            AdminRejection::Login(next)
        };
        let Some(token) = cookies::value(&parts.headers, cookies::ADMIN) else {
            return Err(login());
        };
        let Some(live) = sealpost_core::sessions::resume_admin(&state.store, &settings, token)
            .await
            .map_err(WebError::Core)?
        else {
            return Err(login());
        };
        let admin = live.principal;
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
        parts.extensions.insert(ExpectedCsrf(live.csrf.clone()));
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ip = client_ip(&settings, peer, &parts.headers)
            .map(|i| i.to_string())
            .unwrap_or_default();
        Ok(AdminUser {
            admin,
            token_hash: live.token_hash,
            csrf: live.csrf,
            ip,
        })
    }
}
