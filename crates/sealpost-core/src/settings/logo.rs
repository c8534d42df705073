//! The organisation's logo (`branding.logo`): a small PNG or JPEG kept in the settings table as
//! a `data:` URL and served by the portal from its own origin (`/brand/logo`). Only these two
//! raster types pass, checked by their leading bytes as well as the declared type, because the
//! image is served to every recipient: SVG can carry scripts and is refused, and a file whose
//! bytes do not match its type never reaches a browser's sniffing.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::value::{SettingValue, Widget};

/// Largest logo, bytes of the image. The data URL (a third larger) must fit a MariaDB `TEXT`
/// value (64 KiB), and a logo needs no more.
pub const MAX_LOGO_BYTES: usize = 32 * 1024;

/// A checked logo image.
#[derive(Debug, PartialEq, Eq)]
pub struct LogoImage {
    /// `image/png` or `image/jpeg`.
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The logo setting: none, or one checked image (shared: every settings snapshot holds it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrandLogo(pub Option<Arc<LogoImage>>);

impl BrandLogo {
    pub fn image(&self) -> Option<&LogoImage> {
        self.0.as_deref()
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = b"\xff\xd8\xff";

fn read(text: &str) -> Result<BrandLogo, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(BrandLogo(None));
    }
    let (declared, data) = text
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
        .ok_or("paste the logo as a data URL: data:image/png;base64,… (or image/jpeg)")?;
    let (content_type, magic) = match declared.trim().to_ascii_lowercase().as_str() {
        "image/png" => ("image/png", PNG_MAGIC),
        "image/jpeg" | "image/jpg" => ("image/jpeg", JPEG_MAGIC),
        other => {
            return Err(format!(
                "{other:?} is not accepted: only PNG or JPEG (SVG can carry scripts)"
            ));
        }
    };
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > MAX_LOGO_BYTES.div_ceil(3) * 4 {
        return Err(format!(
            "the logo is larger than {} KiB",
            MAX_LOGO_BYTES / 1024
        ));
    }
    let bytes = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "the logo's data is not valid base64".to_string())?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(format!(
            "the logo is larger than {} KiB",
            MAX_LOGO_BYTES / 1024
        ));
    }
    if !bytes.starts_with(magic) {
        return Err(format!("the data is not a {content_type} image"));
    }
    Ok(BrandLogo(Some(Arc::new(LogoImage {
        content_type,
        bytes,
    }))))
}

impl SettingValue for BrandLogo {
    const WIDGET: Widget = Widget::Lines;
    fn parse_setting(text: &str) -> Result<Self, String> {
        read(text)
    }
    fn to_setting(&self) -> String {
        match self.image() {
            Some(img) => format!(
                "data:{};base64,{}",
                img.content_type,
                STANDARD.encode(&img.bytes)
            ),
            None => String::new(),
        }
    }
}
