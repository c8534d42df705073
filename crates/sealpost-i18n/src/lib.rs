//! Message catalogues for Sealpost.
//!
//! Texts live in `locales/<lang>/<name>.messages` as `key = value` lines. `build.rs`
//! embeds every file, so adding a language is adding a folder. The format is
//! deliberately tiny (no plurals, no selectors): generated mails and pages only
//! need fixed sentences with `{name}` placeholders. (It is not Fluent: keys are dotted,
//! placeholders have no `$`, and a value is one line with `\n` for line breaks.)

use std::collections::HashMap;
use std::sync::OnceLock;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/catalogues.rs"));
}

/// The language every other one falls back to; its catalogue is the reference.
const FALLBACK: &str = "en";

type Catalogue = HashMap<&'static str, String>;

/// Parsed catalogues, built on first use so start-up costs nothing when a
/// process never renders text.
fn catalogues() -> &'static HashMap<&'static str, Catalogue> {
    static CATALOGUES: OnceLock<HashMap<&'static str, Catalogue>> = OnceLock::new();
    CATALOGUES.get_or_init(|| {
        let mut all: HashMap<&'static str, Catalogue> = HashMap::new();
        for (lang, _file, contents) in generated::FILES {
            let catalogue = all.entry(*lang).or_default();
            for (key, value) in parse(contents) {
                catalogue.insert(key, value);
            }
        }
        all
    })
}

/// Parses one catalogue file. Lines without `=` are ignored rather than fatal:
/// the key-parity tests catch a broken line because its key goes missing.
fn parse(contents: &'static str) -> impl Iterator<Item = (&'static str, String)> {
    contents.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        Some((key, value.trim().replace("\\n", "\n")))
    })
}

/// Language codes that have a catalogue, sorted.
pub fn available() -> &'static [&'static str] {
    generated::LANGS
}

/// Maps a language tag ("de-DE", "DE", "de_AT") to a supported language code.
pub fn resolve(code: &str) -> Option<&'static str> {
    let primary = code
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    available().iter().copied().find(|l| *l == primary)
}

/// Picks the best supported language from an `Accept-Language` header.
///
/// Entries are ranked by q-value (ties keep header order); `q=0` means "not
/// this one". Without a usable match, `default` (resolved) and then "en".
pub fn negotiate(accept_language: Option<&str>, default: &str) -> &'static str {
    if let Some(header) = accept_language {
        let mut ranked: Vec<(f32, usize, &str)> = header
            .split(',')
            .enumerate()
            .filter_map(|(pos, item)| {
                let mut pieces = item.split(';');
                let tag = pieces.next()?.trim();
                if tag.is_empty() {
                    return None;
                }
                let mut q = 1.0_f32;
                for param in pieces {
                    if let Some((name, value)) = param.split_once('=')
                        && name.trim().eq_ignore_ascii_case("q")
                    {
                        // A malformed q-value makes the entry unusable rather
                        // than silently preferred.
                        q = value.trim().parse::<f32>().ok().filter(|q| q.is_finite())?;
                    }
                }
                (q > 0.0).then_some((q, pos, tag))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        if let Some(lang) = ranked.iter().find_map(|(_, _, tag)| resolve(tag)) {
            return lang;
        }
    }
    resolve(default).unwrap_or(FALLBACK)
}

/// The text for `key` in `lang`, falling back to English, then to the key itself
/// (so a missing text is visible but never breaks a page or a mail).
pub fn t(lang: &str, key: &str) -> String {
    let all = catalogues();
    let lang = resolve(lang).unwrap_or(FALLBACK);
    all.get(lang)
        .and_then(|c| c.get(key))
        .or_else(|| all.get(FALLBACK).and_then(|c| c.get(key)))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// Like [`t`], with `{name}` placeholders replaced by the matching argument.
///
/// Substitution is a single pass over the template, so a value that itself
/// contains `{…}` is inserted literally and never expanded again. Unknown
/// placeholders are left as they are.
pub fn tf(lang: &str, key: &str, args: &[(&str, &str)]) -> String {
    let template = t(lang, key);
    let mut out = String::with_capacity(template.len());
    let mut rest = template.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(lang: &str) -> BTreeSet<&'static str> {
        catalogues()
            .get(lang)
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default()
    }

    fn placeholders(text: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            found.insert(after[..close].to_string());
            rest = &after[close + 1..];
        }
        found
    }

    #[test]
    fn languages_are_discovered_and_sorted() {
        assert_eq!(available(), &["de", "en"]);
        let mut sorted = available().to_vec();
        sorted.sort();
        assert_eq!(sorted, available());
    }

    #[test]
    fn every_language_has_exactly_the_english_keys() {
        let en = keys("en");
        assert!(en.len() > 20, "English catalogue looks empty: {en:?}");
        for lang in available() {
            let other = keys(lang);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty(), "{lang} lacks keys: {missing:?}");
            assert!(extra.is_empty(), "{lang} has keys English lacks: {extra:?}");
        }
    }

    #[test]
    fn placeholders_agree_between_languages() {
        let all = catalogues();
        let en = &all["en"];
        for lang in available() {
            for (key, text) in &all[lang] {
                let expected = placeholders(&en[key]);
                assert_eq!(
                    placeholders(text),
                    expected,
                    "placeholders of {key} differ between en and {lang}"
                );
            }
        }
    }

    #[test]
    fn no_key_is_defined_twice_in_a_language() {
        for lang in available() {
            let mut seen = BTreeSet::new();
            for (l, file, contents) in generated::FILES {
                if l != lang {
                    continue;
                }
                for (key, _) in parse(contents) {
                    assert!(
                        seen.insert(key),
                        "{lang}/{file}.messages: duplicate key {key}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_value_is_empty() {
        for lang in available() {
            for (key, text) in &catalogues()[lang] {
                assert!(!text.trim().is_empty(), "{lang}: {key} is empty");
            }
        }
    }

    #[test]
    fn resolve_handles_regions_case_and_underscores() {
        assert_eq!(resolve("de-DE"), Some("de"));
        assert_eq!(resolve("DE"), Some("de"));
        assert_eq!(resolve("de_AT"), Some("de"));
        assert_eq!(resolve(" en-GB "), Some("en"));
        assert_eq!(resolve("fr"), None);
        assert_eq!(resolve(""), None);
        assert_eq!(resolve("*"), None);
    }

    #[test]
    fn negotiate_honours_q_values() {
        assert_eq!(negotiate(Some("en;q=0.5, de;q=0.9"), "en"), "de");
        assert_eq!(negotiate(Some("fr-FR, de-CH;q=0.8, en;q=0.7"), "en"), "de");
        assert_eq!(negotiate(Some("de;q=0.3, en"), "de"), "en");
        // Equal q keeps header order.
        assert_eq!(negotiate(Some("en-US,de-DE"), "de"), "en");
        // q=0 excludes a language.
        assert_eq!(negotiate(Some("de;q=0, en;q=0.1"), "de"), "en");
        assert_eq!(negotiate(Some("de;q=0"), "en"), "en");
        // Malformed q is ignored, not preferred.
        assert_eq!(negotiate(Some("de;q=abc, en;q=0.2"), "de"), "en");
    }

    #[test]
    fn negotiate_falls_back_to_default_then_english() {
        assert_eq!(negotiate(None, "de"), "de");
        assert_eq!(negotiate(Some("fr, it;q=0.5"), "de-AT"), "de");
        assert_eq!(negotiate(Some(""), "xx"), "en");
        assert_eq!(negotiate(Some("*"), "de"), "de");
        assert_eq!(negotiate(None, "klingon"), "en");
    }

    #[test]
    fn t_falls_back_to_english_then_the_key() {
        assert_eq!(t("fr", "common.language_name"), "English");
        assert_eq!(t("de-DE", "common.language_name"), "Deutsch");
        assert_eq!(t("de", "no.such.key"), "no.such.key");
    }

    #[test]
    fn escaped_newlines_become_newlines() {
        assert!(t("en", "bounce.intro").contains('\n'));
        assert!(!t("en", "bounce.intro").contains("\\n"));
    }

    #[test]
    fn tf_replaces_placeholders_once() {
        let text = tf(
            "en",
            "credentials.password_line",
            &[("password", "{password}x")],
        );
        assert_eq!(text, "Password: {password}x");
        let text = tf("de", "credentials.password_line", &[("password", "abc")]);
        assert_eq!(text, "Passwort: abc");
        // Missing argument leaves the placeholder visible.
        assert_eq!(
            tf("en", "credentials.password_line", &[]),
            "Password: {password}"
        );
    }
}
