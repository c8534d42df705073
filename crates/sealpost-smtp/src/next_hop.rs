//! Where outbound mail goes: an SMTP relay or a local maildir.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The next hop for outbound mail, parsed from the `delivery.relay` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// `smtp://host:port`; `host` is stored without IPv6 brackets.
    Smtp { host: String, port: u16 },
    /// `maildir:PATH`
    Maildir(PathBuf),
}

/// Why a next-hop string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NextHopError {
    #[error(
        "unknown next hop {0:?}: expected \"smtp://host[:port]\", \"smtp://[ipv6]:port\" or \"maildir:PATH\""
    )]
    UnknownScheme(String),
    #[error("next hop {0:?} has no host")]
    MissingHost(String),
    #[error("next hop {0:?} has an invalid port (expected 1-65535)")]
    InvalidPort(String),
    #[error("next hop {0:?} has an invalid host")]
    InvalidHost(String),
    #[error("next hop {0:?} has no maildir path")]
    EmptyPath(String),
}

impl FromStr for NextHop {
    type Err = NextHopError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let original = || trimmed.to_string();
        if let Some(rest) = strip_scheme(trimmed, "smtp://") {
            // Tolerate a trailing slash as URLs are often written that way.
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.is_empty() {
                return Err(NextHopError::MissingHost(original()));
            }
            let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| NextHopError::InvalidHost(original()))?;
                if host.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(NextHopError::InvalidHost(original()));
                }
                let port = match after {
                    "" => None,
                    p => Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| NextHopError::InvalidHost(original()))?,
                    ),
                };
                (host, port)
            } else {
                match rest.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (rest, None),
                }
            };
            if host.is_empty() {
                return Err(NextHopError::MissingHost(original()));
            }
            if host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/?#@[]".contains(c))
            {
                return Err(NextHopError::InvalidHost(original()));
            }
            let port = match port {
                None => 25,
                Some(p) => match p.parse::<u16>() {
                    Ok(p) if p != 0 => p,
                    _ => return Err(NextHopError::InvalidPort(original())),
                },
            };
            return Ok(NextHop::Smtp {
                host: host.to_string(),
                port,
            });
        }
        if let Some(rest) = strip_scheme(trimmed, "maildir:") {
            // "maildir:///var/mail/x" is the URL spelling of "/var/mail/x".
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(NextHopError::EmptyPath(original()));
            }
            return Ok(NextHop::Maildir(PathBuf::from(path)));
        }
        Err(NextHopError::UnknownScheme(original()))
    }
}

fn strip_scheme<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    let head = s.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| s.get(scheme.len()..))
        .flatten()
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Smtp { host, port } if host.contains(':') => {
                write!(f, "smtp://[{host}]:{port}")
            }
            NextHop::Smtp { host, port } => write!(f, "smtp://{host}:{port}"),
            NextHop::Maildir(path) => write!(f, "maildir:{}", path.display()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;

    fn smtp(host: &str, port: u16) -> NextHop {
        NextHop::Smtp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_valid_forms() {
        assert_eq!(
            "smtp://127.0.0.1:10026".parse::<NextHop>().unwrap(),
            smtp("127.0.0.1", 10026)
        );
        assert_eq!(
            "smtp://mx.example".parse::<NextHop>().unwrap(),
            smtp("mx.example", 25)
        );
        assert_eq!(
            "SMTP://mx.example/".parse::<NextHop>().unwrap(),
            smtp("mx.example", 25)
        );
        assert_eq!(
            "smtp://[::1]:25".parse::<NextHop>().unwrap(),
            smtp("::1", 25)
        );
        assert_eq!(
            "smtp://[2001:db8::1]".parse::<NextHop>().unwrap(),
            smtp("2001:db8::1", 25)
        );
        assert_eq!(
            "maildir:./sealpost-data/outbox".parse::<NextHop>().unwrap(),
            NextHop::Maildir("./sealpost-data/outbox".into())
        );
        assert_eq!(
            "maildir:///var/mail/out".parse::<NextHop>().unwrap(),
            NextHop::Maildir("/var/mail/out".into())
        );
    }

    #[test]
    fn rejects_invalid_forms() {
        for bad in [
            "",
            "127.0.0.1:25",
            "lmtp://x:24",
            "smtp://",
            "smtp://:25",
            "smtp://host:0",
            "smtp://host:70000",
            "smtp://host:abc",
            "smtp://[::1",
            "smtp://[nothost]:25",
            "smtp://[::1]25",
            "smtp://ho st:25",
            "smtp://user@host",
            "maildir:",
        ] {
            let err = bad.parse::<NextHop>();
            assert!(err.is_err(), "{bad:?} parsed as {err:?}");
        }
        let msg = "foo".parse::<NextHop>().unwrap_err().to_string();
        assert!(msg.contains("smtp://") && msg.contains("maildir:"), "{msg}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "smtp://mx.example:25",
            "smtp://[::1]:2525",
            "maildir:/var/out",
        ] {
            let hop: NextHop = s.parse().unwrap();
            assert_eq!(hop.to_string(), s);
            assert_eq!(hop.to_string().parse::<NextHop>().unwrap(), hop);
        }
    }
}
