//! secure.htm: the attachment that carries the ciphertext to the recipient.
//!
//! The page must work when opened from disk (`file://`) in any browser and from a mail
//! client's preview, so it is fully self-contained: inline CSS, no images, fonts or other
//! external resources, and a Content-Security-Policy that allows nothing else. It has no
//! script unless `carrier.auto_open` asks for the old submit-on-load one: a page that posts a
//! hidden blob by itself is what HTML-smuggling kits send, and what mail filters quarantine.
//! One visible button posts the form instead.
//!
//! The page is pure ASCII (anything else as a character reference), so the carrier can send
//! it as 7bit text instead of base64 around the payload's own base64.

use sealpost_i18n::{t, tf};

use crate::branding::Branding;
use crate::carrier_facts::{expiry_date, host_of, origin_of, sent_date, why_block};
use crate::util::{html_escape, html_unescape, portal_base};

/// What secure.htm shows besides the payload.
pub struct SecureHtm<'a> {
    pub public_url: &'a str,
    pub payload_b64: &'a str,
    pub lang: &'a str,
    pub branding: &'a Branding,
    /// The human sender as shown ("Name <address>").
    pub sender: &'a str,
    /// The original's raw `Date:` value, if any.
    pub date: Option<&'a str>,
    /// When the message expires (Unix seconds).
    pub expires_at: Option<i64>,
    /// `carrier.auto_open`: add the submit-on-load script.
    pub auto_open: bool,
}

/// Every character outside ASCII as a numeric character reference: the same page to a
/// browser, and 7bit-safe in a mail.
fn ascii_only(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for c in html.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("&#{};", u32::from(c)));
        }
    }
    out
}

/// Renders secure.htm in the recipient's language.
pub fn render_secure_htm(input: &SecureHtm) -> String {
    let lang = input.lang;
    let branding = input.branding;
    let base = portal_base(input.public_url);
    let action = html_escape(&format!("{base}/open"));
    let portal = html_escape(base);
    let host = host_of(input.public_url);
    let org = branding.org();
    let accent = branding.accent();
    let e = |key: &str| html_escape(&t(lang, key));
    let title = e("securehtm.title");
    let heading = html_escape(&tf(lang, "securehtm.heading", &[("org", org)]));
    let what = html_escape(&tf(lang, "securehtm.what", &[("org", org)]));
    let button = e("securehtm.button");
    let destination = html_escape(&tf(lang, "securehtm.destination", &[("host", &host)]));
    let mut facts = format!(
        "<p class=\"facts\">{}: {}",
        e("securehtm.sender_label"),
        html_escape(input.sender)
    );
    if let Some(date) = sent_date(lang, input.date) {
        facts.push_str(&format!(
            "<br>{}: {}",
            e("securehtm.date_label"),
            html_escape(&date)
        ));
    }
    facts.push_str("</p>\n");
    if let Some(at) = input.expires_at {
        facts.push_str(&format!(
            "<p class=\"facts\">{}</p>\n",
            html_escape(&tf(
                lang,
                "carrier.expires",
                &[("date", &expiry_date(lang, at))]
            ))
        ));
    }
    // The link is built around the escaped URL so the sentence stays one translatable unit
    // while the URL becomes clickable.
    let mobile =
        e("securehtm.mobile").replace("{url}", &format!("<a href=\"{portal}/\">{portal}</a>"));
    let offline = e("securehtm.offline");
    let why = why_block(lang, input.sender, branding, &host, false);
    let mut why_html = String::from("<div class=\"why\">\n");
    for (n, paragraph) in why.iter().enumerate() {
        let paragraph = html_escape(paragraph);
        if n == 0 {
            why_html.push_str(&format!("<h2>{paragraph}</h2>\n"));
        } else {
            why_html.push_str(&format!("<p>{paragraph}</p>\n"));
        }
    }
    why_html.push_str("</div>\n");
    let footer = html_escape(branding.footer.trim());
    let footer_html = if footer.is_empty() {
        String::new()
    } else {
        format!("<p class=\"footer\">{footer}</p>\n")
    };
    let payload = html_escape(input.payload_b64.trim());
    let html_lang = html_escape(sealpost_i18n::resolve(lang).unwrap_or("en"));
    // form-action names the portal's origin only: the answer to the POST redirects within it.
    let form_origin = html_escape(&origin_of(input.public_url));
    let (script_src, script) = if input.auto_open {
        (
            " script-src 'unsafe-inline';",
            format!(
                r#"<p class="hint" id="sealpost-opening" hidden>{opening}</p>
<noscript><p class="hint">{noscript}</p></noscript>
<p class="hint">{fallback}</p>
<script>
window.addEventListener("load", function () {{
  document.getElementById("sealpost-opening").hidden = false;
  document.getElementById("sealpost-form").submit();
}});
</script>
"#,
                opening = e("securehtm.opening"),
                noscript = e("securehtm.noscript"),
                fallback = e("securehtm.fallback"),
            ),
        )
    } else {
        ("", String::new())
    };

    let page = format!(
        r#"<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';{script_src} form-action {form_origin}; base-uri 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 2em 1em; background: #f4f5f7; color: #222;
  font: 16px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }}
.card {{ max-width: 36em; margin: 0 auto; background: #fff; border-top: 6px solid {accent};
  border-radius: 6px; padding: 1.5em 2em; box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
.org {{ color: {accent}; font-weight: bold; font-size: 1.1em; margin: 0 0 .5em; }}
h1 {{ font-size: 1.4em; margin: 0 0 .8em; }}
h2 {{ font-size: 1.05em; margin: 0 0 .4em; }}
button {{ display: block; width: 100%; margin: 1.5em 0 .5em; padding: .9em 1em;
  font-size: 1.2em; font-weight: bold; color: #fff; background: {accent}; border: 0;
  border-radius: 6px; cursor: pointer; }}
.facts {{ color: #333; }}
.dest {{ text-align: center; color: #333; margin: 0 0 1.5em; }}
.hint {{ color: #555; font-size: .95em; }}
.why {{ background: #f4f5f7; border-radius: 6px; padding: .8em 1em; margin-top: 1.5em;
  font-size: .95em; }}
.footer {{ color: #777; font-size: .8em; border-top: 1px solid #ddd; padding-top: 1em;
  margin-top: 2em; }}
a {{ color: {accent}; word-break: break-all; }}
</style>
</head>
<body>
<div class="card">
<p class="org">{org_html}</p>
<h1>{heading}</h1>
{facts}<p>{what}</p>
<form id="sealpost-form" method="post" action="{action}" accept-charset="utf-8">
<textarea name="payload" hidden readonly>
{payload}
</textarea>
<button type="submit">{button}</button>
</form>
<p class="dest">{destination}</p>
{script}<p class="hint">{offline}</p>
<p class="hint">{mobile}</p>
{why_html}{footer_html}</div>
</body>
</html>
"#,
        org_html = html_escape(org),
    );
    ascii_only(&page)
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

    fn page_with(url: &str, lang: &str, branding: &Branding, auto_open: bool) -> String {
        render_secure_htm(&SecureHtm {
            public_url: url,
            payload_b64: PAYLOAD,
            lang,
            branding,
            sender: "Müller, Hans <hans@bank.example>",
            date: Some("Tue, 5 Mar 2024 10:15:00 +0100"),
            expires_at: Some(1_709_596_800 + 30 * 86_400),
            auto_open,
        })
    }

    fn page(url: &str, lang: &str) -> String {
        page_with(url, lang, &branding(), false)
    }

    #[test]
    fn page_has_form_with_action_and_payload_and_no_script() {
        for url in [
            "https://secure.bank.example",
            "https://secure.bank.example/",
        ] {
            let html = page(url, "en");
            assert!(html.contains(
                "<form id=\"sealpost-form\" method=\"post\" action=\"https://secure.bank.example/open\" accept-charset=\"utf-8\">"
            ));
            assert!(html.contains("<textarea name=\"payload\" hidden"));
            assert!(html.contains(PAYLOAD));
            assert!(html.contains("<button type=\"submit\">Open secure message</button>"));
            let lower = html.to_ascii_lowercase();
            assert!(!lower.contains("<script"), "a script by default");
            assert!(!lower.contains("<noscript"));
            assert!(!lower.contains("script-src"));
            assert!(!html.contains(".submit()"));
            assert!(html.contains("form-action https://secure.bank.example;"));
            assert!(html.contains("#aa0033"));
            // Escaped org name, never raw markup.
            assert!(html.contains("Bank &lt;Example&gt; &amp; Co"));
            assert!(!html.contains("<Example>"));
        }
    }

    #[test]
    fn page_names_sender_date_host_and_expiry() {
        let html = html_unescape(&page("https://secure.bank.example:8443/", "en"));
        assert!(
            html.contains("From: Müller, Hans <hans@bank.example>"),
            "{html}"
        );
        assert!(html.contains("Sent: 5 March 2024, 10:15"));
        assert!(html.contains("You will be taken to secure.bank.example."));
        assert!(html.contains("This message can be read until 4 April 2024."));
        assert!(html.contains("Why did I get this, and is it genuine?"));
        assert!(html.contains("We never ask for your password"));
        // Without the portal the page still says what to do.
        assert!(html.contains("save this file and open it in a web browser"));
        assert!(html.contains("upload this file (secure.htm)"));
        let b = Branding {
            support_contact: "+49 30 1234-0".into(),
            ..branding()
        };
        let with_contact = html_unescape(&page_with("https://p.example", "en", &b, false));
        assert!(with_contact.contains("If in doubt, contact Bank <Example> & Co: +49 30 1234-0"));
        assert!(!html.contains("If in doubt"));
    }

    #[test]
    fn auto_open_adds_the_script() {
        let html = page_with("https://p.example", "en", &branding(), true);
        assert!(html.contains("<script>"));
        assert!(html.contains(".submit()"));
        assert!(html.contains("script-src 'unsafe-inline';"));
        assert!(html.contains("<noscript>"));
        assert_eq!(extract_payload(html.as_bytes()).as_deref(), Some(PAYLOAD));
    }

    #[test]
    fn page_in_german_is_ascii() {
        let html = page("https://p.example", "de-DE");
        assert!(html.is_ascii());
        assert!(html.lines().all(|l| l.len() <= 998));
        assert!(html.contains("<html lang=\"de\">"));
        let text = html_unescape(&html);
        assert!(text.contains("Sichere Nachricht öffnen"));
        assert!(text.contains("laden Sie dort diese Datei"));
        assert!(text.contains("Sie werden zu p.example weitergeleitet."));
        assert!(text.contains("Gesendet: 5. März 2024, 10:15"));
        assert!(text.contains("Warum erhalte ich diese Nachricht, und ist sie echt?"));
    }

    #[test]
    fn no_external_resources() {
        for auto_open in [false, true] {
            let html = page_with("https://p.example/", "en", &branding(), auto_open);
            let lower = html.to_ascii_lowercase();
            for needle in ["<img", "<link", "<iframe", "@import", "url(", "src="] {
                assert!(!lower.contains(needle), "found {needle}");
            }
            assert!(lower.contains("default-src 'none'"));
            // Every http occurrence is the form action (and its CSP) or the portal link.
            let mut rest = lower.as_str();
            while let Some(i) = rest.find("http") {
                let before = &rest[..i];
                assert!(
                    rest[i..].starts_with("http-equiv")
                        || before.ends_with("action=\"")
                        || before.ends_with("form-action ")
                        || before.ends_with("href=\"")
                        || before.ends_with('>'),
                    "unexpected http at …{}",
                    &rest[i.saturating_sub(30)..(i + 30).min(rest.len())]
                );
                rest = &rest[i + 4..];
            }
        }
    }

    #[test]
    fn bad_accent_is_replaced() {
        let b = Branding {
            accent_color: "red;} body{background:url(http://evil)".into(),
            ..branding()
        };
        let html = page_with("https://p.example", "en", &b, false);
        assert!(!html.contains("evil"));
        assert!(html.contains("#1f5fa8"));
    }

    #[test]
    fn extract_round_trip_lf_and_crlf() {
        let html = page("https://p.example", "en");
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
