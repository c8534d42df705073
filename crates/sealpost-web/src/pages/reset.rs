//! An administrator's reset, finished by the recipient: the one-time link mailed to the
//! account's address (`/reset/{token}`) opens a form to choose a new password. The token in
//! the link is the credential; the form also carries a value derived from it (like the CSRF
//! token of a signed-in form, checked by [`CsrfForm`]) and is refused cross-site by the
//! same-origin layer. Using the link ends every session and mails the holder a notice.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sealpost_core::{password_policy, recovery};
use sealpost_store::Account;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::{ClientIp, CsrfForm, PageCtx, ResetLink};
use std::sync::Arc;

use crate::brand::PortalBrand;
use crate::i18n::Tr;

/// A token is 43 characters of URL-safe base64; anything much longer is not one.
const MAX_TOKEN_CHARS: usize = 64;

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    tr: Tr,
    brand: Arc<PortalBrand>,
    /// None: the link is unknown, expired or used.
    address: Option<String>,
    token: String,
    csrf: String,
    min_length: String,
    error: Option<String>,
    done: bool,
}

async fn link_account(state: &AppState, token: &str) -> Result<Option<Account>, WebError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Ok(None);
    }
    Ok(recovery::reset_link_account(&state.store, token).await?)
}

/// What the page shows besides the link: the account it resets (in its language), an error,
/// or that the password was set.
struct Shown<'a> {
    account: Option<&'a Account>,
    error_key: Option<&'a str>,
    done: bool,
}

impl<'a> Shown<'a> {
    fn form(account: Option<&'a Account>) -> Self {
        Shown {
            account,
            error_key: None,
            done: false,
        }
    }
}

fn show(
    state: &AppState,
    ctx: PageCtx,
    link: ResetLink,
    shown: Shown<'_>,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let account = shown.account;
    let tr = ctx
        .tr
        .preferring(account.and_then(|a| a.language.as_deref()));
    let error = shown.error_key.map(|k| tr.t(k));
    let status = match (account, &error) {
        _ if shown.done => StatusCode::OK,
        (None, _) => StatusCode::NOT_FOUND,
        (Some(_), Some(_)) => StatusCode::BAD_REQUEST,
        (Some(_), None) => StatusCode::OK,
    };
    let page = ResetPage {
        brand: PortalBrand::current(),
        tr,
        address: account.map(|a| a.address.clone()),
        token: link.token,
        csrf: link.csrf,
        min_length: settings.password_min_length.to_string(),
        error,
        done: shown.done,
    };
    Ok((status, render(&page)?).into_response())
}

pub async fn form(
    State(state): State<AppState>,
    ctx: PageCtx,
    link: ResetLink,
) -> Result<Response, WebError> {
    let account = link_account(&state, &link.token).await?;
    show(&state, ctx, link, Shown::form(account.as_ref()))
}

#[derive(Deserialize)]
pub struct ResetForm {
    password: Zeroizing<String>,
    password2: Zeroizing<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: PageCtx,
    link: ResetLink,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<Response, WebError> {
    let Some(account) = link_account(&state, &link.token).await? else {
        return show(&state, ctx, link, Shown::form(None));
    };
    let settings = state.settings.get();
    if let Err(v) = password_policy::check(
        &form.password,
        &form.password2,
        &account.address,
        settings.password_min_length,
    ) {
        let shown = Shown {
            account: Some(&account),
            error_key: Some(v.key()),
            done: false,
        };
        return show(&state, ctx, link, shown);
    }
    let client = ip.to_string();
    if !recovery::set_password_by_link(
        &state.store,
        &settings,
        &link.token,
        &form.password,
        &client,
    )
    .await?
    {
        return show(&state, ctx, link, Shown::form(None));
    }
    state.delivery_wake.notify_one();
    let shown = Shown {
        account: Some(&account),
        error_key: None,
        done: true,
    };
    show(&state, ctx, link, shown)
}
