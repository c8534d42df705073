//! The second step of a sign-in (`/login/second`) and the authenticator enrolment pages.
//!
//! After a right first factor, [`after_first_factor`] decides (through
//! [`sessions::begin_sign_in`]): a full session, or a pending state (5 minutes, in the
//! database) and the code step. There the holder gives a code of the authenticator app or a
//! recovery code, and may let the browser remember the device; an account whose domain
//! requires a second factor but has none enrols one first (`/login/second/enrol`). The
//! profile's enrolment uses the same page and the same recovery-code page.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use sealpost_core::Settings;
use sealpost_core::accounts::must_change_password;
use sealpost_core::second_factor::{self, CodeOutcome, Confirmed, Enrolment};
use sealpost_core::sessions::{self, SignIn};
use sealpost_store::Account;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::next::{safe_next, welcome_url};
use crate::guards::page::page_ctx;
use crate::guards::{ClientIp, PageCtx, PendingSecond, cookies};

/// Where a right first factor leads: a session cookie and the target, or the pending cookie
/// and the code step (or the enrolment, where one is required and none is enrolled). The one
/// call the sign-in pages (password, mailbox code) make after their first factor.
pub async fn after_first_factor(
    state: &AppState,
    settings: &Settings,
    headers: &HeaderMap,
    account: &Account,
    first_method: &str,
    next: &str,
    ip: &str,
) -> Result<Response, WebError> {
    let signed_in = sessions::begin_sign_in(
        &state.store,
        settings,
        account,
        first_method,
        cookies::value(headers, cookies::DEVICE),
        cookies::value(headers, cookies::PORTAL),
        next,
        ip,
    )
    .await?;
    match signed_in {
        SignIn::Session(started) => {
            // A generated password is replaced first; the original target (e.g. the opened
            // message) is carried through the welcome page.
            let target = if must_change_password(account, settings) {
                welcome_url(next)
            } else {
                next.to_string()
            };
            Ok((
                AppendHeaders([(
                    header::SET_COOKIE,
                    cookies::set_portal(&started.token, started.max_age),
                )]),
                Redirect::to(&target),
            )
                .into_response())
        }
        SignIn::Pending { token, enrol } => {
            let step = if enrol {
                "/login/second/enrol"
            } else {
                "/login/second"
            };
            Ok((
                AppendHeaders([
                    (header::SET_COOKIE, cookies::set_pending(&token)),
                    (header::SET_COOKIE, cookies::clear_portal()),
                ]),
                Redirect::to(step),
            )
                .into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct CodePage {
    ctx: PageCtx,
    remember_days: String,
    error: Option<String>,
    /// An authenticator app is enrolled: the code form (also for recovery codes).
    code: bool,
    /// A passkey is registered: the passkey button.
    passkey: bool,
    failed: String,
}
page_ctx!(CodePage);

fn code_page(
    ctx: PageCtx,
    settings: &Settings,
    need: second_factor::Requirement,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let remember_days = if settings.remember_device_days > 0 {
        settings.remember_device_days.to_string()
    } else {
        String::new()
    };
    let html = render(&CodePage {
        failed: ctx.tr.t("portal-passkey-login-failed"),
        ctx,
        remember_days,
        error,
        code: need.enrolled,
        passkey: need.passkey,
    })?;
    Ok((status, html).into_response())
}

/// The code step; an account that has to enrol first is sent there.
pub async fn form(State(state): State<AppState>, p: PendingSecond) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let need = second_factor::requirement(&state.store, &settings, &p.pending.account).await?;
    if !need.has_second() {
        return Ok(Redirect::to("/login/second/enrol").into_response());
    }
    code_page(p.ctx, &settings, need, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: Zeroizing<String>,
    #[serde(default)]
    remember: Option<String>,
}

/// The full session after the second factor: cookies (session, pending cleared, device if
/// asked for) and the target.
fn signed_in_response(
    started: &sessions::Started,
    device: Option<(String, i64)>,
    target: &str,
) -> Response {
    let mut cookies_out = vec![
        (
            header::SET_COOKIE,
            cookies::set_portal(&started.token, started.max_age),
        ),
        (header::SET_COOKIE, cookies::clear_pending()),
    ];
    if let Some((token, max_age)) = device {
        cookies_out.push((header::SET_COOKIE, cookies::set_device(&token, max_age)));
    }
    (AppendHeaders(cookies_out), Redirect::to(target)).into_response()
}

fn target_after(account: &Account, settings: &Settings, next: &str) -> String {
    let next = safe_next(Some(next));
    if must_change_password(account, settings) {
        welcome_url(&next)
    } else {
        next
    }
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    p: PendingSecond,
    Form(form): Form<CodeForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let ip = ip.to_string();
    let account = &p.pending.account;
    let outcome = second_factor::check_code(
        &state.store,
        &state.keys,
        &settings,
        account,
        &form.code,
        &ip,
    )
    .await?;
    let method = match outcome {
        CodeOutcome::Accepted(method) => method,
        CodeOutcome::Throttled => return Err(WebError::TooManyRequests),
        CodeOutcome::Refused => {
            let error = Some(p.ctx.tr.t("portal-second-wrong"));
            let need = second_factor::requirement(&state.store, &settings, account).await?;
            return code_page(p.ctx, &settings, need, error, StatusCode::UNAUTHORIZED);
        }
    };
    if method == second_factor::SecondFactorMethod::RecoveryCode {
        state.delivery_wake.notify_one();
    }
    let Some(started) = sessions::complete_second_factor(
        &state.store,
        &settings,
        &p.pending,
        method,
        cookies::value(&headers, cookies::PORTAL),
        &ip,
    )
    .await?
    else {
        // Another request completed this pending state first.
        return Ok(Redirect::to("/login").into_response());
    };
    let device = if form.remember.is_some() {
        second_factor::remember_device(&state.store, &settings, account, user_agent(&headers), &ip)
            .await?
    } else {
        None
    };
    let target = target_after(account, &settings, &p.pending.sign_in.next_path);
    Ok(signed_in_response(&started, device, &target))
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub(crate) struct EnrolPage {
    pub ctx: PageCtx,
    /// Where the confirming code is posted.
    pub action: &'static str,
    pub qr_svg: String,
    pub secret: String,
    /// Shown above the form: why the enrolment is asked for now (a required second factor).
    pub required: bool,
    pub error: Option<String>,
}
page_ctx!(EnrolPage);

/// The QR code of an otpauth:// URI as inline SVG, drawn here (no outside service; the CSP
/// allows it: no script, no style attribute, only SVG presentation attributes).
pub(crate) fn qr_svg(uri: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| WebError::BadRequest)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The XML declaration is for a file of its own, not for SVG inside HTML.
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg",
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR code\"",
        1,
    ))
}

pub(crate) fn enrol_page(
    ctx: PageCtx,
    action: &'static str,
    enrolment: &Enrolment,
    required: bool,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let html = render(&EnrolPage {
        ctx,
        action,
        qr_svg: qr_svg(&enrolment.uri)?,
        secret: enrolment.secret.to_string(),
        required,
        error,
    })?;
    Ok((
        status,
        // The page shows a seed: never cached.
        AppendHeaders([(header::CACHE_CONTROL, "no-store")]),
        html,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct CodesPage {
    pub ctx: PageCtx,
    pub codes: Vec<String>,
    /// Where "Continue" leads.
    pub next: String,
}
page_ctx!(CodesPage);

pub(crate) fn codes_html(
    ctx: PageCtx,
    codes: Vec<String>,
    next: String,
) -> Result<String, WebError> {
    Ok(render(&CodesPage { ctx, codes, next })?.0)
}

/// The enrolment a required second factor asks for, before anything else: the seed of an
/// enrolment already started is shown again, else a new one.
pub async fn enrol_form(
    State(state): State<AppState>,
    p: PendingSecond,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let account = &p.pending.account;
    let need = second_factor::requirement(&state.store, &settings, account).await?;
    if need.has_second() {
        return Ok(Redirect::to("/login/second").into_response());
    }
    let enrolment =
        match second_factor::pending_enrolment(&state.store, &state.keys, &settings, account)
            .await?
        {
            Some(e) => e,
            None => {
                second_factor::start_enrolment(&state.store, &state.keys, &settings, account)
                    .await?
            }
        };
    enrol_page(
        p.ctx,
        "/login/second/enrol",
        &enrolment,
        true,
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct EnrolForm {
    code: Zeroizing<String>,
}

/// Confirms the required enrolment; the session starts with it (the code just given is the
/// second factor) and the recovery codes are shown once.
pub async fn enrol_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    p: PendingSecond,
    Form(form): Form<EnrolForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let ip = ip.to_string();
    let account = &p.pending.account;
    let confirmed = second_factor::confirm_enrolment(
        &state.store,
        &state.keys,
        &settings,
        account,
        &form.code,
        &ip,
    )
    .await?;
    state.delivery_wake.notify_one();
    let codes = match confirmed {
        Confirmed::Enrolled(codes) => codes,
        Confirmed::NoEnrolment => return Ok(Redirect::to("/login/second/enrol").into_response()),
        Confirmed::WrongCode => {
            let enrolment =
                second_factor::pending_enrolment(&state.store, &state.keys, &settings, account)
                    .await?
                    .ok_or(WebError::BadRequest)?;
            let error = Some(p.ctx.tr.t("portal-second-wrong"));
            return enrol_page(
                p.ctx,
                "/login/second/enrol",
                &enrolment,
                true,
                error,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    // The code that confirmed the enrolment is this sign-in's second factor.
    let Some(started) = sessions::complete_second_factor(
        &state.store,
        &settings,
        &p.pending,
        second_factor::SecondFactorMethod::Totp,
        cookies::value(&headers, cookies::PORTAL),
        &ip,
    )
    .await?
    else {
        return Ok(Redirect::to("/login").into_response());
    };
    let target = target_after(account, &settings, &p.pending.sign_in.next_path);
    let html = codes_html(p.ctx, codes, target)?;
    Ok((
        AppendHeaders([
            (
                header::SET_COOKIE,
                cookies::set_portal(&started.token, started.max_age),
            ),
            (header::SET_COOKIE, cookies::clear_pending()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ]),
        axum::response::Html(html),
    )
        .into_response())
}

/// POST `/login/second/passkey/start`: the ceremony for a passkey as the second factor of
/// the pending sign-in (the browser offers the account's discoverable passkeys).
pub async fn passkey_start(
    State(state): State<AppState>,
    p: PendingSecond,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    match sealpost_core::passkeys::start_authentication(&state.store, &settings).await {
        Ok(started) => Ok(axum::Json(started).into_response()),
        Err(e) => super::passkey::ceremony_error(&p.ctx.tr, e),
    }
}

/// POST `/login/second/passkey/finish`: a verified passkey **of the pending account**
/// completes the sign-in (`password+passkey`); another account's passkey is refused like a
/// wrong one and the pending state stays.
pub async fn passkey_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    p: PendingSecond,
    Form(form): Form<super::passkey::LoginFinishForm>,
) -> Result<Response, WebError> {
    use sealpost_core::passkeys::PasskeySignIn;
    let settings = state.settings.get();
    let ip = ip.to_string();
    let failed = || {
        super::passkey::refusal(
            StatusCode::UNAUTHORIZED,
            p.ctx.tr.t("portal-passkey-login-failed"),
        )
    };
    let outcome = sealpost_core::passkeys::finish_authentication(
        &state.store,
        &settings,
        &form.ceremony,
        &form.credential,
        &ip,
    )
    .await
    .map_err(super::passkey::internal)?;
    let account = match outcome {
        PasskeySignIn::Success(account) if account.id == p.pending.account.id => account,
        PasskeySignIn::Throttled => return Err(WebError::TooManyRequests),
        _ => return Ok(failed()),
    };
    let Some(started) = sessions::complete_second_factor(
        &state.store,
        &settings,
        &p.pending,
        second_factor::SecondFactorMethod::Passkey,
        cookies::value(&headers, cookies::PORTAL),
        &ip,
    )
    .await?
    else {
        // A parallel request completed it first.
        return Ok(failed());
    };
    let target = target_after(&account, &settings, &p.pending.sign_in.next_path);
    Ok((
        AppendHeaders([
            (
                header::SET_COOKIE,
                cookies::set_portal(&started.token, started.max_age),
            ),
            (header::SET_COOKIE, cookies::clear_pending()),
        ]),
        axum::Json(super::passkey::Done { redirect: target }),
    )
        .into_response())
}
