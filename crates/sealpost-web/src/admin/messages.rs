//! The Messages page: search the ledger by sender, recipient, date range or id (paged,
//! bounded), one message's timeline, and its signed delivery report (JSON and HTML) with the
//! node's report public key. Metadata only: no message content is ever on the server.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sealpost_core::message_report;
use sealpost_core::url;
use sealpost_store::LedgerQuery;
use serde::Deserialize;

use super::{AdminUser, fmt_opt_time, fmt_time, parse_date_end, render};
use crate::AppState;
use crate::error::WebError;

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
    kind: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage {
    csrf: String,
    admin_name: String,
    id: String,
    sender: String,
    recipient: String,
    events: Vec<EventRow>,
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

pub async fn show(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = message_id(&id)?;
    let report = signed_report(&state, &id).await?;
    let doc = report.document;
    let recipient = doc
        .recipients
        .iter()
        .map(|r| r.address.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let events = doc
        .recipients
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|e| EventRow {
            at: e.at.clone(),
            kind: e.kind.clone(),
            detail: e.detail.clone().unwrap_or_default(),
        })
        .collect();
    let public = state.reports.public();
    render(&MessagePage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        id,
        sender: doc.sender,
        recipient,
        events,
        report_key: public.to_base64(),
        report_fingerprint: public.fingerprint(),
    })
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
