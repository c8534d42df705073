//! Admin sign-in (password plus TOTP code when enrolled), sign-out, own password change and
//! TOTP enrolment.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use sealpost_core::admin::{
    ADMIN_PASSWORD_MIN, Actor, AdminError, AdminLoginOutcome, CurrentFactors, TotpEnrolment,
    admin_login, change_own_password, enrol_totp, new_totp_secret, totp_uri,
};
use sealpost_core::sessions::{self, Principal};
use sealpost_store::SessionKind;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AdminUser, render, render_status};
use crate::AppState;
use crate::error::WebError;
use crate::guards::csrf::NoFields;
use crate::guards::{ClientIp, CsrfForm, cookies};

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

pub async fn form(Query(q): Query<LoginQuery>) -> Result<Response, WebError> {
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
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let ip = ip.to_string();
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
    let started = sessions::start(
        &state.store,
        &settings,
        &Principal {
            kind: SessionKind::Admin,
            id: &admin.id,
            audit_actor: &Actor::admin(&admin.name, &ip).name,
        },
        cookies::value(&headers, cookies::ADMIN),
        &ip,
    )
    .await?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookies::set_admin(&started.token))]),
        Redirect::to(&next),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    user: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    sessions::end(&state.store, &user.token_hash).await?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookies::clear_admin())]),
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
    current: Zeroizing<String>,
    new_password: Zeroizing<String>,
    repeat: Zeroizing<String>,
}

pub async fn password_submit(
    State(state): State<AppState>,
    user: AdminUser,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, WebError> {
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
    secret: String,
    code: String,
    /// Needed only to replace an enrolled factor.
    #[serde(default)]
    current_password: Zeroizing<String>,
    #[serde(default)]
    current_code: String,
}

pub async fn totp_submit(
    State(state): State<AppState>,
    user: AdminUser,
    CsrfForm(form): CsrfForm<TotpForm>,
) -> Result<Response, WebError> {
    let secret: String = form
        .secret
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    let outcome = enrol_totp(
        &state.store,
        &user.admin,
        &secret,
        &form.code,
        &CurrentFactors {
            password: &form.current_password,
            code: &form.current_code,
        },
        &user.actor(),
    )
    .await
    .map_err(admin_error)?;
    let error = match outcome {
        TotpEnrolment::Enrolled => return Ok(Redirect::to("/admin?done=totp").into_response()),
        TotpEnrolment::WrongCode => {
            "The code did not match. Check the time on your phone and try again."
        }
        TotpEnrolment::WrongCurrentFactor => {
            "To replace the second factor, enter your current password and a current code from \
             the authenticator you use now."
        }
    };
    let page = totp_page(&state, user, secret, Some(error.into()));
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
