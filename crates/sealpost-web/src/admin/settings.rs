//! Mail, security, network and branding settings: one generic form per section. Values are
//! validated, stored in the database, and reloaded at once on this node; other nodes follow
//! within seconds. Fields that only take effect after a restart say so.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::admin::{self, update_settings};
use serde::Deserialize;

use super::auth::admin_error;
use super::{ALLOWED_NETWORKS, AdminUser, METRICS_TOKEN_HASH, parse_network, render_status};
use crate::AppState;
use crate::error::WebError;
use crate::guards::CsrfForm;
use crate::guards::csrf::NoFields;

#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// One entry per line (commas also separate).
    List,
    /// Like List, every entry an IP network or address.
    Networks,
    Number,
    Bool,
    Select(&'static [(&'static str, &'static str)]),
    Color,
    Url,
    Address,
    NextHop,
}

struct FieldDef {
    key: &'static str,
    label: &'static str,
    kind: Kind,
    help: &'static str,
    restart: bool,
}

const fn f(
    key: &'static str,
    label: &'static str,
    kind: Kind,
    help: &'static str,
    restart: bool,
) -> FieldDef {
    FieldDef {
        key,
        label,
        kind,
        help,
        restart,
    }
}

const MAIL: &[FieldDef] = &[
    f(
        "policy.trigger_keywords",
        "Trigger keywords in the subject",
        Kind::List,
        "One per line; a subject containing one is encrypted and the keyword removed.",
        false,
    ),
    f(
        "policy.trigger_header",
        "Trigger header",
        Kind::Text,
        "A mail with this header set to yes is encrypted too.",
        false,
    ),
    f(
        "mail.keep_subject",
        "Keep the original subject in the carrier mail",
        Kind::Bool,
        "Off: a neutral subject replaces it.",
        false,
    ),
    f(
        "policy.internal_domains",
        "Internal domains",
        Kind::List,
        "Recipients in these domains get the mail unencrypted.",
        false,
    ),
    f(
        "delivery.next_hop",
        "Next hop",
        Kind::NextHop,
        "smtp://host:port or maildir:PATH; empty uses the node's configured relay.",
        false,
    ),
    f(
        "limits.max_message_size",
        "Maximum message size (bytes)",
        Kind::Number,
        "",
        false,
    ),
    f(
        "limits.max_recipients",
        "Maximum recipients per message",
        Kind::Number,
        "",
        false,
    ),
    f(
        "mail.notification_from",
        "Notifications come from",
        Kind::Address,
        "Sender address of credentials and password-reset mails.",
        false,
    ),
    f(
        "mail.credentials_to",
        "Credentials of new accounts go to",
        Kind::Text,
        "\"sender\" (the sender of the first mail) or a fixed address.",
        false,
    ),
    f(
        "mail.reset_mail_to",
        "Password resets are mailed to",
        Kind::Select(&[
            ("recipient", "the recipient"),
            ("sender", "the last sender"),
        ]),
        "",
        false,
    ),
    f(
        "delivery.give_up_secs",
        "Give up delivery after (seconds)",
        Kind::Number,
        "Retries back off from the configured first delay (delivery.retry_base_secs, restart) up to this time.",
        false,
    ),
    f(
        "reply.allow_internal_all",
        "Replies may go to internal addresses of the thread",
        Kind::Bool,
        "",
        false,
    ),
    f(
        "reply.max_attachment_bytes",
        "Reply attachments, total bytes (0 = none)",
        Kind::Number,
        "",
        false,
    ),
    f(
        "reply.encrypted_copy",
        "Recipients get an encrypted copy of their reply",
        Kind::Bool,
        "",
        false,
    ),
];

const SECURITY: &[FieldDef] = &[
    f(
        "security.password_min_length",
        "Minimum password length",
        Kind::Number,
        "",
        false,
    ),
    f(
        "security.force_password_change",
        "Generated passwords must be changed at first login",
        Kind::Bool,
        "",
        false,
    ),
    f(
        "security.lockout_threshold",
        "Failed logins before lockout",
        Kind::Number,
        "",
        false,
    ),
    f(
        "security.lockout_secs",
        "Lockout duration (seconds)",
        Kind::Number,
        "",
        false,
    ),
    f(
        "security.secret_answer_max_attempts",
        "Wrong secret answers before the reset is blocked",
        Kind::Number,
        "",
        false,
    ),
    f(
        "security.session_idle_secs",
        "Portal session idle timeout (seconds)",
        Kind::Number,
        "",
        false,
    ),
    f(
        "security.admin_session_idle_secs",
        "Admin session idle timeout (seconds)",
        Kind::Number,
        "Admin sessions also end 8 hours after sign-in.",
        false,
    ),
    f(
        "security.account_validity_days",
        "Account validity after the last login (days)",
        Kind::Number,
        "",
        false,
    ),
    f(
        "security.admin_totp_required",
        "Second factor (TOTP) mandatory for admins",
        Kind::Bool,
        "",
        false,
    ),
    f(
        "portal.temp_open_ttl_secs",
        "Opened secure.htm waits for sign-in (seconds)",
        Kind::Number,
        "",
        false,
    ),
];

const NETWORK: &[FieldDef] = &[
    f(
        "web.public_url",
        "Portal public URL",
        Kind::Url,
        "Baked into every secure.htm sent from now on.",
        false,
    ),
    f(
        "network.legacy_hosts",
        "Legacy host names",
        Kind::List,
        "Old portal names (inside secure.htm files already sent); requests to them are redirected to the public URL. The TLS certificate must cover them.",
        false,
    ),
    f(
        "network.trusted_proxies",
        "Trusted proxies",
        Kind::Networks,
        "Load balancers whose X-Forwarded-For is believed.",
        false,
    ),
    f(
        ALLOWED_NETWORKS,
        "Admin networks",
        Kind::Networks,
        "If set, the admin UI answers only clients in these networks, and /metrics answers them without a token.",
        false,
    ),
];

const BRANDING: &[FieldDef] = &[
    f(
        "branding.org_name",
        "Organisation name",
        Kind::Text,
        "Shown in the portal, secure.htm and generated mails.",
        false,
    ),
    f(
        "branding.accent_color",
        "Accent colour",
        Kind::Color,
        "#RRGGBB",
        false,
    ),
    f(
        "i18n.default_language",
        "Default language",
        Kind::Select(&[("en", "English"), ("de", "Deutsch")]),
        "",
        false,
    ),
];

fn section(name: &str) -> Option<(&'static str, &'static [FieldDef])> {
    match name {
        "mail" => Some(("Mail settings", MAIL)),
        "security" => Some(("Security settings", SECURITY)),
        "network" => Some(("Network settings", NETWORK)),
        "branding" => Some(("Branding", BRANDING)),
        _ => None,
    }
}

pub struct FieldView {
    key: &'static str,
    label: &'static str,
    help: &'static str,
    restart: bool,
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
}

async fn current_values(state: &AppState) -> Result<HashMap<String, String>, WebError> {
    let mut values: HashMap<String, String> = state
        .settings
        .get()
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    values.insert(
        ALLOWED_NETWORKS.to_string(),
        state
            .store
            .setting_value(ALLOWED_NETWORKS)
            .await?
            .unwrap_or_default(),
    );
    Ok(values)
}

fn views(defs: &[FieldDef], values: &HashMap<String, String>) -> Vec<FieldView> {
    defs.iter()
        .map(|d| {
            let value = values.get(d.key).cloned().unwrap_or_default();
            let kind = match d.kind {
                Kind::List | Kind::Networks => "list",
                Kind::Number => "number",
                Kind::Bool => "bool",
                Kind::Select(_) => "select",
                _ => "text",
            };
            let options = match d.kind {
                Kind::Select(opts) => opts.iter().map(|(v, l)| (*v, *l, *v == value)).collect(),
                _ => Vec::new(),
            };
            FieldView {
                key: d.key,
                label: d.label,
                help: d.help,
                restart: d.restart,
                kind,
                checked: value == "true",
                value,
                options,
            }
        })
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
    let (title, defs) = section(name).ok_or(WebError::NotFound)?;
    let values = match values {
        Some(v) => v,
        None => current_values(state).await?,
    };
    render_status(
        status,
        &SettingsPage {
            csrf: user.csrf,
            admin_name: user.admin.name,
            section: name.to_string(),
            title,
            fields: views(defs, &values),
            notice,
            error,
            test_result,
            new_token,
        },
    )
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

fn split_list(v: &str) -> Vec<String> {
    v.split([',', '\n'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks and normalises one submitted value; Err carries the message for the admin.
fn validate(def: &FieldDef, raw: Option<&String>) -> Result<String, String> {
    let raw = raw.map(|s| s.trim()).unwrap_or_default();
    let bad = |why: &str| Err(format!("{}: {why}", def.label));
    match def.kind {
        // A checkbox sends its value only when ticked.
        Kind::Bool => Ok(matches!(raw, "true" | "on" | "1").to_string()),
        Kind::Number => match raw.parse::<u64>() {
            Ok(n) if n <= i64::MAX as u64 => Ok(n.to_string()),
            _ => bad("enter a whole number"),
        },
        Kind::Select(opts) => {
            if opts.iter().any(|(v, _)| *v == raw) {
                Ok(raw.to_string())
            } else {
                bad("choose one of the options")
            }
        }
        Kind::Color => {
            let ok = raw.len() == 7
                && raw.starts_with('#')
                && raw[1..].chars().all(|c| c.is_ascii_hexdigit());
            if ok {
                Ok(raw.to_string())
            } else {
                bad("use the form #RRGGBB")
            }
        }
        Kind::Url => {
            if (raw.starts_with("https://") || raw.starts_with("http://"))
                && !raw.contains(char::is_whitespace)
            {
                Ok(raw.trim_end_matches('/').to_string())
            } else {
                bad("enter a URL starting with https://")
            }
        }
        Kind::Address => {
            if raw.contains('@') && !raw.contains(char::is_whitespace) {
                Ok(raw.to_string())
            } else {
                bad("enter an e-mail address")
            }
        }
        Kind::NextHop => {
            if raw.is_empty() {
                return Ok(String::new());
            }
            admin::check_next_hop(raw)
                .map(|()| raw.to_string())
                .map_err(|e| format!("{}: {e}", def.label))
        }
        Kind::List => {
            let items = split_list(raw);
            if def.key == "policy.trigger_keywords" && items.is_empty() {
                return bad("at least one keyword is needed");
            }
            Ok(items.join("\n"))
        }
        Kind::Networks => {
            let items = split_list(raw);
            if let Some(badnet) = items.iter().find(|n| parse_network(n).is_none()) {
                return Err(format!("{}: {badnet:?} is not a network", def.label));
            }
            Ok(items.join("\n"))
        }
        Kind::Text => {
            if def.key == "mail.credentials_to" && raw != "sender" && !raw.contains('@') {
                return bad("\"sender\" or an e-mail address");
            }
            if def.key == "policy.trigger_header" && (raw.is_empty() || raw.contains([':', ' '])) {
                return bad("a header name without spaces or colons");
            }
            Ok(raw.chars().filter(|c| !c.is_control()).take(500).collect())
        }
    }
}

pub async fn submit(
    State(state): State<AppState>,
    user: AdminUser,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (_, defs) = section(&name).ok_or(WebError::NotFound)?;
    let mut changes: Vec<(&str, String)> = Vec::new();
    let mut errors = Vec::new();
    for def in defs {
        match validate(def, form.get(def.key)) {
            Ok(v) => changes.push((def.key, v)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let mut values = current_values(&state).await?;
        for def in defs {
            if let Some(v) = form.get(def.key) {
                values.insert(def.key.to_string(), v.clone());
            } else if matches!(def.kind, Kind::Bool) {
                values.insert(def.key.to_string(), "false".into());
            }
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
    let (token, hash) = sealpost_crypto::new_token();
    update_settings(
        &state.store,
        &state.settings,
        &[(METRICS_TOKEN_HASH, hash)],
        &user.actor(),
    )
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
        Some(token),
        StatusCode::OK,
    )
    .await
}
