//! Display preparation: bodies, sanitising, attachments, and a smoke test
//! over mail-parser's own corpus of real and malformed messages.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::path::{Path, PathBuf};

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use sealpost_mime::{
    attachment, part_by_content_id, prepare_for_display, prepare_for_display_with, safe_filename,
    sanitise_html,
};

fn binary() -> Vec<u8> {
    // Every byte value, several times, including CR/LF and NUL.
    (0..1000u32).map(|i| (i * 7 % 256) as u8).collect()
}

fn png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..300u32).map(|i| (i % 251) as u8));
    png
}

fn message() -> Vec<u8> {
    MessageBuilder::new()
        .from(Address::new_address(
            Some("Hans Müller"),
            "hans@bank.example",
        ))
        .to(Address::new_address(Some("Kundin"), "kundin@example.org"))
        .cc(Address::new_address(None::<&str>, "chef@bank.example"))
        .subject("Ihr Vertrag für März")
        .text_body("Guten Tag,\nanbei der Vertrag.\n")
        .html_body(
            "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>\
<p onclick=\"steal()\" style=\"color: #333\">Guten Tag,</p>\
<img src=\"cid:logo@bank.example\" alt=\"Logo\">\
<img src=\"http://tracker.example/pixel.gif\" alt=\"t1\">\
<img src=\"https://tracker.example/p.gif\" alt=\"t2\">\
<img src=\"//tracker.example/p.gif\" alt=\"t3\">\
<img src=\"x\" onerror=\"alert(2)\" alt=\"t4\">\
<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"inline-data\">\
<img src=\"data:text/html;base64,PHNjcmlwdD4=\" alt=\"bad-data\">\
<a href=\"https://bank.example/info\">Info</a>\
<a href=\"javascript:alert(3)\">js</a>\
<form action=\"https://evil.example\"><input name=\"pw\"></form>\
<iframe src=\"https://evil.example\"></iframe><object data=\"x.swf\"></object>\
<p style=\"background:url(https://tracker.example/bg.png)\">Hintergrund</p>\
<p>Mit freundlichen Grüßen</p></body></html>",
        )
        .attachment(
            "application/pdf",
            "../../etc/Vertrag \"final\".pdf",
            binary(),
        )
        .inline("image/png", "logo@bank.example", png())
        .write_to_vec()
        .unwrap()
}

fn cid_url(cid: &str) -> Option<String> {
    (cid == "logo@bank.example").then(|| format!("/open/tok123/cid/{cid}"))
}

#[test]
fn headers_and_bodies() {
    let raw = message();
    let msg = prepare_for_display(&raw, &cid_url).unwrap();
    assert_eq!(msg.from, "Hans Müller <hans@bank.example>");
    assert_eq!(msg.to, "Kundin <kundin@example.org>");
    assert_eq!(msg.cc, "chef@bank.example");
    assert_eq!(msg.subject, "Ihr Vertrag für März");
    assert!(!msg.date.is_empty());
    assert!(msg.text_body.unwrap().contains("anbei der Vertrag"));

    let html = msg.html_body.unwrap();
    assert!(html.contains("Guten Tag,"));
    assert!(html.contains("Mit freundlichen Grüßen"));
    assert!(
        html.contains("src=\"/open/tok123/cid/logo@bank.example\""),
        "{html}"
    );
    assert!(html.contains("data:image/png;base64,iVBORw0KGgo="));
    for gone in [
        "<script",
        "alert(",
        "onclick",
        "onerror",
        "steal",
        "tracker.example",
        "data:text/html",
        "<form",
        "<input",
        "<iframe",
        "<object",
        "evil.example",
        "javascript:",
        "<style",
        "color:red",
    ] {
        assert!(!html.contains(gone), "{gone} survived: {html}");
    }
    assert!(html.contains("color: #333"), "harmless style kept: {html}");
    assert!(html.contains("href=\"https://bank.example/info\""));
    assert!(html.contains("rel=\"noopener noreferrer\""));
    assert!(html.contains("target=\"_blank\""));
}

#[test]
fn attachments_listed_and_byte_identical() {
    let raw = message();
    let msg = prepare_for_display(&raw, &cid_url).unwrap();
    assert_eq!(msg.attachments.len(), 2, "{:?}", msg.attachments);

    let pdf = msg
        .attachments
        .iter()
        .find(|a| a.content_type == "application/pdf")
        .unwrap();
    assert_eq!(pdf.size, binary().len());
    assert_eq!(pdf.filename, "Vertrag final.pdf");
    assert!(!pdf.inline);
    let data = attachment(&raw, pdf.index).unwrap();
    assert_eq!(data.bytes, binary());
    assert_eq!(data.content_type, "application/pdf");
    assert_eq!(data.filename, "Vertrag final.pdf");

    let logo = msg
        .attachments
        .iter()
        .find(|a| a.content_type == "image/png")
        .unwrap();
    assert_eq!(logo.size, png().len());
    assert!(logo.inline);
    assert_eq!(logo.content_id.as_deref(), Some("logo@bank.example"));
    assert_eq!(logo.filename, "image.png");
    assert_eq!(attachment(&raw, logo.index).unwrap().bytes, png());

    for cid in [
        "logo@bank.example",
        "<logo@bank.example>",
        "cid:logo%40bank.example",
    ] {
        let part = part_by_content_id(&raw, cid).unwrap();
        assert_eq!(part.bytes, png(), "{cid}");
        assert_eq!(part.content_type, "image/png");
    }
    assert!(part_by_content_id(&raw, "other@x").is_none());
    assert!(part_by_content_id(&raw, "").is_none());
    assert!(attachment(&raw, 2).is_none());
    assert!(attachment(&raw, usize::MAX).is_none());
}

#[test]
fn unresolvable_cid_image_is_dropped() {
    let html = sanitise_html("<p>x</p><img src=\"cid:unknown@x\" alt=\"a\">", &|_| None);
    assert!(!html.contains("cid:"), "{html}");
    assert!(html.contains("<p>x</p>"));
}

#[test]
fn sanitiser_keeps_text_and_structure() {
    let html = sanitise_html(
        "<table border=\"1\"><tr><td bgcolor=\"#eeeeee\">Betrag</td><td>1.000 &euro;</td></tr></table>\
<svg><script>alert(1)</script></svg><p>Ende</p>",
        &|_| None,
    );
    assert!(html.contains("Betrag") && html.contains("1.000 €") && html.contains("Ende"));
    assert!(html.contains("<table") && html.contains("bgcolor"));
    assert!(!html.contains("alert") && !html.contains("<svg"));
}

#[test]
fn unparseable_is_an_error_not_a_panic() {
    // mail-parser is lenient; whatever it returns, nothing panics.
    for input in [
        &b""[..],
        b"\0\0\0",
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--",
    ] {
        let _ = prepare_for_display(input, &cid_url);
        let _ = attachment(input, 0);
        let _ = part_by_content_id(input, "x");
    }
}

#[test]
fn filenames_are_made_safe() {
    assert_eq!(safe_filename("../../etc/passwd"), "passwd");
    assert_eq!(safe_filename("C:\\Users\\x\\Rechnung.pdf"), "Rechnung.pdf");
    assert_eq!(safe_filename("a\"b\r\nc.txt"), "abc.txt");
    assert_eq!(
        safe_filename("Überweisung März.pdf"),
        "Überweisung März.pdf"
    );
    assert_eq!(safe_filename(""), "attachment.bin");
    assert_eq!(safe_filename("..."), "attachment.bin");
    assert_eq!(safe_filename("/"), "attachment.bin");
    assert_eq!(safe_filename(".htaccess"), "htaccess");
    let long = format!("{}.pdf", "x".repeat(400));
    let safe = safe_filename(&long);
    assert!(safe.ends_with(".pdf") && safe.chars().count() <= 150);
}

fn corpus_dir() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let registry = cargo_home.join("registry").join("src");
    for index in std::fs::read_dir(registry).ok()? {
        let index = index.ok()?.path();
        for krate in std::fs::read_dir(&index).ok()?.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name.starts_with("mail-parser-0.11") {
                let eml = krate.path().join("resources").join("eml");
                if eml.is_dir() {
                    return Some(eml);
                }
            }
        }
    }
    None
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn corpus_never_panics() {
    let Some(dir) = corpus_dir() else {
        eprintln!("mail-parser corpus not found in the cargo registry; skipping");
        return;
    };
    let mut files = Vec::new();
    collect(&dir, &mut files);
    let emls: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert!(emls.len() > 50, "corpus looks incomplete: {}", emls.len());
    let mut parsed = 0;
    for path in emls {
        let raw = std::fs::read(path).unwrap();
        if let Ok(msg) = prepare_for_display(&raw, &|cid| Some(format!("/cid/{cid}"))) {
            parsed += 1;
            for info in &msg.attachments {
                let data = attachment(&raw, info.index).unwrap_or_else(|| {
                    panic!("{}: attachment {} missing", path.display(), info.index)
                });
                assert_eq!(data.bytes.len(), info.size, "{}", path.display());
                assert!(!data.filename.contains('/') && !data.filename.contains('"'));
                if let Some(cid) = &info.content_id {
                    assert!(
                        part_by_content_id(&raw, cid).is_some(),
                        "{}",
                        path.display()
                    );
                }
            }
            if let Some(html) = &msg.html_body {
                assert!(
                    !html.to_ascii_lowercase().contains("<script"),
                    "{}",
                    path.display()
                );
            }
        }
        // The inbound helpers must not panic on the same inputs either.
        let keywords = vec!["[secure]".to_string()];
        let policy = sealpost_mime::TriggerPolicy {
            keywords: &keywords,
            header: "X-Sealpost-Encrypt",
        };
        let _ = sealpost_mime::is_flagged(&raw, &policy);
        let stripped = sealpost_mime::strip_trigger(&raw, &policy);
        if !sealpost_mime::is_flagged(&raw, &policy) {
            assert_eq!(stripped, raw, "{}", path.display());
        }
        let _ = sealpost_mime::original_headers(&raw);
    }
    assert!(parsed > 50, "only {parsed} corpus messages parsed");
}

/// What a page would show, as text, for comparing two ways of preparing it.
fn shown(raw: &[u8], skim_from: usize) -> String {
    format!(
        "{:?}",
        prepare_for_display_with(raw, &|cid| Some(format!("/cid/{cid}")), skim_from)
    )
}

/// Leaving the middle of long base64 runs out of the parse changes nothing the page shows:
/// every corpus message, skimmed from the shortest run on, gives what parsing all of it gives.
#[test]
fn skimmed_parse_equals_full_parse_on_the_corpus() {
    let Some(dir) = corpus_dir() else {
        eprintln!("mail-parser corpus not found in the cargo registry; skipping");
        return;
    };
    let mut files = Vec::new();
    collect(&dir, &mut files);
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
    {
        let raw = std::fs::read(path).unwrap();
        let full = shown(&raw, usize::MAX);
        assert_eq!(shown(&raw, 1), full, "{}", path.display());
        assert_eq!(shown(&raw, 200), full, "{}", path.display());
    }
}

fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

fn b64_lines(data: &[u8], width: usize, eol: &str) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::new();
    for line in text.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push_str(eol);
    }
    out
}

/// Messages with large base64 parts in the shapes that matter: binary attachments (skimmed),
/// a large base64 text attachment and a nested message (parsed whole), other line widths,
/// LF line ends, a single-part message, damaged base64, a missing closing boundary.
fn large_messages() -> Vec<(&'static str, Vec<u8>)> {
    let pdf = noise(300_000, 1);
    let png = noise(120_000, 2);
    let text_att: String = "Zeile mit Text. ".repeat(12_000);
    let built = MessageBuilder::new()
        .from(Address::new_address(Some("Bank"), "a@bank.example"))
        .to(Address::new_address(None::<&str>, "k@example.org"))
        .subject("Auszug")
        .text_body("Anbei.\n")
        .html_body("<p>Anbei <img src=\"cid:logo@bank.example\"></p>")
        .attachment("application/pdf", "auszug.pdf", pdf.clone())
        .attachment("text/plain", "liste.txt", text_att.into_bytes())
        .inline("image/png", "logo@bank.example", png.clone())
        .write_to_vec()
        .unwrap();
    let lf = String::from_utf8(built.clone())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    let nested = MessageBuilder::new()
        .from(Address::new_address(None::<&str>, "a@bank.example"))
        .to(Address::new_address(None::<&str>, "k@example.org"))
        .subject("Weitergeleitet")
        .text_body("Siehe unten.\n")
        .attachment("message/rfc822", "inner.eml", built.clone())
        .write_to_vec()
        .unwrap();
    let custom = |width: usize, eol: &str, body: &str, close: bool| -> Vec<u8> {
        let mut m = format!(
            "From: a@bank.example{eol}To: k@example.org{eol}Subject: x{eol}MIME-Version: 1.0{eol}\
             Content-Type: multipart/mixed; boundary=\"XYZ\"{eol}{eol}preamble{eol}--XYZ{eol}\
             Content-Type: text/plain{eol}{eol}{body}{eol}--XYZ{eol}\
             Content-Type: application/octet-stream; name=\"a.bin\"{eol}\
             Content-Transfer-Encoding: base64{eol}{eol}"
        );
        m.push_str(&b64_lines(&noise(200_001, 3), width, eol));
        m.push_str(&format!(
            "--XYZ{eol}Content-Type: image/jpeg{eol}Content-Transfer-Encoding: base64{eol}{eol}"
        ));
        m.push_str(&b64_lines(&noise(99_999, 4), width, eol));
        if close {
            m.push_str(&format!("--XYZ--{eol}epilogue{eol}"));
        }
        m.into_bytes()
    };
    let mut damaged = custom(76, "\r\n", "hi", true);
    let middle = damaged.len() / 3;
    let at = middle + damaged[middle..].iter().position(|&b| b == b'\n').unwrap() + 5;
    damaged[at] = b'*';
    let single = format!(
        "From: a@bank.example\r\nSubject: y\r\nContent-Type: application/pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        b64_lines(&pdf, 76, "\r\n")
    )
    .into_bytes();
    vec![
        ("built", built),
        ("lf", lf),
        ("nested", nested),
        ("width 64", custom(64, "\r\n", "hi", true)),
        ("width 72 lf", custom(72, "\n", "hi", true)),
        ("width 78", custom(78, "\r\n", "hi", true)),
        (
            "base64 text body",
            custom(76, "\r\n", &b64_lines(&pdf, 76, "\r\n"), true),
        ),
        ("no closing boundary", custom(76, "\r\n", "hi", false)),
        ("damaged", damaged),
        ("single part", single),
    ]
}

#[test]
fn large_attachments_are_listed_as_a_full_parse_lists_them() {
    for (name, raw) in large_messages() {
        let full = shown(&raw, usize::MAX);
        assert_eq!(shown(&raw, 64 * 1024), full, "{name}");
        assert_eq!(shown(&raw, 1), full, "{name}");
        let msg = prepare_for_display(&raw, &cid_url).unwrap();
        assert!(!msg.attachments.is_empty(), "{name}");
        for info in &msg.attachments {
            let data = attachment(&raw, info.index).unwrap();
            assert_eq!(data.bytes.len(), info.size, "{name}: {}", info.filename);
        }
    }
}
