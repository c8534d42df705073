//! The audit log: who changed what, when, from where. Events never hold secrets.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{AdminUser, fmt_time, render};
use crate::AppState;
use crate::error::WebError;

const SHOWN: i64 = 500;

pub struct Row {
    at: String,
    actor: String,
    action: String,
    subject: String,
    detail: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    csrf: String,
    admin_name: String,
    rows: Vec<Row>,
    shown: i64,
}

pub async fn page(State(state): State<AppState>, user: AdminUser) -> Result<Response, WebError> {
    let rows = sealpost_core::audit::recent(&state.store, SHOWN)
        .await?
        .into_iter()
        .map(|e| Row {
            at: fmt_time(e.at),
            actor: e.actor,
            action: e.action,
            subject: e.subject.unwrap_or_default(),
            detail: e.detail.unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
        })
        .collect();
    render(&AuditPage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        rows,
        shown: SHOWN,
    })
}
