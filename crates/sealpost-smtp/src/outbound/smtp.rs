//! The SMTP protocol towards the next hop: one session carries several messages (RSET between
//! them), pipelining MAIL/RCPT/DATA when the server offers it.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::tls::start_tls;
use super::types::{ClientConfig, OutboundMessage, RcptResult};
use crate::lineio::{ReadLine, read_line};

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
pub(super) fn defer_all(msg: &OutboundMessage<'_>, reason: &str) -> Vec<RcptResult> {
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
                .map_err(|_| ClientError::Timeout("in TLS handshake"))?
                .map_err(ClientError::Tls)?;
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
pub(super) struct SmtpSession {
    conn: Conn<Box<dyn Io>>,
    extensions: Vec<String>,
    sent: usize,
}

impl SmtpSession {
    /// Opens a session; the error text explains why not (for deferral reasons and logs).
    pub(super) async fn open(host: &str, port: u16, cfg: &ClientConfig) -> Result<Self, String> {
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
    pub(super) async fn send(
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

    pub(super) async fn close(mut self) {
        self.conn.quit().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_data() {
        assert_eq!(encode_data(b""), b".\r\n");
        assert_eq!(encode_data(b"a"), b"a\r\n.\r\n");
        assert_eq!(encode_data(b"a\nb\r\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(encode_data(b".x\r\n..\n.\n"), b"..x\r\n...\r\n..\r\n.\r\n");
        assert_eq!(encode_data(b"a\rb"), b"a\rb\r\n.\r\n");
    }
}
