//! The text a policy's detectors read: the text body, the HTML body's text, and the text of
//! attachments that carry text (text/*, PDF, DOCX, XLSX, ODT/ODS/ODP), recursively into
//! attached messages. Everything is bounded — bytes per part, decompressed bytes per office
//! file entry, PDF pages, parts, nesting, total text and time — because the input is whatever
//! a sender attached. A part that cannot be read (encrypted PDF, damaged archive, a type we do
//! not read, a bound reached) is listed as *unknown*, never silently skipped: a rule decides
//! what unknown means.

use std::io::Read;
use std::time::{Duration, Instant};

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Bounds of one extraction.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// Attachments larger than this are not read (unknown).
    pub max_part_bytes: usize,
    /// Decompressed bytes read from one office-file entry.
    pub max_entry_bytes: u64,
    /// PDF pages read per document (the rest makes the part unknown).
    pub max_pdf_pages: usize,
    /// Parts looked at, across nesting.
    pub max_parts: usize,
    /// Attached messages inside attached messages.
    pub max_depth: usize,
    /// Text kept in all (the rest is not searched, and the result says so).
    pub max_total_text: usize,
    /// Time for the whole message; parts after it are unknown.
    pub time_budget: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_part_bytes: 10 * 1024 * 1024,
            max_entry_bytes: 20 * 1024 * 1024,
            max_pdf_pages: 50,
            max_parts: 100,
            max_depth: 3,
            max_total_text: 4 * 1024 * 1024,
            time_budget: Duration::from_secs(3),
        }
    }
}

/// The text of one part, named for a dry run ("text body", "attachment statement.pdf").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartText {
    pub part: String,
    pub text: String,
}

/// What could be read, and what could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub texts: Vec<PartText>,
    /// Parts that may carry text but could not be read, with why.
    pub unknown: Vec<(String, String)>,
    /// The total-text bound cut the text short.
    pub truncated: bool,
}

impl Extracted {
    /// Whether some part could not be read.
    pub fn has_unknown(&self) -> bool {
        !self.unknown.is_empty()
    }
}

struct Walk<'l> {
    limits: &'l ExtractLimits,
    started: Instant,
    parts: usize,
    kept: usize,
    out: Extracted,
}

/// Extracts the text of the RFC 5322 message `raw`. A message that does not parse gives no
/// text and one unknown part.
pub fn extract(raw: &[u8], limits: &ExtractLimits) -> Extracted {
    let mut walk = Walk {
        limits,
        started: Instant::now(),
        parts: 0,
        kept: 0,
        out: Extracted::default(),
    };
    match MessageParser::default().parse(raw) {
        Some(message) => walk.message(&message, "", 0),
        None => walk
            .out
            .unknown
            .push(("message".into(), "does not parse as a mail".into())),
    }
    walk.out
}

impl Walk<'_> {
    fn keep(&mut self, part: String, text: String) {
        let text = text.trim().to_string();
        if text.is_empty() {
            return;
        }
        let room = self.limits.max_total_text.saturating_sub(self.kept);
        let text = if text.len() > room {
            self.out.truncated = true;
            let mut cut = room;
            while cut > 0 && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_string()
        } else {
            text
        };
        self.kept += text.len();
        if !text.is_empty() {
            self.out.texts.push(PartText { part, text });
        }
    }

    fn unknown(&mut self, part: String, why: &str) {
        self.out.unknown.push((part, why.to_string()));
    }

    fn message(&mut self, message: &Message, prefix: &str, depth: usize) {
        for (n, body) in message.text_bodies().enumerate() {
            if let PartType::Text(text) = &body.body {
                self.keep(format!("{prefix}text body {}", n + 1), text.to_string());
            }
        }
        for (n, body) in message.html_bodies().enumerate() {
            if let PartType::Html(html) = &body.body {
                self.keep(format!("{prefix}HTML body {}", n + 1), html_text(html));
            }
        }
        for attachment in message.attachments() {
            self.parts += 1;
            let name = format!(
                "{prefix}attachment {}",
                attachment.attachment_name().unwrap_or("(unnamed)")
            );
            if self.parts > self.limits.max_parts {
                self.unknown(name, "too many parts");
                continue;
            }
            if self.started.elapsed() > self.limits.time_budget {
                self.unknown(name, "time budget used up");
                continue;
            }
            if let Some(inner) = attachment.message() {
                if depth + 1 > self.limits.max_depth {
                    self.unknown(name, "attached messages nested too deep");
                } else {
                    self.message(inner, &format!("{name} > "), depth + 1);
                }
                continue;
            }
            let bytes = attachment.contents();
            if bytes.len() > self.limits.max_part_bytes {
                self.unknown(name, "larger than the extraction limit");
                continue;
            }
            let content_type = attachment
                .content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            let file = attachment
                .attachment_name()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match kind_of(&content_type, &file) {
                Kind::Text => self.keep(name, String::from_utf8_lossy(bytes).into_owned()),
                Kind::Html => self.keep(name, html_text(&String::from_utf8_lossy(bytes))),
                Kind::Pdf => match pdf_text(bytes, self.limits.max_pdf_pages) {
                    Ok(text) => self.keep(name, text),
                    Err(why) => self.unknown(name, why),
                },
                Kind::Office(entries) => match office_text(bytes, entries, self.limits) {
                    Ok(text) => self.keep(name, text),
                    Err(why) => self.unknown(name, why),
                },
                // Images, audio, archives: no text a detector could read, and nothing a
                // sender would expect to be scanned; not unknown.
                Kind::NoText => {}
                Kind::Unreadable => self.unknown(name, "a type whose text is not read"),
            }
        }
    }
}

enum Kind {
    Text,
    Html,
    Pdf,
    /// A zip of XML files; the entries holding the text (a trailing `*` matches a prefix).
    Office(&'static [&'static str]),
    NoText,
    Unreadable,
}

const DOCX: &[&str] = &[
    "word/document.xml",
    "word/header*",
    "word/footer*",
    "word/footnotes.xml",
];
const XLSX: &[&str] = &["xl/sharedStrings.xml", "xl/worksheets/sheet*"];
const PPTX: &[&str] = &["ppt/slides/slide*"];
const ODF: &[&str] = &["content.xml"];

fn kind_of(content_type: &str, file: &str) -> Kind {
    let ext = file.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match (content_type, ext) {
        ("text/html", _) | (_, "html" | "htm") => Kind::Html,
        (ct, _) if ct.starts_with("text/") => Kind::Text,
        (_, "txt" | "csv" | "xml" | "json") => Kind::Text,
        ("application/pdf", _) | (_, "pdf") => Kind::Pdf,
        (ct, _) if ct.contains("wordprocessingml") => Kind::Office(DOCX),
        (_, "docx" | "docm") => Kind::Office(DOCX),
        (ct, _) if ct.contains("spreadsheetml") => Kind::Office(XLSX),
        (_, "xlsx" | "xlsm") => Kind::Office(XLSX),
        (ct, _) if ct.contains("presentationml") => Kind::Office(PPTX),
        (_, "pptx") => Kind::Office(PPTX),
        (ct, _) if ct.starts_with("application/vnd.oasis.opendocument") => Kind::Office(ODF),
        (_, "odt" | "ods" | "odp") => Kind::Office(ODF),
        (ct, _)
            if ct.starts_with("image/") || ct.starts_with("audio/") || ct.starts_with("video/") =>
        {
            Kind::NoText
        }
        _ => Kind::Unreadable,
    }
}

/// The text of an HTML body or attachment: what a reader sees, without markup, scripts or
/// styles (ammonia drops those with their content; the tags that remain are removed).
fn html_text(html: &str) -> String {
    let cleaned = ammonia::Builder::empty()
        .clean_content_tags(["script", "style", "head", "title"].into_iter().collect())
        .clean(html)
        .to_string();
    decode_entities(&cleaned)
}

/// The few entities ammonia writes back (it escapes `<`, `>`, `&`, quotes), so a number in
/// the text reads as written.
fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn pdf_text(bytes: &[u8], max_pages: usize) -> Result<String, &'static str> {
    let document = lopdf::Document::load_mem(bytes).map_err(|_| "a PDF that does not load")?;
    if document.is_encrypted() {
        return Err("an encrypted PDF");
    }
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    if pages.len() > max_pages {
        return Err("more PDF pages than the extraction limit");
    }
    let mut text = String::new();
    for page in pages {
        // A page whose text cannot be decoded makes the document unknown: a detector must
        // not report "nothing found" for text it could not read.
        let page_text = document
            .extract_text(&[page])
            .map_err(|_| "a PDF page whose text cannot be read")?;
        text.push_str(&page_text);
        text.push('\n');
    }
    Ok(text)
}

fn office_text(
    bytes: &[u8],
    entries: &[&str],
    limits: &ExtractLimits,
) -> Result<String, &'static str> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|_| "an office file that is not a readable zip archive")?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|name| {
            entries.iter().any(|want| match want.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == want,
            })
        })
        .map(|name| name.into_owned())
        .collect();
    if names.is_empty() {
        return Err("an office file without its text part");
    }
    let mut text = String::new();
    for name in names {
        let entry = archive
            .by_name(&name)
            .map_err(|_| "an office file entry that cannot be read")?;
        let mut xml = Vec::new();
        // Decompression is bounded: a zip bomb stops at the limit and makes the part unknown.
        entry
            .take(limits.max_entry_bytes + 1)
            .read_to_end(&mut xml)
            .map_err(|_| "an office file entry that cannot be decompressed")?;
        if xml.len() as u64 > limits.max_entry_bytes {
            return Err("an office file entry larger than the extraction limit");
        }
        text.push_str(&xml_text(&xml)?);
        text.push('\n');
    }
    Ok(text)
}

/// The character data of an office XML part, with a line break after each paragraph, cell or
/// row and a space between runs, so words and numbers of neighbouring cells stay apart.
fn xml_text(xml: &[u8]) -> Result<String, &'static str> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut out = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Text(t)) => out.push_str(&t.xml10_content()),
            Ok(Event::CData(t)) => out.push_str(&t.xml10_content()),
            // Entities come as events of their own: character references and the five
            // predefined ones (office files declare no others).
            Ok(Event::GeneralRef(r)) => {
                if r.is_char_ref() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        out.push(c);
                    }
                } else {
                    out.push_str(match r.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => " ",
                    });
                }
            }
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                "p" | "tr" | "row" | "si" | "h" | "br" => out.push('\n'),
                "tc" | "c" | "table-cell" | "tab" => out.push('\t'),
                _ => {}
            },
            Ok(Event::Empty(e)) => {
                if matches!(e.local_name().as_ref(), "br" | "tab" | "s" | "line-break") {
                    out.push(' ');
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err("office XML that does not parse"),
        }
        buf.clear();
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::Detector;
    use std::io::Write;

    const IBAN: &str = "DE89 3704 0044 0532 0130 00";
    const BROKEN_IBAN: &str = "DE89 3704 0044 0532 0130 01";

    fn b64(bytes: &[u8]) -> String {
        // Plain base64 with line breaks, as a mail client writes it.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for (n, chunk) in bytes.chunks(3).enumerate() {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(T[((v >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
            if n % 19 == 18 {
                out.push_str("\r\n");
            }
        }
        out
    }

    fn mail_with(attachment: &[u8], content_type: &str, name: &str) -> Vec<u8> {
        format!(
            "From: a@bank.example\r\nTo: k@example.com\r\nSubject: Unterlagen\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Anbei die Unterlagen.\r\n--b\r\nContent-Type: {content_type}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            b64(attachment)
        )
        .into_bytes()
    }

    /// A one-page PDF whose page shows `text` (Helvetica, uncompressed content stream).
    fn pdf(text: &str) -> Vec<u8> {
        use lopdf::content::{Content, Operation};
        use lopdf::{Document, Object, Stream, dictionary};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 700.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
                "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, body) in entries {
                w.start_file(*name, options).unwrap();
                w.write_all(body.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        out.into_inner()
    }

    fn docx(text: &str) -> Vec<u8> {
        zip_of(&[(
            "word/document.xml",
            &format!(
                "<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
<w:body><w:p><w:r><w:t>Kontoverbindung:</w:t></w:r></w:p><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
            ),
        )])
    }

    fn ibans_in(extracted: &Extracted) -> usize {
        extracted
            .texts
            .iter()
            .map(|t| Detector::Iban.count(&t.text))
            .sum()
    }

    #[test]
    fn an_iban_in_a_pdf_attachment_is_read_and_a_broken_one_is_not_an_iban() {
        let e = extract(
            &mail_with(
                &pdf(&format!("IBAN {IBAN}")),
                "application/pdf",
                "kontoauszug.pdf",
            ),
            &ExtractLimits::default(),
        );
        assert!(!e.has_unknown(), "{e:?}");
        assert_eq!(ibans_in(&e), 1, "{e:?}");
        assert!(
            e.texts
                .iter()
                .any(|t| t.part == "attachment kontoauszug.pdf")
        );
        let e = extract(
            &mail_with(
                &pdf(&format!("IBAN {BROKEN_IBAN}")),
                "application/pdf",
                "k.pdf",
            ),
            &ExtractLimits::default(),
        );
        assert_eq!(ibans_in(&e), 0, "{e:?}");
    }

    #[test]
    fn docx_xlsx_and_odt_text_is_read() {
        let docx_mail = mail_with(
            &docx(IBAN),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "vertrag.docx",
        );
        assert_eq!(ibans_in(&extract(&docx_mail, &ExtractLimits::default())), 1);
        let xlsx = zip_of(&[(
            "xl/sharedStrings.xml",
            &format!("<sst xmlns=\"x\"><si><t>Name</t></si><si><t>{IBAN}</t></si></sst>"),
        )]);
        let e = extract(
            &mail_with(&xlsx, "application/octet-stream", "liste.xlsx"),
            &ExtractLimits::default(),
        );
        assert_eq!(ibans_in(&e), 1, "{e:?}");
        let odt = zip_of(&[(
            "content.xml",
            &format!(
                "<office:document-content xmlns:office=\"o\" xmlns:text=\"t\"><text:p>{IBAN}</text:p></office:document-content>"
            ),
        )]);
        let e = extract(
            &mail_with(&odt, "application/vnd.oasis.opendocument.text", "brief.odt"),
            &ExtractLimits::default(),
        );
        assert_eq!(ibans_in(&e), 1, "{e:?}");
    }

    #[test]
    fn html_text_without_markup_and_scripts() {
        let mail = String::from(
            "From: a@bank.example\r\nTo: k@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>.x{}</style></head><body>\
<p>IBAN: <b>DE89 3704</b> 0044 0532 0130 00</p><script>var t='GB82WEST12345698765432';</script></body></html>\r\n",
        );
        let e = extract(mail.as_bytes(), &ExtractLimits::default());
        assert_eq!(ibans_in(&e), 1, "{e:?}");
        assert!(e.texts.iter().all(|t| !t.text.contains("GB82")), "{e:?}");
    }

    #[test]
    fn what_cannot_be_read_is_unknown_never_silently_empty() {
        let limits = ExtractLimits::default();
        let e = extract(
            &mail_with(b"%PDF-1.5 garbage", "application/pdf", "x.pdf"),
            &limits,
        );
        assert_eq!(e.unknown.len(), 1, "{e:?}");
        let e = extract(
            &mail_with(b"PK not a zip", "application/octet-stream", "x.docx"),
            &limits,
        );
        assert_eq!(e.unknown.len(), 1, "{e:?}");
        let e = extract(
            &mail_with(b"\x00\x01", "application/x-msdownload", "x.exe"),
            &limits,
        );
        assert_eq!(e.unknown.len(), 1, "{e:?}");
        // Images carry no text a detector reads: not unknown.
        let e = extract(&mail_with(b"\x89PNG", "image/png", "logo.png"), &limits);
        assert!(e.unknown.is_empty(), "{e:?}");
        // Over the size bound.
        let small = ExtractLimits {
            max_part_bytes: 10,
            ..ExtractLimits::default()
        };
        let e = extract(&mail_with(&pdf(IBAN), "application/pdf", "big.pdf"), &small);
        assert_eq!(ibans_in(&e), 0);
        assert!(e.unknown[0].1.contains("larger"), "{e:?}");
    }

    #[test]
    fn a_zip_bomb_entry_stops_at_the_limit() {
        let big = "0".repeat(2 * 1024 * 1024);
        let bomb = zip_of(&[("word/document.xml", &big)]);
        assert!(bomb.len() < 100 * 1024, "it compresses well");
        let limits = ExtractLimits {
            max_entry_bytes: 1024 * 1024,
            ..ExtractLimits::default()
        };
        let e = extract(
            &mail_with(&bomb, "application/octet-stream", "b.docx"),
            &limits,
        );
        assert_eq!(e.unknown.len(), 1, "{e:?}");
        assert!(e.unknown[0].1.contains("larger"), "{e:?}");
    }

    #[test]
    fn the_total_text_bound_truncates_and_says_so() {
        let limits = ExtractLimits {
            max_total_text: 8,
            ..ExtractLimits::default()
        };
        let e = extract(
            b"From: a@b.example\r\nSubject: x\r\n\r\nA long text body here.\r\n",
            &limits,
        );
        assert!(e.truncated);
        assert!(e.texts[0].text.len() <= 8);
    }
}
