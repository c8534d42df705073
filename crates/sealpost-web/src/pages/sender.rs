//! The sender's status page (issue 16): `/s/{token}` from a credentials mail or an open
//! notification shows one button; pressing it uses the single-use link up and leaves a
//! short-lived capability cookie for `/s/status`, which shows that copy's timeline and can
//! revoke it once (`/s/revoke`). See [`sealpost_core::sender_control`] for what the
//! capability grants and why.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use sealpost_core::messages::MessageControlError;
use sealpost_core::sender_control::{self, CAPABILITY_SECS, SenderStatus};
use sealpost_store::MessageEventKind;

use super::render;
use crate::AppState;
use crate::admin::fmt_time;
use crate::error::WebError;
use crate::guards::csrf::NoFields;
use crate::guards::page::page_ctx;
use crate::guards::sender::{SenderControl, SenderLink};
use crate::guards::{ClientIp, CsrfForm, PageCtx, cookies};

#[derive(Template)]
#[template(path = "sender_link.html")]
struct LandingPage {
    ctx: PageCtx,
    token: String,
    form_csrf: String,
}
page_ctx!(LandingPage);

/// GET `/s/{token}`: only a button. The link is used up by its POST, not by a mail scanner
/// or a preview that fetches it.
pub async fn landing(ctx: PageCtx, link: SenderLink) -> Result<Response, WebError> {
    Ok(render(&LandingPage {
        ctx,
        token: link.token,
        form_csrf: link.csrf,
    })?
    .into_response())
}

/// POST `/s/{token}`: trades the link for the capability cookie, once.
pub async fn follow(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    link: SenderLink,
    _: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let now = sealpost_store::unix_now();
    let (capability, _) = sender_control::follow(&state.store, &link.token, now, &ip.to_string())
        .await?
        .ok_or(WebError::SenderLinkUsed)?;
    Ok((
        AppendHeaders([(
            header::SET_COOKIE,
            cookies::set_sender(&capability.0, CAPABILITY_SECS),
        )]),
        Redirect::to("/s/status"),
    )
        .into_response())
}

pub struct EventRow {
    at: String,
    what: String,
}

#[derive(Template)]
#[template(path = "sender_status.html")]
struct StatusPage {
    ctx: PageCtx,
    form_csrf: String,
    recipient: String,
    message_id: String,
    sent: String,
    subject: Option<String>,
    expires: Option<String>,
    state_line: String,
    events: Vec<EventRow>,
    can_revoke: bool,
    just_revoked: bool,
    minutes: String,
}
page_ctx!(StatusPage);

fn event_key(kind: MessageEventKind) -> &'static str {
    match kind {
        MessageEventKind::Sealed => "sender-event-sealed",
        MessageEventKind::HandedOver => "sender-event-handed-over",
        MessageEventKind::Bounced => "sender-event-bounced",
        MessageEventKind::FirstOpened => "sender-event-first-opened",
        MessageEventKind::Opened => "sender-event-opened",
        MessageEventKind::Downloaded => "sender-event-downloaded",
        MessageEventKind::Replied => "sender-event-replied",
        MessageEventKind::Revoked => "sender-event-revoked",
        MessageEventKind::Expired => "sender-event-expired",
        MessageEventKind::SecretDeleted => "sender-event-secret-deleted",
    }
}

fn status_page(
    ctx: PageCtx,
    form_csrf: String,
    status: SenderStatus,
    just_revoked: bool,
) -> StatusPage {
    let tr = &ctx.tr;
    let state_line = if let Some((by, at)) = &status.revoked {
        sealpost_i18n::tf(
            tr.lang,
            "sender-state-revoked",
            &[("who", by), ("date", &fmt_time(*at))],
        )
    } else if status.expired {
        tr.t("sender-state-expired")
    } else if let Some(at) = status.first_opened_at {
        tr.tf("sender-state-opened", "date", &fmt_time(at))
    } else {
        tr.t("sender-state-unread")
    };
    let events = status
        .events
        .iter()
        .map(|(at, kind)| EventRow {
            at: fmt_time(*at),
            what: tr.t(event_key(*kind)),
        })
        .collect();
    StatusPage {
        form_csrf,
        recipient: status.recipient.clone(),
        message_id: status.message_id.clone(),
        sent: fmt_time(status.sent_at),
        subject: status.subject.clone(),
        expires: status.expires_at.map(fmt_time),
        state_line,
        events,
        can_revoke: status.can_revoke(),
        just_revoked,
        minutes: (CAPABILITY_SECS / 60).to_string(),
        ctx,
    }
}

/// GET `/s/status`: the copy's state and timeline (times and kinds only, never the
/// reader's client address).
pub async fn status(
    State(state): State<AppState>,
    ctx: PageCtx,
    control: SenderControl,
) -> Result<Response, WebError> {
    let now = sealpost_store::unix_now();
    let status = sender_control::status(&state.store, &control.grant, now)
        .await?
        .ok_or(WebError::SenderLinkUsed)?;
    Ok(render(&status_page(ctx, control.csrf, status, false))?.into_response())
}

/// POST `/s/revoke`: revokes the copy as its sender, once; the capability ends with it.
pub async fn revoke(
    State(state): State<AppState>,
    ctx: PageCtx,
    control: SenderControl,
    _: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let now = sealpost_store::unix_now();
    let revoked = sender_control::revoke(&state.store, &control.grant, &control.capability, now)
        .await
        .map_err(|e| match e {
            MessageControlError::NotFound(_) | MessageControlError::NoSuchRecipient { .. } => {
                WebError::SenderLinkUsed
            }
            MessageControlError::Core(e) => WebError::Core(e),
        })?;
    if !revoked {
        return Err(WebError::SenderLinkUsed);
    }
    let status = sender_control::status(&state.store, &control.grant, now)
        .await?
        .ok_or(WebError::SenderLinkUsed)?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookies::clear_sender())]),
        render(&status_page(ctx, String::new(), status, true))?,
    )
        .into_response())
}
