//! Forgotten password: address → secret question (and, under `security.recovery =
//! answer+code`, a one-time code mailed to the account) → right answer and code → a new
//! generated password, shown once in the browser; the holder gets a notice mail. Known and
//! unknown addresses get the same pages: an unknown address (or an account without a usable
//! question) is asked a stable decoy question and gets no mail, every answer costs one Argon2
//! verification, and wrong answers lock every address alike.
//! Pages use the browser's language only: the account's language would reveal the account.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sealpost_core::accounts::{
    self, MAX_ANSWER_CHARS, ResetOutcome, ResetStart, question_text, reset_question,
};
use sealpost_core::settings::RecoveryPolicy;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::{ClientIp, PageCtx};
use std::sync::Arc;

use crate::brand::PortalBrand;
use crate::i18n::Tr;

/// Longer input is no address; refusing it early keeps lookups cheap.
const MAX_ADDRESS_CHARS: usize = 320;

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    tr: Tr,
    brand: Arc<PortalBrand>,
    address: String,
    /// Some(text) on the question step.
    question: Option<String>,
    /// The question step also asks for the mailed code.
    ask_code: bool,
    error: Option<String>,
    blocked: bool,
}

#[derive(Template)]
#[template(path = "forgot_done.html")]
struct DonePage<'a> {
    tr: Tr,
    brand: Arc<PortalBrand>,
    password: &'a str,
}

fn asks_code(state: &AppState) -> bool {
    state.settings.get().recovery_policy == RecoveryPolicy::AnswerAndCode
}

fn show(page: ForgotPage, status: StatusCode) -> Result<Response, WebError> {
    Ok((status, render(&page)?).into_response())
}

/// The forgot pages have no session: [`PageCtx`] gives the browser's language.
pub async fn form(ctx: PageCtx) -> Result<Response, WebError> {
    show(
        ForgotPage {
            brand: PortalBrand::current(),
            tr: ctx.tr,
            address: String::new(),
            question: None,
            ask_code: false,
            error: None,
            blocked: false,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct AddressForm {
    address: String,
}

fn clean_address(address: &str) -> Result<String, WebError> {
    let a = address.trim();
    if a.is_empty() || a.chars().count() > MAX_ADDRESS_CHARS {
        return Err(WebError::BadRequest);
    }
    Ok(a.to_string())
}

/// The question page; `first` (the address step) also mails the code where the policy asks
/// for one, while showing it again after a wrong answer does not.
async fn question_step(
    state: &AppState,
    tr: Tr,
    address: String,
    first: bool,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let start = if first {
        accounts::begin_reset(&state.store, &state.keys, &settings, &address).await?
    } else {
        reset_question(&state.store, &state.keys, &settings, &address).await?
    };
    match start {
        ResetStart::Ask(stored) => {
            let question = Some(question_text(&stored, tr.lang));
            show(
                ForgotPage {
                    brand: PortalBrand::current(),
                    tr,
                    address,
                    question,
                    ask_code: asks_code(state),
                    error,
                    blocked: false,
                },
                status,
            )
        }
        ResetStart::Blocked => blocked(tr, address),
    }
}

fn blocked(tr: Tr, address: String) -> Result<Response, WebError> {
    show(
        ForgotPage {
            brand: PortalBrand::current(),
            tr,
            address,
            question: None,
            ask_code: false,
            error: None,
            blocked: true,
        },
        StatusCode::FORBIDDEN,
    )
}

pub async fn submit_address(
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<AddressForm>,
) -> Result<Response, WebError> {
    let address = clean_address(&form.address)?;
    question_step(&state, ctx.tr, address, true, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct AnswerForm {
    address: String,
    /// The mailed code (absent under `answer-only`).
    #[serde(default)]
    code: Zeroizing<String>,
    answer: Zeroizing<String>,
}

pub async fn submit_answer(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: PageCtx,
    Form(form): Form<AnswerForm>,
) -> Result<Response, WebError> {
    let address = clean_address(&form.address)?;
    if form.answer.chars().count() > MAX_ANSWER_CHARS {
        return Err(WebError::BadRequest);
    }
    let tr = ctx.tr;
    let settings = state.settings.get();
    let ip = ip.to_string();
    let outcome = accounts::reset_with_answer(
        &state.store,
        &state.keys,
        &settings,
        &address,
        &form.code,
        &form.answer,
        &ip,
    )
    .await?;
    match outcome {
        ResetOutcome::NewPassword(password) => {
            state.delivery_wake.notify_one();
            let html = render(&DonePage {
                brand: PortalBrand::current(),
                tr,
                password: &password,
            })?;
            Ok(html.into_response())
        }
        ResetOutcome::Wrong => {
            let error = Some(tr.t(if asks_code(&state) {
                "portal-forgot-wrong-code"
            } else {
                "portal-forgot-wrong"
            }));
            question_step(&state, tr, address, false, error, StatusCode::UNAUTHORIZED).await
        }
        ResetOutcome::Blocked => blocked(tr, address),
        ResetOutcome::Throttled => Err(WebError::TooManyRequests),
    }
}
