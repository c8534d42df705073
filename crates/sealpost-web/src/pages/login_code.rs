//! Sign-in with a one-time code mailed to the reader's own address ("e-mail me a code"): the
//! first way in of an account created under `recipients.first_contact = mailbox-code`, and an
//! alternative to the password where `recipients.code_sign_in` allows it. Known and unknown
//! addresses get the same pages and statuses (see [`sealpost_core::mailbox_code`]); after the
//! code an account without a password goes to the welcome page to choose one, then on to
//! `next` (usually the message it opened).
//! Pages use the browser's language only: the account's language would reveal the account.
//
// Passkey registration after a first sign-in (a later issue) belongs on the welcome page,
// next to choosing the password; nothing here needs to change for it.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sealpost_core::mailbox_code::{self, CodeRequest, CodeSignIn};
use sealpost_core::recovery::CODE_VALID_SECS;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::next::safe_next;
use crate::guards::page::page_ctx;
use crate::guards::{ClientIp, PageCtx};

/// Longer input is no address; refusing it early keeps lookups cheap.
const MAX_ADDRESS_CHARS: usize = 320;

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage {
    ctx: PageCtx,
    next: String,
    address: String,
    minutes: String,
    error: Option<String>,
}
page_ctx!(CodePage);

fn clean_address(address: &str) -> Result<String, WebError> {
    let a = address.trim();
    if a.is_empty() || a.chars().count() > MAX_ADDRESS_CHARS {
        return Err(WebError::BadRequest);
    }
    Ok(a.to_string())
}

fn code_page(
    ctx: PageCtx,
    next: String,
    address: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let html = render(&CodePage {
        ctx,
        next,
        address,
        minutes: (CODE_VALID_SECS / 60).to_string(),
        error,
    })?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct RequestForm {
    address: String,
    next: Option<String>,
}

/// "E-mail me a code": mails a code where the address may have one, and shows the code step
/// in every case.
pub async fn request(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: PageCtx,
    Form(form): Form<RequestForm>,
) -> Result<Response, WebError> {
    let address = clean_address(&form.address)?;
    let next = safe_next(form.next.as_deref());
    let settings = state.settings.get();
    let ip = ip.to_string();
    match mailbox_code::request_code(&state.store, &state.keys, &settings, &address, &ip).await? {
        CodeRequest::Accepted => {
            state.delivery_wake.notify_one();
            code_page(ctx, next, address, None, StatusCode::OK)
        }
        CodeRequest::Throttled => Err(WebError::TooManyRequests),
    }
}

#[derive(Deserialize)]
pub struct VerifyForm {
    address: String,
    code: Zeroizing<String>,
    next: Option<String>,
}

/// The code step: a right code starts the session (like a right password); an account
/// without a password is sent to choose one first.
pub async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: PageCtx,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Result<Response, WebError> {
    let address = clean_address(&form.address)?;
    let next = safe_next(form.next.as_deref());
    let settings = state.settings.get();
    let ip = ip.to_string();
    let outcome = mailbox_code::sign_in(
        &state.store,
        &state.keys,
        &settings,
        &address,
        &form.code,
        &ip,
    )
    .await?;
    let account = match outcome {
        CodeSignIn::Success(account) => account,
        CodeSignIn::Throttled => return Err(WebError::TooManyRequests),
        CodeSignIn::Wrong => {
            let error = Some(ctx.tr.t("portal-code-wrong"));
            return code_page(ctx, next, address, error, StatusCode::UNAUTHORIZED);
        }
        CodeSignIn::Expired => {
            let error = Some(ctx.tr.t("portal-login-expired"));
            return code_page(ctx, next, address, error, StatusCode::UNAUTHORIZED);
        }
    };
    // Full session or the second-factor step: decided in one place for every first factor.
    super::second_factor::after_first_factor(
        &state,
        &settings,
        &headers,
        &account,
        mailbox_code::METHOD,
        &next,
        &ip,
    )
    .await
}
