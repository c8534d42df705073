//! Login and logout of recipients.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use sealpost_core::accounts::{LoginOutcome, login};
use sealpost_core::sessions;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::csrf::NoFields;
use crate::guards::next::safe_next;
use crate::guards::page::page_ctx;
use crate::guards::{ClientIp, CsrfForm, PageCtx, SignedIn, cookies};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    next: String,
    address: String,
    error: Option<String>,
    notice: Option<String>,
}
page_ctx!(LoginPage);

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    #[serde(default)]
    bye: Option<String>,
}

pub async fn form(
    ctx: PageCtx,
    Query(q): Query<LoginQuery>,
    user: Option<SignedIn>,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let notice = if q.bye.is_some() {
        Some(ctx.tr.t("portal-logged-out"))
    } else if next.starts_with("/open/") {
        Some(ctx.tr.t("portal-login-to-open"))
    } else {
        None
    };
    Ok(render(&LoginPage {
        ctx,
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
    ClientIp(ip): ClientIp,
    ctx: PageCtx,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let ip = ip.to_string();
    let next = safe_next(form.next.as_deref());
    let outcome = login(&state.store, &settings, &form.address, &form.password, &ip).await?;
    let account = match outcome {
        LoginOutcome::Success(account) => account,
        LoginOutcome::Throttled => return Err(WebError::TooManyRequests),
        other => {
            let key = match other {
                LoginOutcome::Disabled => "portal-login-disabled",
                LoginOutcome::Expired => "portal-login-expired",
                _ => "portal-login-failed",
            };
            let page = LoginPage {
                error: Some(ctx.tr.t(key)),
                ctx,
                next,
                address: form.address.clone(),
                notice: None,
            };
            let html = render(&page)?;
            return Ok((StatusCode::UNAUTHORIZED, html).into_response());
        }
    };
    // Full session or the second-factor step: decided in one place for every first factor.
    super::second_factor::after_first_factor(
        &state,
        &settings,
        &headers,
        &account,
        sessions::PASSWORD,
        &next,
        &ip,
    )
    .await
}

/// Sign-out works during the forced password change too, so it takes the optional session;
/// the CSRF form refuses a request without one.
pub async fn logout(
    State(state): State<AppState>,
    user: Option<SignedIn>,
    _: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    if let Some(user) = user {
        sessions::end(&state.store, &user.token_hash).await?;
    }
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookies::clear_portal())]),
        Redirect::to("/login?bye=1"),
    )
        .into_response())
}
