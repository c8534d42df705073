//! The signed-in administrator of a request, and the network rule of the admin UI.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::admin::Actor;
use sealpost_store::Admin;

use super::client_ip::client_ip;
use super::cookies;
use super::csrf::ExpectedCsrf;
use super::next::query_escape;
use crate::AppState;
use crate::error::WebError;

/// Whether `ip` is in one of the admin networks (`admin.allowed_networks`).
fn in_admin_network(state: &AppState, ip: Option<IpAddr>) -> bool {
    let settings = state.settings.get();
    ip.is_some_and(|ip| {
        settings
            .admin_allowed_networks
            .iter()
            .any(|n| n.contains(&ip))
    })
}

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
        && let expected = &state.settings.get().metrics_token_hash
        && !expected.is_empty()
        && sealpost_crypto::ct_eq(
            sealpost_crypto::hash_token(token.trim()).as_bytes(),
            expected.as_bytes(),
        )
    {
        return Ok(true);
    }
    Ok(in_admin_network(state, Some(ip)))
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
    let allowed = if state.settings.get().admin_allowed_networks.is_empty() {
        listener == AdminListener::Internal
    } else {
        in_admin_network(&state, ip)
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
