//! User management: search with paging, an account's page, and the actions on it. The
//! actions are the core functions the CLI uses too.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::admin;
use sealpost_core::url;
use sealpost_store::{Account, AccountStatus};
use serde::Deserialize;

use super::auth::admin_error;
use super::{AdminUser, fmt_date, fmt_opt_time, fmt_time, parse_date_end, render, render_status};
use crate::AppState;
use crate::error::WebError;
use crate::guards::CsrfForm;

pub const PAGE_SIZE: i64 = 50;

pub struct Row {
    pub id: String,
    pub address: String,
    pub status: &'static str,
    pub created: String,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    csrf: String,
    admin_name: String,
    q: String,
    rows: Vec<Row>,
    total: i64,
    page: i64,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

fn query_link(q: &str, page: i64) -> String {
    let enc = url::encode(q, url::QUERY_VALUE);
    format!("/admin/users?q={enc}&page={page}")
}

fn status_text(a: &Account, now: i64) -> &'static str {
    if a.status == AccountStatus::Disabled {
        "deactivated"
    } else if a.locked_until.is_some_and(|t| t > now) {
        "locked"
    } else if a.valid_until.is_some_and(|t| t < now) {
        "expired"
    } else {
        "active"
    }
}

pub async fn list(
    State(state): State<AppState>,
    user: AdminUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let q: String = query.q.trim().chars().take(320).collect();
    let found = admin::account_page(&state.store, &q, query.page.unwrap_or(1), PAGE_SIZE).await?;
    let (total, page, pages) = (found.total, found.page, found.pages);
    let now = sealpost_store::unix_now();
    let rows = found
        .accounts
        .iter()
        .map(|a| Row {
            id: a.id.clone(),
            address: a.address.clone(),
            status: status_text(a, now),
            created: fmt_date(a.created_at),
            last_login: fmt_opt_time(a.last_login_at),
        })
        .collect();
    render(&ListPage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        prev: (page > 1).then(|| query_link(&q, page - 1)),
        next: (page < pages).then(|| query_link(&q, page + 1)),
        q,
        rows,
        total,
        page,
        pages,
    })
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    csrf: String,
    admin_name: String,
    a: Account,
    status: &'static str,
    created: String,
    last_login: String,
    valid_until: String,
    valid_until_date: String,
    locked_until: String,
    keys: Vec<(u32, String)>,
    /// `recipients.first_contact` when the account was created: `sender` or `mailbox-code`.
    first_contact: String,
    /// Whether a password is set (never the password).
    has_password: bool,
    /// The second factor (never a secret): "yes, since …" or "no".
    totp: String,
    /// The next sign-in must enrol a new authenticator (an administrator asked for it).
    must_enrol: bool,
    recovery_left: i64,
    devices: usize,
    passkeys: usize,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
    to: Option<String>,
    via: Option<String>,
}

async fn account(state: &AppState, id: &str) -> Result<Account, WebError> {
    admin::account_by_id(&state.store, id)
        .await?
        .ok_or(WebError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let a = account(&state, &id).await?;
    let notice = match q.done.as_deref() {
        Some("reset-password") => Some(match (q.via.as_deref(), q.to.as_deref()) {
            (Some("sender"), Some(to)) => format!(
                "A new password was generated and mailed to the last sender, {to}, who hands it on by another channel. The recipient got a notice."
            ),
            (_, to) => format!(
                "The old password no longer works. A one-time link to set a new password (valid 24 hours) was mailed to {}.",
                to.unwrap_or("the recipient")
            ),
        }),
        Some("disable") => Some("The account is deactivated.".into()),
        Some("enable") => Some("The account is active again.".into()),
        Some("unlock") => Some("The account is unlocked.".into()),
        Some("validity") => Some("The validity was changed.".into()),
        Some("rotate") => Some("A new key version was added; older messages stay readable.".into()),
        Some("reset-factors") => Some("The second factors were reset (authenticator, recovery codes, remembered devices; sessions ended). The recipient got a notice.".into()),
        Some("require-reenrol") => Some("The second factors were reset; the next sign-in enrols a new authenticator. The recipient got a notice.".into()),
        _ => None,
    };
    user_page(&state, user, a, notice, None, StatusCode::OK).await
}

async fn user_page(
    state: &AppState,
    user: AdminUser,
    a: Account,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let now = sealpost_store::unix_now();
    let keys = admin::key_history(&state.store, &a.id)
        .await?
        .into_iter()
        .map(|(v, t)| (v, fmt_time(t)))
        .collect();
    let access = admin::account_access(&state.store, &a.id).await?;
    let (first_contact, has_password) = access.map_or_else(
        || ("sender".to_string(), !a.password_hash.is_empty()),
        |x| (x.first_contact, x.has_password),
    );
    let factors = sealpost_core::second_factor::summary(&state.store, &a).await?;
    render_status(
        status,
        &UserPage {
            totp: factors
                .totp_enrolled_at
                .map(|t| format!("yes, since {}", fmt_time(t)))
                .unwrap_or_else(|| "no".into()),
            must_enrol: factors.must_enrol,
            recovery_left: factors.unused_recovery_codes,
            devices: factors.devices.len(),
            passkeys: factors.passkeys,
            csrf: user.csrf,
            admin_name: user.admin.name,
            status: status_text(&a, now),
            created: fmt_time(a.created_at),
            last_login: fmt_opt_time(a.last_login_at),
            valid_until: a
                .valid_until
                .map(fmt_time)
                .unwrap_or_else(|| "unlimited".into()),
            valid_until_date: a.valid_until.map(fmt_date).unwrap_or_default(),
            locked_until: a
                .locked_until
                .filter(|t| *t > now)
                .map(fmt_time)
                .unwrap_or_else(|| "not locked".into()),
            keys,
            first_contact,
            has_password,
            notice,
            error,
            a,
        },
    )
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    valid_until: String,
}

pub async fn action(
    State(state): State<AppState>,
    user: AdminUser,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, WebError> {
    let a = account(&state, &id).await?;
    let actor = user.actor();
    let mut extra = String::new();
    match action.as_str() {
        "reset-password" => {
            let settings = state.settings.get();
            match admin::reset_user_password(&state.store, &settings, &a, &actor).await {
                Ok(sent) => {
                    extra = format!(
                        "&to={}&via={}",
                        url::encode(&sent.to, url::COMPONENT),
                        sent.delivery
                    )
                }
                Err(admin::AdminError::NoResetAddress) => {
                    return user_page(
                        &state,
                        user,
                        a,
                        None,
                        Some("There is no address to send the new password to.".into()),
                        StatusCode::BAD_REQUEST,
                    )
                    .await;
                }
                Err(e) => return Err(admin_error(e)),
            }
        }
        "disable" => admin::set_account_active(&state.store, &a, false, &actor)
            .await
            .map_err(admin_error)?,
        "enable" => admin::set_account_active(&state.store, &a, true, &actor)
            .await
            .map_err(admin_error)?,
        "unlock" => admin::unlock_account(&state.store, &a, &actor)
            .await
            .map_err(admin_error)?,
        "validity" => {
            let until = if form.valid_until.trim().is_empty() {
                None
            } else {
                match parse_date_end(&form.valid_until) {
                    Some(t) => Some(t),
                    None => {
                        return user_page(
                            &state,
                            user,
                            a,
                            None,
                            Some(
                                "Enter the date as YYYY-MM-DD, or leave it empty for unlimited."
                                    .into(),
                            ),
                            StatusCode::BAD_REQUEST,
                        )
                        .await;
                    }
                }
            };
            admin::set_validity(&state.store, &a, until, &actor)
                .await
                .map_err(admin_error)?
        }
        "reset-factors" | "require-reenrol" => {
            let settings = state.settings.get();
            let require = action == "require-reenrol";
            admin::reset_second_factors(&state.store, &settings, &a, require, &actor)
                .await
                .map_err(admin_error)?;
            state.delivery_wake.notify_one();
        }
        "rotate" => {
            admin::rotate_key(&state.store, &state.keys, &a, &actor)
                .await
                .map_err(admin_error)?;
        }
        _ => return Err(WebError::NotFound),
    }
    Ok(Redirect::to(&format!(
        "/admin/users/{}?done={action}{extra}",
        url::encode(&a.id, url::COMPONENT)
    ))
    .into_response())
}

#[derive(Template)]
#[template(path = "admin/confirm_delete.html")]
struct ConfirmDeletePage {
    csrf: String,
    admin_name: String,
    id: String,
    address: String,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let a = account(&state, &id).await?;
    render(&ConfirmDeletePage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        id: a.id,
        address: a.address,
    })
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "admin/deleted.html")]
struct DeletedPage {
    csrf: String,
    admin_name: String,
    address: String,
}

pub async fn delete(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, WebError> {
    let a = account(&state, &id).await?;
    if form.confirm != "yes" {
        return Ok(Redirect::to(&format!(
            "/admin/users/{}/delete",
            url::encode(&a.id, url::COMPONENT)
        ))
        .into_response());
    }
    admin::delete_account(&state.store, &a, &user.actor())
        .await
        .map_err(admin_error)?;
    render(&DeletedPage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        address: a.address,
    })
}
