//! The Add-ins page: the sender's buttons for Outlook and Thunderbird, filled with this
//! installation's settings (`crate::addins`), for an administrator to deploy to the
//! organisation's mail clients. Downloads change nothing, so nothing is audited.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{AdminUser, render};
use crate::AppState;
use crate::addins::Filled;
use crate::error::WebError;

#[derive(Template)]
#[template(path = "admin/addins.html")]
struct AddinsPage {
    csrf: String,
    admin_name: String,
    public_url: String,
    org_name: String,
    header: String,
    outlook_id: String,
    gecko_id: String,
}

pub async fn page(State(state): State<AppState>, user: AdminUser) -> Result<Response, WebError> {
    let filled = Filled::from_settings(&state.settings.get());
    render(&AddinsPage {
        csrf: user.csrf,
        admin_name: user.admin.name,
        public_url: filled.public_url,
        org_name: filled.org_name,
        header: filled.header,
        outlook_id: filled.outlook_id.to_string(),
        gecko_id: filled.gecko_id,
    })
}

/// `GET /admin/addins/outlook-manifest.xml`: the manifest to upload in the Microsoft 365 or
/// Exchange admin centre.
pub async fn outlook_manifest(State(state): State<AppState>, _user: AdminUser) -> Response {
    let manifest = Filled::from_settings(&state.settings.get()).outlook_manifest();
    (
        [
            (header::CONTENT_TYPE, "application/xml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"sealpost-outlook-manifest.xml\"",
            ),
        ],
        manifest,
    )
        .into_response()
}

/// `GET /admin/addins/sealpost-thunderbird.xpi`: the extension, built in memory.
pub async fn thunderbird_xpi(
    State(state): State<AppState>,
    _user: AdminUser,
) -> Result<Response, WebError> {
    let xpi = Filled::from_settings(&state.settings.get()).thunderbird_xpi()?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-xpinstall"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"sealpost-thunderbird.xpi\"",
            ),
        ],
        xpi,
    )
        .into_response())
}
