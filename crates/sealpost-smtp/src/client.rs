//! Outbound SMTP to the next hop (the organisation's own MTA), or maildir
//! delivery when the next hop is a directory.

use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::lineio::{ReadLine, read_line};
use crate::next_hop::NextHop;

/// Settings of the outbound SMTP client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name sent in EHLO/HELO.
    pub helo_name: String,
    pub connect_timeout: Duration,
    /// Longest wait for a reply to a command (and for the TLS handshake).
    pub command_timeout: Duration,
    /// Longest wait for each write of message data and for the final reply.
    pub data_timeout: Duration,
    /// Use STARTTLS when the server offers it, without verifying the
    /// certificate (see [`AcceptAnyCert`]).
    pub opportunistic_tls: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            helo_name: "localhost".to_string(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(60),
            data_timeout: Duration::from_secs(300),
            opportunistic_tls: true,
        }
    }
}

/// One message to deliver: envelope plus RFC 5322 data.
pub struct OutboundMessage<'a> {
    /// Empty for the null sender (bounces).
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub data: &'a [u8],
}

/// Outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    Delivered,
    /// Try again later; the text is the server reply or the error.
    Deferred(String),
    /// Permanent failure (bounce); the text is the server reply.
    Failed(String),
}

/// Delivers `msg` to `next_hop` and returns one result per recipient, in the
/// order of `msg.rcpt_to`.
///
/// Connection, timeout and TLS errors defer every recipient not already
/// rejected for good. Replies map as 2xx delivered, 4xx deferred, 5xx failed;
/// a 4xx/5xx to MAIL or DATA applies to every recipient accepted so far.
pub async fn deliver(
    next_hop: &NextHop,
    cfg: &ClientConfig,
    msg: &OutboundMessage<'_>,
) -> Vec<RcptResult> {
    let mut sender = Sender::new(next_hop, cfg);
    let results = sender.send(msg).await;
    sender.finish().await;
    results
}

/// Delivers several messages to `next_hop`, over one SMTP session where possible; one result
/// list per message, in order, each as [`deliver`] would return it.
pub async fn deliver_many(
    next_hop: &NextHop,
    cfg: &ClientConfig,
    msgs: &[OutboundMessage<'_>],
) -> Vec<Vec<RcptResult>> {
    let mut sender = Sender::new(next_hop, cfg);
    let mut out = Vec::with_capacity(msgs.len());
    for msg in msgs {
        out.push(sender.send(msg).await);
    }
    sender.finish().await;
    out
}

/// Sends messages one after another to one next hop. For SMTP it keeps one session open
/// across messages (RSET between them); if the session breaks, the message in progress is
/// deferred and the next one opens a new session; if no session can be opened at all, the
/// remaining messages are deferred at once rather than hammering a next hop that is down.
/// Callers that must record each outcome before the next send (the delivery worker) drive it
/// message by message; [`deliver_many`] drives it over a list.
pub struct Sender<'a> {
    next_hop: &'a NextHop,
    cfg: &'a ClientConfig,
    session: Option<SmtpSession>,
    unreachable: Option<String>,
}

impl<'a> Sender<'a> {
    pub fn new(next_hop: &'a NextHop, cfg: &'a ClientConfig) -> Self {
        Sender {
            next_hop,
            cfg,
            session: None,
            unreachable: None,
        }
    }

    /// One result per recipient of `msg`, in order.
    pub async fn send(&mut self, msg: &OutboundMessage<'_>) -> Vec<RcptResult> {
        if msg.rcpt_to.is_empty() {
            return Vec::new();
        }
        let (host, port) = match self.next_hop {
            NextHop::Maildir(dir) => return deliver_maildir(dir, msg).await,
            NextHop::Smtp { host, port } => (host, *port),
        };
        if let Some(reason) = &self.unreachable {
            return defer_all(msg, reason);
        }
        if self.session.is_none() {
            match SmtpSession::open(host, port, self.cfg).await {
                Ok(s) => self.session = Some(s),
                Err(reason) => {
                    let results = defer_all(msg, &reason);
                    self.unreachable = Some(reason);
                    return results;
                }
            }
        }
        let Some(open) = self.session.as_mut() else {
            return defer_all(msg, "no session");
        };
        match open.send(self.cfg, msg).await {
            Ok(results) => results,
            Err(results) => {
                self.session = None;
                results
            }
        }
    }

    /// Ends the open session, if any, politely (QUIT).
    pub async fn finish(self) {
        if let Some(s) = self.session {
            s.close().await;
        }
    }
}

/// Maildir delivery: file I/O and fsync block, so they run off the async workers.
async fn deliver_maildir(dir: &std::path::Path, msg: &OutboundMessage<'_>) -> Vec<RcptResult> {
    let dir = dir.to_path_buf();
    let from = msg.mail_from.to_string();
    let rcpts = msg.rcpt_to.to_vec();
    let data = msg.data.to_vec();
    let n = rcpts.len();
    let joined = tokio::task::spawn_blocking(move || {
        crate::maildir::deliver(
            &dir,
            &OutboundMessage {
                mail_from: &from,
                rcpt_to: &rcpts,
                data: &data,
            },
        )
    })
    .await;
    match joined {
        Ok(results) => results,
        Err(e) => vec![RcptResult::Deferred(format!("maildir delivery task failed: {e}")); n],
    }
}

/// Errors that end an outbound SMTP session early.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("connect to {0} failed: {1}")]
    Connect(String, std::io::Error),
    #[error("timeout {0}")]
    Timeout(&'static str),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{0} rejected: {1}")]
    Rejected(&'static str, String),
}

/// A complete (possibly multi-line) SMTP reply.
#[derive(Debug, Clone)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// "code text text…" — what ends up in a bounce or the logs.
    fn text(&self) -> String {
        let text = self.lines.join(" ");
        let text = text.trim();
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, text)
        }
    }
}

#[derive(Clone)]
enum State {
    Pending,
    Accepted,
    Done(RcptResult),
}

/// Longest reply line we accept (RFC 5321 says 512; be generous) and most
/// lines per reply, so a broken server cannot make us buffer without end.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 256;

struct Conn<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Conn {
            io: BufReader::new(stream),
        }
    }

    async fn send(&mut self, line: &str, t: Duration) -> Result<(), ClientError> {
        self.send_all(&[line], t).await
    }

    /// Writes several commands with one write (RFC 2920 pipelining); replies are read later.
    async fn send_all<L: AsRef<str>>(
        &mut self,
        lines: &[L],
        t: Duration,
    ) -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.as_ref().len() + 2).sum());
        for line in lines {
            buf.extend_from_slice(line.as_ref().as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        let stream = self.io.get_mut();
        timeout(t, async {
            stream.write_all(&buf).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout("sending a command"))??;
        Ok(())
    }

    async fn read_reply(&mut self, t: Duration) -> Result<Reply, ClientError> {
        timeout(t, self.read_reply_inner())
            .await
            .map_err(|_| ClientError::Timeout("waiting for a reply"))?
    }

    async fn read_reply_inner(&mut self) -> Result<Reply, ClientError> {
        let mut lines = Vec::new();
        loop {
            let line = match read_line(&mut self.io, MAX_REPLY_LINE).await? {
                ReadLine::Line(l) => l,
                ReadLine::TooLong => {
                    return Err(ClientError::Protocol("reply line too long".into()));
                }
                ReadLine::Eof => {
                    return Err(ClientError::Protocol("connection closed by server".into()));
                }
            };
            let code = line
                .get(..3)
                .filter(|c| c.iter().all(u8::is_ascii_digit) && c[0] >= b'2' && c[0] <= b'5')
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| ClientError::Protocol("malformed reply".into()))?;
            let more = match line.get(3) {
                None | Some(b' ') => false,
                Some(b'-') => true,
                Some(_) => return Err(ClientError::Protocol("malformed reply".into())),
            };
            let text = line.get(4..).unwrap_or_default();
            lines.push(String::from_utf8_lossy(text).into_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(ClientError::Protocol("reply has too many lines".into()));
            }
        }
    }

    async fn command(&mut self, line: &str, t: Duration) -> Result<Reply, ClientError> {
        self.send(line, t).await?;
        self.read_reply(t).await
    }

    /// EHLO, falling back to HELO on a 5xx. Returns the upper-cased extension
    /// keywords (empty after HELO).
    async fn hello(&mut self, cfg: &ClientConfig) -> Result<Vec<String>, ClientError> {
        let t = cfg.command_timeout;
        let r = self.command(&format!("EHLO {}", cfg.helo_name), t).await?;
        if r.code == 250 {
            return Ok(r
                .lines
                .iter()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_ascii_uppercase)
                .collect());
        }
        if r.code / 100 != 5 {
            return Err(ClientError::Rejected("EHLO", r.text()));
        }
        let r = self.command(&format!("HELO {}", cfg.helo_name), t).await?;
        if r.code != 250 {
            return Err(ClientError::Rejected("HELO", r.text()));
        }
        Ok(Vec::new())
    }

    async fn quit(&mut self) {
        // The transaction is complete; a server that does not answer QUIT
        // must not hold us up, nor change the results.
        let t = Duration::from_secs(5);
        if self.send("QUIT", t).await.is_ok() {
            let _ = self.read_reply(t).await;
        }
        let _ = timeout(t, self.io.get_mut().shutdown()).await;
    }

    /// MAIL, RCPT…, DATA on an established (and greeted) session, preceded by RSET when
    /// `reset` (a session reused for the next message). The caller ends the session (QUIT) or
    /// reuses it. With PIPELINING everything up to DATA goes out in one write and costs one
    /// round trip instead of one per command: with ten carriers per message, round trips to
    /// the next hop were a large share of delivery time.
    async fn transaction(
        &mut self,
        cfg: &ClientConfig,
        extensions: &[String],
        msg: &OutboundMessage<'_>,
        states: &mut [State],
        reset: bool,
    ) -> Result<(), ClientError> {
        let t = cfg.command_timeout;
        let has = |ext: &str| extensions.iter().any(|e| e == ext);
        let mut mail = format!("MAIL FROM:<{}>", msg.mail_from);
        if has("SIZE") {
            mail.push_str(&format!(" SIZE={}", msg.data.len()));
        }
        if has("8BITMIME") && !msg.data.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        let utf8_envelope = !msg.mail_from.is_ascii() || msg.rcpt_to.iter().any(|r| !r.is_ascii());
        if has("SMTPUTF8") && utf8_envelope {
            mail.push_str(" SMTPUTF8");
        }
        let rcpt_lines: Vec<String> = msg
            .rcpt_to
            .iter()
            .map(|r| format!("RCPT TO:<{r}>"))
            .collect();
        let data_reply = if has("PIPELINING") {
            let mut batch = Vec::with_capacity(rcpt_lines.len() + 3);
            if reset {
                batch.push("RSET".to_string());
            }
            batch.push(mail);
            batch.extend(rcpt_lines);
            batch.push("DATA".to_string());
            self.send_all(&batch, t).await?;
            if reset {
                let r = self.read_reply(t).await?;
                if r.code != 250 {
                    return Err(ClientError::Rejected("RSET", r.text()));
                }
            }
            let mail_reply = self.read_reply(t).await?;
            for state in states.iter_mut() {
                let r = self.read_reply(t).await?;
                *state = if r.code / 100 == 2 {
                    State::Accepted
                } else {
                    State::Done(classify(&r))
                };
            }
            let data_reply = self.read_reply(t).await?;
            let refused = if mail_reply.code / 100 != 2 {
                let result = classify(&mail_reply);
                for s in states.iter_mut() {
                    *s = State::Done(result.clone());
                }
                true
            } else {
                !states.iter().any(|s| matches!(s, State::Accepted))
            };
            if refused {
                // A server that answered DATA with 354 anyway waits for a message: give it
                // an empty one and ignore its verdict (RFC 2920 section 3.1).
                if data_reply.code == 354 {
                    self.command(".", cfg.data_timeout).await?;
                }
                return Ok(());
            }
            data_reply
        } else {
            if reset {
                let r = self.command("RSET", t).await?;
                if r.code != 250 {
                    return Err(ClientError::Rejected("RSET", r.text()));
                }
            }
            let r = self.command(&mail, t).await?;
            if r.code / 100 != 2 {
                let result = classify(&r);
                for s in states.iter_mut() {
                    *s = State::Done(result.clone());
                }
                return Ok(());
            }
            for (line, state) in rcpt_lines.iter().zip(states.iter_mut()) {
                let r = self.command(line, t).await?;
                *state = if r.code / 100 == 2 {
                    State::Accepted
                } else {
                    State::Done(classify(&r))
                };
            }
            if !states.iter().any(|s| matches!(s, State::Accepted)) {
                return Ok(());
            }
            self.command("DATA", t).await?
        };
        if data_reply.code != 354 {
            settle_accepted(states, classify(&data_reply));
            return Ok(());
        }
        let body = encode_data(msg.data);
        let stream = self.io.get_mut();
        for chunk in body.chunks(64 * 1024) {
            timeout(cfg.data_timeout, stream.write_all(chunk))
                .await
                .map_err(|_| ClientError::Timeout("sending message data"))??;
        }
        timeout(cfg.data_timeout, stream.flush())
            .await
            .map_err(|_| ClientError::Timeout("sending message data"))??;
        let r = self.read_reply(cfg.data_timeout).await?;
        let result = if r.code / 100 == 2 {
            RcptResult::Delivered
        } else {
            classify(&r)
        };
        settle_accepted(states, result);
        Ok(())
    }
}

/// Maps a non-2xx reply to a recipient result: 5xx is permanent, anything
/// else (4xx, or an unexpected code) is retried.
fn classify(r: &Reply) -> RcptResult {
    if r.code / 100 == 5 {
        RcptResult::Failed(r.text())
    } else {
        RcptResult::Deferred(r.text())
    }
}

fn settle_accepted(states: &mut [State], result: RcptResult) {
    for s in states.iter_mut() {
        if matches!(s, State::Accepted) {
            *s = State::Done(result.clone());
        }
    }
}

/// Normalises line ends to CRLF, dot-stuffs lines starting with ".", adds a
/// final CRLF if missing and appends the terminating ".".
fn encode_data(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 5);
    let mut at_line_start = true;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
                i += 1;
            }
            _ => {
                out.push(b);
                at_line_start = false;
            }
        }
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Envelope addresses come from our own queue, but a CR or LF in one would
/// let it smuggle extra SMTP commands; refuse them up front.
fn unsafe_address(a: &str) -> bool {
    a.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

/// A message's recipients split into those to send and those refused locally.
struct Prepared {
    states: Vec<State>,
    deliverable: Vec<String>,
}

fn prepare(msg: &OutboundMessage<'_>) -> Prepared {
    let sender_ok = !unsafe_address(msg.mail_from);
    let states: Vec<State> = msg
        .rcpt_to
        .iter()
        .map(|r| {
            if !sender_ok {
                State::Done(RcptResult::Failed("invalid sender address".into()))
            } else if unsafe_address(r) || r.is_empty() {
                State::Done(RcptResult::Failed("invalid recipient address".into()))
            } else {
                State::Pending
            }
        })
        .collect();
    let deliverable = msg
        .rcpt_to
        .iter()
        .zip(&states)
        .filter(|(_, s)| matches!(s, State::Pending))
        .map(|(r, _)| r.clone())
        .collect();
    Prepared {
        states,
        deliverable,
    }
}

/// Merges the session's per-recipient states back into the message's order.
fn finish(mut states: Vec<State>, sub_states: Vec<State>) -> Vec<RcptResult> {
    let mut sub_iter = sub_states.into_iter();
    for s in states.iter_mut() {
        if matches!(s, State::Pending) {
            *s = sub_iter.next().unwrap_or(State::Pending);
        }
    }
    states
        .into_iter()
        .map(|s| match s {
            State::Done(r) => r,
            // Unreachable in practice; deferring is the safe answer.
            State::Pending | State::Accepted => RcptResult::Deferred("delivery incomplete".into()),
        })
        .collect()
}

/// After a session error, recipients already rejected for good stay failed; everything else
/// is retried.
fn defer_unfinished(states: &mut [State], error: &ClientError) {
    for s in states.iter_mut() {
        if !matches!(s, State::Done(RcptResult::Failed(_))) {
            *s = State::Done(RcptResult::Deferred(error.to_string()));
        }
    }
}

/// Every recipient deferred (locally refused ones stay failed).
fn defer_all(msg: &OutboundMessage<'_>, reason: &str) -> Vec<RcptResult> {
    let p = prepare(msg);
    let states = vec![State::Done(RcptResult::Deferred(reason.to_string())); p.deliverable.len()];
    finish(p.states, states)
}

/// Any byte stream a session runs over: plain TCP, or TCP after STARTTLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects, reads the greeting, says EHLO and upgrades to TLS when offered; returns the
/// ready connection and the server's extensions.
async fn open_conn(
    host: &str,
    port: u16,
    cfg: &ClientConfig,
) -> Result<(Conn<Box<dyn Io>>, Vec<String>), ClientError> {
    let target = format!("{host}:{port}");
    let tcp = timeout(cfg.connect_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ClientError::Timeout("connecting"))?
        .map_err(|e| ClientError::Connect(target, e))?;
    let _ = tcp.set_nodelay(true);
    let peer_ip = tcp.peer_addr().ok().map(|a| a.ip());
    let mut conn = Conn::new(tcp);
    let greeting = conn.read_reply(cfg.command_timeout).await?;
    if greeting.code != 220 {
        // Even a 5xx greeting is treated as temporary: for our own MTA it
        // means "not now" far more often than "never", and a retry is cheaper
        // than a wrong bounce.
        return Err(ClientError::Rejected("greeting", greeting.text()));
    }
    let extensions = conn.hello(cfg).await?;
    if cfg.opportunistic_tls && extensions.iter().any(|e| e == "STARTTLS") {
        let r = conn.command("STARTTLS", cfg.command_timeout).await?;
        if r.code == 220 {
            // Anything the server sent after its 220 arrived in plaintext and
            // could be injected by an attacker (CVE-2011-0411 class).
            if !conn.io.buffer().is_empty() {
                return Err(ClientError::Protocol("data after STARTTLS reply".into()));
            }
            let tcp = conn.io.into_inner();
            let tls = timeout(cfg.command_timeout, start_tls(host, peer_ip, tcp))
                .await
                .map_err(|_| ClientError::Timeout("in TLS handshake"))??;
            let mut conn: Conn<Box<dyn Io>> = Conn::new(Box::new(tls));
            let extensions = conn.hello(cfg).await?;
            return Ok((conn, extensions));
        }
        // Like Postfix's "may" level: a refused STARTTLS means plaintext.
        tracing::debug!(reply = %r.text(), "STARTTLS refused, continuing without TLS");
    }
    let tcp = conn.io.into_inner();
    Ok((Conn::new(Box::new(tcp)), extensions))
}

/// An open session to an SMTP next hop that carries several messages, one after the other
/// (RSET between them): the connection, greeting, EHLO and TLS handshake are paid once.
struct SmtpSession {
    conn: Conn<Box<dyn Io>>,
    extensions: Vec<String>,
    sent: usize,
}

impl SmtpSession {
    /// Opens a session; the error text explains why not (for deferral reasons and logs).
    async fn open(host: &str, port: u16, cfg: &ClientConfig) -> Result<Self, String> {
        match open_conn(host, port, cfg).await {
            Ok((conn, extensions)) => Ok(SmtpSession {
                conn,
                extensions,
                sent: 0,
            }),
            Err(e) => {
                tracing::warn!(next_hop = %format!("{host}:{port}"), error = %e, "outbound SMTP failed");
                Err(e.to_string())
            }
        }
    }

    /// Sends one message; one result per recipient as [`deliver`] gives them. `Err` carries
    /// the results too, and says the session broke: open a new one for the next message.
    async fn send(
        &mut self,
        cfg: &ClientConfig,
        msg: &OutboundMessage<'_>,
    ) -> Result<Vec<RcptResult>, Vec<RcptResult>> {
        let p = prepare(msg);
        let sub = OutboundMessage {
            mail_from: msg.mail_from,
            rcpt_to: &p.deliverable,
            data: msg.data,
        };
        let mut states = vec![State::Pending; p.deliverable.len()];
        let outcome = async {
            if sub.rcpt_to.is_empty() {
                return Ok(());
            }
            let reset = self.sent > 0;
            self.sent += 1;
            self.conn
                .transaction(cfg, &self.extensions, &sub, &mut states, reset)
                .await
        }
        .await;
        match outcome {
            Ok(()) => Ok(finish(p.states, states)),
            Err(e) => {
                tracing::warn!(error = %e, "outbound SMTP failed");
                defer_unfinished(&mut states, &e);
                Err(finish(p.states, states))
            }
        }
    }

    async fn close(mut self) {
        self.conn.quit().await;
    }
}

async fn start_tls(
    host: &str,
    peer_ip: Option<std::net::IpAddr>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
        .with_no_client_auth();
    // The name only feeds SNI here (nothing is verified); a relay name that
    // is not a valid DNS name falls back to the peer address.
    let name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(_) => match peer_ip {
            Some(ip) => ServerName::from(ip),
            None => return Err(ClientError::Tls(format!("invalid server name {host:?}"))),
        },
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ClientError::Tls(e.to_string()))
}

/// Certificate "verifier" that accepts any server certificate.
///
/// Why this is acceptable: the next hop is the organisation's own MTA, usually
/// on the same host or network, and typically has a self-signed or internal
/// certificate. TLS here is opportunistic (Postfix's `smtp_tls_security_level
/// = may`): it protects against passive eavesdropping, and without it we would
/// send plaintext anyway, so refusing an unverifiable certificate would only
/// make things worse. Handshake signatures are still checked so the session
/// keys are bound to the certificate the server presented.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use crate::sink::TestSink;

    fn cfg() -> ClientConfig {
        ClientConfig {
            helo_name: "sealpost.test".into(),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            data_timeout: Duration::from_secs(5),
            opportunistic_tls: true,
        }
    }

    fn hop(sink: &TestSink) -> NextHop {
        NextHop::Smtp {
            host: sink.addr.ip().to_string(),
            port: sink.addr.port(),
        }
    }

    #[test]
    fn encodes_data() {
        assert_eq!(encode_data(b""), b".\r\n");
        assert_eq!(encode_data(b"a"), b"a\r\n.\r\n");
        assert_eq!(encode_data(b"a\nb\r\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(encode_data(b".x\r\n..\n.\n"), b"..x\r\n...\r\n..\r\n.\r\n");
        assert_eq!(encode_data(b"a\rb"), b"a\rb\r\n.\r\n");
    }

    #[tokio::test]
    async fn delivers_to_sink() {
        let sink = TestSink::start().await.unwrap();
        let rcpts = vec!["a@x.test".to_string(), "b@x.test".to_string()];
        let data = b"Subject: hi\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare\nend".to_vec();
        let msg = OutboundMessage {
            mail_from: "s@y.test",
            rcpt_to: &rcpts,
            data: &data,
        };
        let res = deliver(&hop(&sink), &cfg(), &msg).await;
        assert_eq!(res, vec![RcptResult::Delivered, RcptResult::Delivered]);
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].mail_from, "s@y.test");
        assert_eq!(got[0].rcpt_to, rcpts);
        assert_eq!(
            got[0].data,
            b"Subject: hi\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare\r\nend\r\n".to_vec()
        );
    }

    #[tokio::test]
    async fn several_messages_share_one_session() {
        let sink = TestSink::start_with(|rcpt| {
            rcpt.starts_with("nobody")
                .then(|| (550, "5.1.1 no such user".to_string()))
        })
        .await
        .unwrap();
        let first = vec!["a@x.test".to_string()];
        let refused = vec!["nobody@x.test".to_string()];
        let last = vec!["c@x.test".to_string(), "d@x.test".to_string()];
        let msgs = [
            OutboundMessage {
                mail_from: "s@y.test",
                rcpt_to: &first,
                data: b"one\r\n",
            },
            OutboundMessage {
                mail_from: "s@y.test",
                rcpt_to: &refused,
                data: b"two\r\n",
            },
            OutboundMessage {
                mail_from: "",
                rcpt_to: &last,
                data: b"three\r\n",
            },
        ];
        let res = deliver_many(&hop(&sink), &cfg(), &msgs).await;
        assert_eq!(res.len(), 3);
        assert_eq!(res[0], vec![RcptResult::Delivered]);
        assert!(matches!(&res[1][..], [RcptResult::Failed(t)] if t.contains("550")));
        assert_eq!(res[2], vec![RcptResult::Delivered, RcptResult::Delivered]);
        let got = sink.wait_for(2, Duration::from_secs(5)).await;
        assert_eq!(
            got.len(),
            2,
            "the refused message is not sent, the others are"
        );
        assert_eq!(got[0].data, b"one\r\n".to_vec());
        assert_eq!(got[1].rcpt_to, last);
        assert_eq!(got[1].mail_from, "");
    }

    #[tokio::test]
    async fn a_batch_to_a_dead_hop_is_deferred() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let rcpts = vec!["a@x.test".to_string()];
        let msgs = [
            OutboundMessage {
                mail_from: "s@y.test",
                rcpt_to: &rcpts,
                data: b"x\r\n",
            },
            OutboundMessage {
                mail_from: "s@y.test",
                rcpt_to: &rcpts,
                data: b"y\r\n",
            },
        ];
        let hop = NextHop::Smtp {
            host: "127.0.0.1".into(),
            port,
        };
        let res = deliver_many(&hop, &cfg(), &msgs).await;
        assert_eq!(res.len(), 2);
        assert!(
            res.iter()
                .all(|r| matches!(&r[..], [RcptResult::Deferred(_)]))
        );
    }

    #[tokio::test]
    async fn null_sender_is_sent_as_brackets() {
        let sink = TestSink::start().await.unwrap();
        let rcpts = vec!["a@x.test".to_string()];
        let msg = OutboundMessage {
            mail_from: "",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        assert_eq!(
            deliver(&hop(&sink), &cfg(), &msg).await,
            vec![RcptResult::Delivered]
        );
        assert_eq!(sink.received()[0].mail_from, "");
    }

    #[tokio::test]
    async fn per_recipient_results() {
        let sink = TestSink::start_with(|rcpt| match rcpt {
            r if r.starts_with("later") => Some((450, "4.2.0 try later".into())),
            r if r.starts_with("nobody") => Some((550, "5.1.1 no such user".into())),
            _ => None,
        })
        .await
        .unwrap();
        let rcpts = vec![
            "ok@x.test".to_string(),
            "later@x.test".to_string(),
            "nobody@x.test".to_string(),
        ];
        let msg = OutboundMessage {
            mail_from: "s@y.test",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        let res = deliver(&hop(&sink), &cfg(), &msg).await;
        assert_eq!(
            res,
            vec![
                RcptResult::Delivered,
                RcptResult::Deferred("450 4.2.0 try later".into()),
                RcptResult::Failed("550 5.1.1 no such user".into()),
            ]
        );
        let got = sink.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpt_to, vec!["ok@x.test".to_string()]);
    }

    #[tokio::test]
    async fn all_rejected_sends_no_data() {
        let sink = TestSink::start_with(|_| Some((550, "no".into())))
            .await
            .unwrap();
        let rcpts = vec!["a@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        let res = deliver(&hop(&sink), &cfg(), &msg).await;
        assert_eq!(res, vec![RcptResult::Failed("550 no".into())]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(sink.received().is_empty());
    }

    #[tokio::test]
    async fn connection_refused_defers_all() {
        // Bind then drop to get a port that is very likely closed.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let rcpts = vec!["a@x".to_string(), "b@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        let hop = NextHop::Smtp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        let res = deliver(&hop, &cfg(), &msg).await;
        assert_eq!(res.len(), 2);
        assert!(
            res.iter().all(|r| matches!(r, RcptResult::Deferred(_))),
            "{res:?}"
        );
    }

    #[tokio::test]
    async fn oversized_message_fails_at_mail() {
        // The sink advertises SIZE 50 MiB; our SIZE= in MAIL exceeds it, so
        // the 552 arrives before any data is sent and the result is final.
        let sink = TestSink::start().await.unwrap();
        let rcpts = vec!["a@x".to_string()];
        let data = vec![b'a'; 51 * 1024 * 1024];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: &data,
        };
        let res = deliver(&hop(&sink), &cfg(), &msg).await;
        assert!(
            matches!(&res[..], [RcptResult::Failed(t)] if t.starts_with("552")),
            "{res:?}"
        );
    }

    #[tokio::test]
    async fn silent_server_times_out_and_defers() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let c = ClientConfig {
            command_timeout: Duration::from_millis(200),
            ..cfg()
        };
        let rcpts = vec!["a@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"x",
        };
        let hop = NextHop::Smtp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        let res = deliver(&hop, &c, &msg).await;
        assert!(
            matches!(&res[..], [RcptResult::Deferred(t)] if t.contains("timeout")),
            "{res:?}"
        );
    }

    /// A scripted next hop: answers every RCPT with `rcpt_reply` and every DATA with 354 (as a
    /// lax server may even when no recipient was accepted), and logs what it was sent.
    async fn scripted_hop(
        extension: &'static str,
        rcpt_reply: &'static str,
    ) -> (NextHop, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&log);
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            w.write_all(b"220 scripted\r\n").await.unwrap();
            let mut in_data = 0usize;
            let mut data_mode = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if data_mode {
                    if line == "." {
                        data_mode = false;
                        seen.lock().unwrap().push(format!("<{in_data} lines>"));
                        w.write_all(b"250 ok\r\n").await.unwrap();
                    } else {
                        in_data += 1;
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                seen.lock().unwrap().push(verb.clone());
                let reply = match verb.as_str() {
                    "EHLO" => format!("250-scripted\r\n250 {extension}\r\n"),
                    "RCPT" => format!("{rcpt_reply}\r\n"),
                    "DATA" => {
                        data_mode = true;
                        in_data = 0;
                        "354 go\r\n".to_string()
                    }
                    "QUIT" => {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        break;
                    }
                    _ => "250 ok\r\n".to_string(),
                };
                w.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let hop = NextHop::Smtp {
            host: "127.0.0.1".into(),
            port,
        };
        (hop, log)
    }

    #[tokio::test]
    async fn pipelined_transaction_ends_an_unwanted_data_phase() {
        let (hop, log) = scripted_hop("PIPELINING", "550 5.1.1 unknown").await;
        let rcpts = vec!["a@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"secret\r\n",
        };
        let res = deliver(&hop, &cfg(), &msg).await;
        assert!(
            matches!(&res[..], [RcptResult::Failed(t)] if t.contains("550")),
            "{res:?}"
        );
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            ["EHLO", "MAIL", "RCPT", "DATA", "<0 lines>", "QUIT"],
            "the 354 is answered with an empty message, never with the content"
        );
    }

    #[tokio::test]
    async fn without_pipelining_commands_go_one_by_one_with_rset_between_messages() {
        let (hop, log) = scripted_hop("8BITMIME", "250 ok").await;
        let rcpts = vec!["a@x".to_string()];
        let msgs = [
            OutboundMessage {
                mail_from: "s@y",
                rcpt_to: &rcpts,
                data: b"one\r\n",
            },
            OutboundMessage {
                mail_from: "s@y",
                rcpt_to: &rcpts,
                data: b"two\r\nlines\r\n",
            },
        ];
        let res = deliver_many(&hop, &cfg(), &msgs).await;
        assert_eq!(res, vec![vec![RcptResult::Delivered]; 2]);
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            [
                "EHLO",
                "MAIL",
                "RCPT",
                "DATA",
                "<1 lines>",
                "RSET",
                "MAIL",
                "RCPT",
                "DATA",
                "<2 lines>",
                "QUIT"
            ]
        );
    }

    #[tokio::test]
    async fn invalid_addresses_fail_without_injection() {
        let sink = TestSink::start().await.unwrap();
        let rcpts = vec!["ok@x".to_string(), "evil@x>\r\nRSET".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"x",
        };
        let res = deliver(&hop(&sink), &cfg(), &msg).await;
        assert_eq!(res[0], RcptResult::Delivered);
        assert!(matches!(res[1], RcptResult::Failed(_)));
        assert_eq!(sink.received()[0].rcpt_to, vec!["ok@x".to_string()]);
    }

    #[tokio::test]
    async fn maildir_next_hop() {
        let tmp = tempfile::tempdir().unwrap();
        let rcpts = vec!["a@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        let hop = NextHop::Maildir(tmp.path().to_path_buf());
        assert_eq!(
            deliver(&hop, &cfg(), &msg).await,
            vec![RcptResult::Delivered]
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("new")).unwrap().count(),
            1
        );
    }

    /// A minimal server that offers STARTTLS and fails the handshake: the
    /// client must try TLS and, on failure, defer.
    #[tokio::test]
    async fn starttls_is_attempted_and_tls_failure_defers() {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut s = BufReader::new(s);
            s.get_mut()
                .write_all(b"220 tls.test ESMTP\r\n")
                .await
                .unwrap();
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            assert!(line.starts_with("EHLO sealpost.test"));
            s.get_mut()
                .write_all(b"250-tls.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
                .await
                .unwrap();
            line.clear();
            s.read_line(&mut line).await.unwrap();
            assert_eq!(line, "STARTTLS\r\n");
            s.get_mut().write_all(b"220 2.0.0 Ready\r\n").await.unwrap();
            // Read the ClientHello, answer garbage.
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf[0], 0x16, "expected a TLS handshake record");
            let _ = s.get_mut().write_all(b"not tls at all\r\n").await;
        });
        let rcpts = vec!["a@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y",
            rcpt_to: &rcpts,
            data: b"x",
        };
        let hop = NextHop::Smtp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        let res = deliver(&hop, &cfg(), &msg).await;
        server.await.unwrap();
        assert!(
            matches!(&res[..], [RcptResult::Deferred(t)] if t.contains("TLS")),
            "{res:?}"
        );
    }
}
