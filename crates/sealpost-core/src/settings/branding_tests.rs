//! The branding settings: contrast, links, logo type and size, and their way into `Branding`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

fn refused(key: &str, value: &str) -> String {
    match check(key, value) {
        Err(SettingError::InvalidValue { reason, .. }) => reason,
        other => panic!("{key}={value:?} should be refused, got {other:?}"),
    }
}

fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(len, 7);
    bytes
}

fn data_url(kind: &str, bytes: &[u8]) -> String {
    format!("data:{kind};base64,{}", STANDARD.encode(bytes))
}

#[test]
fn accent_colour_needs_aa_contrast_against_white_text() {
    // The default and a dark red pass.
    assert!(check("branding.accent_color", "#1f5fa8").is_ok());
    assert!(check("branding.accent_color", "#8B0000").is_ok());
    // Yellow on white is unreadable: refused with the ratio in the reason.
    let reason = refused("branding.accent_color", "#ffd700");
    assert!(reason.contains("1.4"), "{reason}");
    assert!(reason.contains("4.5:1"), "{reason}");
    // Just below and just above the line: #777777 is 4.47:1 (shown rounded down), #767676 is 4.54:1.
    assert!(refused("branding.accent_color", "#777777").contains("4.47:1"));
    assert!(check("branding.accent_color", "#767676").is_ok());
    // The form is still checked first.
    assert!(refused("branding.accent_color", "red").contains("#RRGGBB"));
}

#[test]
fn contrast_ratio_matches_wcag() {
    let black = checks::contrast_with_white("#000000").unwrap();
    assert!((black - 21.0).abs() < 1e-9, "{black}");
    let white = checks::contrast_with_white("#ffffff").unwrap();
    assert!((white - 1.0).abs() < 1e-9, "{white}");
    assert_eq!(checks::contrast_with_white("#fff"), None);
}

#[test]
fn imprint_and_privacy_links_must_be_https() {
    for key in ["branding.imprint_url", "branding.privacy_url"] {
        assert_eq!(
            check(key, "https://bank.example/imprint").unwrap().1,
            "https://bank.example/imprint"
        );
        assert_eq!(check(key, "").unwrap().1, "");
        for bad in [
            "http://bank.example/imprint",
            "javascript:alert(1)",
            "bank.example",
            "https://",
            "https://bank.example/a b",
        ] {
            assert!(refused(key, bad).contains("https://"), "{key}={bad}");
        }
    }
}

#[test]
fn support_contact_is_one_short_line_without_markup() {
    assert_eq!(
        check("branding.support_contact", " +49 30 1234 567 ")
            .unwrap()
            .1,
        "+49 30 1234 567"
    );
    assert!(refused("branding.support_contact", "<b>call</b>").contains('<'));
    assert!(refused("branding.support_contact", &"9".repeat(121)).contains("120"));
}

#[test]
fn logo_accepts_png_and_jpeg_by_their_bytes() {
    let (_, stored) = check("branding.logo", &data_url("image/png", &png(100))).unwrap();
    assert_eq!(stored, data_url("image/png", &png(100)));
    let jpeg = b"\xff\xd8\xff\xe0rest-of-jpeg".to_vec();
    // Line breaks inside the base64 (as `base64` prints it) are fine; image/jpg is read as jpeg.
    let wrapped = format!("data:image/jpg;base64,{}\n", STANDARD.encode(&jpeg));
    let (_, stored) = check("branding.logo", &wrapped).unwrap();
    assert_eq!(stored, data_url("image/jpeg", &jpeg));
    assert_eq!(check("branding.logo", "  ").unwrap().1, "");

    let settings = Settings::from_pairs(&[("branding.logo".into(), stored)]);
    let image = settings.logo.image().expect("a logo");
    assert_eq!(image.content_type, "image/jpeg");
    assert_eq!(image.bytes, jpeg);
}

#[test]
fn logo_refuses_svg_mismatched_bytes_and_large_files() {
    let svg = data_url("image/svg+xml", b"<svg onload=alert(1)/>");
    assert!(refused("branding.logo", &svg).contains("SVG"));
    // A declared PNG whose bytes are HTML.
    let html = data_url("image/png", b"<html><script>alert(1)</script>");
    assert!(refused("branding.logo", &html).contains("not a image/png"));
    // A PNG's bytes declared as JPEG.
    assert!(refused("branding.logo", &data_url("image/jpeg", &png(50))).contains("image/jpeg"));
    assert!(refused("branding.logo", "https://bank.example/logo.png").contains("data URL"));
    assert!(refused("branding.logo", "data:image/png;base64,!!!").contains("base64"));
    assert!(
        check(
            "branding.logo",
            &data_url("image/png", &png(MAX_LOGO_BYTES))
        )
        .is_ok()
    );
    let big = data_url("image/png", &png(MAX_LOGO_BYTES + 1));
    assert!(refused("branding.logo", &big).contains("32 KiB"));
    // A stored logo that no longer passes is ignored, like any invalid stored value.
    let settings = Settings::from_pairs(&[("branding.logo".into(), html)]);
    assert!(settings.logo.image().is_none());
}

#[test]
fn branding_carries_contact_and_links_from_the_settings() {
    let settings = Settings::from_pairs(&[
        ("branding.org_name".into(), "Musterbank".into()),
        ("branding.accent_color".into(), "#0b3d2e".into()),
        ("branding.support_contact".into(), "+49 30 1234 567".into()),
        (
            "branding.imprint_url".into(),
            "https://bank.example/imprint".into(),
        ),
        (
            "branding.privacy_url".into(),
            "https://bank.example/privacy".into(),
        ),
    ]);
    let b = settings.branding();
    assert_eq!(b.org(), "Musterbank");
    assert_eq!(b.accent(), "#0b3d2e");
    assert_eq!(b.support_contact, "+49 30 1234 567");
    assert_eq!(b.imprint_url, "https://bank.example/imprint");
    assert_eq!(b.privacy_url, "https://bank.example/privacy");
    // Unset, they stay empty (nothing is shown).
    let b = Settings::default().branding();
    assert!(b.support_contact.is_empty() && b.imprint_url.is_empty() && b.privacy_url.is_empty());
}
