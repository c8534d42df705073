//! Passkeys: registering one in the profile, listing, renaming and removing them, and signing
//! in with one alone on /login. The ceremonies are driven by /static/passkey.js (the only
//! script of the portal, loaded from this origin); the JSON endpoints answer it, the rename
//! and remove forms work without it.
//!
//! - `POST /profile/passkeys/register/start` (signed in, CSRF, current password) → options
//! - `POST /profile/passkeys/register/finish` (signed in, CSRF) → the new passkey is stored
//! - `POST /profile/passkeys/{id}/rename` (signed in, CSRF)
//! - `POST /profile/passkeys/{id}/remove` (signed in, CSRF, current password)
//! - `POST /login/passkey/start`, `POST /login/passkey/finish` (public, rate-limited like
//!   /login; every refusal is one answer, so nothing tells whether an account exists)

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use sealpost_core::accounts::{self, must_change_password};
use sealpost_core::passkeys::{self, PasskeyError, PasskeySignIn};
use sealpost_core::sessions::{self, Principal};
use sealpost_store::SessionKind;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::profile::{format_time, wrong_current};
use crate::AppState;
use crate::error::WebError;
use crate::guards::next::{safe_next, welcome_url};
use crate::guards::{ClientIp, CsrfForm, PageCtx, Reader, cookies};
use crate::i18n::Tr;

/// A passkey as the profile shows it.
pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// The profile's list of the reader's passkeys.
pub async fn rows(state: &AppState, user: &Reader) -> Result<Vec<PasskeyRow>, WebError> {
    let list = passkeys::list(&state.store, &user.account)
        .await
        .map_err(internal)?;
    Ok(list
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: format_time(p.created_at),
            last_used: p
                .last_used_at
                .map(format_time)
                .unwrap_or_else(|| user.tr.t("portal-never")),
        })
        .collect())
}

/// The notice of the profile after a passkey change (`/profile?saved=…`).
pub fn saved_notice(tr: &Tr, saved: &str) -> Option<String> {
    match saved {
        "passkey" => Some(tr.t("portal-passkey-saved")),
        "passkey-renamed" => Some(tr.t("portal-passkey-renamed")),
        "passkey-removed" => Some(tr.t("portal-passkey-removed")),
        _ => None,
    }
}

/// Errors that are the node's, not the browser's (database, configuration).
pub(super) fn internal(e: PasskeyError) -> WebError {
    match e {
        PasskeyError::Core(e) => WebError::Core(e),
        other => {
            tracing::error!(error = %other, "passkey ceremony failed");
            WebError::Core(sealpost_core::CoreError::Join)
        }
    }
}

/// The JSON a refused step answers with: a message for the page to show.
#[derive(Serialize)]
struct Refusal {
    error: String,
}

/// Marked as ours, so the error-page layer does not replace the JSON with an HTML page.
pub(super) fn refusal(status: StatusCode, message: String) -> Response {
    let mut response = (status, Json(Refusal { error: message })).into_response();
    response.extensions_mut().insert(crate::error::Branded);
    response
}

/// Where the script goes after a finished ceremony.
#[derive(Serialize)]
pub(super) struct Done {
    pub(super) redirect: String,
}

/// Maps a ceremony's error to the answer: the browser's mistakes are a 400 with a message,
/// the node's are an error.
pub(super) fn ceremony_error(tr: &Tr, e: PasskeyError) -> Result<Response, WebError> {
    let key = match e {
        PasskeyError::Ceremony => "portal-passkey-expired",
        PasskeyError::Refused => "portal-passkey-failed",
        PasskeyError::Duplicate => "portal-passkey-duplicate",
        PasskeyError::TooMany => "portal-passkey-too-many",
        other => return Err(internal(other)),
    };
    Ok(refusal(StatusCode::BAD_REQUEST, tr.t(key)))
}

#[derive(Deserialize)]
pub struct RegisterStartForm {
    /// The current password (re-authentication); a form without it is refused like a wrong one.
    #[serde(default)]
    current: Zeroizing<String>,
}

/// Starts a registration after re-authentication by the current password (a wrong one counts
/// like a failed sign-in).
pub async fn register_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<RegisterStartForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let ip = ip.to_string();
    if !accounts::reauthenticate(&state.store, &settings, &user.account, &form.current, &ip).await?
    {
        return Ok(refusal(
            StatusCode::FORBIDDEN,
            user.tr.t("portal-pw-wrong-current"),
        ));
    }
    match passkeys::start_registration(&state.store, &settings, &user.account).await {
        Ok(started) => Ok(Json(started).into_response()),
        Err(e) => ceremony_error(&user.tr, e),
    }
}

#[derive(Deserialize)]
pub struct RegisterFinishForm {
    ceremony: String,
    /// The `PublicKeyCredential` of `navigator.credentials.create()`, as JSON.
    credential: String,
    #[serde(default)]
    name: String,
}

/// Finishes a registration of this reader's: the passkey is stored, audited and the holder is
/// mailed a notice.
pub async fn register_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<RegisterFinishForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let finished = passkeys::finish_registration(
        &state.store,
        &settings,
        &user.account,
        &form.ceremony,
        &form.credential,
        &form.name,
        &ip.to_string(),
    )
    .await;
    match finished {
        Ok(_) => {
            state.delivery_wake.notify_one();
            Ok(Json(Done {
                redirect: "/profile?saved=passkey#passkeys".into(),
            })
            .into_response())
        }
        Err(e) => ceremony_error(&user.tr, e),
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: Reader,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> Result<Response, WebError> {
    let renamed = passkeys::rename(
        &state.store,
        &user.account,
        &id,
        &form.name,
        &ip.to_string(),
    )
    .await
    .map_err(internal)?;
    if !renamed {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/profile?saved=passkey-renamed#passkeys").into_response())
}

#[derive(Deserialize)]
pub struct RemoveForm {
    /// The current password (re-authentication); a form without it is refused like a wrong one.
    #[serde(default)]
    current: Zeroizing<String>,
}

pub async fn remove(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    let removed = passkeys::remove(
        &state.store,
        &settings,
        &user.account,
        &id,
        &client.to_string(),
    )
    .await
    .map_err(internal)?;
    if !removed {
        return Err(WebError::NotFound);
    }
    state.delivery_wake.notify_one();
    Ok(Redirect::to("/profile?saved=passkey-removed#passkeys").into_response())
}

/// Starts a passwordless sign-in: options without `allowCredentials`.
pub async fn login_start(
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    match passkeys::start_authentication(&state.store, &settings).await {
        Ok(started) => Ok(Json(started).into_response()),
        Err(e) => ceremony_error(&ctx.tr, e),
    }
}

#[derive(Deserialize)]
pub struct LoginFinishForm {
    #[serde(default)]
    pub(super) ceremony: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get()`, as JSON.
    #[serde(default)]
    pub(super) credential: String,
    next: Option<String>,
}

/// Finishes a passwordless sign-in: a verified passkey starts the session like a right
/// password does (the browser's previous session ends), and the reader goes on to `next`.
pub async fn login_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: PageCtx,
    headers: HeaderMap,
    Form(form): Form<LoginFinishForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let ip = ip.to_string();
    let next = safe_next(form.next.as_deref());
    let outcome = passkeys::finish_authentication(
        &state.store,
        &settings,
        &form.ceremony,
        &form.credential,
        &ip,
    )
    .await
    .map_err(internal)?;
    let account = match outcome {
        PasskeySignIn::Success(account) => account,
        PasskeySignIn::Throttled => return Err(WebError::TooManyRequests),
        PasskeySignIn::Refused => {
            return Ok(refusal(
                StatusCode::UNAUTHORIZED,
                ctx.tr.t("portal-passkey-login-failed"),
            ));
        }
        PasskeySignIn::Disabled => {
            return Ok(refusal(
                StatusCode::UNAUTHORIZED,
                ctx.tr.t("portal-login-disabled"),
            ));
        }
        PasskeySignIn::Expired => {
            return Ok(refusal(
                StatusCode::UNAUTHORIZED,
                ctx.tr.t("portal-login-expired"),
            ));
        }
    };
    let started = sessions::start_by(
        &state.store,
        &settings,
        &Principal {
            kind: SessionKind::Portal,
            id: &account.id,
            audit_actor: &account.address,
        },
        Some(passkeys::METHOD),
        cookies::value(&headers, cookies::PORTAL),
        &ip,
    )
    .await?;
    let target = if must_change_password(&account, &settings) {
        welcome_url(&next)
    } else {
        next
    };
    Ok((
        AppendHeaders([(
            header::SET_COOKIE,
            cookies::set_portal(&started.token, started.max_age),
        )]),
        Json(Done { redirect: target }),
    )
        .into_response())
}

/// The portal's one script, from this origin (the CSP of the pages that load it allows
/// exactly `script-src 'self'`).
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../static/passkey.js"),
    )
}
