//! The profile's second factor: enrol an authenticator app (QR code, one code to confirm, ten
//! recovery codes shown once), remove it, renew the recovery codes, and revoke remembered
//! devices. Enrolling, removing and renewing re-authenticate with the current password (a
//! wrong one counts like a failed sign-in) and mail the holder a notice.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use sealpost_core::second_factor::{self, Confirmed};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::profile::{page, wrong_current};
use super::second_factor::{codes_html, enrol_page};
use crate::AppState;
use crate::error::WebError;
use crate::guards::{ClientIp, CsrfForm, Reader};

#[derive(Deserialize)]
pub struct CurrentForm {
    /// The current password (re-authentication); a form without it is refused like a wrong one.
    #[serde(default)]
    current: Zeroizing<String>,
}

fn codes_response(html: String) -> Response {
    (
        AppendHeaders([(header::CACHE_CONTROL, "no-store")]),
        Html(html),
    )
        .into_response()
}

/// Starts an enrolment after re-authentication and shows the QR code.
pub async fn start(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<CurrentForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    let enrolment =
        second_factor::start_enrolment(&state.store, &state.keys, &settings, &user.account).await?;
    enrol_page(
        user.page(),
        "/profile/totp/confirm",
        &enrolment,
        false,
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    code: Zeroizing<String>,
}

/// Confirms the enrolment started above with one code; shows the recovery codes once. The
/// reader's other sessions end (whoever else was signed in has no second factor).
pub async fn confirm(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let client = client.to_string();
    let confirmed = second_factor::confirm_enrolment(
        &state.store,
        &state.keys,
        &settings,
        &user.account,
        &form.code,
        &client,
    )
    .await?;
    match confirmed {
        Confirmed::Enrolled(codes) => {
            state.delivery_wake.notify_one();
            state
                .store
                .delete_sessions_of(&user.account.id, Some(&user.token_hash))
                .await?;
            let html = codes_html(user.page(), codes, "/profile".to_string())?;
            Ok(codes_response(html))
        }
        Confirmed::NoEnrolment => Ok(Redirect::to("/profile").into_response()),
        Confirmed::WrongCode => {
            let enrolment = second_factor::pending_enrolment(
                &state.store,
                &state.keys,
                &settings,
                &user.account,
            )
            .await?
            .ok_or(WebError::BadRequest)?;
            let error = Some(user.tr.t("portal-second-wrong"));
            enrol_page(
                user.page(),
                "/profile/totp/confirm",
                &enrolment,
                false,
                error,
                StatusCode::BAD_REQUEST,
            )
        }
    }
}

/// Removes the authenticator and its recovery codes after re-authentication.
pub async fn remove(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<CurrentForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    second_factor::remove_totp(&state.store, &settings, &user.account, &client.to_string()).await?;
    state.delivery_wake.notify_one();
    Ok(Redirect::to("/profile?saved=totp-removed").into_response())
}

/// New recovery codes after re-authentication (the old ones stop working).
pub async fn renew_codes(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<CurrentForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    let renewed = second_factor::renew_recovery_codes(
        &state.store,
        &settings,
        &user.account,
        &client.to_string(),
    )
    .await?;
    let Some(codes) = renewed else {
        let error = Some(user.tr.t("portal-totp-none"));
        return page(
            &state,
            &user,
            &settings,
            None,
            error,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    state.delivery_wake.notify_one();
    let html = codes_html(user.page(), codes, "/profile".to_string())?;
    Ok(codes_response(html))
}

#[derive(Deserialize)]
pub struct DeviceForm {
    device: String,
}

/// Revokes one remembered device (lessening access needs no password).
pub async fn revoke_device(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<DeviceForm>,
) -> Result<Response, WebError> {
    if !second_factor::revoke_device(
        &state.store,
        &user.account,
        &form.device,
        &client.to_string(),
    )
    .await?
    {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/profile?saved=device").into_response())
}
