//! Mail HTML through the portal's sanitiser. Oracles: no panic, and nothing in the output's
//! markup can run script, load a remote resource or embed another document. The output is
//! html5ever's serialisation, so it is tokenised here by that grammar: every literal `<`
//! starts a tag (text has `&lt;`), attribute values are always double-quoted.
#![no_main]

use libfuzzer_sys::fuzz_target;

const FORBIDDEN_TAGS: &[&str] = &[
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "svg", "math", "link", "meta", "base", "textarea", "button", "select",
];

/// Browsers ignore tabs and newlines inside URLs and leading spaces/controls before them.
fn url_norm(v: &str) -> String {
    v.chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .trim_start_matches(|c: char| c <= ' ')
        .to_ascii_lowercase()
}

fn check_attr(out: &str, tag: &str, name: &str, value: &str) {
    assert!(
        !name.starts_with("on"),
        "event handler {name} on <{tag}>: {out:?}"
    );
    let url = url_norm(value);
    match name {
        "src" => assert!(
            url.starts_with("/m/cid/") || url.starts_with("data:image/"),
            "src {value:?} survived on <{tag}>: {out:?}"
        ),
        "href" | "action" | "formaction" | "xlink:href" | "background" | "poster" => {
            for bad in ["javascript:", "vbscript:", "data:"] {
                assert!(!url.starts_with(bad), "{name}={value:?} survived: {out:?}");
            }
        }
        "style" => {
            // CSS tokens cannot contain whitespace ("ur l(" is no url() call), so a plain
            // substring test is the right one.
            let lower = value.to_ascii_lowercase();
            for bad in ["url(", "expression(", "@import", "javascript:"] {
                assert!(!lower.contains(bad), "style {value:?} survived: {out:?}");
            }
        }
        "srcset" => panic!("srcset survived: {out:?}"),
        _ => {}
    }
}

fn check(out: &str) {
    let b = out.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
            i += 1;
        }
        let tag = out[start..i].to_ascii_lowercase();
        assert!(!tag.is_empty(), "bare < in output: {out:?}");
        assert!(
            !tag.starts_with('!'),
            "comment or doctype survived: {out:?}"
        );
        assert!(
            !FORBIDDEN_TAGS.contains(&tag.as_str()),
            "<{tag}> survived: {out:?}"
        );
        // Attributes until '>'.
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i += 1;
                break;
            }
            let ns = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
                i += 1;
            }
            let name = out[ns..i].to_ascii_lowercase();
            let mut value = "";
            if b.get(i) == Some(&b'=') {
                assert_eq!(b.get(i + 1), Some(&b'"'), "unquoted attribute: {out:?}");
                let vs = i + 2;
                let ve = vs + out[vs..].find('"').expect("closing quote");
                value = &out[vs..ve];
                i = ve + 1;
            }
            check_attr(out, &tag, &name, &value.replace("&amp;", "&"));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let cid = |id: &str| (id.len() < 40).then(|| format!("/m/cid/{}", id.len()));
    check(&sanitise(&html, &cid));
});

fn sanitise(html: &str, cid: &dyn Fn(&str) -> Option<String>) -> String {
    sealpost_mime::sanitise_html(html, cid)
}
