//! Forgotten password: address → secret question → right answer → a new generated password,
//! shown once in the browser. Known and unknown addresses get the same pages: an unknown
//! address (or an account without a question) is asked a stable decoy question, every answer
//! costs one Argon2 verification, and wrong answers lock every address alike.
//! Pages use the browser's language only: the account's language would reveal the account.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sealpost_core::accounts::{
    self, MAX_ANSWER_CHARS, ResetOutcome, ResetStart, question_text, reset_question,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::error::WebError;
use crate::i18n::Tr;
use crate::security::same_origin;
use crate::{AppState, Peer};

/// Longer input is no address; refusing it early keeps lookups cheap.
const MAX_ADDRESS_CHARS: usize = 320;

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    tr: Tr,
    address: String,
    /// Some(text) on the question step.
    question: Option<String>,
    error: Option<String>,
    blocked: bool,
}

#[derive(Template)]
#[template(path = "forgot_done.html")]
struct DonePage<'a> {
    tr: Tr,
    password: &'a str,
}

fn tr(state: &AppState, headers: &HeaderMap) -> Tr {
    Tr::for_request(headers, None, &state.settings.get().default_language)
}

fn show(page: ForgotPage, status: StatusCode) -> Result<Response, WebError> {
    Ok((status, render(&page)?).into_response())
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    show(
        ForgotPage {
            tr: tr(&state, &headers),
            address: String::new(),
            question: None,
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

async fn question_step(
    state: &AppState,
    tr: Tr,
    address: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    match reset_question(&state.store, &state.keys, &settings, &address).await? {
        ResetStart::Ask(stored) => {
            let question = Some(question_text(&stored, tr.lang));
            show(
                ForgotPage {
                    tr,
                    address,
                    question,
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
            tr,
            address,
            question: None,
            error: None,
            blocked: true,
        },
        StatusCode::FORBIDDEN,
    )
}

pub async fn submit_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AddressForm>,
) -> Result<Response, WebError> {
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    let address = clean_address(&form.address)?;
    let tr = tr(&state, &headers);
    question_step(&state, tr, address, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct AnswerForm {
    address: String,
    answer: Zeroizing<String>,
}

pub async fn submit_answer(
    State(state): State<AppState>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Form(form): Form<AnswerForm>,
) -> Result<Response, WebError> {
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    let address = clean_address(&form.address)?;
    if form.answer.chars().count() > MAX_ANSWER_CHARS {
        return Err(WebError::BadRequest);
    }
    let tr = tr(&state, &headers);
    let settings = state.settings.get();
    let ip = crate::security::client_ip(&settings, Some(peer), &headers)
        .unwrap_or(peer.ip())
        .to_string();
    match accounts::reset_with_answer(&state.store, &settings, &address, &form.answer, &ip).await? {
        ResetOutcome::NewPassword(password) => {
            let html = render(&DonePage {
                tr,
                password: &password,
            })?;
            Ok(html.into_response())
        }
        ResetOutcome::Wrong => {
            let error = Some(tr.t("portal-forgot-wrong"));
            question_step(&state, tr, address, error, StatusCode::UNAUTHORIZED).await
        }
        ResetOutcome::Blocked => blocked(tr, address),
        ResetOutcome::Throttled => Err(WebError::TooManyRequests),
    }
}
