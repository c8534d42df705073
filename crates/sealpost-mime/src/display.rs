//! A decrypted message prepared for the portal: header summary, bodies (HTML
//! sanitised), and attachment access by index or Content-ID.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};

use crate::MimeError;
use crate::inbound::display_addresses;
use crate::util::{html_unescape, unfold};

/// One attachment (or inline part) of a message.
#[derive(Debug, Clone)]
pub struct AttachmentInfo {
    /// Position for [`attachment`].
    pub index: usize,
    /// Safe for Content-Disposition (see [`safe_filename`]).
    pub filename: String,
    /// "type/subtype", lower case.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// Content-ID without angle brackets.
    pub content_id: Option<String>,
    /// Shown inside the body (e.g. a cid: image) rather than as a download.
    pub inline: bool,
}

/// What the portal shows for a decrypted message.
#[derive(Debug, Clone)]
pub struct DisplayMessage {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub date: String,
    pub subject: String,
    pub text_body: Option<String>,
    /// Sanitised with [`sanitise_html`].
    pub html_body: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
}

/// An attachment's content, decoded.
pub struct AttachmentData {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn content_type(part: &MessagePart) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        }
        .to_ascii_lowercase(),
        None if part.is_message() => "message/rfc822".to_string(),
        None if part.is_text_html() => "text/html".to_string(),
        None if part.is_text() => "text/plain".to_string(),
        None => "application/octet-stream".to_string(),
    }
}

fn content_id(part: &MessagePart) -> Option<String> {
    part.content_id()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .filter(|id| !id.is_empty())
}

/// A name for a part that has none, from its type, so downloads still get a
/// sensible extension.
fn default_name(part: &MessagePart, content_type: &str) -> String {
    if part.is_message() {
        return "message.eml".to_string();
    }
    let ext = match content_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        _ => return "attachment.bin".to_string(),
    };
    let stem = if content_type.starts_with("image/") {
        "image"
    } else {
        "attachment"
    };
    format!("{stem}.{ext}")
}

fn filename(part: &MessagePart) -> String {
    match part.attachment_name() {
        Some(name) if !name.trim().is_empty() => safe_filename(name),
        _ => default_name(part, &content_type(part)),
    }
}

fn is_inline(part: &MessagePart) -> bool {
    match part.content_disposition() {
        Some(disposition) => disposition.is_inline(),
        None => content_id(part).is_some(),
    }
}

fn data(part: &MessagePart) -> AttachmentData {
    AttachmentData {
        filename: filename(part),
        content_type: content_type(part),
        bytes: part.contents().to_vec(),
    }
}

/// Parses a decrypted message for display. `cid_url` maps a Content-ID to
/// the URL the portal serves that part under (None drops the image).
pub fn prepare_for_display(
    raw: &[u8],
    cid_url: &dyn Fn(&str) -> Option<String>,
) -> Result<DisplayMessage, MimeError> {
    let msg = parse(raw).ok_or(MimeError::Unparseable)?;
    let html_body = msg
        .html_part(0)
        .filter(|part| part.is_text_html())
        .and_then(|part| part.text_contents())
        .map(|html| sanitise_html(html, cid_url));
    let text_body = msg.body_text(0).map(Cow::into_owned);
    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(index, part)| AttachmentInfo {
            index,
            filename: filename(part),
            content_type: content_type(part),
            size: part.contents().len(),
            content_id: content_id(part),
            inline: is_inline(part),
        })
        .collect();
    let date = msg
        .headers_raw()
        .find(|(name, _)| name.eq_ignore_ascii_case("Date"))
        .map(|(_, value)| unfold(value))
        .or_else(|| msg.date().map(|d| d.to_rfc822()))
        .unwrap_or_default();
    Ok(DisplayMessage {
        from: display_addresses(msg.from()),
        to: display_addresses(msg.to()),
        cc: display_addresses(msg.cc()),
        date,
        subject: msg.subject().unwrap_or_default().trim().to_string(),
        text_body,
        html_body,
        attachments,
    })
}

/// The attachment at `index` (as in [`AttachmentInfo::index`]).
pub fn attachment(raw: &[u8], index: usize) -> Option<AttachmentData> {
    let msg = parse(raw)?;
    let index = u32::try_from(index).ok()?;
    msg.attachment(index).map(data)
}

/// Decodes %XX escapes: `cid:` URLs are URL-encoded Content-IDs (RFC 2392).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn normalise_cid(cid: &str) -> String {
    let cid = cid.trim();
    let cid = cid
        .strip_prefix("cid:")
        .or_else(|| cid.strip_prefix("CID:"))
        .unwrap_or(cid);
    percent_decode(cid.trim_start_matches('<').trim_end_matches('>'))
}

/// The part whose Content-ID is `cid` (with or without "cid:" / angle brackets).
pub fn part_by_content_id(raw: &[u8], cid: &str) -> Option<AttachmentData> {
    let wanted = normalise_cid(cid);
    if wanted.is_empty() {
        return None;
    }
    let msg = parse(raw)?;
    msg.parts
        .iter()
        .filter(|part| !part.is_multipart())
        .find(|part| content_id(part).is_some_and(|id| id == wanted))
        .map(data)
}

/// Inline `style` values that could load something or run script are
/// dropped whole; harmless presentation (colours, fonts, spacing) stays.
fn safe_style(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ![
        "url(",
        "expression",
        "@import",
        "\\",
        "javascript:",
        "behavior",
        "-moz-binding",
        "image-set",
        "src(",
    ]
    .iter()
    .any(|bad| lower.contains(bad))
}

/// data: URIs are allowed as image sources only when they declare an image type.
fn is_data_image(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    lower.starts_with("data:image/")
}

/// Every `cid:` reference in `html`, mapped through `cid_url`.
///
/// ammonia's attribute filter must be `'static`, so it cannot borrow the
/// caller's closure; the lookups are done up front instead and the filter gets
/// an owned map. Keys are normalised the same way the filter normalises the
/// (entity-decoded) attribute value.
fn cid_map(html: &str, cid_url: &dyn Fn(&str) -> Option<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("cid:") {
        let start = from + found;
        let end = html[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '>' | '<' | ')'))
            .map_or(html.len(), |i| start + i);
        from = start + 4;
        let cid = normalise_cid(&html_unescape(&html[start..end]));
        if cid.is_empty() || map.contains_key(&cid) {
            continue;
        }
        if let Some(url) = cid_url(&cid) {
            map.insert(cid, url);
        }
    }
    map
}

/// Sanitises mail HTML for the portal: no scripts, styles, event handlers,
/// forms, frames or objects; no remote resources; `cid:` images rewritten
/// through `cid_url`; links open in a new tab without referrer.
pub fn sanitise_html(html: &str, cid_url: &dyn Fn(&str) -> Option<String>) -> String {
    let cids = cid_map(html, cid_url);
    let rewrite = move |value: &str| cids.get(&normalise_cid(value)).cloned();
    let mut builder = ammonia::Builder::default();
    builder
        // Schemes must pass ammonia's scheme check before our filter sees them;
        // the filter below then decides per element.
        .add_url_schemes(["cid", "data"])
        .add_tags(["font", "center"])
        .add_generic_attributes(["style", "align", "valign", "bgcolor", "width", "height"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes("table", ["border", "cellpadding", "cellspacing"])
        .set_tag_attribute_value("a", "target", "_blank")
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| {
            let trimmed = value.trim();
            let lower = trimmed.to_ascii_lowercase();
            match (element, attribute) {
                (_, "style") => safe_style(value).then(|| value.into()),
                ("img", "src") => {
                    if lower.starts_with("cid:") {
                        rewrite(trimmed).map(Cow::Owned)
                    } else if is_data_image(trimmed) {
                        Some(value.into())
                    } else {
                        // Remote (http, https, //host) and relative sources
                        // would load from the network or the portal itself.
                        None
                    }
                }
                (_, "src") => None,
                (_, "href") => {
                    if lower.starts_with("cid:") {
                        rewrite(trimmed).map(Cow::Owned)
                    } else if lower.starts_with("data:") {
                        None
                    } else {
                        Some(value.into())
                    }
                }
                _ => Some(value.into()),
            }
        });
    // Belt and braces: these are not in ammonia's default allow-list, but the
    // portal's safety must not depend on a library default staying the same.
    let forbidden: HashSet<&str> = [
        "script", "style", "form", "input", "button", "textarea", "select", "iframe", "frame",
        "frameset", "object", "embed", "applet", "link", "meta", "base", "svg", "math",
    ]
    .into_iter()
    .collect();
    let allowed: HashSet<&str> = builder
        .clone_tags()
        .into_iter()
        .filter(|tag| !forbidden.contains(tag))
        .collect();
    builder.tags(allowed);
    builder.clean(html).to_string()
}

/// A filename safe for Content-Disposition and for saving on any OS: no
/// path, no control characters, quotes or reserved characters; a fallback
/// name when nothing usable is left.
pub fn safe_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '"' | '\'' | '<' | '>' | ':' | '|' | '?' | '*' | ';')
        })
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').trim();
    // Long names break some clients; keep the tail, which holds the extension.
    let chars: Vec<char> = cleaned.chars().collect();
    let cleaned: String = if chars.len() > 150 {
        chars[chars.len() - 150..].iter().collect()
    } else {
        cleaned.to_string()
    };
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() {
        "attachment.bin".to_string()
    } else {
        cleaned
    }
}
