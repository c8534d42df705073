//! A decrypted message prepared for the portal: header summary, bodies (HTML
//! sanitised), and attachment access by index or Content-ID.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::MimeError;
use crate::filename::safe_filename;
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
///
/// The page lists attachments but shows none, so large base64 attachments
/// are not decoded: see [`prepare_for_display_with`]. The result is the same
/// as parsing the whole message.
pub fn prepare_for_display(
    raw: &[u8],
    cid_url: &dyn Fn(&str) -> Option<String>,
) -> Result<DisplayMessage, MimeError> {
    prepare_for_display_with(raw, cid_url, SKIM_MIN)
}

/// Base64 runs shorter than this are parsed as they are.
const SKIM_MIN: usize = 64 * 1024;

/// [`prepare_for_display`], leaving the middle of every run of at least
/// `skim_from` bytes of whole base64 lines out of the parse (`usize::MAX`:
/// never). mail-parser decodes every part as it parses, at a few hundred MB/s,
/// which for a 20 MB attachment was most of the time of the portal's message
/// page. The shortened copy parses to the same parts; sizes are corrected by
/// the decoded length of what was left out. Where that cannot be proven from
/// the parse — a run that is not inside the base64 body of a binary part of
/// the message itself — the whole message is parsed instead.
pub fn prepare_for_display_with(
    raw: &[u8],
    cid_url: &dyn Fn(&str) -> Option<String>,
    skim_from: usize,
) -> Result<DisplayMessage, MimeError> {
    if raw.len() >= skim_from
        && let Some(skimmed) = skim(raw, skim_from)
        && let Some(msg) = parse(&skimmed.text)
        && let Some(extra) = skimmed.extra_sizes(&msg)
    {
        return display(&msg, cid_url, &extra);
    }
    let msg = parse(raw).ok_or(MimeError::Unparseable)?;
    display(&msg, cid_url, &HashMap::new())
}

/// A message with the middle of its long base64 runs left out.
struct Skimmed {
    text: Vec<u8>,
    /// Where in `text` something was left out, and how many base64 characters.
    cuts: Vec<(usize, usize)>,
}

impl Skimmed {
    /// Decoded bytes left out, per part id; None unless every cut lies inside
    /// the base64 body of a binary part of the top-level message (not of a
    /// nested one), decoded without problems.
    fn extra_sizes(&self, msg: &Message<'_>) -> Option<HashMap<usize, usize>> {
        let mut extra = HashMap::new();
        for &(at, chars) in &self.cuts {
            let (id, part) = msg.parts.iter().enumerate().find(|(_, p)| {
                !matches!(p.body, PartType::Multipart(_))
                    && (p.offset_body as usize) < at
                    && at < p.offset_end as usize
            })?;
            let binary = matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_));
            if !binary || part.encoding != Encoding::Base64 || part.is_encoding_problem {
                return None;
            }
            *extra.entry(id).or_insert(0) += chars / 4 * 3;
        }
        Some(extra)
    }
}

/// Finds runs of at least three lines that are nothing but base64 quanta
/// (letters, digits, '+', '/'; a multiple of 4, no padding) spanning at least
/// `min` bytes, and copies `raw` without the lines between the first and the
/// last of each run. Those lines decode to whole 3-byte groups on their own,
/// so leaving them out changes nothing but the length of what the part decodes
/// to. None when there is no such run.
fn skim(raw: &[u8], min: usize) -> Option<Skimmed> {
    struct Run {
        first_end: usize,
        last_start: usize,
        /// Characters of the lines after the first, up to and including the last.
        chars: usize,
        last_chars: usize,
        lines: usize,
    }
    let mut text = Vec::new();
    let mut cuts = Vec::new();
    let mut copied = 0;
    let mut run: Option<Run> = None;
    let mut pos = 0;
    let mut close = |run: Option<Run>, text: &mut Vec<u8>, copied: &mut usize| {
        if let Some(r) = run
            && r.lines >= 3
            && r.last_start - r.first_end >= min
        {
            if text.is_empty() {
                text.reserve(raw.len() - (r.last_start - r.first_end));
            }
            text.extend_from_slice(raw.get(*copied..r.first_end).unwrap_or_default());
            cuts.push((text.len(), r.chars - r.last_chars));
            *copied = r.last_start;
        }
    };
    let ends = memchr::memchr_iter(b'\n', raw)
        .map(|i| i + 1)
        .chain((raw.last() != Some(&b'\n')).then_some(raw.len()));
    for end in ends {
        let line = raw.get(pos..end).unwrap_or_default();
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if is_base64_quanta(content) {
            match run.as_mut() {
                Some(r) => {
                    r.last_start = pos;
                    r.chars += content.len();
                    r.last_chars = content.len();
                    r.lines += 1;
                }
                None => {
                    run = Some(Run {
                        first_end: end,
                        last_start: pos,
                        chars: 0,
                        last_chars: 0,
                        lines: 1,
                    })
                }
            }
        } else {
            close(run.take(), &mut text, &mut copied);
        }
        pos = end;
    }
    close(run.take(), &mut text, &mut copied);
    if cuts.is_empty() {
        return None;
    }
    text.extend_from_slice(raw.get(copied..).unwrap_or_default());
    Some(Skimmed { text, cuts })
}

fn is_base64_quanta(line: &[u8]) -> bool {
    !line.is_empty()
        && line.len().is_multiple_of(4)
        // No early exit and no branches, so the check runs over whole vectors. `b | 0x20`
        // is a lower-case letter exactly when `b` is a letter.
        && line.iter().fold(0u8, |bad, &b| {
            let ok = ((b | 0x20).wrapping_sub(b'a') < 26)
                | (b.wrapping_sub(b'0') < 10)
                | (b == b'+')
                | (b == b'/');
            bad | u8::from(!ok)
        }) == 0
}

fn display(
    msg: &Message<'_>,
    cid_url: &dyn Fn(&str) -> Option<String>,
    extra_sizes: &HashMap<usize, usize>,
) -> Result<DisplayMessage, MimeError> {
    let html_body = msg
        .html_part(0)
        .filter(|part| part.is_text_html())
        .and_then(|part| part.text_contents())
        .map(|html| sanitise_html(html, cid_url));
    let text_body = msg.body_text(0).map(Cow::into_owned);
    let attachments = msg
        .attachments
        .iter()
        .map_while(|&id| Some((id as usize, msg.parts.get(id as usize)?)))
        .enumerate()
        .map(|(index, (id, part))| AttachmentInfo {
            index,
            filename: filename(part),
            content_type: content_type(part),
            size: part.contents().len() + extra_sizes.get(&id).copied().unwrap_or(0),
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

/// A Content-ID without `cid:` and angle brackets, its %XX escapes decoded: `cid:` URLs are
/// URL-encoded Content-IDs (RFC 2392).
fn normalise_cid(cid: &str) -> String {
    let cid = cid.trim();
    let cid = cid
        .strip_prefix("cid:")
        .or_else(|| cid.strip_prefix("CID:"))
        .unwrap_or(cid);
    percent_encoding::percent_decode_str(cid.trim_start_matches('<').trim_end_matches('>'))
        .decode_utf8_lossy()
        .into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_base64_bodies_of_binary_parts_are_skimmed() {
        let mut raw = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
        for _ in 0..2000 {
            raw.extend_from_slice(&[b'Q'; 76]);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"QUI=\r\n--b--\r\n");
        let skimmed = skim(&raw, SKIM_MIN).expect("a long run");
        assert_eq!(skimmed.cuts.len(), 1);
        assert!(skimmed.text.len() < 1000);
        let msg = parse(&skimmed.text).expect("parses");
        let extra = skimmed.extra_sizes(&msg).expect("inside the pdf");
        assert_eq!(extra.values().sum::<usize>(), 1998 * 57);
        let shown = prepare_for_display(&raw, &|_| None).expect("display");
        assert_eq!(shown.attachments[0].size, 2000 * 57 + 2);
    }
}
