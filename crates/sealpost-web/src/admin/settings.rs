//! Mail, security, network and branding settings: one form per group of the settings
//! registry in core, which also validates. Values are stored in the database and reloaded at
//! once on this node; other nodes follow within seconds.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::admin::{self, update_settings};
use sealpost_core::settings::{Group, SettingDef, SettingError, Widget};
use serde::Deserialize;

use super::auth::admin_error;
use super::{AdminUser, render_status};
use crate::AppState;
use crate::error::WebError;
use crate::guards::CsrfForm;
use crate::guards::csrf::NoFields;

pub struct FieldView {
    key: &'static str,
    label: &'static str,
    help: &'static str,
    kind: &'static str,
    value: String,
    checked: bool,
    options: Vec<(&'static str, &'static str, bool)>,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    csrf: String,
    admin_name: String,
    section: String,
    title: &'static str,
    fields: Vec<FieldView>,
    notice: Option<String>,
    error: Option<String>,
    test_result: Option<(bool, String)>,
    new_token: Option<String>,
    /// This group's settings that take per-domain overrides: (key, label).
    domain_keys: Vec<(&'static str, &'static str)>,
    /// Their overrides as stored (`KEY@domain`, value).
    overrides: Vec<(String, String)>,
    /// On the branding form: the saved brand, for the preview.
    preview: Option<crate::brand::PortalBrand>,
}

fn current_values(state: &AppState) -> HashMap<String, String> {
    state
        .settings
        .get()
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

fn view(def: &SettingDef, value: String) -> FieldView {
    let kind = match def.widget {
        Widget::Lines => "list",
        Widget::Number => "number",
        Widget::Toggle => "bool",
        Widget::Choice(_) => "select",
        Widget::Text => "text",
    };
    let options = match def.widget {
        Widget::Choice(opts) => opts.iter().map(|(v, l)| (*v, *l, *v == value)).collect(),
        _ => Vec::new(),
    };
    FieldView {
        key: def.key,
        label: def.label,
        help: def.help,
        kind,
        checked: value == "true",
        value,
        options,
    }
}

fn views(group: Group, values: &HashMap<String, String>) -> Vec<FieldView> {
    group
        .settings()
        .map(|d| view(d, values.get(d.key).cloned().unwrap_or_default()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    user: AdminUser,
    name: &str,
    values: Option<HashMap<String, String>>,
    notice: Option<String>,
    error: Option<String>,
    test_result: Option<(bool, String)>,
    new_token: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let group = Group::from_slug(name).ok_or(WebError::NotFound)?;
    let values = values.unwrap_or_else(|| current_values(state));
    render_status(
        status,
        &SettingsPage {
            csrf: user.csrf,
            admin_name: user.admin.name,
            section: name.to_string(),
            title: group.title(),
            fields: views(group, &values),
            notice,
            error,
            test_result,
            new_token,
            domain_keys: domain_keys(group),
            overrides: overrides(state, group),
            preview: (group == Group::Branding)
                .then(|| crate::brand::PortalBrand::of(&state.settings.get())),
        },
    )
}

fn domain_keys(group: Group) -> Vec<(&'static str, &'static str)> {
    group
        .settings()
        .filter(|d| d.per_domain)
        .map(|d| (d.key, d.label))
        .collect()
}

fn overrides(state: &AppState, group: Group) -> Vec<(String, String)> {
    let keys = domain_keys(group);
    state
        .settings
        .get()
        .override_pairs()
        .into_iter()
        .filter(|(name, _)| {
            name.split_once('@')
                .is_some_and(|(key, _)| keys.iter().any(|(k, _)| *k == key))
        })
        .collect()
}

#[derive(Deserialize)]
pub struct DomainOverride {
    key: String,
    domain: String,
    value: String,
}

/// Sets one per-domain override (`KEY@DOMAIN`) of a setting of this group, validated by the
/// registry like every other value.
pub async fn set_domain_override(
    State(state): State<AppState>,
    user: AdminUser,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<DomainOverride>,
) -> Result<Response, WebError> {
    let group = Group::from_slug(&name).ok_or(WebError::NotFound)?;
    let known = domain_keys(group).iter().any(|(k, _)| *k == form.key);
    let domain = form.domain.trim().trim_end_matches('.');
    let error = if !known {
        Some(format!("{} cannot be set per domain here.", form.key))
    } else if domain.is_empty() {
        Some("Name the recipient domain.".to_string())
    } else {
        let stored = format!("{}@{domain}", form.key);
        match update_settings(
            &state.store,
            &state.settings,
            &[(stored.as_str(), form.value.clone())],
            &user.actor(),
        )
        .await
        {
            Ok(_) => None,
            Err(admin::AdminError::InvalidSetting(e)) => Some(e.to_string()),
            Err(e) => return Err(admin_error(e)),
        }
    };
    match error {
        None => Ok(Redirect::to(&format!("/admin/settings/{name}?saved=1")).into_response()),
        Some(error) => {
            page(
                &state,
                user,
                &name,
                None,
                None,
                Some(error),
                None,
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    user: AdminUser,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> Result<Response, WebError> {
    let notice = q
        .saved
        .map(|_| "Saved. The change is in effect on every node within seconds.".to_string());
    page(
        &state,
        user,
        &name,
        None,
        notice,
        None,
        None,
        None,
        StatusCode::OK,
    )
    .await
}

/// The admin's message for a refused value: the field's label and the reason.
fn refusal(def: &SettingDef, error: SettingError) -> String {
    match error {
        SettingError::InvalidValue { reason, .. } => format!("{}: {reason}", def.label),
        other => other.to_string(),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    user: AdminUser,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let group = Group::from_slug(&name).ok_or(WebError::NotFound)?;
    // A checkbox sends its value only when ticked.
    let submitted = |def: &SettingDef| match (form.get(def.key), def.widget) {
        (Some(v), _) => v.clone(),
        (None, Widget::Toggle) => "false".to_string(),
        (None, _) => String::new(),
    };
    let mut changes: Vec<(&str, String)> = Vec::new();
    let mut errors = Vec::new();
    for def in group.settings() {
        match def.check(&submitted(def)) {
            Ok(v) => changes.push((def.key, v)),
            Err(e) => errors.push(refusal(def, e)),
        }
    }
    if !errors.is_empty() {
        let mut values = current_values(&state);
        for def in group.settings() {
            values.insert(def.key.to_string(), submitted(def));
        }
        return page(
            &state,
            user,
            &name,
            Some(values),
            None,
            Some(errors.join(" ")),
            None,
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    update_settings(&state.store, &state.settings, &changes, &user.actor())
        .await
        .map_err(admin_error)?;
    Ok(Redirect::to(&format!("/admin/settings/{name}?saved=1")).into_response())
}

/// Connects to the configured next hop (the setting, else this node's relay) and reports.
pub async fn test_hop(
    State(state): State<AppState>,
    user: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let hop = state.settings.get().next_hop.clone();
    let result = if hop.is_empty() {
        (
            false,
            "No next hop is set here; the nodes use their configured delivery.relay.".to_string(),
        )
    } else {
        match admin::test_next_hop(&hop).await {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        }
    };
    page(
        &state,
        user,
        "mail",
        None,
        None,
        None,
        Some(result),
        None,
        StatusCode::OK,
    )
    .await
}

/// Makes a new /metrics bearer token, shows it once, and stores only its hash.
pub async fn new_metrics_token(
    State(state): State<AppState>,
    user: AdminUser,
    _: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let token = admin::new_metrics_token(&state.store, &state.settings, &user.actor())
        .await
        .map_err(admin_error)?;
    page(
        &state,
        user,
        "network",
        None,
        Some("A new metrics token was made; the previous one no longer works.".into()),
        None,
        None,
        Some(token.to_string()),
        StatusCode::OK,
    )
    .await
}
