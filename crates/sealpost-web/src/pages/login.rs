//! Login and logout of recipients.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use sealpost_core::accounts::{LoginOutcome, login};
use sealpost_store::SessionKind;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::error::WebError;
use crate::i18n::Tr;
use crate::security::{safe_next, same_origin};
use crate::session::{self, MaybeUser};
use crate::{AppState, Peer};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    tr: Tr,
    next: String,
    address: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    #[serde(default)]
    bye: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let tr = Tr::for_request(&headers, None, &state.settings.get().default_language);
    let notice = if q.bye.is_some() {
        Some(tr.t("portal-logged-out"))
    } else if next.starts_with("/open/") {
        Some(tr.t("portal-login-to-open"))
    } else {
        None
    };
    Ok(render(&LoginPage {
        tr,
        next,
        address: String::new(),
        error: None,
        notice,
    })?
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    address: String,
    password: Zeroizing<String>,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    MaybeUser(previous): MaybeUser,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    let settings = state.settings.get();
    let ip = crate::security::client_ip(&settings, Some(peer), &headers)
        .unwrap_or(peer.ip())
        .to_string();
    let next = safe_next(form.next.as_deref());
    let outcome = login(&state.store, &settings, &form.address, &form.password, &ip).await?;
    let account = match outcome {
        LoginOutcome::Success(account) => account,
        LoginOutcome::Throttled => return Err(WebError::TooManyRequests),
        other => {
            let tr = Tr::for_request(&headers, None, &settings.default_language);
            let key = match other {
                LoginOutcome::Disabled => "portal-login-disabled",
                LoginOutcome::Expired => "portal-login-expired",
                _ => "portal-login-failed",
            };
            let page = LoginPage {
                error: Some(tr.t(key)),
                tr,
                next,
                address: form.address.clone(),
                notice: None,
            };
            let html = render(&page)?;
            return Ok((axum::http::StatusCode::UNAUTHORIZED, html).into_response());
        }
    };
    // A new session id at every login, so a planted cookie never becomes an authenticated one.
    if let Some(previous) = previous {
        state.store.delete_session(&previous.token_hash).await?;
    }
    let (token, token_hash) = sealpost_crypto::new_token();
    let (csrf, _) = sealpost_crypto::new_token();
    let now = sealpost_store::unix_now();
    state
        .store
        .create_session(
            &token_hash,
            SessionKind::Portal,
            &account.id,
            &csrf,
            &ip,
            now,
            now + settings.session_idle_secs,
        )
        .await?;
    // A generated password is replaced first; the original target (e.g. the opened message)
    // is carried through the detour.
    let target = if sealpost_core::accounts::must_change_password(&account, &settings) {
        super::welcome::welcome_url(&next)
    } else {
        next
    };
    Ok((
        AppendHeaders([(
            header::SET_COOKIE,
            session::set_cookie(&token, settings.session_idle_secs.max(60) * 48),
        )]),
        Redirect::to(&target),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeUser(user): MaybeUser,
    Form(form): Form<LogoutForm>,
) -> Result<Response, WebError> {
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    if let Some(user) = user {
        if !sealpost_crypto::ct_eq(user.csrf.as_bytes(), form.csrf.as_bytes()) {
            return Err(WebError::Forbidden);
        }
        state.store.delete_session(&user.token_hash).await?;
    }
    Ok((
        AppendHeaders([(header::SET_COOKIE, session::clear_cookie())]),
        Redirect::to("/login?bye=1"),
    )
        .into_response())
}
