//! TCP accept loop for the inbound SMTP service: network access control,
//! connection limits, one task per session.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::inbound::{MessageHandler, SessionConfig, run_session};

/// Configuration of the inbound listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub session: SessionConfig,
    /// Only clients in these networks may connect (the MTA that hands mail to
    /// us); everyone else is refused with 554 because we relay.
    pub allowed_networks: Vec<IpNet>,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Releases a connection slot when the session task ends, however it ends.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A poisoned lock only means another task panicked while holding it; the
/// counters are still usable, and refusing all connections would be worse.
fn lock(m: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn try_acquire(counts: &Arc<Mutex<Counts>>, ip: IpAddr, cfg: &ServerConfig) -> Option<Slot> {
    let mut c = lock(counts);
    let per_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
    if c.total >= cfg.max_connections || per_ip >= cfg.max_connections_per_ip {
        return None;
    }
    c.total += 1;
    *c.per_ip.entry(ip).or_insert(0) += 1;
    Some(Slot {
        counts: Arc::clone(counts),
        ip,
    })
}

/// Accepts connections until `shutdown` completes.
///
/// A peer outside `allowed_networks` gets "554 5.7.1 Access denied"; a peer
/// over `max_connections` or `max_connections_per_ip` gets "421 4.7.0 Too many
/// connections". IPv4-mapped IPv6 peers (dual-stack sockets) are normalised to
/// IPv4 first so that IPv4 networks in the configuration match them. Sessions
/// already running are not interrupted by shutdown.
pub async fn serve<H: MessageHandler>(
    listener: TcpListener,
    cfg: Arc<ServerConfig>,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept;
                    // neither should stop the service. The pause keeps an
                    // fd-exhausted loop from spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let ip = peer.ip().to_canonical();
        if !cfg.allowed_networks.iter().any(|n| n.contains(&ip)) {
            tracing::warn!(client = %ip, "connection from a network that may not relay");
            refuse(stream, "554 5.7.1 Access denied\r\n");
            continue;
        }
        let Some(slot) = try_acquire(&counts, ip, &cfg) else {
            tracing::warn!(client = %ip, "connection limit reached");
            refuse(stream, "421 4.7.0 Too many connections\r\n");
            continue;
        };
        let cfg = Arc::clone(&cfg);
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let mut session = cfg.session.clone();
            if let Some((size, rcpts)) = handler.session_limits() {
                session.max_message_size = size;
                session.max_recipients = rcpts;
            }
            if let Err(e) = run_session(stream, ip, &session, handler.as_ref()).await {
                tracing::debug!(client = %ip, error = %e, "SMTP session ended with an error");
            }
        });
    }
}

/// Sends one reply and closes, in its own task so a slow peer cannot stall
/// the accept loop; bounded so it cannot linger.
fn refuse(mut stream: TcpStream, reply: &'static str) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            stream.write_all(reply.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use crate::inbound::{Envelope, Verdict};
    use tokio::io::{AsyncBufReadExt, BufReader};

    struct Accept;
    impl MessageHandler for Accept {
        async fn handle(&self, _e: Envelope, _d: Vec<u8>) -> Verdict {
            Verdict::Accepted("X".into())
        }
    }

    async fn start(
        nets: &[&str],
        max: usize,
        per_ip: usize,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = Arc::new(ServerConfig {
            session: SessionConfig {
                hostname: "mx.test".into(),
                ..SessionConfig::default()
            },
            allowed_networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            max_connections: max,
            max_connections_per_ip: per_ip,
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, cfg, Arc::new(Accept), async move {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    async fn first_line(addr: std::net::SocketAddr) -> (String, BufReader<TcpStream>) {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut r = BufReader::new(s);
        let mut l = String::new();
        tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut l))
            .await
            .unwrap()
            .unwrap();
        (l.trim_end().to_string(), r)
    }

    #[tokio::test]
    async fn allowed_network_gets_greeting() {
        let (addr, _stop) = start(&["127.0.0.0/8", "::1/128"], 10, 10).await;
        let (l, _c) = first_line(addr).await;
        assert_eq!(l, "220 mx.test ESMTP Sealpost");
    }

    #[tokio::test]
    async fn disallowed_network_is_refused() {
        let (addr, _stop) = start(&["10.0.0.0/8", "::1/128"], 10, 10).await;
        let (l, _c) = first_line(addr).await;
        assert_eq!(l, "554 5.7.1 Access denied");
    }

    #[tokio::test]
    async fn connection_limits() {
        let (addr, _stop) = start(&["127.0.0.0/8"], 1, 10).await;
        let (l1, c1) = first_line(addr).await;
        assert!(l1.starts_with("220"));
        let (l2, _c2) = first_line(addr).await;
        assert_eq!(l2, "421 4.7.0 Too many connections");
        // Closing the first session frees its slot.
        drop(c1);
        let mut ok = false;
        for _ in 0..50 {
            let (l, _c) = first_line(addr).await;
            if l.starts_with("220") {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "slot was not released");

        let (addr, _stop) = start(&["127.0.0.0/8"], 10, 1).await;
        let (l1, _c1) = first_line(addr).await;
        assert!(l1.starts_with("220"));
        let (l2, _c2) = first_line(addr).await;
        assert_eq!(l2, "421 4.7.0 Too many connections");
    }

    #[tokio::test]
    async fn ipv4_mapped_peer_matches_ipv4_network() {
        // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
        let Ok(listener) = TcpListener::bind("[::]:0").await else {
            eprintln!("no IPv6 on this host; skipping");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let cfg = Arc::new(ServerConfig {
            session: SessionConfig::default(),
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
            max_connections: 10,
            max_connections_per_ip: 10,
        });
        let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, cfg, Arc::new(Accept), async move {
            let _ = rx.await;
        }));
        let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await else {
            eprintln!("IPv6 socket is not dual-stack here; skipping");
            return;
        };
        let mut r = BufReader::new(s);
        let mut l = String::new();
        tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut l))
            .await
            .unwrap()
            .unwrap();
        assert!(l.starts_with("220 "), "{l:?}");
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = Arc::new(ServerConfig {
            session: SessionConfig::default(),
            allowed_networks: vec![],
            max_connections: 1,
            max_connections_per_ip: 1,
        });
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            serve(listener, cfg, Arc::new(Accept), async {}),
        )
        .await;
        assert!(matches!(r, Ok(Ok(()))));
    }
}
