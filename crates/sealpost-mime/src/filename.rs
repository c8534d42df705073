//! Names of attachments as they are shown and saved: in the portal's list, in a download's
//! `Content-Disposition`, and on files a recipient attaches to a reply.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// True for a character that changes how the text around it is shown without being
/// visible itself: Unicode's format characters (category Cf: the bidirectional embeddings,
/// overrides and isolates, zero-width spaces and joiners, the byte-order mark, the soft
/// hyphen, the Arabic letter mark, the Mongolian vowel separator, …) and the line and
/// paragraph separators. A right-to-left override turns "invoice{U+202E}fdp.exe" into what reads
/// as "invoiceexe.pdf", so such characters have no place in a file name.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// `text` without the characters of [`is_invisible_format`].
///
/// They are removed rather than shown escaped: what remains is the name in the order it is
/// stored, so the extension a reader sees is the one the operating system acts on, and a
/// saved file carries no escape sequence in its name. The cost is cosmetic (a zero-width
/// joiner inside a Persian or Indic name no longer joins).
pub fn strip_invisible_format(text: &str) -> String {
    text.chars().filter(|c| !is_invisible_format(*c)).collect()
}

/// A filename safe for Content-Disposition and for saving on any OS: no
/// path, no control or format characters, quotes or reserved characters; a fallback
/// name when nothing usable is left.
pub fn safe_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control()
                && !is_invisible_format(*c)
                && !matches!(c, '"' | '\'' | '<' | '>' | ':' | '|' | '?' | '*' | ';')
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The format characters named in the review, and the rest of the ranges the Unicode
    /// character database lists as Cf below U+FFFF plus the tag characters.
    const LISTED: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),   // soft hyphen
        (0x0600, 0x0605),   // Arabic number signs
        (0x061C, 0x061C),   // Arabic letter mark
        (0x06DD, 0x06DD),   // Arabic end of ayah
        (0x070F, 0x070F),   // Syriac abbreviation mark
        (0x180E, 0x180E),   // Mongolian vowel separator
        (0x200B, 0x200F),   // zero-width space, non-joiner, joiner, LRM, RLM
        (0x2028, 0x2029),   // line and paragraph separators (Zl, Zp)
        (0x202A, 0x202E),   // bidi embeddings and overrides
        (0x2060, 0x2064),   // word joiner, invisible operators
        (0x2066, 0x206F),   // bidi isolates, deprecated format characters
        (0xFEFF, 0xFEFF),   // byte-order mark
        (0xFFF9, 0xFFFB),   // interlinear annotation
        (0xE0001, 0xE0001), // language tag
        (0xE0020, 0xE007F), // tag characters
    ];

    #[test]
    fn every_listed_format_character_is_removed() {
        for &(from, to) in LISTED {
            for code in from..=to {
                let c = char::from_u32(code).unwrap_or_default();
                assert!(is_invisible_format(c), "U+{code:04X}");
                assert_eq!(
                    safe_filename(&format!("invoice{c}fdp.exe")),
                    "invoicefdp.exe"
                );
            }
        }
        assert_eq!(strip_invisible_format("a\u{202e}b\u{2066}c\u{feff}"), "abc");
    }

    #[test]
    fn ordinary_letters_and_marks_are_not_format_characters() {
        for c in [
            'a', 'Ü', 'ß', 'é', 'л', 'ש', 'م', '中', '한', ' ', '-', '_', '.', '€', '\u{301}',
        ] {
            assert!(!is_invisible_format(c), "{c}");
        }
    }

    proptest! {
        #[test]
        fn no_format_character_survives(name in any::<String>()) {
            let safe = safe_filename(&name);
            prop_assert!(!safe.chars().any(is_invisible_format), "{safe:?}");
            prop_assert!(!strip_invisible_format(&name).chars().any(is_invisible_format));
        }

        #[test]
        fn ordinary_names_are_unchanged(name in "[A-Za-z0-9ÄÖÜäöüßéèçñ][A-Za-z0-9ÄÖÜäöüßéèçñ _()-]{0,40}\\.[a-z]{2,4}") {
            let name = name.trim().to_string();
            prop_assert_eq!(safe_filename(&name), name.clone());
            prop_assert_eq!(strip_invisible_format(&name), name);
        }
    }
}
