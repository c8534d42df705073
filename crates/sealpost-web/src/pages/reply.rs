//! Secure reply from an opened message. The form names no recipients the server would trust:
//! the envelope is re-opened and the recipients are derived from the original; a submitted
//! address outside that set, or any unexpected field, refuses the whole request.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::reply::{self, ReplyDraft, ReplyError};
use sealpost_mime::ReplyAttachment;

use super::open::{load, login_redirect, valid_token};
use super::render;
use super::welcome::{detour, tr_for};
use crate::AppState;
use crate::error::WebError;
use crate::i18n::Tr;
use crate::security::same_origin;
use crate::session::MaybeUser;

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

/// The host of the public URL, for Message-IDs of replies (the web layer has no other name).
fn hostname(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(public_url);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        "localhost".to_string()
    } else {
        host.to_string()
    }
}

#[derive(Template)]
#[template(path = "reply_sent.html")]
struct SentPage<'a> {
    tr: Tr,
    address: &'a str,
    csrf: &'a str,
    token: &'a str,
    to: String,
    copy: bool,
}

#[derive(Template)]
#[template(path = "reply_error.html")]
struct ErrorPage<'a> {
    tr: Tr,
    address: &'a str,
    csrf: &'a str,
    token: &'a str,
    message: String,
}

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

pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    MaybeUser(user): MaybeUser,
    multipart: Multipart,
) -> Result<Response, WebError> {
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    if !valid_token(&token) {
        return Err(WebError::ExpiredOpen);
    }
    let Some(user) = user else {
        return Err(WebError::Forbidden);
    };
    let settings = state.settings.get();
    if detour(&user, &settings, &format!("/open/{token}")).is_some() {
        return Err(WebError::Forbidden);
    }
    let tr = tr_for(&headers, &user, &settings);
    let limit = settings.reply_max_attachment_bytes;
    let error_page = |tr: Tr, key: &str, status: StatusCode| -> Result<Response, WebError> {
        let message = tr.tf(key, "size", &size_text(limit));
        let html = render(&ErrorPage {
            tr,
            address: &user.account.address,
            csrf: &user.csrf,
            token: &token,
            message,
        })?;
        Ok((status, html).into_response())
    };
    let posted = match read_form(multipart, limit).await {
        Ok(p) => p,
        Err(ReadError::TooLarge) => {
            return error_page(tr, "portal-reply-too-large", StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(ReadError::Refused) => return Err(WebError::BadRequest),
    };
    if !sealpost_crypto::ct_eq(user.csrf.as_bytes(), posted.csrf.as_bytes()) {
        return Err(WebError::Forbidden);
    }
    let opened = load(&state, &user, &token).await?;
    let queued = reply::queue_reply(
        &state.store,
        &state.keys,
        &settings,
        Some(&state.delivery_wake),
        &hostname(&settings.public_url),
        &ReplyDraft {
            account: &user.account,
            original: &opened.raw,
            body: &posted.body,
            cc: &posted.cc,
            attachments: &posted.attachments,
            lang: tr.lang,
        },
    )
    .await;
    match queued {
        Ok(_) => Ok(Redirect::to(&format!("/open/{token}/sent")).into_response()),
        Err(ReplyError::NotAllowed) => {
            tracing::warn!(account = %user.account.id, "reply with a recipient outside the original refused");
            Err(WebError::Forbidden)
        }
        Err(ReplyError::TooLarge) => {
            error_page(tr, "portal-reply-too-large", StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(ReplyError::Empty) => error_page(tr, "portal-reply-empty", StatusCode::BAD_REQUEST),
        Err(ReplyError::NoSender | ReplyError::Unparseable) => {
            error_page(tr, "portal-reply-no-sender", StatusCode::BAD_REQUEST)
        }
        Err(e @ ReplyError::ExternalRecipient) => {
            tracing::info!(account = %user.account.id, "reply to an address outside the organisation refused");
            let key = e.catalogue_key().unwrap_or("portal-reply-no-sender");
            error_page(tr, key, StatusCode::BAD_REQUEST)
        }
        Err(ReplyError::Core(e)) => Err(WebError::Core(e)),
    }
}

/// The confirmation, shown only after the reply was committed to the queue (post/redirect/get,
/// so reloading it sends nothing twice).
pub async fn sent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, WebError> {
    if !valid_token(&token) {
        return Err(WebError::ExpiredOpen);
    }
    let Some(user) = user else {
        return Ok(login_redirect(&token));
    };
    let settings = state.settings.get();
    let opened = load(&state, &user, &token).await?;
    let recipients = reply::reply_recipients(&opened.raw, &settings, &user.account.address)
        .map_err(|_| WebError::NotFound)?;
    let tr = tr_for(&headers, &user, &settings);
    Ok(render(&SentPage {
        tr,
        address: &user.account.address,
        csrf: &user.csrf,
        token: &token,
        to: recipients.to,
        copy: settings.reply_encrypted_copy,
    })?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_come_from_the_public_url() {
        assert_eq!(
            hostname("https://secure.bank.example:8443/x"),
            "secure.bank.example"
        );
        assert_eq!(hostname("https://127.0.0.1:1234"), "127.0.0.1");
        assert_eq!(hostname(""), "localhost");
    }
}
