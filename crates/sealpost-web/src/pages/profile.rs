//! The recipient's profile: account dates and sign-ins, password, secret question, security
//! phrase, language. Changing the password, the secret question or the security phrase needs
//! the current password (a wrong one counts like a failed sign-in); the first two also mail
//! the holder a notice (the phrase is no sign-in factor; its change is audited). The second
//! factor (authenticator app, recovery codes, remembered devices) is in `profile_factors`; the
//! passkeys section is [`super::passkey`]'s.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::Settings;
use sealpost_core::accounts::{self, needs_new_question, question_text};
use sealpost_core::{password_policy, phrase};
use sealpost_core::{recovery, second_factor};
use sealpost_mime::security_mail::NoticeEvent;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use super::welcome::{QuestionOption, question_options};
use crate::AppState;
use crate::error::WebError;
use crate::guards::page::page_ctx;
use crate::guards::{ClientIp, CsrfForm, PageCtx, Reader};
use crate::i18n::Tr;

/// "2026-11-26 10:00 UTC"; the portal has no notion of the reader's time zone.
pub fn format_time(unix: i64) -> String {
    recovery::utc_text(unix)
}

pub struct LanguageOption {
    pub code: &'static str,
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    ctx: PageCtx,
    created_on: String,
    last_login: String,
    prev_login: String,
    valid_until: String,
    validity_days: String,
    question: Option<String>,
    /// The current question no longer counts for a forgotten password (own questions off).
    question_unusable: bool,
    questions: Vec<QuestionOption>,
    allow_own: bool,
    languages: Vec<LanguageOption>,
    /// The reader's security phrase, shown back to them.
    phrase: Option<String>,
    max_phrase: usize,
    min_length: String,
    /// The second factor: when the authenticator was enrolled (None: not enrolled).
    totp_since: Option<String>,
    /// Unused recovery codes.
    recovery_left: String,
    /// The domain requires a second factor (removing it means enrolling again at sign-in).
    second_required: bool,
    devices: Vec<DeviceRow>,
    notice: Option<String>,
    error: Option<String>,
    /// The reader's passkeys (`passkeys.html`).
    passkeys: Vec<super::passkey::PasskeyRow>,
}
page_ctx!(ProfilePage);

/// A remembered device in the profile's list.
pub struct DeviceRow {
    /// The hash of its token, which names it for revocation (not the token).
    pub id: String,
    pub label: String,
    pub created: String,
    pub last_used: String,
}

fn login_text(tr: &Tr, at: Option<i64>, ip: Option<&str>) -> String {
    match at {
        Some(at) => sealpost_i18n::tf(
            tr.lang,
            "portal-login-at",
            &[("time", &format_time(at)), ("ip", ip.unwrap_or("?"))],
        ),
        None => tr.t("portal-never"),
    }
}

pub(super) async fn page(
    state: &AppState,
    user: &Reader,
    settings: &Settings,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let phrase = phrase::current(&state.store, &user.account).await?;
    let factors = second_factor::summary(&state.store, &user.account).await?;
    let passkeys = super::passkey::rows(state, user).await?;
    let a = &user.account;
    let tr = &user.tr;
    let languages = sealpost_i18n::available()
        .iter()
        .map(|code| LanguageOption {
            code,
            name: sealpost_i18n::t(code, "common.language_name"),
            selected: *code == tr.lang,
        })
        .collect();
    let html = render(&ProfilePage {
        created_on: format_time(a.created_at),
        last_login: login_text(tr, a.last_login_at, a.last_login_ip.as_deref()),
        prev_login: login_text(tr, a.prev_login_at, a.prev_login_ip.as_deref()),
        valid_until: a
            .valid_until
            .map(format_time)
            .unwrap_or_else(|| "—".to_string()),
        validity_days: settings.account_validity_days.to_string(),
        question: a
            .secret_question
            .as_deref()
            .map(|q| question_text(q, tr.lang)),
        question_unusable: a.secret_question.is_some() && needs_new_question(a, settings),
        questions: question_options(tr),
        allow_own: settings.allow_own_questions,
        languages,
        phrase,
        max_phrase: phrase::MAX_PHRASE_CHARS,
        min_length: settings.password_min_length.to_string(),
        totp_since: factors.totp_enrolled_at.map(format_time),
        recovery_left: factors.unused_recovery_codes.to_string(),
        second_required: second_factor::domain_requires(settings, a),
        devices: factors
            .devices
            .into_iter()
            .map(|d| DeviceRow {
                id: d.token_hash,
                label: d.user_agent,
                created: format_time(d.created_at),
                last_used: format_time(d.last_used_at),
            })
            .collect(),
        notice,
        error,
        passkeys,
        ctx: user.page(),
    })?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    saved: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: Reader,
    Query(q): Query<ProfileQuery>,
) -> Result<Response, WebError> {
    let tr = &user.tr;
    let notice = match q.saved.as_deref() {
        Some("password") => Some(tr.t("portal-password-saved")),
        Some("question") => Some(tr.t("portal-question-saved")),
        Some("language") => Some(tr.t("portal-language-saved")),
        Some("phrase") => Some(tr.t("portal-phrase-saved")),
        Some("totp-removed") => Some(tr.t("portal-totp-removed")),
        Some("device") => Some(tr.t("portal-device-revoked")),
        Some(other) => super::passkey::saved_notice(tr, other),
        None => None,
    };
    page(
        &state,
        &user,
        &state.settings.get(),
        notice,
        None,
        StatusCode::OK,
    )
    .await
}

/// Re-authentication by the current password (a wrong one counts like a failed sign-in);
/// Some(page) with the error when it is wrong.
pub(super) async fn wrong_current(
    state: &AppState,
    settings: &Settings,
    user: &Reader,
    current: &str,
    client: ClientIp,
) -> Result<Option<Response>, WebError> {
    let client = client.to_string();
    if accounts::reauthenticate(&state.store, settings, &user.account, current, &client).await? {
        return Ok(None);
    }
    let error = Some(user.tr.t("portal-pw-wrong-current"));
    page(state, user, settings, None, error, StatusCode::BAD_REQUEST)
        .await
        .map(Some)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: Zeroizing<String>,
    password: Zeroizing<String>,
    password2: Zeroizing<String>,
}

pub async fn change_password(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    if let Err(v) = password_policy::check(
        &form.password,
        &form.password2,
        &user.account.address,
        settings.password_min_length,
    ) {
        let error = Some(user.tr.t(v.key()));
        return page(
            &state,
            &user,
            &settings,
            None,
            error,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    accounts::change_password(
        &state.store,
        &user.account,
        &form.password,
        Some(&user.token_hash),
    )
    .await?;
    notify(
        &state,
        &settings,
        &user,
        NoticeEvent::PasswordChanged,
        client,
    )
    .await;
    Ok(Redirect::to("/profile?saved=password").into_response())
}

#[derive(Deserialize)]
pub struct QuestionForm {
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    own_question: Option<String>,
    answer: Zeroizing<String>,
    /// The current password (re-authentication); a form without it is refused like a wrong one.
    #[serde(default)]
    current: Zeroizing<String>,
}

/// Mails the holder a notice of a changed factor and wakes the delivery worker.
pub(super) async fn notify(
    state: &AppState,
    settings: &Settings,
    user: &Reader,
    event: NoticeEvent,
    client: ClientIp,
) {
    let client = client.to_string();
    recovery::notify(&state.store, settings, &user.account, event, Some(&client)).await;
    state.delivery_wake.notify_one();
}

pub async fn change_question(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<QuestionForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    let question = accounts::stored_question(
        form.question.as_deref().filter(|q| !q.is_empty()),
        form.own_question.as_deref(),
        settings.allow_own_questions,
    );
    let answer = form.answer.trim();
    let (Some(question), false) = (
        question,
        answer.is_empty() || answer.chars().count() > accounts::MAX_ANSWER_CHARS,
    ) else {
        let error = Some(user.tr.t("portal-question-required"));
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
    accounts::set_secret_question(&state.store, &user.account, &question, answer).await?;
    notify(
        &state,
        &settings,
        &user,
        NoticeEvent::QuestionChanged,
        client,
    )
    .await;
    Ok(Redirect::to("/profile?saved=question").into_response())
}

#[derive(Deserialize)]
pub struct PhraseForm {
    #[serde(default)]
    phrase: String,
    /// The current password (re-authentication); a form without it is refused like a wrong one.
    #[serde(default)]
    current: Zeroizing<String>,
}

/// Sets, changes or (empty) removes the security phrase, after re-authentication.
pub async fn change_phrase(
    State(state): State<AppState>,
    client: ClientIp,
    user: Reader,
    CsrfForm(form): CsrfForm<PhraseForm>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    if let Some(refused) = wrong_current(&state, &settings, &user, &form.current, client).await? {
        return Ok(refused);
    }
    let Ok(chosen) = phrase::normalise(&form.phrase) else {
        let error = Some(user.tr.t("portal-phrase-too-long"));
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
    let client = client.to_string();
    phrase::set(
        &state.store,
        &user.account,
        chosen.as_deref(),
        Some(&client),
    )
    .await?;
    Ok(Redirect::to("/profile?saved=phrase").into_response())
}

#[derive(Deserialize)]
pub struct LanguageForm {
    language: String,
}

pub async fn change_language(
    State(state): State<AppState>,
    user: Reader,
    CsrfForm(form): CsrfForm<LanguageForm>,
) -> Result<Response, WebError> {
    if !accounts::set_language(&state.store, &user.account, &form.language).await? {
        return Err(WebError::BadRequest);
    }
    Ok(Redirect::to("/profile?saved=language").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_time(1_795_687_200), "2026-11-26 10:00 UTC");
    }
}
