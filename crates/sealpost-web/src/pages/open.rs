//! `/open`: the entry point of every secure.htm. The POST comes cross-site from a `file://`
//! page without cookies, so it only parks the (still encrypted) payload under a one-time token
//! and redirects; the GET that follows is a top-level navigation that carries the session.
//! Every view below re-opens the envelope in memory: the server never stores plaintext.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sealpost_core::open::{ContentAccess, OpenError, content_access};
use sealpost_core::url;
use sealpost_crypto::PayloadDecoder;
use sealpost_mime::display::{DisplayMessage, attachment, part_by_content_id, prepare_for_display};

use super::reply::size_text;
use super::{open_upload, render};
use crate::AppState;
use crate::error::WebError;
use crate::guards::page::page_ctx;
use crate::guards::{ClientIp, Opened, PageCtx};

/// Accepts `payload` as a form field (secure.htm's auto-submit) or an uploaded secure.htm file
/// (the portal's upload form, for phones that cannot open attachments).
///
/// Only envelopes that can be opened here are parked: the header must name an account and key
/// of this portal, the envelope must fit the message-size limit, and the client and node must
/// have room (see [`crate::ratelimit::UploadLimits`]). An envelope for no account here is not
/// stored, but answered like a stored one (a redirect to a token that leads to the same page
/// as an expired one), so an upload tells a stranger nothing about which addresses have
/// accounts: only a signed-in recipient sees that it cannot be opened, as opening would show.
pub async fn post_open(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, WebError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let settings = state.settings.get();
    let (token, token_hash) = sealpost_crypto::new_token();
    let now = sealpost_store::unix_now();
    let expires_at = now + settings.temp_open_ttl_secs;
    let limits = open_upload::UploadSize::for_message_size(settings.max_message_size);
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let client = crate::guards::client_ip::client_ip(&settings, peer, request.headers())
        .or(peer.map(|p| p.ip()))
        .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
    let ttl =
        std::time::Duration::from_secs(u64::try_from(settings.temp_open_ttl_secs).unwrap_or(0));
    let slot = state
        .rate_limits
        .uploads
        .start(client, ttl)
        .map_err(open_upload::refusal)?;
    let mut spool = open_upload::Spool::new(&state.store, &token_hash, now, expires_at, slot);
    let parsed = if content_type.starts_with("multipart/form-data") {
        multipart_envelope(request, &state, limits).await
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let content_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        open_upload::urlencoded_payload(request.into_body(), limits, content_length, &mut spool)
            .await
    } else {
        Err(WebError::NoPayload)
    };
    let stored = match parsed {
        Ok(envelope) => spool.finish(envelope).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(envelope) => {
            crate::handoff::park(&token_hash, envelope, expires_at);
            Ok(Redirect::to(&format!("/open/{token}")).into_response())
        }
        // Nothing was stored under this token: it leads to the "cannot be opened" page.
        Err(WebError::Open(OpenError::NotForThisPortal)) => {
            Ok(Redirect::to(&format!("/open/{token}")).into_response())
        }
        Err(e) => Err(e),
    }
}

/// The envelope of a multipart upload: the `payload` field, or the one embedded in the
/// uploaded secure.htm (`file`), with the body bounded by the message-size limit.
async fn multipart_envelope(
    request: Request,
    state: &AppState,
    limits: open_upload::UploadSize,
) -> Result<Vec<u8>, WebError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limits.body));
    let request = Request::from_parts(parts, body);
    let too_large_or_bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::Open(OpenError::TooLarge)
        } else {
            WebError::BadRequest
        }
    };
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|_| WebError::BadRequest)?;
    while let Some(field) = multipart.next_field().await.map_err(too_large_or_bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let data = field.bytes().await.map_err(too_large_or_bad)?;
        let found = if name == "payload" {
            Some(decode_envelope(&data)?)
        } else if name == "file" {
            sealpost_mime::securehtm::extract_payload(&data)
                .map(|text| decode_envelope(text.as_bytes()))
                .transpose()?
        } else {
            None
        };
        if let Some(envelope) = found {
            if envelope.len() > limits.envelope {
                return Err(WebError::Open(OpenError::TooLarge));
            }
            return Ok(envelope);
        }
    }
    Err(WebError::NoPayload)
}

/// Payload text (base64, any whitespace) to envelope bytes.
fn decode_envelope(text: &[u8]) -> Result<Vec<u8>, WebError> {
    let mut decoder = PayloadDecoder::with_capacity(text.len() / 4 * 3 + 3);
    decoder
        .push(text)
        .and_then(|()| decoder.finish())
        .map_err(|e| WebError::Open(OpenError::from(e)))
}

pub struct AttachmentRow {
    pub index: usize,
    pub filename: String,
    pub size_text: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    ctx: PageCtx,
    token: String,
    subject: String,
    msg: DisplayMessage,
    attachments: Vec<AttachmentRow>,
    reply: Option<ReplyForm>,
    /// Why the message cannot be answered here, shown where the form would be.
    reply_refused: Option<String>,
    /// Until when it can be read (message control), when it expires.
    expires: Option<String>,
}
page_ctx!(MessagePage);

/// What the reply form offers; None when the original has no address to reply to.
pub struct ReplyForm {
    pub to: String,
    pub cc_options: Vec<String>,
    /// Empty when attachments are switched off.
    pub attachment_limit: String,
}

/// Inline images for the sandboxed body frame, as `data:` URIs. The frame has an opaque
/// origin, so a browser sends no session cookie with sub-requests from it: a `/cid/` URL
/// would be refused. Only the image types the `cid` route serves, and only up to a size that
/// keeps the page reasonable.
fn inline_image_data(raw: &[u8]) -> impl Fn(&str) -> Option<String> + '_ {
    use base64::Engine as _;
    move |cid: &str| {
        let part = part_by_content_id(raw, cid)?;
        let ct = part.content_type.to_ascii_lowercase();
        let ct = INLINE_IMAGE_TYPES.iter().find(|t| ct.starts_with(*t))?;
        if part.bytes.len() > MAX_INLINE_IMAGE_BYTES {
            return None;
        }
        Some(format!(
            "data:{ct};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&part.bytes)
        ))
    }
}

const INLINE_IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const MAX_INLINE_IMAGE_BYTES: usize = 5 * 1024 * 1024;

fn cid_url(token: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |cid: &str| {
        Some(format!(
            "/open/{token}/cid/{}",
            url::encode(cid, url::COMPONENT)
        ))
    }
}

pub async fn show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    opened: Opened,
) -> Result<Response, WebError> {
    let Opened {
        reader,
        token,
        message,
    } = opened;
    let settings = state.settings.get();
    let message_id = message.header.message_id_hex();
    content_access(
        &state.store,
        &reader.account,
        &message_id,
        ContentAccess::Read,
        &ip.to_string(),
        &state.settings.get(),
    )
    .await;
    let msg = prepare_for_display(&message.raw, &cid_url(&token))
        .map_err(|_| WebError::Open(OpenError::Damaged))?;
    let recipients =
        sealpost_core::reply::reply_recipients(&message.raw, &settings, &reader.account.address);
    let reply_refused = match &recipients {
        Err(e @ sealpost_core::reply::ReplyError::ExternalRecipient) => {
            e.catalogue_key().map(|key| reader.tr.t(key))
        }
        _ => None,
    };
    let reply = recipients.ok().map(|r| ReplyForm {
        to: r.to,
        cc_options: r.cc_options,
        attachment_limit: if settings.reply_max_attachment_bytes > 0 {
            size_text(settings.reply_max_attachment_bytes)
        } else {
            String::new()
        },
    });
    let subject = if msg.subject.trim().is_empty() {
        reader.tr.t("portal-no-subject")
    } else {
        msg.subject.clone()
    };
    let attachments = msg
        .attachments
        .iter()
        .filter(|a| !a.inline)
        .map(|a| AttachmentRow {
            index: a.index,
            filename: a.filename.clone(),
            size_text: size_text(a.size),
        })
        .collect();
    // Read with the message's secret when it was opened; a version-1 envelope has none.
    let expires = message.expires_at.map(crate::admin::fmt_time);
    Ok(render(&MessagePage {
        ctx: reader.page(),
        token,
        subject,
        msg,
        attachments,
        reply,
        reply_refused,
        expires,
    })?
    .into_response())
}

/// The sanitised HTML body, shown in a sandboxed iframe with its own, even stricter policy.
pub async fn html_body(Opened { message, .. }: Opened) -> Result<Response, WebError> {
    let msg = prepare_for_display(&message.raw, &inline_image_data(&message.raw))
        .map_err(|_| WebError::Open(OpenError::Damaged))?;
    let body = msg.html_body.unwrap_or_default();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\"></head><body>{body}</body></html>"
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}

/// Decrypted content leaves the server only through here (attachments, the whole message).
fn download(filename: &str, content_type: &str, bytes: Vec<u8>) -> Response {
    let safe = sealpost_mime::safe_filename(filename);
    let ascii: String = safe
        .chars()
        .map(|c| if c.is_ascii() && c != '"' { c } else { '_' })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        url::encode(&safe, url::COMPONENT)
    );
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    let ct = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}

pub async fn part(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path((_, index)): Path<(String, usize)>,
    Opened {
        reader, message, ..
    }: Opened,
) -> Result<Response, WebError> {
    let data = attachment(&message.raw, index).ok_or(WebError::NotFound)?;
    content_access(
        &state.store,
        &reader.account,
        &message.header.message_id_hex(),
        ContentAccess::Part { index },
        &ip.to_string(),
        &state.settings.get(),
    )
    .await;
    Ok(download(
        &data.filename,
        "application/octet-stream",
        data.bytes,
    ))
}

/// Inline images referenced by `cid:` from the HTML body; only images are served inline.
pub async fn cid(
    Path((_, cid)): Path<(String, String)>,
    Opened { message, .. }: Opened,
) -> Result<Response, WebError> {
    let data = part_by_content_id(&message.raw, &cid).ok_or(WebError::NotFound)?;
    let ct = data.content_type.to_ascii_lowercase();
    if !INLINE_IMAGE_TYPES.iter().any(|a| ct.starts_with(a)) {
        return Err(WebError::NotFound);
    }
    let mut response = (StatusCode::OK, data.bytes).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

pub async fn eml(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Opened {
        reader, message, ..
    }: Opened,
) -> Result<Response, WebError> {
    let message_id = message.header.message_id_hex();
    content_access(
        &state.store,
        &reader.account,
        &message_id,
        ContentAccess::Eml,
        &ip.to_string(),
        &state.settings.get(),
    )
    .await;
    let name = format!("message-{}.eml", &message_id[..8]);
    Ok(download(&name, "message/rfc822", message.raw))
}
