//! An administrator's reset, finished by the recipient: the one-time link mailed to the
//! account's address (`/reset/{token}`) opens a form to choose a new password. The token in
//! the link is the credential; the form also carries a value derived from it (like the CSRF
//! token of a signed-in form) and is refused cross-site by the same-origin check. Using the
//! link ends every session and mails the holder a notice.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sealpost_core::{password_policy, recovery};
use sealpost_store::Account;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::forgot::client_text;
use super::render;
use crate::error::WebError;
use crate::i18n::Tr;
use crate::security::same_origin;
use crate::{AppState, Peer};

/// A token is 43 characters of URL-safe base64; anything much longer is not one.
const MAX_TOKEN_CHARS: usize = 64;

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    tr: Tr,
    /// None: the link is unknown, expired or used.
    address: Option<String>,
    token: String,
    csrf: String,
    min_length: String,
    error: Option<String>,
    done: bool,
}

fn form_token(token: &str) -> String {
    sealpost_crypto::hash_token(&format!("reset-form\n{token}"))
}

async fn link_account(state: &AppState, token: &str) -> Result<Option<Account>, WebError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Ok(None);
    }
    Ok(recovery::reset_link_account(&state.store, token).await?)
}

fn show(
    state: &AppState,
    headers: &HeaderMap,
    account: Option<&Account>,
    token: &str,
    error_key: Option<&str>,
    done: bool,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let tr = Tr::for_request(
        headers,
        account.and_then(|a| a.language.as_deref()),
        &settings.default_language,
    );
    let error = error_key.map(|k| tr.t(k));
    let status = match (account, &error) {
        _ if done => StatusCode::OK,
        (None, _) => StatusCode::NOT_FOUND,
        (Some(_), Some(_)) => StatusCode::BAD_REQUEST,
        (Some(_), None) => StatusCode::OK,
    };
    let page = ResetPage {
        tr,
        address: account.map(|a| a.address.clone()),
        token: token.to_string(),
        csrf: form_token(token),
        min_length: settings.password_min_length.to_string(),
        error,
        done,
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let account = link_account(&state, &token).await?;
    show(&state, &headers, account.as_ref(), &token, None, false)
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    password: Zeroizing<String>,
    password2: Zeroizing<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, WebError> {
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    if !sealpost_crypto::ct_eq(form_token(&token).as_bytes(), form.csrf.as_bytes()) {
        return Err(WebError::Forbidden);
    }
    let Some(account) = link_account(&state, &token).await? else {
        return show(&state, &headers, None, &token, None, false);
    };
    let settings = state.settings.get();
    if let Err(v) = password_policy::check(
        &form.password,
        &form.password2,
        &account.address,
        settings.password_min_length,
    ) {
        return show(
            &state,
            &headers,
            Some(&account),
            &token,
            Some(v.key()),
            false,
        );
    }
    let client = client_text(&state, peer, &headers);
    if !recovery::set_password_by_link(&state.store, &settings, &token, &form.password, &client)
        .await?
    {
        return show(&state, &headers, None, &token, None, false);
    }
    state.delivery_wake.notify_one();
    show(&state, &headers, Some(&account), &token, None, true)
}
