//! The names generated mail carries on the internet: `hostname` (Message-IDs, the SMTP
//! greeting, bounces), the notification sender's domain (From of credentials, resets,
//! replies, bounces; the DKIM signing domain) and the public URL's host (baked into every
//! secure.htm). Built-in defaults (`localhost`, `noreply@localhost`, `https://localhost:8443`)
//! work on one machine and nowhere else: `check-config` and `serve` warn about them, and
//! `check-config --strict` refuses them.

use std::net::IpAddr;

/// Top-level and second-level names reserved for tests, documentation, local networks or
/// private use (RFC 2606, RFC 6761, RFC 6762, RFC 8375, ICANN's `.internal`); a name under
/// any of them is never reachable on the internet.
const RESERVED_SUFFIXES: &[&str] = &[
    "localhost",
    "test",
    "example",
    "invalid",
    "local",
    "internal",
    "home.arpa",
    "example.com",
    "example.net",
    "example.org",
];

/// Why `name` is not a public DNS name, if it is not one.
fn name_problem(name: &str) -> Option<&'static str> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return Some("is empty");
    }
    if bare.parse::<IpAddr>().is_ok() || bare.strip_prefix("ipv6:").is_some() {
        return Some("is an IP address, not a host name");
    }
    if name == "localhost" {
        return Some("is localhost");
    }
    if !name.contains('.') {
        return Some("has no dot (not a fully qualified domain name)");
    }
    if RESERVED_SUFFIXES
        .iter()
        .any(|s| name == *s || name.ends_with(&format!(".{s}")))
    {
        return Some("is under a reserved name (.test, .example, .invalid, .localhost, .local, …)");
    }
    None
}

/// Everything wrong with the names generated mail would carry, one sentence each; empty when
/// all three are public DNS names.
pub fn problems(hostname: &str, notification_sender: &str, public_url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(why) = name_problem(hostname) {
        out.push(format!(
            "hostname {hostname:?} {why}: Message-IDs and the SMTP greeting need the node's public DNS name"
        ));
    }
    match notification_sender.rsplit_once('@') {
        Some((_, domain)) => {
            if let Some(why) = name_problem(domain) {
                out.push(format!(
                    "the notification sender {notification_sender:?}: its domain {why}; use an address in the organisation's mail domain (policy.notification_from, setting mail.notification_from)"
                ));
            }
        }
        None => out.push(format!(
            "the notification sender {notification_sender:?} is not an e-mail address"
        )),
    }
    match sealpost_core::url::host(public_url) {
        Some(host) => {
            if let Some(why) = name_problem(host) {
                out.push(format!(
                    "web.public_url {public_url:?}: its host {why}; every secure.htm sent names it, so it must be the portal's public name"
                ));
            }
        }
        None => out.push(format!("web.public_url {public_url:?} has no host")),
    }
    out
}

/// The problems of a configuration file as it seeds a node (`check-config`).
pub fn config_problems(config: &crate::config::Config) -> Vec<String> {
    problems(
        &config.hostname,
        &config.notification_from(),
        &config.web.public_url,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_reserved_names_are_problems() {
        for bad in [
            "localhost",
            "gateway",
            "127.0.0.1",
            "[::1]",
            "gw.bank.example",
            "bank.example.com",
            "node.test",
            "x.invalid",
            "sealpost.localhost",
            "printer.local",
            "gw.internal",
            "",
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        for good in [
            "gw.bank.de",
            "secure.musterbank.ch",
            "mail.example-bank.com",
            "sealpost.demo",
        ] {
            assert_eq!(name_problem(good), None, "{good:?}");
        }
    }

    #[test]
    fn the_defaults_have_three_problems_and_public_names_none() {
        let defaults = crate::config::Config::default();
        let found = config_problems(&defaults);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("hostname \"localhost\""));
        assert!(found[1].contains("noreply@localhost"), "{found:?}");
        assert!(found[2].starts_with("web.public_url"));
        assert!(
            problems(
                "gw.musterbank.de",
                "noreply@musterbank.de",
                "https://secure.musterbank.de"
            )
            .is_empty()
        );
        let ip = problems(
            "gw.musterbank.de",
            "noreply@musterbank.de",
            "https://10.1.2.3:8443",
        );
        assert_eq!(ip.len(), 1);
        assert!(ip[0].contains("IP address"), "{ip:?}");
    }
}
