//! secure.htm: the attachment that carries the ciphertext to the recipient.
//!
//! The page must work when opened from disk (`file://`) in any browser and
//! from a mail client's preview, so it is fully self-contained: inline CSS, a
//! tiny inline script, no images, fonts or other external resources.

use sealpost_i18n::{t, tf};

use crate::branding::Branding;
use crate::util::{html_escape, html_unescape, portal_base};

/// Renders secure.htm for `payload_b64` in the recipient's language.
pub fn render_secure_htm(
    public_url: &str,
    payload_b64: &str,
    lang: &str,
    branding: &Branding,
) -> String {
    let base = portal_base(public_url);
    let action = html_escape(&format!("{base}/open"));
    let portal = html_escape(base);
    let org = branding.org_name.trim();
    let accent = branding.accent();
    let e = |key: &str| html_escape(&t(lang, key));
    let title = e("securehtm.title");
    let heading = html_escape(&tf(lang, "securehtm.heading", &[("org", org)]));
    let what = e("securehtm.what");
    let button = e("securehtm.button");
    let opening = e("securehtm.opening");
    let fallback = e("securehtm.fallback");
    let noscript = e("securehtm.noscript");
    // The link is built around the escaped URL so the sentence stays one
    // translatable unit while the URL becomes clickable.
    let mobile = html_escape(&t(lang, "securehtm.mobile"))
        .replace("{url}", &format!("<a href=\"{portal}\">{portal}</a>"));
    let footer = html_escape(branding.footer.trim());
    let payload = html_escape(payload_b64.trim());
    let html_lang = html_escape(sealpost_i18n::resolve(lang).unwrap_or("en"));
    let footer_html = if footer.is_empty() {
        String::new()
    } else {
        format!("<p class=\"footer\">{footer}</p>\n")
    };

    format!(
        r#"<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 2em 1em; background: #f4f5f7; color: #222; font: 16px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }}
.card {{ max-width: 36em; margin: 0 auto; background: #fff; border-top: 6px solid {accent}; border-radius: 6px; padding: 1.5em 2em; box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
.org {{ color: {accent}; font-weight: bold; font-size: 1.1em; margin: 0 0 .5em; }}
h1 {{ font-size: 1.4em; margin: 0 0 .8em; }}
button {{ display: block; width: 100%; margin: 1.5em 0; padding: .9em 1em; font-size: 1.2em; font-weight: bold; color: #fff; background: {accent}; border: 0; border-radius: 6px; cursor: pointer; }}
.hint {{ color: #555; font-size: .95em; }}
.footer {{ color: #777; font-size: .8em; border-top: 1px solid #ddd; padding-top: 1em; margin-top: 2em; }}
a {{ color: {accent}; word-break: break-all; }}
</style>
</head>
<body>
<div class="card">
<p class="org">{org_html}</p>
<h1>{heading}</h1>
<p>{what}</p>
<form id="sealpost-form" method="post" action="{action}" accept-charset="utf-8">
<textarea name="payload" hidden readonly>{payload}</textarea>
<button type="submit">{button}</button>
</form>
<p class="hint" id="sealpost-opening" hidden>{opening}</p>
<noscript><p class="hint">{noscript}</p></noscript>
<p class="hint">{fallback}</p>
<p class="hint">{mobile}</p>
{footer_html}</div>
<script>
window.addEventListener("load", function () {{
  document.getElementById("sealpost-opening").hidden = false;
  document.getElementById("sealpost-form").submit();
}});
</script>
</body>
</html>
"#,
        org_html = html_escape(org),
    )
}

/// True for text made only of base64 characters and whitespace, with at
/// least some data: guards against treating random uploads as a payload.
fn looks_like_base64(text: &str) -> bool {
    let mut data = 0usize;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_') {
            data += 1;
        } else if !c.is_ascii_whitespace() {
            return false;
        }
    }
    data >= 4
}

/// Normalises an extracted payload: trimmed, LF line ends (browsers and mail
/// clients may have turned them into CRLF; base64 does not care).
fn normalise(text: &str) -> String {
    text.trim().replace("\r\n", "\n").replace('\r', "\n")
}

/// Finds the value of attribute `name` inside one tag's source.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        // Must be a whole attribute name: preceded by whitespace.
        if !lower[..at].ends_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let rest = lower[from..].trim_start();
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue;
        };
        let value_start = tag.len() - after_eq.trim_start().len();
        let value = &tag[value_start..];
        return match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].find(q).map(|end| &value[1..1 + end]),
            _ => Some(
                value
                    .split(|c: char| c.is_ascii_whitespace() || c == '>')
                    .next()
                    .unwrap_or_default(),
            ),
        };
    }
    None
}

fn is_payload_field(tag: &str) -> bool {
    attribute(tag, "name").is_some_and(|n| n.trim() == "payload")
}

/// From an uploaded secure.htm (or a bare base64 payload file): the payload
/// text, or None when the file holds none.
pub fn extract_payload(file: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(file);
    let lower = text.to_ascii_lowercase();

    // <textarea name="payload">…</textarea>
    let mut from = 0;
    while let Some(found) = lower[from..].find("<textarea") {
        let open = from + found;
        let tag_end = open + lower[open..].find('>')?;
        let tag = &text[open..tag_end];
        from = tag_end;
        if is_payload_field(tag) {
            let close = tag_end + lower[tag_end..].find("</textarea")?;
            let payload = normalise(&html_unescape(&text[tag_end + 1..close]));
            return looks_like_base64(&payload).then_some(payload);
        }
    }

    // <input type="hidden" name="payload" value="…">
    let mut from = 0;
    while let Some(found) = lower[from..].find("<input") {
        let open = from + found;
        let tag_end = open + lower[open..].find('>')?;
        let tag = &text[open..tag_end];
        from = tag_end;
        if is_payload_field(tag) {
            let payload = normalise(&html_unescape(attribute(tag, "value")?));
            return looks_like_base64(&payload).then_some(payload);
        }
    }

    // A bare payload file (e.g. the base64 saved on its own).
    let payload = normalise(&text);
    (!lower.contains('<') && looks_like_base64(&payload)).then_some(payload)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    const PAYLOAD: &str = "U1BYAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkrLw==";

    fn branding() -> Branding {
        Branding {
            org_name: "Bank <Example> & Co".into(),
            accent_color: "#aa0033".into(),
            footer: "Bank Example AG · Musterstraße 1".into(),
            ..Branding::default()
        }
    }

    #[test]
    fn page_has_form_with_action_and_payload() {
        for url in [
            "https://secure.bank.example",
            "https://secure.bank.example/",
        ] {
            let html = render_secure_htm(url, PAYLOAD, "en", &branding());
            assert!(html.contains(
                "<form id=\"sealpost-form\" method=\"post\" action=\"https://secure.bank.example/open\" accept-charset=\"utf-8\">"
            ));
            assert!(html.contains("<textarea name=\"payload\" hidden"));
            assert!(html.contains(PAYLOAD));
            assert!(html.contains("Open secure message"));
            assert!(html.contains("<noscript>"));
            assert!(html.contains(".submit()"));
            assert!(html.contains("#aa0033"));
            // Escaped org name, never raw markup.
            assert!(html.contains("Bank &lt;Example&gt; &amp; Co"));
            assert!(!html.contains("<Example>"));
        }
    }

    #[test]
    fn page_in_german() {
        let html = render_secure_htm("https://p.example", PAYLOAD, "de-DE", &branding());
        assert!(html.contains("<html lang=\"de\">"));
        assert!(html.contains("Sichere Nachricht öffnen"));
        assert!(html.contains("laden Sie dort diese Datei"));
    }

    #[test]
    fn no_external_resources() {
        let html = render_secure_htm("https://p.example/", PAYLOAD, "en", &branding());
        let lower = html.to_ascii_lowercase();
        for needle in ["<img", "<link", "<iframe", "@import", "url(", "src="] {
            assert!(!lower.contains(needle), "found {needle}");
        }
        // Every http occurrence is the form action or the portal link.
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("http") {
            let before = &rest[..i];
            assert!(
                before.ends_with("action=\"")
                    || before.ends_with("href=\"")
                    || before.ends_with('>'),
                "unexpected http at …{}",
                &rest[i.saturating_sub(30)..(i + 30).min(rest.len())]
            );
            rest = &rest[i + 4..];
        }
    }

    #[test]
    fn bad_accent_is_replaced() {
        let b = Branding {
            accent_color: "red;} body{background:url(http://evil)".into(),
            ..branding()
        };
        let html = render_secure_htm("https://p.example", PAYLOAD, "en", &b);
        assert!(!html.contains("evil"));
        assert!(html.contains("#1f5fa8"));
    }

    #[test]
    fn extract_round_trip_lf_and_crlf() {
        let html = render_secure_htm("https://p.example", PAYLOAD, "en", &branding());
        assert_eq!(extract_payload(html.as_bytes()).as_deref(), Some(PAYLOAD));
        let crlf = html.replace('\n', "\r\n");
        assert_eq!(extract_payload(crlf.as_bytes()).as_deref(), Some(PAYLOAD));
    }

    #[test]
    fn extract_variants() {
        assert_eq!(
            extract_payload(PAYLOAD.as_bytes()).as_deref(),
            Some(PAYLOAD)
        );
        let crlf_bare = format!("{}\r\n", PAYLOAD.replace('\n', "\r\n"));
        assert_eq!(
            extract_payload(crlf_bare.as_bytes()).as_deref(),
            Some(PAYLOAD)
        );
        let input =
            "<html><form><INPUT type=hidden NAME='payload' value=\"QUJD\nREVG\"></form></html>";
        assert_eq!(
            extract_payload(input.as_bytes()).as_deref(),
            Some("QUJD\nREVG")
        );
        let other =
            "<textarea name=\"comment\">hello</textarea><textarea name=payload>QUJDREVG</textarea>";
        assert_eq!(
            extract_payload(other.as_bytes()).as_deref(),
            Some("QUJDREVG")
        );
        assert_eq!(
            extract_payload(b"<html><body>nothing here</body></html>"),
            None
        );
        assert_eq!(extract_payload(b""), None);
        assert_eq!(extract_payload(b"hello world, not base64!"), None);
        assert_eq!(
            extract_payload(b"<textarea name=\"payload\">unterminated"),
            None
        );
        assert_eq!(extract_payload(&[0xff, 0xfe, 0x00]), None);
    }
}
