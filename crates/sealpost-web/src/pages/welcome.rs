//! The first sign-in with a generated password: the recipient chooses their own password and,
//! if they have no usable one yet, a secret question, then continues to where they were going
//! (usually the message they opened, whose temporary token travels in `next`).
//!
//! This page changes factors without asking for the current password: it is only reachable
//! while the account must replace a generated password, and every way into that state (a new
//! account, a reset by answer, an administrator's reset) ends all sessions, so this session
//! was started moments ago by signing in with exactly that password. Nor does it mail a
//! notice: the event that issued the generated password already told the holder (a notice or
//! the credentials mail).
//!
//! The page also offers the optional security phrase (skipped when left empty); the profile
//! changes it later.
//! An account created under `recipients.first_contact = mailbox-code` comes here after its
//! first sign-in with a mailed code: it has no password yet, so it chooses its first one (and
//! a secret question) here; the code to its own mailbox was the re-authentication.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::Settings;
use sealpost_core::accounts::{
    self, STANDARD_QUESTIONS, must_change_password, needs_new_question, question_text,
};
use sealpost_core::{password_policy, phrase};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::next::{query_escape, safe_next};
use crate::guards::page::page_ctx;
use crate::guards::{CsrfForm, PageCtx, SignedIn};
use crate::i18n::Tr;

/// A standard question for a `<select>`: its id and its text in the page's language.
pub struct QuestionOption {
    pub id: &'static str,
    pub text: String,
}

pub fn question_options(tr: &Tr) -> Vec<QuestionOption> {
    STANDARD_QUESTIONS
        .iter()
        .map(|id| QuestionOption {
            id,
            text: question_text(&format!("std:{id}"), tr.lang),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage {
    ctx: PageCtx,
    next: String,
    min_length: String,
    ask_question: bool,
    questions: Vec<QuestionOption>,
    allow_own: bool,
    max_phrase: usize,
    /// The account has no password yet (it signed in with a mailed code): choosing one, not
    /// replacing a generated one.
    first_password: bool,
    error: Option<String>,
}
page_ctx!(WelcomePage);

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The one page a reader who must still replace a generated password may see, so it takes
/// [`SignedIn`] rather than [`crate::guards::Reader`] (which would send them here).
pub async fn form(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
    user: Option<SignedIn>,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    let Some(user) = user else {
        return Ok(Redirect::to(&format!("/login?next={}", query_escape(&next))).into_response());
    };
    let settings = state.settings.get();
    if !must_change_password(&user.account, &settings) {
        return Ok(Redirect::to(&next).into_response());
    }
    page(&user, &settings, next, None, StatusCode::OK)
}

fn page(
    user: &SignedIn,
    settings: &Settings,
    next: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let ctx = user.page();
    let html = render(&WelcomePage {
        questions: question_options(&ctx.tr),
        ctx,
        next,
        min_length: settings.password_min_length.to_string(),
        ask_question: needs_new_question(&user.account, settings),
        allow_own: settings.allow_own_questions,
        max_phrase: phrase::MAX_PHRASE_CHARS,
        first_password: user.account.password_hash.is_empty(),
        error,
    })?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct WelcomeForm {
    next: Option<String>,
    password: Zeroizing<String>,
    password2: Zeroizing<String>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    own_question: Option<String>,
    #[serde(default)]
    answer: Option<Zeroizing<String>>,
    /// Optional; empty skips it.
    #[serde(default)]
    phrase: String,
}

/// Only while the password must still be replaced: this form sets a password without asking
/// for the current one, so an account past the forced change is refused (its profile asks).
pub async fn submit(
    State(state): State<AppState>,
    user: SignedIn,
    CsrfForm(form): CsrfForm<WelcomeForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if !must_change_password(&user.account, &settings) {
        return Err(WebError::Forbidden);
    }
    let next = safe_next(form.next.as_deref());
    let tr = &user.tr;
    if let Err(v) = password_policy::check(
        &form.password,
        &form.password2,
        &user.account.address,
        settings.password_min_length,
    ) {
        let error = Some(tr.t(v.key()));
        return page(&user, &settings, next, error, StatusCode::BAD_REQUEST);
    }
    let question = if needs_new_question(&user.account, &settings) {
        let question = accounts::stored_question(
            form.question.as_deref().filter(|q| !q.is_empty()),
            form.own_question.as_deref(),
            settings.allow_own_questions,
        );
        let answer = form
            .answer
            .as_ref()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty() && a.chars().count() <= accounts::MAX_ANSWER_CHARS);
        match (question, answer) {
            (Some(q), Some(a)) => Some((q, Zeroizing::new(a.to_string()))),
            _ => {
                let error = Some(tr.t("portal-question-required"));
                return page(&user, &settings, next, error, StatusCode::BAD_REQUEST);
            }
        }
    } else {
        None
    };
    let Ok(chosen) = phrase::normalise(&form.phrase) else {
        let error = Some(tr.t("portal-phrase-too-long"));
        return page(&user, &settings, next, error, StatusCode::BAD_REQUEST);
    };
    if let Some(chosen) = &chosen {
        phrase::set(&state.store, &user.account, Some(chosen), None).await?;
    }
    if let Some((q, a)) = &question {
        accounts::set_secret_question(&state.store, &user.account, q, a).await?;
    }
    accounts::change_password(
        &state.store,
        &user.account,
        &form.password,
        Some(&user.token_hash),
    )
    .await?;
    Ok(Redirect::to(&next).into_response())
}
