//! Where a reader goes after signing in or replacing a generated password: an allow-list of
//! internal paths, so a crafted `next` can never send them to another site (`/%09/evil`,
//! `//evil`, `\evil`) or break the redirect header (CR/LF).

use sealpost_core::url;

use crate::guards::linked::valid_link_id;
use crate::guards::opened::valid_token;

/// `next` if it is one of the portal's known destinations, else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| is_known_destination(n))
        .unwrap_or("/")
        .to_string()
}

fn is_known_destination(path: &str) -> bool {
    match path {
        "/" | "/profile" => true,
        _ => {
            path.strip_prefix("/open/").is_some_and(valid_token)
                || path.strip_prefix("/m/").is_some_and(valid_link_id)
        }
    }
}

/// The destination a reader is returned to after signing in, for a request to `path`:
/// the message for everything under `/open/{token}`, else the page itself when it is a known
/// destination, else `/`.
pub fn return_to(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/open/") {
        let token = rest.split('/').next().unwrap_or_default();
        return safe_next(Some(&format!("/open/{token}")));
    }
    safe_next(Some(path))
}

/// Percent-encodes a query value (a path such as `next=/open/…` stays readable).
pub fn query_escape(s: &str) -> String {
    url::encode(s, url::QUERY_VALUE)
}

/// The sign-in page that returns to `next` afterwards.
pub fn login_url(next: &str) -> String {
    let next = safe_next(Some(next));
    if next == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", query_escape(&next))
    }
}

/// The page where a generated password is replaced first, returning to `next` afterwards.
pub fn welcome_url(next: &str) -> String {
    format!("/welcome?next={}", query_escape(&safe_next(Some(next))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_are_known_internal_paths() {
        let (token, _) = sealpost_crypto::new_token();
        let open = format!("/open/{token}");
        assert_eq!(safe_next(Some(&open)), open);
        assert_eq!(safe_next(Some("/profile")), "/profile");
        let link = format!("/m/{token}");
        assert_eq!(safe_next(Some(&link)), link);
        assert_eq!(return_to(&link), link);
        assert_eq!(login_url(&link), format!("/login?next=/m/{token}"));
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/profile\r\nSet-Cookie: x=1",
            "/open/short",
            "/open/../admin",
            "/m/short",
            "/m/../admin",
            "/admin",
            " /profile",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn sub_resources_return_to_their_message() {
        let (token, _) = sealpost_crypto::new_token();
        assert_eq!(
            return_to(&format!("/open/{token}/part/2")),
            format!("/open/{token}")
        );
        assert_eq!(return_to("/open/x/part/2"), "/");
        assert_eq!(login_url("/"), "/login");
        assert_eq!(
            login_url(&format!("/open/{token}")),
            format!("/login?next=/open/{token}")
        );
    }
}
