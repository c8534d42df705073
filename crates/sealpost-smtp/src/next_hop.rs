//! Where outbound mail goes: an SMTP relay or a local maildir, and the probe an administrator
//! runs to see whether it is reachable.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::BufReader;

use crate::lineio::{ReadLine, read_line};

/// How long the probe waits to connect and, separately, for the greeting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Parses and probes a next hop (see [`NextHop::probe`]).
pub async fn test_next_hop(hop: &str) -> Result<String, String> {
    let hop: NextHop = hop.parse().map_err(|e: NextHopError| e.to_string())?;
    hop.probe().await
}

impl NextHop {
    /// Tries the next hop: an SMTP relay must answer with a 220 greeting within 10 s; a
    /// maildir must be a writable directory. The answer is a one-line text for the admin.
    pub async fn probe(&self) -> Result<String, String> {
        match self {
            NextHop::Smtp { host, port } => {
                let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
                let stream = tokio::time::timeout(PROBE_TIMEOUT, connect)
                    .await
                    .map_err(|_| format!("{host}:{port}: connection timed out"))?
                    .map_err(|e| format!("{host}:{port}: {e}"))?;
                let mut reader = BufReader::new(stream);
                let greeting = tokio::time::timeout(PROBE_TIMEOUT, read_line(&mut reader, 512))
                    .await
                    .map_err(|_| format!("{host}:{port}: no greeting"))?
                    .map_err(|e| format!("{host}:{port}: {e}"))?;
                let line = match greeting {
                    ReadLine::Line(l) => crate::lineio::sanitize_line(&String::from_utf8_lossy(&l))
                        .trim()
                        .to_string(),
                    ReadLine::TooLong => "(an overlong line)".to_string(),
                    ReadLine::Eof => "(nothing: the connection was closed)".to_string(),
                };
                if line.starts_with("220") {
                    Ok(format!("{host}:{port} answered: {line}"))
                } else {
                    Err(format!("{host}:{port} answered: {line}"))
                }
            }
            NextHop::Maildir(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if meta.is_dir() && !meta.permissions().readonly() {
                    Ok(format!("{} is a writable directory", path.display()))
                } else {
                    Err(format!("{} is not a writable directory", path.display()))
                }
            }
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

    #[tokio::test]
    async fn probe_reads_the_greeting() {
        let sink = crate::sink::TestSink::start().await.unwrap();
        let ok = test_next_hop(&format!("smtp://{}", sink.addr))
            .await
            .unwrap();
        assert!(ok.contains("answered: 220 sink.test"), "{ok}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"554 go away\r\n").await.unwrap();
        });
        let refused = test_next_hop(&format!("smtp://{addr}")).await.unwrap_err();
        assert!(refused.contains("554 go away"), "{refused}");
        let dir = tempfile::tempdir().unwrap();
        let md = test_next_hop(&format!("maildir:{}", dir.path().display())).await;
        assert!(md.unwrap().contains("writable"));
        assert!(test_next_hop("ftp://x").await.is_err());
    }
}
