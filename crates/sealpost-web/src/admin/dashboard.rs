//! The monitoring dashboard and the Prometheus endpoint; both read the same snapshot.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sealpost_core::metrics::{self, Dashboard, Period};
use serde::Deserialize;

use super::{AdminUser, chart, fmt_time, render};
use crate::AppState;
use crate::error::WebError;
use crate::guards::{ClientIp, metrics_access};

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    csrf: String,
    admin_name: String,
    notice: Option<String>,
    d: Dashboard,
    rows: Vec<(&'static str, Period)>,
    charts: Vec<(&'static str, String)>,
    oldest: String,
    nodes: Vec<(String, String, String, String, &'static str)>,
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    done: Option<String>,
}

/// A node that missed about four heartbeats (15 s apart) is shown as gone.
const NODE_STALE_SECS: i64 = 60;

fn chart_title(name: &str) -> &'static str {
    match name {
        metrics::ENCRYPTED => "Encrypted (recipients per day)",
        metrics::PASSED => "Passed through (recipients per day)",
        metrics::BOUNCED => "Bounced (recipients per day)",
        metrics::LOGINS => "Portal logins per day",
        metrics::LOGIN_FAILED => "Failed portal logins per day",
        _ => "Per day",
    }
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

pub async fn page(
    State(state): State<AppState>,
    user: AdminUser,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, WebError> {
    let now = sealpost_store::unix_now();
    let d = metrics::dashboard(&state.store, now).await?;
    let rows = vec![
        ("Mails encrypted (recipients)", d.encrypted),
        ("Mails passed through (recipients)", d.passed),
        ("Mails bounced (recipients)", d.bounced),
        ("New accounts", d.new_accounts),
        ("Portal logins", d.logins),
        ("Failed portal logins", d.login_failed),
        ("Lockouts", d.lockouts),
        ("Messages opened (first time)", d.opens),
        ("Messages revoked (copies)", d.revocations),
        ("Messages expired (copies)", d.expiries),
        ("Secure replies", d.replies),
    ];
    let charts = d
        .series
        .iter()
        .map(|(name, values)| (chart_title(name), chart::bars(chart_title(name), values)))
        .collect();
    let nodes = d
        .nodes
        .iter()
        .map(|n| {
            let stale = now - n.heartbeat_at > NODE_STALE_SECS;
            (
                n.name.clone(),
                n.version.clone(),
                n.roles.clone(),
                format!(
                    "{} ({} ago)",
                    fmt_time(n.heartbeat_at),
                    age(now - n.heartbeat_at)
                ),
                if stale { "not responding" } else { "alive" },
            )
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("password") => Some("Your password was changed.".to_string()),
        Some("totp") => Some("The second factor is enrolled.".to_string()),
        _ => None,
    };
    render(&DashboardPage {
        oldest: d.oldest_age_secs.map(age).unwrap_or_else(|| "—".into()),
        csrf: user.csrf,
        admin_name: user.admin.name,
        notice,
        rows,
        charts,
        nodes,
        d,
    })
}

/// Prometheus metrics for the whole installation: a bearer token (whose hash an admin set in
/// the network settings) or a client inside the admin networks.
pub async fn metrics(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let network_ok = metrics_access(&state, &headers, ip).await?;
    if !network_ok {
        return Ok((
            StatusCode::FORBIDDEN,
            "metrics need a token or an admin network\n",
        )
            .into_response());
    }
    let d = metrics::dashboard(&state.store, sealpost_store::unix_now()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::prometheus(&d) + &metrics::live::prometheus(),
    )
        .into_response())
}
