//! Admin sign-in (password plus TOTP code when enrolled), sign-out, own password change and
//! TOTP enrolment.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use sealpost_core::admin::{
    ADMIN_PASSWORD_MIN, AdminError, AdminLoginOutcome, admin_login, change_own_password,
    enrol_totp, new_totp_secret, totp_uri,
};
use sealpost_store::SessionKind;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    AdminUser, COOKIE, clear_cookie, client_ip, ensure_admin_network, render, render_status,
    set_cookie,
};
use crate::error::WebError;
use crate::security::same_origin;
use crate::session::cookie_value;
use crate::{AppState, Peer};

/// Only admin pages are valid targets after sign-in.
fn safe_admin_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/admin")
                && !n.contains("//")
                && !n.contains('\\')
                && !n.starts_with("/admin/login") =>
        {
            n.to_string()
        }
        _ => "/admin".to_string(),
    }
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    next: String,
    name: String,
    error: Option<String>,
    bye: bool,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    bye: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    ensure_admin_network(&state, Some(peer), &headers).await?;
    render(&LoginPage {
        next: safe_admin_next(q.next.as_deref()),
        name: String::new(),
        error: None,
        bye: q.bye.is_some(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: Zeroizing<String>,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    ensure_admin_network(&state, Some(peer), &headers).await?;
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    let settings = state.settings.get();
    let ip = client_ip(&settings, Some(peer), &headers)
        .map(|i| i.to_string())
        .unwrap_or_default();
    let next = safe_admin_next(form.next.as_deref());
    let outcome = admin_login(
        &state.store,
        &settings,
        &form.name,
        &form.password,
        &form.code,
        &ip,
    )
    .await
    .map_err(admin_error)?;
    let admin = match outcome {
        AdminLoginOutcome::Success(admin) => admin,
        AdminLoginOutcome::Throttled => return Err(WebError::TooManyRequests),
        AdminLoginOutcome::Refused => {
            return render_status(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    next,
                    name: form.name.clone(),
                    error: Some(
                        "Sign-in failed: wrong name, password or code, or the account is locked for a while."
                            .into(),
                    ),
                    bye: false,
                },
            );
        }
    };
    // A new session id at every sign-in; an old admin cookie is ended first.
    if let Some(old) = cookie_value(&headers, COOKIE) {
        state
            .store
            .delete_session(&sealpost_crypto::hash_token(old))
            .await?;
    }
    let (token, token_hash) = sealpost_crypto::new_token();
    let (csrf, _) = sealpost_crypto::new_token();
    let now = sealpost_store::unix_now();
    state
        .store
        .create_session(
            &token_hash,
            SessionKind::Admin,
            &admin.id,
            &csrf,
            &ip,
            now,
            now + settings.admin_session_idle_secs,
        )
        .await?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, set_cookie(&token))]),
        Redirect::to(&next),
    )
        .into_response())
}

/// A form whose only field is the CSRF token (actions without other input).
#[derive(Deserialize)]
pub struct CsrfForm {
    pub(crate) csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AdminUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&headers, &form.csrf)?;
    state.store.delete_session(&user.token_hash).await?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, clear_cookie())]),
        Redirect::to("/admin/login?bye=1"),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "admin/password.html")]
struct PasswordPage {
    csrf: String,
    admin_name: String,
    must_change: bool,
    min_len: usize,
    error: Option<String>,
}

pub async fn password_form(user: AdminUser) -> Result<Response, WebError> {
    render(&PasswordPage {
        must_change: user.admin.must_change_password,
        csrf: user.csrf,
        admin_name: user.admin.name,
        min_len: ADMIN_PASSWORD_MIN,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: Zeroizing<String>,
    new_password: Zeroizing<String>,
    repeat: Zeroizing<String>,
}

pub async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AdminUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&headers, &form.csrf)?;
    let current_ok = {
        let password = form.current.clone();
        let hash = user.admin.password_hash.clone();
        sealpost_core::hashing::run(move || sealpost_crypto::verify_secret(&password, &hash))
            .await?
    };
    let error = if !current_ok {
        Some("The current password is wrong.".to_string())
    } else if *form.new_password != *form.repeat {
        Some("The two new passwords differ.".to_string())
    } else if *form.new_password == *form.current {
        Some("The new password must differ from the current one.".to_string())
    } else {
        match change_own_password(
            &state.store,
            &user.admin,
            &form.new_password,
            &user.token_hash,
            &user.actor(),
        )
        .await
        {
            Ok(()) => None,
            Err(AdminError::WeakPassword(n)) => {
                Some(format!("The new password needs at least {n} characters."))
            }
            Err(e) => return Err(admin_error(e)),
        }
    };
    match error {
        None => Ok(Redirect::to("/admin?done=password").into_response()),
        Some(error) => render_status(
            StatusCode::BAD_REQUEST,
            &PasswordPage {
                must_change: user.admin.must_change_password,
                csrf: user.csrf,
                admin_name: user.admin.name,
                min_len: ADMIN_PASSWORD_MIN,
                error: Some(error),
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "admin/totp.html")]
struct TotpPage {
    csrf: String,
    admin_name: String,
    secret: String,
    uri: String,
    required: bool,
    enrolled: bool,
    error: Option<String>,
}

fn totp_page(state: &AppState, user: AdminUser, secret: String, error: Option<String>) -> TotpPage {
    let settings = state.settings.get();
    TotpPage {
        uri: totp_uri(&secret, &user.admin.name, &settings.org_name),
        required: settings.admin_totp_required && user.admin.totp_secret.is_none(),
        enrolled: user.admin.totp_secret.is_some(),
        csrf: user.csrf,
        admin_name: user.admin.name,
        secret,
        error,
    }
}

pub async fn totp_form(
    State(state): State<AppState>,
    user: AdminUser,
) -> Result<Response, WebError> {
    let page = totp_page(&state, user, new_totp_secret(), None);
    render(&page)
}

#[derive(Deserialize)]
pub struct TotpForm {
    csrf: String,
    secret: String,
    code: String,
}

pub async fn totp_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AdminUser,
    Form(form): Form<TotpForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&headers, &form.csrf)?;
    let secret: String = form
        .secret
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    let ok = enrol_totp(
        &state.store,
        &user.admin,
        &secret,
        &form.code,
        &user.actor(),
    )
    .await
    .map_err(admin_error)?;
    if ok {
        return Ok(Redirect::to("/admin?done=totp").into_response());
    }
    let page = totp_page(
        &state,
        user,
        secret,
        Some("The code did not match. Check the time on your phone and try again.".into()),
    );
    render_status(StatusCode::BAD_REQUEST, &page)
}

/// Maps admin-operation errors to pages: unknown records are 404, the rest internal.
pub(crate) fn admin_error(e: AdminError) -> WebError {
    match e {
        AdminError::NoSuchAccount | AdminError::NoSuchAdmin => WebError::NotFound,
        AdminError::Core(c) => WebError::Core(c),
        _ => WebError::BadRequest,
    }
}
