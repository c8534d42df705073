//! Secure reply from an opened message. The form names no recipients the server would trust:
//! the envelope is re-opened and the recipients are derived from the original; a submitted
//! address outside that set, or any unexpected field, refuses the whole request.

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::reply::{self, ReplyDraft, ReplyError};
use sealpost_mime::ReplyAttachment;

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::guards::page::page_ctx;
use crate::guards::{Opened, PageCtx};

/// Human-readable size for limits shown on pages.
pub fn size_text(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{} KB", bytes.div_ceil(1024))
    } else {
        format!("{bytes} B")
    }
}

#[derive(Template)]
#[template(path = "reply_sent.html")]
struct SentPage {
    ctx: PageCtx,
    token: String,
    to: String,
    copy: bool,
}
page_ctx!(SentPage);

#[derive(Template)]
#[template(path = "reply_error.html")]
struct ErrorPage {
    ctx: PageCtx,
    token: String,
    message: String,
}
page_ctx!(ErrorPage);

/// The posted form, collected with the attachment budget enforced while reading.
struct Posted {
    csrf: String,
    body: String,
    cc: Vec<String>,
    attachments: Vec<ReplyAttachment>,
}

enum ReadError {
    Refused,
    TooLarge,
}

async fn read_form(mut multipart: Multipart, max_attachments: usize) -> Result<Posted, ReadError> {
    const MAX_FIELD: usize = 512 * 1024;
    let mut posted = Posted {
        csrf: String::new(),
        body: String::new(),
        cc: Vec::new(),
        attachments: Vec::new(),
    };
    let mut attachment_total = 0usize;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| ReadError::Refused)?
    {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = name == "attachment";
        if !matches!(name.as_str(), "csrf" | "body" | "cc" | "attachment") {
            // A field the page never sends (e.g. an added "to") is tampering.
            return Err(ReadError::Refused);
        }
        let filename = field.file_name().unwrap_or_default().to_string();
        let content_type = field.content_type().unwrap_or_default().to_string();
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|_| ReadError::Refused)? {
            if is_file {
                attachment_total += chunk.len();
                if attachment_total > max_attachments {
                    return Err(ReadError::TooLarge);
                }
            } else if data.len() + chunk.len() > MAX_FIELD {
                return Err(ReadError::TooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8(data.clone()).map_err(|_| ReadError::Refused);
        match name.as_str() {
            "csrf" => posted.csrf = text()?,
            "body" => posted.body = text()?,
            "cc" => posted.cc.push(text()?),
            // Browsers send an empty file part when nothing was chosen.
            _ if filename.is_empty() && data.is_empty() => {}
            _ => posted.attachments.push(ReplyAttachment {
                filename: if filename.is_empty() {
                    "attachment.bin".to_string()
                } else {
                    filename
                },
                content_type,
                bytes: data,
            }),
        }
    }
    Ok(posted)
}

/// The opened original comes from the guard; the reply is queued only after the form's CSRF
/// token matched (it is a field of the multipart form, read with its size budget).
pub async fn send(
    State(state): State<AppState>,
    Opened {
        reader,
        token,
        message,
    }: Opened,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let limit = settings.reply_max_attachment_bytes;
    let error_page = |key: &str, status: StatusCode| -> Result<Response, WebError> {
        let html = render(&ErrorPage {
            message: reader.tr.tf(key, "size", &size_text(limit)),
            ctx: reader.page(),
            token: token.clone(),
        })?;
        Ok((status, html).into_response())
    };
    let posted = match read_form(multipart, limit).await {
        Ok(p) => p,
        Err(ReadError::TooLarge) => {
            return error_page("portal-reply-too-large", StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(ReadError::Refused) => return Err(WebError::BadRequest),
    };
    reader.verify_csrf(&posted.csrf)?;
    let queued = reply::queue_reply(
        &state.store,
        &state.keys,
        &settings,
        Some(&state.delivery_wake),
        &settings.hostname,
        &ReplyDraft {
            account: &reader.account,
            original: &message.raw,
            body: &posted.body,
            cc: &posted.cc,
            attachments: &posted.attachments,
            lang: reader.tr.lang,
        },
    )
    .await;
    match queued {
        Ok(_) => {
            sealpost_core::messages::record(
                &state.store,
                &message.header.message_id_hex(),
                sealpost_store::MessageEventKind::Replied,
                None,
                None,
                settings.message_client_address,
            )
            .await;
            Ok(Redirect::to(&format!("/open/{token}/sent")).into_response())
        }
        Err(ReplyError::NotAllowed) => {
            tracing::warn!(account = %reader.account.id, "reply with a recipient outside the original refused");
            Err(WebError::Forbidden)
        }
        Err(ReplyError::TooLarge) => {
            error_page("portal-reply-too-large", StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(ReplyError::Empty) => error_page("portal-reply-empty", StatusCode::BAD_REQUEST),
        Err(ReplyError::NoSender | ReplyError::Unparseable) => {
            error_page("portal-reply-no-sender", StatusCode::BAD_REQUEST)
        }
        Err(e @ ReplyError::ExternalRecipient) => {
            tracing::info!(account = %reader.account.id, "reply to an address outside the organisation refused");
            let key = e.catalogue_key().unwrap_or("portal-reply-no-sender");
            error_page(key, StatusCode::BAD_REQUEST)
        }
        Err(ReplyError::Core(e)) => Err(WebError::Core(e)),
    }
}

/// The confirmation, shown only after the reply was committed to the queue (post/redirect/get,
/// so reloading it sends nothing twice). Like every reader page it needs a reader past the
/// forced password change: the guard sends anyone else to sign in or to `/welcome`.
pub async fn sent(
    State(state): State<AppState>,
    Opened {
        reader,
        token,
        message,
    }: Opened,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let recipients = reply::reply_recipients(&message.raw, &settings, &reader.account.address)
        .map_err(|_| WebError::NotFound)?;
    Ok(render(&SentPage {
        ctx: reader.page(),
        token,
        to: recipients.to,
        copy: settings.reply_encrypted_copy,
    })?
    .into_response())
}
