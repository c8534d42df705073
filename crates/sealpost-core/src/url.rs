//! URLs as Sealpost reads and writes them: the parts of a configured URL (the public URL,
//! legacy host names, an `Origin` header) and percent-encoded components of the links the
//! portal, the admin UI and the authenticator URI carry. Every crate above `core` uses these,
//! so each rule is written once.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986 unreserved characters stay as they are, everything else is percent-encoded:
/// safe for a path segment, a query value, an `otpauth://` label and RFC 5987 `filename*`.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A query value that is itself a path (`next=/open/…`) or an address: `/` and `@` are
/// allowed in a query (RFC 3986, section 3.4) and keep such links readable.
pub const QUERY_VALUE: &AsciiSet = &COMPONENT.remove(b'/').remove(b'@');

/// `text` percent-encoded with `set` (UTF-8 bytes outside the set become `%XX`).
pub fn encode(text: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(text, set).to_string()
}

/// The authority of an absolute URL (`host`, `host:port`, `[v6]:port`): what follows
/// `scheme://` up to the path, query or fragment. None when there is no `://`.
pub fn authority(url: &str) -> Option<&str> {
    let rest = url.trim().split_once("://")?.1;
    rest.split(['/', '?', '#']).next()
}

/// An authority without its port; an IPv6 literal keeps its brackets (as in a `Host` header).
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The host name of an absolute URL, without port and without IPv6 brackets; None when the
/// URL has none.
pub fn host(url: &str) -> Option<&str> {
    let host = strip_port(authority(url)?);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// Whether `url` is an absolute http(s) URL with a host and no white space (the form the
/// public URL must have).
pub fn is_web_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
        && host(url).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            host("https://secure.bank.example"),
            Some("secure.bank.example")
        );
        assert_eq!(host("https://p.example:8443/x?y"), Some("p.example"));
        assert_eq!(host("http://[::1]:8080/"), Some("::1"));
        assert_eq!(host("https://"), None);
        assert_eq!(host("p.example"), None);
        assert_eq!(
            authority("https://p.example:8443/open"),
            Some("p.example:8443")
        );
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("p.example:25"), "p.example");
        assert_eq!(strip_port("p.example"), "p.example");
        assert!(is_web_url("https://secure.bank.example/"));
        assert!(is_web_url("http://127.0.0.1:8080"));
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https:///open"));
        assert!(!is_web_url("ftp://p.example"));
        assert!(!is_web_url("https://p.example/a b"));
    }

    #[test]
    fn encodes_components() {
        assert_eq!(
            encode("Bank AG: ä/~", COMPONENT),
            "Bank%20AG%3A%20%C3%A4%2F~"
        );
        assert_eq!(encode("/open/a b", QUERY_VALUE), "/open/a%20b");
        assert_eq!(encode("anna@x.example&", QUERY_VALUE), "anna@x.example%26");
    }
}
