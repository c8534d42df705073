//! The Messages page: search the ledger by sender, recipient, date range or id (paged,
//! bounded), one message's timeline, and its signed delivery report (JSON and HTML) with the
//! node's report public key. Metadata only: no message content is ever on the server.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::message_report;
use sealpost_core::messages::{self, MessageControlError};
use sealpost_core::url;
use sealpost_store::LedgerQuery;
use serde::Deserialize;

use super::{AdminUser, fmt_opt_time, fmt_time, parse_date_end, render};
use crate::AppState;
use crate::error::WebError;
use crate::guards::CsrfForm;

pub const PAGE_SIZE: i64 = 50;

pub struct Row {
    id: String,
    sender: String,
    recipient: String,
    sealed: String,
    opened: String,
}

#[derive(Template)]
#[template(path = "admin/messages.html")]
struct ListPage {
    csrf: String,
    admin_name: String,
    q: SearchQuery,
    rows: Vec<Row>,
    page: i64,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
    report_key: String,
    report_fingerprint: String,
}

#[derive(Deserialize, Default, Clone)]
pub struct SearchQuery {
    #[serde(default)]
    sender: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    id: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    page: Option<i64>,
}

fn bounded(text: &str) -> String {
    text.trim().chars().take(320).collect()
}

impl SearchQuery {
    fn link(&self, page: i64) -> String {
        let e = |v: &str| url::encode(v, url::QUERY_VALUE);
        format!(
            "/admin/messages?sender={}&recipient={}&id={}&from={}&until={}&page={page}",
            e(&self.sender),
            e(&self.recipient),
            e(&self.id),
            e(&self.from),
            e(&self.until)
        )
    }
}

/// "YYYY-MM-DD" as the first second of that day (UTC).
fn day_start(text: &str) -> Option<i64> {
    parse_date_end(text).map(|end| end - 86_399)
}

pub async fn list(
    State(state): State<AppState>,
    user: AdminUser,
    Query(raw): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let q = SearchQuery {
        sender: bounded(&raw.sender),
        recipient: bounded(&raw.recipient),
        id: bounded(&raw.id),
        from: bounded(&raw.from),
        until: bounded(&raw.until),
        page: raw.page,
    };
    let page = q.page.unwrap_or(1).clamp(1, 10_000);
    let mut error = None;
    let mut date = |text: &str, parse: fn(&str) -> Option<i64>| {
        if text.is_empty() {
            return None;
        }
        let parsed = parse(text);
        if parsed.is_none() {
            error = Some(format!("“{text}” is not a date (YYYY-MM-DD)"));
        }
        parsed
    };
    let from = date(&q.from, day_start);
    let until = date(&q.until, parse_date_end);
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    // One row more than shown tells whether there is a next page, without counting.
    let mut found = state
        .store
        .search_ledger(&LedgerQuery {
            sender: some(&q.sender),
            recipient: some(&q.recipient),
            id: some(&q.id),
            from,
            until,
            offset: (page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE + 1,
        })
        .await?;
    let more = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let rows = found
        .into_iter()
        .map(|e| Row {
            id: e.envelope_id,
            sender: e.sender,
            recipient: e.recipient,
            sealed: fmt_time(e.created_at),
            opened: fmt_opt_time(e.first_opened_at),
        })
        .collect();
    let public = state.reports.public();
    render(&ListPage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        prev: (page > 1).then(|| q.link(page - 1)),
        next: more.then(|| q.link(page + 1)),
        q,
        rows,
        page,
        error,
        report_key: public.to_base64(),
        report_fingerprint: public.fingerprint(),
    })
}

pub struct EventRow {
    at: String,
    recipient: String,
    kind: &'static str,
    detail: String,
}

pub struct CopyRow {
    recipient: String,
    copy_id: String,
    state: String,
    revocable: bool,
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage {
    csrf: String,
    admin_name: String,
    id: String,
    sender: String,
    copies: Vec<CopyRow>,
    any_revocable: bool,
    events: Vec<EventRow>,
    notice: Option<String>,
    error: Option<String>,
    report_key: String,
    report_fingerprint: String,
}

/// A ledger id as the routes take it: hex only, so it can be echoed into links safely.
fn message_id(raw: &str) -> Result<String, WebError> {
    let id = raw.trim().to_ascii_lowercase();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebError::NotFound);
    }
    Ok(id)
}

async fn signed_report(
    state: &AppState,
    id: &str,
) -> Result<message_report::SignedReport, WebError> {
    let settings = state.settings.get();
    message_report::build(
        &state.store,
        &settings,
        &state.reports,
        id,
        sealpost_store::unix_now(),
    )
    .await
    .map_err(|e| match e {
        message_report::ReportBuildError::NotFound(_) => WebError::NotFound,
        message_report::ReportBuildError::Store(e) => WebError::Store(e),
        // Serialising the plain document cannot fail; if it ever did, it is an internal error.
        message_report::ReportBuildError::Sign(_) => {
            WebError::Core(sealpost_core::CoreError::MailBuild)
        }
    })
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    revoked: Option<usize>,
}

pub async fn show(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let id = message_id(&id)?;
    let notice = q
        .revoked
        .map(|n| format!("Revoked {n} copy/copies: their secrets are deleted."));
    message_page(&state, user, id, notice, None, StatusCode::OK).await
}

/// The message's copies (state per recipient), its whole timeline and the revoke form.
async fn message_page(
    state: &AppState,
    user: AdminUser,
    id: String,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let timeline = messages::timeline(&state.store, &id)
        .await?
        .ok_or(WebError::NotFound)?;
    let now = sealpost_store::unix_now();
    let recipient_of = |envelope: &str| {
        timeline
            .entries
            .iter()
            .find(|e| e.envelope_id == envelope)
            .map(|e| e.recipient.clone())
            .unwrap_or_default()
    };
    let copies: Vec<CopyRow> = timeline
        .entries
        .iter()
        .map(|e| {
            let expired = e.expires_at.is_some_and(|at| at <= now);
            let state = match (&e.revocation, e.expires_at) {
                (Some(r), _) => format!("revoked by {} at {}", r.by, fmt_time(r.at)),
                (None, Some(at)) if expired => format!("expired at {}", fmt_time(at)),
                (None, Some(at)) => match e.first_opened_at {
                    Some(o) => format!("opened {}; expires {}", fmt_time(o), fmt_time(at)),
                    None => format!("not opened; expires {}", fmt_time(at)),
                },
                (None, None) => match e.first_opened_at {
                    Some(o) => format!("opened {}", fmt_time(o)),
                    None => "not opened".to_string(),
                },
            };
            CopyRow {
                recipient: e.recipient.clone(),
                copy_id: e.envelope_id.clone(),
                state,
                revocable: e.revocation.is_none() && !expired && e.wrapped_secret.is_some(),
            }
        })
        .collect();
    let events = timeline
        .events
        .iter()
        .map(|e| EventRow {
            at: fmt_time(e.at),
            recipient: recipient_of(&e.envelope_id),
            kind: e.kind.as_str(),
            detail: [e.detail.as_deref(), e.client.as_deref().map(|c| c.trim())]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    let sender = timeline
        .entries
        .first()
        .map(|e| e.sender.clone())
        .unwrap_or_default();
    let public = state.reports.public();
    let page = render(&MessagePage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        id,
        sender,
        any_revocable: copies.iter().any(|c| c.revocable),
        copies,
        events,
        notice,
        error,
        report_key: public.to_base64(),
        report_fingerprint: public.fingerprint(),
    })?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub struct RevokeForm {
    /// A recipient's address, or empty for all of them.
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    reason: String,
    /// The recipient's page shows the reason too.
    #[serde(default)]
    public_reason: Option<String>,
}

/// What the recipient's page names as the revoker when an administrator revokes: not the
/// admin's account name (the audit log has that).
pub const ADMIN_REVOKER: &str = "the administrator";

/// POST `/admin/messages/{id}/revoke`: revokes the message for one recipient or all; each
/// copy's secret is deleted at once.
pub async fn revoke(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<Response, WebError> {
    let id = message_id(&id)?;
    let recipient = bounded(&form.recipient);
    let reason: String = form.reason.trim().chars().take(500).collect();
    let actor = user.actor();
    let done = messages::revoke(
        &state.store,
        &id,
        (!recipient.is_empty()).then_some(recipient.as_str()),
        messages::Revoker {
            shown_as: ADMIN_REVOKER,
            audit_actor: &actor.name,
        },
        (!reason.is_empty()).then_some(reason.as_str()),
        form.public_reason.is_some(),
        sealpost_store::unix_now(),
    )
    .await;
    match done {
        Ok(done) => Ok(Redirect::to(&format!(
            "/admin/messages/{id}?revoked={}",
            done.revoked.len()
        ))
        .into_response()),
        Err(MessageControlError::NotFound(_)) => Err(WebError::NotFound),
        Err(MessageControlError::NoSuchRecipient { recipient, .. }) => {
            message_page(
                &state,
                user,
                id,
                None,
                Some(format!("This message was not sent to {recipient}.")),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(MessageControlError::Core(e)) => Err(WebError::Core(e)),
    }
}

/// The signed report as a download (`report.json`) or its HTML rendering (`report.html`).
pub async fn report(
    State(state): State<AppState>,
    _user: AdminUser,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = message_id(&id)?;
    let report = signed_report(&state, &id).await?;
    let (body, content_type, name) = match file.as_str() {
        "report.json" => (
            report.json,
            "application/json",
            format!("sealpost-report-{id}.json"),
        ),
        "report.html" => (
            message_report::render_html(&report.document, &state.reports.public()),
            "text/html; charset=utf-8",
            format!("sealpost-report-{id}.html"),
        ),
        _ => return Err(WebError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
