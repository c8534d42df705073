//! The sender's buttons: the Outlook add-in and the Thunderbird extension of `addins/` in the
//! repository, compiled into the binary and filled with this installation's settings when
//! served (the public URL, the organisation's name, the trigger header, ids derived from the
//! public host). The admin UI hands out the Outlook manifest and the Thunderbird `.xpi`
//! (`admin::addins`); the files Outlook itself loads are public (`public_file`), because
//! Outlook fetches them without any Sealpost session.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sealpost_core::Settings;
use uuid::Uuid;

use crate::error::WebError;

/// The Outlook add-in's manifest, with placeholders.
const OUTLOOK_MANIFEST: &str = include_str!("../../../addins/outlook/manifest.xml");
const OUTLOOK_COMMANDS_HTML: &str = include_str!("../../../addins/outlook/commands.html");
const OUTLOOK_COMMANDS_JS: &str = include_str!("../../../addins/outlook/commands.js");
const OUTLOOK_ICONS: &[(&str, &[u8])] = &[
    (
        "icon-16.png",
        include_bytes!("../../../addins/outlook/icon-16.png"),
    ),
    (
        "icon-32.png",
        include_bytes!("../../../addins/outlook/icon-32.png"),
    ),
    (
        "icon-64.png",
        include_bytes!("../../../addins/outlook/icon-64.png"),
    ),
    (
        "icon-80.png",
        include_bytes!("../../../addins/outlook/icon-80.png"),
    ),
    (
        "icon-128.png",
        include_bytes!("../../../addins/outlook/icon-128.png"),
    ),
];

const THUNDERBIRD_MANIFEST: &str = include_str!("../../../addins/thunderbird/manifest.json");
const THUNDERBIRD_BACKGROUND: &str = include_str!("../../../addins/thunderbird/background.js");
const THUNDERBIRD_ICONS: &[(&str, &[u8])] = &[
    (
        "icon-16.png",
        include_bytes!("../../../addins/thunderbird/icon-16.png"),
    ),
    (
        "icon-32.png",
        include_bytes!("../../../addins/thunderbird/icon-32.png"),
    ),
    (
        "icon-64.png",
        include_bytes!("../../../addins/thunderbird/icon-64.png"),
    ),
];

/// Building the `.xpi` failed (writing a zip into memory; not expected to happen).
#[derive(Debug, thiserror::Error)]
#[error("building the Thunderbird extension: {0}")]
pub struct XpiError(#[from] zip::result::ZipError);

/// The values the add-ins are filled with, from the running settings.
pub struct Filled {
    /// `web.public_url` without a trailing slash: where the Outlook files are served.
    pub public_url: String,
    pub org_name: String,
    /// `policy.trigger_header`: the header the default policy reads as "encrypt".
    pub header: String,
    /// The Outlook add-in's `<Id>`.
    pub outlook_id: Uuid,
    /// The Thunderbird extension's `browser_specific_settings.gecko.id`.
    pub gecko_id: String,
}

impl Filled {
    pub fn from_settings(settings: &Settings) -> Self {
        let host = sealpost_core::url::host(&settings.public_url)
            .unwrap_or("localhost")
            .to_ascii_lowercase();
        // Name-based (v5) ids: the same installation always serves the same ids, so a manifest
        // downloaded again updates the deployed add-in instead of adding a second one, and two
        // installations never share one. The names differ per add-in, so the ids do too.
        let outlook_id = Uuid::new_v5(
            &Uuid::NAMESPACE_DNS,
            format!("outlook-addin.{host}").as_bytes(),
        );
        let thunderbird = Uuid::new_v5(
            &Uuid::NAMESPACE_DNS,
            format!("thunderbird-extension.{host}").as_bytes(),
        );
        Filled {
            public_url: settings.public_url.trim().trim_end_matches('/').to_string(),
            org_name: settings.org_name.clone(),
            header: settings.trigger_header.clone(),
            outlook_id,
            // Gecko accepts a GUID in braces as an extension id.
            gecko_id: format!("{{{thunderbird}}}"),
        }
    }

    fn values(&self) -> [(&'static str, String); 5] {
        [
            ("__SEALPOST_PUBLIC_URL__", self.public_url.clone()),
            ("__SEALPOST_ORG_NAME__", self.org_name.clone()),
            ("__SEALPOST_HEADER__", self.header.clone()),
            ("__SEALPOST_ADDIN_ID__", self.outlook_id.to_string()),
            ("__SEALPOST_GECKO_ID__", self.gecko_id.clone()),
        ]
    }

    /// The Outlook manifest with every placeholder filled, XML-escaped.
    pub fn outlook_manifest(&self) -> String {
        fill(OUTLOOK_MANIFEST, &self.values(), xml_escape)
    }

    /// The Thunderbird extension as an `.xpi` (a zip with manifest.json at its root).
    pub fn thunderbird_xpi(&self) -> Result<Vec<u8>, XpiError> {
        use std::io::Write;
        use zip::write::SimpleFileOptions;

        let values = self.values();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        // The placeholders stand inside JSON and JavaScript strings: one escaping fits both.
        let texts = [
            (
                "manifest.json",
                fill(THUNDERBIRD_MANIFEST, &values, js_string_escape),
            ),
            (
                "background.js",
                fill(THUNDERBIRD_BACKGROUND, &values, js_string_escape),
            ),
        ];
        for (name, text) in &texts {
            zip.start_file(*name, options)?;
            zip.write_all(text.as_bytes())
                .map_err(zip::result::ZipError::Io)?;
        }
        // PNGs are compressed already.
        let stored = options.compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in THUNDERBIRD_ICONS {
            zip.start_file(*name, stored)?;
            zip.write_all(bytes).map_err(zip::result::ZipError::Io)?;
        }
        Ok(zip.finish()?.into_inner())
    }

    /// A file Outlook loads from `/addins/outlook/{name}`: its type and bytes.
    fn outlook_file(&self, name: &str) -> Option<(&'static str, Vec<u8>)> {
        match name {
            "commands.html" => Some((
                "text/html; charset=utf-8",
                fill(OUTLOOK_COMMANDS_HTML, &self.values(), xml_escape).into_bytes(),
            )),
            "commands.js" => Some((
                "text/javascript; charset=utf-8",
                fill(OUTLOOK_COMMANDS_JS, &self.values(), js_string_escape).into_bytes(),
            )),
            _ => OUTLOOK_ICONS
                .iter()
                .find(|(icon, _)| *icon == name)
                .map(|(_, bytes)| ("image/png", bytes.to_vec())),
        }
    }
}

fn fill(text: &str, values: &[(&str, String)], escape: fn(&str) -> String) -> String {
    values.iter().fold(text.to_string(), |text, (key, value)| {
        text.replace(key, &escape(value))
    })
}

/// For text and attribute values in XML (and HTML).
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all; an organisation's name
            // never needs them.
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// For the inside of a double-quoted JavaScript or JSON string: everything but letters,
/// digits and harmless punctuation becomes `\uXXXX`, so no value can end the string, open a
/// `</script>` or carry a line terminator (U+2028 included).
fn js_string_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || " -_.,:;!?()@+#*/=[]{}".contains(c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `GET /addins/outlook/{file}`: the command page, its script and the icons, public because
/// Outlook loads them without a Sealpost session. They hold nothing secret (the organisation's
/// name and the header name are on every carrier mail too). Their CSP allows Office.js and
/// framing by Outlook on the web (`security::OfficeAddin`).
pub async fn public_file(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let filled = Filled::from_settings(&state.settings.get());
    let (content_type, bytes) = filled.outlook_file(&name).ok_or(WebError::NotFound)?;
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidated, so a changed setting (organisation name, header) reaches Outlook.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response();
    response
        .extensions_mut()
        .insert(crate::security::OfficeAddin);
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every placeholder in the add-ins' sources starts so; a served file has none left.
    const PLACEHOLDER_PREFIX: &str = "__SEALPOST_";

    fn filled(org: &str, header: &str) -> Filled {
        Filled::from_settings(&Settings {
            public_url: "https://secure.bank.example/".to_string(),
            org_name: org.to_string(),
            trigger_header: header.to_string(),
            ..Settings::default()
        })
    }

    #[test]
    fn ids_are_stable_per_host_and_differ_between_hosts_and_add_ins() {
        let a = filled("Bank", "X-Sealpost-Encrypt");
        let b = filled("Other name", "X-Other");
        assert_eq!(a.outlook_id, b.outlook_id, "the host alone decides");
        assert_eq!(a.outlook_id.get_version_num(), 5);
        let other = Filled::from_settings(&Settings {
            public_url: "https://secure.other.example".to_string(),
            ..Settings::default()
        });
        assert_ne!(other.outlook_id, a.outlook_id);
        assert_ne!(a.gecko_id, format!("{{{}}}", a.outlook_id));
        assert!(a.gecko_id.starts_with('{') && a.gecko_id.ends_with('}'));
    }

    #[test]
    fn values_are_escaped_for_the_file_they_go_into() {
        let f = filled("A&B <\"Bank\">", "X-\"Enc</script>");
        let xml = f.outlook_manifest();
        assert!(xml.contains("<ProviderName>A&amp;B &lt;&quot;Bank&quot;&gt;</ProviderName>"));
        assert!(!xml.contains(PLACEHOLDER_PREFIX));
        assert!(xml.contains("https://secure.bank.example/addins/outlook/commands.html"));
        let (_, js) = f.outlook_file("commands.js").unwrap();
        let js = String::from_utf8(js).unwrap();
        assert!(js.contains(r#"var HEADER = "X-\u0022Enc\u003c/script\u003e";"#));
        assert!(!js.contains("</script>"));
        assert!(!js.contains(PLACEHOLDER_PREFIX));
        assert!(js.contains(r#"var ORG = "A\u0026B \u003c\u0022Bank\u0022\u003e";"#));
        assert_eq!(js_string_escape("\u{2028}é"), "\\u2028\\u00e9");
        assert_eq!(js_string_escape("😀"), "\\ud83d\\ude00");
    }

    #[test]
    fn only_the_shipped_files_are_served() {
        let f = filled("Bank", "X-Sealpost-Encrypt");
        assert!(f.outlook_file("commands.html").is_some());
        assert_eq!(f.outlook_file("icon-80.png").unwrap().0, "image/png");
        assert!(f.outlook_file("manifest.xml").is_none());
        assert!(f.outlook_file("../Cargo.toml").is_none());
    }
}
