//! Recipient sessions: a random token in a `__Host-` cookie, only its hash in the database.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use sealpost_store::{Account, SessionKind};

use crate::AppState;
use crate::error::WebError;

pub const COOKIE: &str = "__Host-sealpost";

/// The logged-in recipient of this request.
pub struct PortalUser {
    pub account: Account,
    pub token_hash: String,
    pub csrf: String,
}

/// Some(user) when a valid session cookie came with the request.
pub struct MaybeUser(pub Option<PortalUser>);

pub fn cookie_value<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl<S> FromRequestParts<S> for MaybeUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let Some(token) = cookie_value(&parts.headers, COOKIE) else {
            return Ok(MaybeUser(None));
        };
        let token_hash = sealpost_crypto::hash_token(token);
        let now = sealpost_store::unix_now();
        let Some(record) = state
            .store
            .session(&token_hash, SessionKind::Portal, now)
            .await?
        else {
            return Ok(MaybeUser(None));
        };
        let Some(account) = state.store.account_by_id(&record.principal_id).await? else {
            return Ok(MaybeUser(None));
        };
        if account.status != sealpost_store::AccountStatus::Active {
            return Ok(MaybeUser(None));
        }
        let idle = state.settings.get().session_idle_secs;
        // Sliding expiry, written at most once a minute to spare the database.
        if now - record.last_seen_at > 60 {
            state
                .store
                .touch_session(&token_hash, now, now + idle)
                .await?;
        }
        Ok(MaybeUser(Some(PortalUser {
            account,
            token_hash,
            csrf: record.csrf_token,
        })))
    }
}

pub fn set_cookie(token: &str, max_age: i64) -> String {
    format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}
