//! The web listeners' protection against clients that hold connections: a cap on open
//! connections in all and per client address (counted as connections are accepted, before the
//! TLS handshake), a deadline for the first byte and for request headers, a deadline for a
//! whole request, body included, and an idle limit for keep-alive connections.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The limits of one web listener (from the `[web]` section of the configuration).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// A new connection must send its first byte, and a request its headers, within this time.
    pub header_timeout: Duration,
    /// A request (headers and body) must be handled within this time; a connection that moves
    /// no byte for as long is closed.
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

/// Open connections of one listener, in all and per peer address.
#[derive(Debug)]
struct Counts {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// Admits a connection only while the listener and the peer address are under their caps;
/// a connection over a cap is closed at once, before TLS or HTTP are spoken. The peer is the
/// TCP peer: behind a reverse proxy, the proxy's connections count as one client, so the
/// per-client cap must then allow for all of them.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_peer: usize,
}

impl ConnectionCap {
    pub fn new(max_total: usize, max_per_peer: usize) -> Self {
        ConnectionCap {
            counts: Arc::new(Mutex::new(Counts {
                total: 0,
                by_peer: HashMap::new(),
            })),
            max_total: max_total.max(1),
            max_per_peer: max_per_peer.max(1),
        }
    }

    /// A slot for a connection from `peer`, or None when a cap is reached.
    fn admit(&self, peer: IpAddr) -> Option<ConnectionSlot> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let of_peer = counts.by_peer.get(&peer).copied().unwrap_or(0);
        if counts.total >= self.max_total || of_peer >= self.max_per_peer {
            return None;
        }
        counts.total += 1;
        counts.by_peer.insert(peer, of_peer + 1);
        Some(ConnectionSlot {
            counts: Arc::clone(&self.counts),
            peer,
        })
    }
}

/// Counts one open connection until dropped (when the connection closes).
#[derive(Debug)]
struct ConnectionSlot {
    counts: Arc<Mutex<Counts>>,
    peer: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_peer.remove(&self.peer);
            }
        }
    }
}

/// How much longer than the whole-request deadline a connection may stay silent: the request
/// deadline answers first, with its 408; then the connection is closed.
const IDLE_GRACE: Duration = Duration::from_secs(3);

/// A TCP connection that holds its slot while it is open, and fails with a timeout once it
/// has moved no byte either way for `idle` while hyper waits to read (an idle keep-alive
/// connection). `idle` is the whole-request deadline plus [`IDLE_GRACE`], so no request that
/// is still allowed to run is cut off by it, and a stalled request meets the request deadline
/// (a branded 408) first, not a broken body (which would answer 400).
#[derive(Debug)]
pub struct CountedStream {
    inner: TcpStream,
    _slot: ConnectionSlot,
    idle: Duration,
    idle_deadline: Pin<Box<tokio::time::Sleep>>,
}

impl CountedStream {
    fn new(inner: TcpStream, slot: ConnectionSlot, idle: Duration) -> Self {
        CountedStream {
            inner,
            _slot: slot,
            idle,
            idle_deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn active(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.idle_deadline.as_mut().reset(next);
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.idle_deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection",
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts a connection under the caps whose client sends its first byte within the header
/// deadline: hyper starts that deadline only with the first byte, so a connection that never
/// sends anything would otherwise stay open.
#[derive(Debug, Clone)]
pub struct LimitedAcceptor {
    cap: ConnectionCap,
    first_byte: Duration,
    idle: Duration,
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for LimitedAcceptor {
    type Stream = CountedStream;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(CountedStream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok().map(|p| p.ip());
        let slot = peer.and_then(|peer| self.cap.admit(peer));
        let (first_byte, idle) = (self.first_byte, self.idle);
        Box::pin(async move {
            let Some(slot) = slot else {
                tracing::warn!(peer = ?peer, "web connection refused: connection cap reached");
                return Err(io::Error::other("connection cap reached"));
            };
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => Ok((CountedStream::new(stream, slot, idle), service)),
                Ok(Ok(_)) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no request")),
            }
        })
    }
}

/// A client that trickles its request headers (slowloris) is cut off instead of holding the
/// connection open forever (hyper starts this deadline with the first byte of a request;
/// silence before it is [`LimitedAcceptor`]'s and [`CountedStream`]'s concern). HTTP/2
/// connections are pinged and closed when the pings go unanswered.
fn limit_slow_clients(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(100);
}

/// Binds one web listener and serves `router` on it (TLS when configured), within `limits`.
pub fn spawn_web(
    tasks: &mut JoinSet<()>,
    listen: &str,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ListenerLimits,
    language: sealpost_web::LanguageSource,
) -> Result<(SocketAddr, axum_server::Handle)> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen for HTTPS on {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // The deadline answers 408, which the branded-error layer around it turns into a page,
    // as it does for the framework's own refusals.
    let router = router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            language,
            sealpost_web::brand_framework_errors,
        ));
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let cap = LimitedAcceptor {
        cap: ConnectionCap::new(limits.max_connections, limits.max_connections_per_client),
        first_byte: limits.header_timeout,
        idle: limits.request_timeout + IDLE_GRACE,
    };
    match tls {
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            let mut server = axum_server::from_tcp_rustls(listener, rustls)
                .handle(handle.clone())
                .map(|acceptor| acceptor.acceptor(cap));
            limit_slow_clients(server.http_builder(), limits.header_timeout);
            tasks.spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "web listener stopped");
                }
            });
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .handle(handle.clone())
                .acceptor(cap);
            limit_slow_clients(server.http_builder(), limits.header_timeout);
            tasks.spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "web listener stopped");
                }
            });
        }
    }
    Ok((addr, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_peer_and_in_all_and_free_on_close() {
        let cap = ConnectionCap::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = cap.admit(a).expect("first");
        let _a2 = cap.admit(a).expect("second");
        assert!(cap.admit(a).is_none(), "per-client cap");
        let _b1 = cap.admit(b).expect("another client");
        assert!(cap.admit(b).is_none(), "total cap");
        drop(a1);
        assert!(cap.admit(a).is_some(), "a closed connection frees its slot");
    }
}
