//! The inbound SMTP server session (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
//! ENHANCEDSTATUSCODES and SMTPUTF8), generic over the byte stream so that it
//! can be driven by a TCP socket or by an in-memory pipe in tests.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::timeout;

use crate::address::validate_mailbox;
use crate::lineio::{ReadLine, read_line, sanitize_line};

/// What the session does with a CR or LF inside message data that is not part of a CRLF pair.
/// Neither is ever a line end: only `<CR><LF>.<CR><LF>` ends DATA, so a "second message"
/// behind `<LF>.<LF>` can never be read as commands (SMTP smuggling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLineEnds {
    /// Read the data to its real end, then refuse it (`550 5.6.0`); nothing is queued and
    /// the session goes on.
    #[default]
    Refuse,
    /// Keep them as ordinary data bytes of the line they are in.
    Keep,
}

impl std::str::FromStr for BareLineEnds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "refuse" => Ok(BareLineEnds::Refuse),
            "keep" => Ok(BareLineEnds::Keep),
            other => Err(format!("{other:?} is not \"refuse\" or \"keep\"")),
        }
    }
}

impl std::fmt::Display for BareLineEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BareLineEnds::Refuse => "refuse",
            BareLineEnds::Keep => "keep",
        })
    }
}

/// Limits and identity of the inbound SMTP service.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Name used in the greeting, the EHLO reply and 421 replies.
    pub hostname: String,
    /// Largest accepted message in bytes (after dot-unstuffing).
    pub max_message_size: usize,
    /// Most recipients per transaction.
    pub max_recipients: usize,
    /// Longest command line in bytes, CRLF excluded.
    pub max_command_line: usize,
    /// Longest wait for a command line.
    pub command_timeout: Duration,
    /// Longest wait for the next chunk of message data.
    pub data_timeout: Duration,
    /// Longest time the whole DATA phase may take, however steadily bytes trickle in: a
    /// client that sends one byte every few seconds is cut off here (like Postfix's
    /// smtpd_per_record_deadline), not only when it stops sending.
    pub data_deadline: Duration,
    /// A bare CR or LF inside DATA: refused (default) or kept as data.
    pub bare_line_ends: BareLineEnds,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hostname: "localhost".to_string(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 2048,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            data_deadline: Duration::from_secs(1800),
            bare_line_ends: BareLineEnds::Refuse,
        }
    }
}

/// The SMTP envelope of one received message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub client_ip: IpAddr,
    pub helo: String,
    /// Empty for the null sender `<>` (bounces).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// What the handler decided about a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Committed; the string is the queue id shown in the 250 reply.
    Accepted(String),
    /// Not committed; the sending MTA keeps the message and retries (451).
    TempFail(String),
    /// Rejected for good (554); the sending MTA bounces it.
    PermFail(String),
}

/// Receives each complete message of a session.
pub trait MessageHandler: Send + Sync + 'static {
    fn handle(&self, envelope: Envelope, data: Vec<u8>) -> impl Future<Output = Verdict> + Send;

    /// Current (max_message_size, max_recipients), asked once per connection, so limits an
    /// administrator changes at run time apply to the next session without a restart.
    /// `None` keeps the server's configured limits.
    fn session_limits(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Per-recipient decision used by the test sink: `None` accepts, `Some((code,
/// text))` replies with that code. Kept crate-private so the public API stays
/// small; production sessions accept every syntactically valid recipient and
/// leave policy to the handler.
pub(crate) type RcptCheck<'a> = Option<&'a (dyn Fn(&str) -> Option<(u16, String)> + Send + Sync)>;

/// Runs one SMTP session until QUIT, EOF, a timeout or too many errors.
///
/// Returns `Ok(())` when the session ends normally (including the peer
/// hanging up); `Err` only for I/O errors on the stream.
pub async fn run_session<S, H>(
    stream: S,
    client_ip: IpAddr,
    cfg: &SessionConfig,
    handler: &H,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    run_session_with(stream, client_ip, cfg, handler, None).await
}

pub(crate) async fn run_session_with<S, H>(
    stream: S,
    client_ip: IpAddr,
    cfg: &SessionConfig,
    handler: &H,
    rcpt_check: RcptCheck<'_>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    let mut session = Session {
        // Every open connection owns this buffer, idle or not: 16 KiB keeps a thousand idle
        // sessions near 20 MB while DATA still arrives in few large reads.
        io: BufReader::with_capacity(16 * 1024, stream),
        out: Vec::new(),
        cfg,
        handler,
        rcpt_check,
        client_ip,
        helo: None,
        mail_from: None,
        rcpt_to: Vec::new(),
        bad_commands: 0,
        verb: String::new(),
    };
    let result = session.run().await;
    // Best effort: the peer may already be gone.
    let _ = session.io.get_mut().shutdown().await;
    result
}

/// After this many consecutive bad commands the client is disconnected; a
/// well-behaved MTA never gets near it, a confused or hostile one stops
/// wasting a connection slot.
const MAX_BAD_COMMANDS: u32 = 10;

struct Session<'a, S, H> {
    io: BufReader<S>,
    /// Replies not yet written; flushed before any read that may block so
    /// that pipelined commands get their replies in one write.
    out: Vec<u8>,
    cfg: &'a SessionConfig,
    handler: &'a H,
    rcpt_check: RcptCheck<'a>,
    client_ip: IpAddr,
    helo: Option<String>,
    /// `Some` while a transaction is open; `Some("")` is the null sender.
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    bad_commands: u32,
    /// The verb of the command being answered, for the improper-pipelining reply.
    verb: String,
}

enum Flow {
    Continue,
    Close,
}

enum DataRead {
    Complete(Vec<u8>),
    /// Read to its end but not accepted; the reply says why.
    Refused(DataRefusal),
    Eof,
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataRefusal {
    TooBig,
    BareLf,
    BareCr,
}

impl DataRefusal {
    fn reply(self) -> &'static str {
        match self {
            DataRefusal::TooBig => "552 5.3.4 Message too big",
            DataRefusal::BareLf => "550 5.6.0 Bare LF not allowed",
            DataRefusal::BareCr => "550 5.6.0 Bare CR not allowed",
        }
    }
}

impl<S, H> Session<'_, S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    async fn run(&mut self) -> io::Result<()> {
        let greeting = format!("220 {} ESMTP Sealpost", self.cfg.hostname);
        self.reply(&greeting);
        loop {
            // Flush only when no complete command is already buffered: that is
            // exactly when the next read could block.
            if !self.io.buffer().contains(&b'\n') {
                self.flush().await?;
            }
            let read = timeout(
                self.cfg.command_timeout,
                read_line(&mut self.io, self.cfg.max_command_line),
            )
            .await;
            let flow = match read {
                Err(_) => {
                    self.timeout_close().await;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(ReadLine::Eof)) => {
                    tracing::debug!(client = %self.client_ip, "client closed the connection");
                    return Ok(());
                }
                Ok(Ok(ReadLine::TooLong)) => {
                    self.verb = "an overlong command".to_string();
                    self.bad("500 5.5.2 Line too long")
                }
                Ok(Ok(ReadLine::Line(line))) => self.command(line).await?,
            };
            if let Flow::Close = flow {
                self.flush().await?;
                return Ok(());
            }
        }
    }

    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// A successful command ends a run of bad ones.
    fn good(&mut self, line: &str) -> Flow {
        self.bad_commands = 0;
        self.reply(line);
        Flow::Continue
    }

    /// Answers a refused command. A client that sent more before reading this refusal is
    /// not waiting for replies: what it sent next may be message data that the refusal has
    /// turned into commands, so the session ends (as Postfix's
    /// `smtpd_forbid_unauth_pipelining` does). MAIL and RCPT are exempt: RFC 2920 lets a
    /// client send MAIL, RCPT… and DATA as one group, and a refused RCPT is ordinary there.
    fn bad(&mut self, line: &str) -> Flow {
        self.reply(line);
        if !matches!(self.verb.as_str(), "MAIL" | "RCPT") && self.client_ran_ahead() {
            return self.improper_pipelining();
        }
        self.bad_commands += 1;
        if self.bad_commands > MAX_BAD_COMMANDS {
            let msg = format!("421 4.7.0 {} Error: too many errors", self.cfg.hostname);
            self.reply(&msg);
            tracing::info!(client = %self.client_ip, "disconnecting after too many errors");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Whether the client has sent bytes that the session has not read yet, i.e. it did not
    /// wait for the reply now being written.
    fn client_ran_ahead(&self) -> bool {
        !self.io.buffer().is_empty()
    }

    fn improper_pipelining(&mut self) -> Flow {
        tracing::info!(client = %self.client_ip, after = %self.verb, "improper command pipelining");
        let msg = format!(
            "554 5.5.0 Error: improper command pipelining after {}",
            sanitize_line(&self.verb)
        );
        self.reply(&msg);
        Flow::Close
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = self.io.get_mut();
        stream.write_all(&self.out).await?;
        stream.flush().await?;
        self.out.clear();
        Ok(())
    }

    async fn timeout_close(&mut self) {
        tracing::info!(client = %self.client_ip, "SMTP timeout");
        let msg = format!("421 4.4.2 {} Timeout", self.cfg.hostname);
        self.reply(&msg);
        // Best effort with a bound: a peer that stopped reading must not keep
        // the task alive.
        let _ = timeout(Duration::from_secs(10), self.flush()).await;
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    async fn command(&mut self, line: Vec<u8>) -> io::Result<Flow> {
        let Ok(line) = String::from_utf8(line) else {
            self.verb = "an invalid command".to_string();
            return Ok(self.bad("500 5.5.2 Error: invalid characters in command"));
        };
        let (verb, arg) = match line.find(' ') {
            Some(i) => (&line[..i], line[i + 1..].trim()),
            None => (line.as_str(), ""),
        };
        let verb = verb.to_ascii_uppercase();
        self.verb = if verb.len() <= 8 && verb.bytes().all(|b| b.is_ascii_alphabetic()) {
            verb.clone()
        } else {
            "an unknown command".to_string()
        };
        let flow = match verb.as_str() {
            "EHLO" | "HELO" => self.cmd_helo(&verb, arg),
            "MAIL" => self.cmd_mail(arg),
            "RCPT" => self.cmd_rcpt(arg),
            "DATA" => return self.cmd_data(arg).await,
            "RSET" => {
                self.reset_transaction();
                self.good("250 2.0.0 Ok")
            }
            "NOOP" => self.good("250 2.0.0 Ok"),
            "QUIT" => {
                self.reply("221 2.0.0 Bye");
                Flow::Close
            }
            "VRFY" => self.good("252 2.5.2 Cannot VRFY user"),
            "HELP" => self.good("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT"),
            "BDAT" | "STARTTLS" | "AUTH" | "EXPN" | "ETRN" | "TURN" | "ATRN" | "SEND" | "SOML"
            | "SAML" => self.bad("502 5.5.1 Error: command not implemented"),
            _ => self.bad("500 5.5.2 Error: command not recognized"),
        };
        Ok(flow)
    }

    fn cmd_helo(&mut self, verb: &str, arg: &str) -> Flow {
        if arg.is_empty() || arg.chars().any(|c| c.is_control()) {
            let msg = format!("501 5.5.4 Syntax: {verb} hostname");
            return self.bad(&msg);
        }
        self.reset_transaction();
        self.helo = Some(arg.to_string());
        if verb == "HELO" {
            let msg = format!("250 {}", self.cfg.hostname);
            return self.good(&msg);
        }
        let msg = format!(
            "250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8",
            self.cfg.hostname, self.cfg.max_message_size
        );
        self.good(&msg)
    }

    fn cmd_mail(&mut self, arg: &str) -> Flow {
        if self.helo.is_none() {
            return self.bad("503 5.5.1 Error: send HELO/EHLO first");
        }
        if self.mail_from.is_some() {
            return self.bad("503 5.5.1 Error: nested MAIL command");
        }
        let Some(rest) = strip_prefix_ci(arg, "FROM:") else {
            return self.bad("501 5.5.4 Syntax: MAIL FROM:<address>");
        };
        let Some((addr, params)) = parse_path(rest) else {
            return self.bad("501 5.1.7 Bad sender address syntax");
        };
        if !addr.is_empty() && validate_mailbox(&addr).is_err() {
            return self.bad("553 5.1.7 Sender address is not a valid mailbox");
        }
        for param in params.split_ascii_whitespace() {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (param.to_ascii_uppercase(), None),
            };
            match (key.as_str(), value) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(size) if size > self.cfg.max_message_size as u64 => {
                        return self.bad("552 5.3.4 Message size exceeds fixed limit");
                    }
                    Ok(_) => {}
                    Err(_) => return self.bad("501 5.5.4 Bad SIZE parameter"),
                },
                ("BODY", Some(v))
                    if v.eq_ignore_ascii_case("8BITMIME") || v.eq_ignore_ascii_case("7BIT") => {}
                ("SMTPUTF8", None) => {}
                _ => {
                    let msg = format!("555 5.5.4 Unsupported option: {}", sanitize_line(param));
                    return self.bad(&msg);
                }
            }
        }
        self.mail_from = Some(addr);
        self.rcpt_to.clear();
        self.good("250 2.1.0 Ok")
    }

    fn cmd_rcpt(&mut self, arg: &str) -> Flow {
        if self.mail_from.is_none() {
            return self.bad("503 5.5.1 Error: need MAIL command");
        }
        let Some(rest) = strip_prefix_ci(arg, "TO:") else {
            return self.bad("501 5.5.4 Syntax: RCPT TO:<address>");
        };
        let Some((addr, params)) = parse_path(rest) else {
            return self.bad("501 5.1.3 Bad recipient address syntax");
        };
        if addr.is_empty() {
            return self.bad("501 5.1.3 Bad recipient address syntax");
        }
        if validate_mailbox(&addr).is_err() {
            return self.bad("553 5.1.3 Recipient address is not a valid mailbox");
        }
        if let Some(param) = params.split_ascii_whitespace().next() {
            // DSN (NOTIFY, ORCPT) is not advertised, so a conforming client
            // sends no RCPT parameters.
            let msg = format!("555 5.5.4 Unsupported option: {}", sanitize_line(param));
            return self.bad(&msg);
        }
        if self.rcpt_to.len() >= self.cfg.max_recipients {
            // Not a client error: the MTA sends the rest in another transaction.
            self.reply("452 4.5.3 Too many recipients");
            return Flow::Continue;
        }
        if let Some(check) = self.rcpt_check
            && let Some((code, text)) = check(&addr)
        {
            let msg = format!("{code} {}", sanitize_line(&text));
            self.reply(&msg);
            return Flow::Continue;
        }
        self.rcpt_to.push(addr);
        self.good("250 2.1.5 Ok")
    }

    async fn cmd_data(&mut self, arg: &str) -> io::Result<Flow> {
        if !arg.is_empty() {
            return Ok(self.bad("501 5.5.4 Syntax: DATA"));
        }
        if self.mail_from.is_none() {
            return Ok(self.bad("503 5.5.1 Error: need MAIL command"));
        }
        if self.rcpt_to.is_empty() {
            return Ok(self.bad("503 5.5.1 Error: need RCPT command"));
        }
        // Message data before the 354 means the client did not wait for it (RFC 2920: DATA
        // ends a command group); reading on would make the session guess what is data.
        if self.client_ran_ahead() {
            self.reset_transaction();
            return Ok(self.improper_pipelining());
        }
        self.bad_commands = 0;
        self.reply("354 End data with <CR><LF>.<CR><LF>");
        self.flush().await?;
        let data = match self.read_data().await? {
            DataRead::Complete(data) => data,
            DataRead::Refused(why) => {
                if why != DataRefusal::TooBig {
                    tracing::info!(client = %self.client_ip, reply = why.reply(), "message data refused");
                }
                self.reset_transaction();
                self.reply(why.reply());
                return Ok(Flow::Continue);
            }
            DataRead::Eof => {
                tracing::debug!(client = %self.client_ip, "client closed the connection during DATA");
                return Ok(Flow::Close);
            }
            DataRead::Timeout => {
                self.timeout_close().await;
                return Ok(Flow::Close);
            }
        };
        let envelope = Envelope {
            client_ip: self.client_ip,
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        let size = data.len();
        let rcpts = envelope.rcpt_to.len();
        let verdict = self.handler.handle(envelope, data).await;
        self.reset_transaction();
        let msg = match verdict {
            Verdict::Accepted(id) => {
                tracing::info!(client = %self.client_ip, queue_id = %id, size, rcpts, "message accepted");
                format!("250 2.0.0 Ok: queued as {}", sanitize_line(&id))
            }
            Verdict::TempFail(reason) => {
                tracing::warn!(client = %self.client_ip, size, rcpts, "message temporarily rejected");
                format!("451 4.3.0 {}", sanitize_line(&reason))
            }
            Verdict::PermFail(reason) => {
                tracing::info!(client = %self.client_ip, size, rcpts, "message rejected");
                format!("554 5.6.0 {}", sanitize_line(&reason))
            }
        };
        self.reply(&msg);
        Ok(Flow::Continue)
    }

    /// Reads message data up to `<CR><LF>.<CR><LF>`, undoing dot-stuffing and keeping
    /// everything else byte for byte. Lines are CRLF-delimited only: a bare LF or CR is never
    /// a line end (so `<LF>.<LF>` ends nothing); it refuses the message or stays data,
    /// as `bare_line_ends` says. A refused message is still read to its end, so that its
    /// content is never taken for commands.
    async fn read_data(&mut self) -> io::Result<DataRead> {
        let max = self.cfg.max_message_size;
        let keep_bare = self.cfg.bare_line_ends == BareLineEnds::Keep;
        let mut data = Vec::new();
        let mut refused: Option<DataRefusal> = None;
        // The current line; once the message is refused only its first bytes are kept,
        // enough to recognise the terminating ".".
        let mut line: Vec<u8> = Vec::new();
        let deadline = tokio::time::Instant::now() + self.cfg.data_deadline;
        loop {
            line.clear();
            let mut line_len = 0usize;
            // The last byte read was a CR (its LF may come in the next chunk).
            let mut after_cr = false;
            loop {
                let wait_until =
                    (tokio::time::Instant::now() + self.cfg.data_timeout).min(deadline);
                let buf = match tokio::time::timeout_at(wait_until, self.io.fill_buf()).await {
                    Err(_) => return Ok(DataRead::Timeout),
                    Ok(r) => r?,
                };
                if buf.is_empty() {
                    return Ok(DataRead::Eof);
                }
                let (take, at_lf) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                let chunk = &buf[..take];
                let ends_crlf = at_lf
                    && (chunk.len() >= 2 && chunk[take - 2] == b'\r' || take == 1 && after_cr);
                let bare = if at_lf && !ends_crlf {
                    Some(DataRefusal::BareLf)
                } else if (after_cr && chunk[0] != b'\n')
                    || chunk.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
                {
                    Some(DataRefusal::BareCr)
                } else {
                    None
                };
                after_cr = chunk.last() == Some(&b'\r');
                if let Some(why) = bare
                    && !keep_bare
                    && refused.is_none()
                {
                    refused = Some(why);
                    data = Vec::new();
                    line.truncate(3);
                }
                if refused.is_some() {
                    let keep = take.min(3usize.saturating_sub(line.len()));
                    line.extend_from_slice(&chunk[..keep]);
                } else {
                    line.extend_from_slice(chunk);
                }
                line_len += take;
                self.io.consume(take);
                // Bounds memory while a long line arrives. Lines of up to 3
                // bytes may be the terminator and are checked once complete;
                // +1 because the line may still lose a stuffed dot.
                if refused.is_none()
                    && line.len() > 3
                    && data.len() + line.len() > max.saturating_add(1)
                {
                    refused = Some(DataRefusal::TooBig);
                    data = Vec::new();
                    line.truncate(3);
                }
                if ends_crlf {
                    break;
                }
            }
            if line_len == 3 && line == b".\r\n" {
                break;
            }
            if refused.is_some() {
                continue;
            }
            let start = usize::from(line.first() == Some(&b'.'));
            data.extend_from_slice(&line[start..]);
            if data.len() > max {
                refused = Some(DataRefusal::TooBig);
                data = Vec::new();
            }
        }
        Ok(match refused {
            Some(why) => DataRead::Refused(why),
            None => DataRead::Complete(data),
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Parses a reverse- or forward-path (`<addr>` possibly followed by
/// parameters). Returns the address without brackets, and the parameter text;
/// whether the address is a valid mailbox is checked by the caller. A bare address without brackets is tolerated, as
/// Postfix does by default, because some clients send it.
fn parse_path(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let (addr, params) = if let Some(inner) = s.strip_prefix('<') {
        let mut in_quotes = false;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in inner.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                '>' if !in_quotes => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end?;
        let params = &inner[end + 1..];
        if !params.is_empty() && !params.starts_with(' ') {
            return None;
        }
        (&inner[..end], params)
    } else {
        let (addr, params) = s.split_once(' ').unwrap_or((s, ""));
        if addr.is_empty() {
            return None;
        }
        (addr, params)
    };
    // Source routes ("@relay1,@relay2:user@host") are obsolete; one that arrives names a
    // relay path we would not follow, so the whole path is refused rather than guessed at.
    if addr.len() > crate::address::MAX_MAILBOX_LEN
        || addr.starts_with('@')
        || addr.chars().any(|c| c.is_control() || c == '<' || c == '>')
    {
        return None;
    }
    Some((addr.to_string(), params))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};

    type Mails = Arc<Mutex<Vec<(Envelope, Vec<u8>)>>>;

    #[derive(Clone)]
    struct Recorder {
        mails: Mails,
        verdict: Verdict,
    }

    impl Recorder {
        fn new(verdict: Verdict) -> Self {
            Recorder {
                mails: Arc::new(Mutex::new(Vec::new())),
                verdict,
            }
        }
        fn mails(&self) -> Vec<(Envelope, Vec<u8>)> {
            self.mails.lock().unwrap().clone()
        }
    }

    impl MessageHandler for Recorder {
        async fn handle(&self, envelope: Envelope, data: Vec<u8>) -> Verdict {
            self.mails.lock().unwrap().push((envelope, data));
            self.verdict.clone()
        }
    }

    fn ip() -> IpAddr {
        IpAddr::from([192, 0, 2, 1])
    }

    fn cfg() -> SessionConfig {
        SessionConfig {
            hostname: "mx.test".into(),
            ..SessionConfig::default()
        }
    }

    /// Client side of a session: reads replies line by line.
    struct Peer {
        io: BufReader<DuplexStream>,
    }

    impl Peer {
        async fn send(&mut self, s: &str) {
            self.io.get_mut().write_all(s.as_bytes()).await.unwrap();
        }
        async fn send_bytes(&mut self, b: &[u8]) {
            self.io.get_mut().write_all(b).await.unwrap();
        }
        /// Reads one complete (possibly multi-line) reply, returns its lines.
        async fn reply(&mut self) -> Vec<String> {
            let mut lines = Vec::new();
            loop {
                let mut l = String::new();
                let n = tokio::time::timeout(Duration::from_secs(5), self.io.read_line(&mut l))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0, "unexpected EOF after {lines:?}");
                let l = l.trim_end().to_string();
                let last = l.as_bytes().get(3) != Some(&b'-');
                lines.push(l);
                if last {
                    return lines;
                }
            }
        }
        async fn code(&mut self) -> String {
            self.reply().await.pop().unwrap()
        }
        async fn expect(&mut self, prefix: &str) {
            let r = self.code().await;
            assert!(r.starts_with(prefix), "expected {prefix:?}, got {r:?}");
        }
        async fn eof(&mut self) -> bool {
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), self.io.read_to_end(&mut rest))
                .await
                .unwrap()
                .unwrap();
            rest.is_empty()
        }
    }

    fn start(
        cfg: SessionConfig,
        handler: Recorder,
    ) -> (Peer, tokio::task::JoinHandle<io::Result<()>>) {
        let (a, b) = duplex(1 << 20);
        let task = tokio::spawn(async move { run_session(b, ip(), &cfg, &handler).await });
        (
            Peer {
                io: BufReader::new(a),
            },
            task,
        )
    }

    #[tokio::test]
    async fn full_transaction_pipelined() {
        let h = Recorder::new(Verdict::Accepted("Q1".into()));
        let (mut p, task) = start(cfg(), h.clone());
        assert_eq!(p.reply().await, vec!["220 mx.test ESMTP Sealpost"]);
        p.send("EHLO client.test\r\n").await;
        let ehlo = p.reply().await;
        assert_eq!(ehlo[0], "250-mx.test");
        assert!(ehlo.contains(&"250-PIPELINING".to_string()));
        assert!(ehlo.contains(&"250-SIZE 52428800".to_string()));
        assert!(ehlo.iter().any(|l| l.ends_with("ENHANCEDSTATUSCODES")));
        p.send(
            "MAIL FROM:<a@x.test> BODY=8BITMIME SIZE=100\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n",
        )
        .await;
        p.expect("250 2.1.0").await;
        p.expect("250 2.1.5").await;
        p.expect("250 2.1.5").await;
        p.expect("354").await;
        p.send("Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n").await;
        assert_eq!(p.code().await, "250 2.0.0 Ok: queued as Q1");
        p.expect("221").await;
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
        let mails = h.mails();
        assert_eq!(mails.len(), 1);
        let (env, data) = &mails[0];
        assert_eq!(env.helo, "client.test");
        assert_eq!(env.mail_from, "a@x.test");
        assert_eq!(env.rcpt_to, vec!["b@y.test", "c@y.test"]);
        assert_eq!(env.client_ip, ip());
        assert_eq!(data, b"Subject: hi\r\n\r\nbody\r\n");
    }

    #[tokio::test]
    async fn whole_command_group_in_one_write() {
        let h = Recorder::new(Verdict::Accepted("Q2".into()));
        let (mut p, task) = start(cfg(), h.clone());
        p.send("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            .await;
        p.expect("220").await;
        p.expect("250 mx.test").await;
        p.expect("250 2.1.0").await;
        p.expect("250 2.1.5").await;
        p.expect("354").await;
        // The end of data may be followed by the next commands at once (RFC 2920).
        p.send("x\r\n.\r\nQUIT\r\n").await;
        p.expect("250 2.0.0 Ok: queued as Q2").await;
        p.expect("221").await;
        task.await.unwrap().unwrap();
        let mails = h.mails();
        assert_eq!(mails[0].0.mail_from, "");
        assert_eq!(mails[0].1, b"x\r\n");
    }

    #[tokio::test]
    async fn data_before_354_is_improper_pipelining() {
        let h = Recorder::new(Verdict::Accepted("Q2".into()));
        let (mut p, task) = start(cfg(), h.clone());
        p.send("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")
            .await;
        for prefix in ["220", "250 mx.test", "250 2.1.0", "250 2.1.5"] {
            p.expect(prefix).await;
        }
        assert_eq!(
            p.code().await,
            "554 5.5.0 Error: improper command pipelining after DATA"
        );
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
        assert!(h.mails().is_empty());
    }

    #[tokio::test]
    async fn data_after_a_refused_data_is_never_read_as_commands() {
        // DATA is refused (no recipient); what the client had already sent behind it must
        // not become a transaction of its own.
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, task) = start(cfg(), h.clone());
        p.expect("220").await;
        p.send("EHLO c\r\n").await;
        p.reply().await;
        p.send("MAIL FROM:<a@x>\r\nRCPT TO:<bad@@y>\r\nDATA\r\nMAIL FROM:<spoof@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nforged\r\n.\r\n")
            .await;
        p.expect("250 2.1.0").await;
        p.expect("553 5.1.3").await;
        p.expect("503 5.5.1").await;
        assert_eq!(
            p.code().await,
            "554 5.5.0 Error: improper command pipelining after DATA"
        );
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
        assert!(h.mails().is_empty());
    }

    #[tokio::test]
    async fn refused_command_with_more_input_buffered_closes() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, task) = start(cfg(), h.clone());
        p.expect("220").await;
        p.send("EHLO c\r\n").await;
        p.reply().await;
        p.send("XYZZY\r\nMAIL FROM:<a@x>\r\n").await;
        p.expect("500 5.5.2").await;
        assert_eq!(
            p.code().await,
            "554 5.5.0 Error: improper command pipelining after XYZZY"
        );
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn refused_rcpt_in_a_pipelined_group_is_fine() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, _task) = start(cfg(), h.clone());
        p.expect("220").await;
        p.send("EHLO c\r\n").await;
        p.reply().await;
        p.send("MAIL FROM:<a@x>\r\nRCPT TO:<a@b@c>\r\nRCPT TO:<ok@y>\r\nDATA\r\n")
            .await;
        p.expect("250 2.1.0").await;
        p.expect("553 5.1.3").await;
        p.expect("250 2.1.5").await;
        p.expect("354").await;
        p.send("hi\r\n.\r\n").await;
        p.expect("250 2.0.0").await;
        assert_eq!(h.mails()[0].0.rcpt_to, vec!["ok@y"]);
    }

    /// Every way of spelling a "second transaction" behind a non-standard end of data.
    const SMUGGLED_ENDS: [&str; 5] = ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r"];

    async fn smuggle(mode: BareLineEnds) -> Vec<(Vec<String>, Vec<(Envelope, Vec<u8>)>)> {
        let mut out = Vec::new();
        for end in SMUGGLED_ENDS {
            let h = Recorder::new(Verdict::Accepted("Q".into()));
            let c = SessionConfig {
                bare_line_ends: mode,
                ..cfg()
            };
            let (mut p, _task) = start(c, h.clone());
            p.expect("220").await;
            p.send("EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
                .await;
            p.reply().await;
            p.expect("250").await;
            p.expect("250").await;
            p.expect("354").await;
            p.send(&format!(
                "Subject: one\r\n\r\nfirst{end}MAIL FROM:<spoof@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: two\r\n\r\nforged\r\n.\r\nNOOP\r\n"
            ))
            .await;
            let replies = vec![p.code().await, p.code().await];
            out.push((replies, h.mails()));
        }
        out
    }

    #[tokio::test]
    async fn only_crlf_dot_crlf_ends_data_refuse_mode() {
        for (replies, mails) in smuggle(BareLineEnds::Refuse).await {
            assert!(
                replies[0] == "550 5.6.0 Bare LF not allowed"
                    || replies[0] == "550 5.6.0 Bare CR not allowed",
                "{replies:?}"
            );
            // The session goes on cleanly: the NOOP after the real end is answered.
            assert_eq!(replies[1], "250 2.0.0 Ok");
            assert!(mails.is_empty(), "nothing is queued");
        }
    }

    #[tokio::test]
    async fn only_crlf_dot_crlf_ends_data_keep_mode() {
        for (end, (replies, mails)) in SMUGGLED_ENDS.iter().zip(smuggle(BareLineEnds::Keep).await) {
            assert_eq!(replies[0], "250 2.0.0 Ok: queued as Q", "{end:?}");
            assert_eq!(replies[1], "250 2.0.0 Ok");
            assert_eq!(mails.len(), 1, "one message for {end:?}");
            let (env, data) = &mails[0];
            assert_eq!(env.mail_from, "a@x");
            // The would-be second transaction is data of the first, byte for byte (a dot
            // that starts a CRLF line is dot-stuffing and is removed).
            let kept = end.replacen("\r\n.", "\r\n", 1);
            let expected = format!(
                "Subject: one\r\n\r\nfirst{kept}MAIL FROM:<spoof@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: two\r\n\r\nforged\r\n"
            );
            assert_eq!(String::from_utf8_lossy(data), expected);
        }
    }

    #[tokio::test]
    async fn bare_line_ends_split_across_reads() {
        // A CR at the end of one read and its LF in the next is a CRLF; a CR at the end of
        // one read followed by anything else is a bare CR.
        for (parts, want) in [
            (vec!["ab\r", "\n.\r\n"], "250 2.0.0"),
            (vec!["ab\r", "x\r\n.\r\n"], "550 5.6.0 Bare CR"),
            (vec!["ab\n", "x\r\n.\r\n"], "550 5.6.0 Bare LF"),
            (vec![".\r", "\n"], "250"),
        ] {
            let h = Recorder::new(Verdict::Accepted("Q".into()));
            let (mut p, _task) = start(cfg(), h.clone());
            p.send("HELO c\r\n").await;
            p.expect("220").await;
            p.expect("250").await;
            p.send("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n").await;
            p.expect("250").await;
            p.expect("250").await;
            p.expect("354").await;
            for part in parts {
                p.send(part).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if want == "250" {
                // ".\r" + "\n" right after 354 is the end of an empty message.
                p.expect("250 2.0.0").await;
                assert_eq!(h.mails()[0].1, b"");
            } else {
                p.expect(want).await;
            }
        }
    }

    #[tokio::test]
    async fn dot_unstuffing_and_byte_exact_data() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            bare_line_ends: BareLineEnds::Keep,
            ..cfg()
        };
        let (mut p, _task) = start(c, h.clone());
        p.send("EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            .await;
        p.expect("220").await;
        p.reply().await;
        p.expect("250").await;
        p.expect("250").await;
        p.expect("354").await;
        let mut body = Vec::new();
        body.extend_from_slice(b"A: b\r\n\r\n..x\r\n\r\n..\r\nbare lf\nbin \x00\xff\xfe\r\n");
        body.extend_from_slice(b"trailing space \r\n\r\n\r\n");
        p.send_bytes(&body).await;
        p.send(".\r\n").await;
        p.expect("250 2.0.0").await;
        let (_, data) = &h.mails()[0];
        assert_eq!(
            data.as_slice(),
            &b"A: b\r\n\r\n.x\r\n\r\n.\r\nbare lf\nbin \x00\xff\xfe\r\ntrailing space \r\n\r\n\r\n"
                [..],
            "got {:?}",
            String::from_utf8_lossy(data)
        );
        // A bare-LF "terminator" ends nothing: it is data, and so is the rest up to CRLF.CRLF.
        p.send("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n").await;
        p.expect("250").await;
        p.expect("250").await;
        p.expect("354").await;
        p.send("line one\n.\n").await;
        p.send("\r\n.\r\n").await;
        p.expect("250 2.0.0").await;
        assert_eq!(h.mails()[1].1, b"line one\n.\n\r\n");
    }

    #[tokio::test]
    async fn oversized_data_then_next_transaction_works() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            max_message_size: 100,
            ..cfg()
        };
        let (mut p, _task) = start(c, h.clone());
        p.expect("220").await;
        p.send("EHLO c\r\n").await;
        let ehlo = p.reply().await;
        assert!(ehlo.contains(&"250-SIZE 100".to_string()));
        p.send("MAIL FROM:<a@x> SIZE=101\r\n").await;
        p.expect("552 5.3.4").await;
        p.send("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n").await;
        p.expect("250").await;
        p.expect("250").await;
        p.expect("354").await;
        let big = "0123456789".repeat(5) + "\r\n";
        for _ in 0..10 {
            p.send(&big).await;
        }
        // A very long line without any newline, too.
        p.send(&"y".repeat(100_000)).await;
        p.send("\r\n.\r\n").await;
        p.expect("552 5.3.4 Message too big").await;
        assert!(h.mails().is_empty());
        // RCPT without MAIL proves the transaction was reset.
        p.send("RCPT TO:<b@y>\r\n").await;
        p.expect("503").await;
        p.send("MAIL FROM:<a@x> SIZE=50\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            .await;
        p.expect("250").await;
        p.expect("250").await;
        p.expect("354").await;
        p.send("small\r\n.\r\n").await;
        p.expect("250 2.0.0").await;
        assert_eq!(h.mails()[0].1, b"small\r\n");
    }

    #[tokio::test]
    async fn exactly_max_size_is_accepted() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            max_message_size: 10,
            ..cfg()
        };
        let (mut p, _task) = start(c, h.clone());
        p.send("HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            .await;
        p.expect("220").await;
        p.expect("250").await;
        p.expect("250").await;
        p.expect("250").await;
        p.expect("354").await;
        p.send("..2345678\r\n.\r\n").await;
        p.expect("250 2.0.0").await;
        assert_eq!(h.mails()[0].1, b".2345678\r\n");
    }

    #[tokio::test]
    async fn too_many_recipients_keeps_earlier_ones() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            max_recipients: 2,
            ..cfg()
        };
        let (mut p, _task) = start(c, h.clone());
        p.send("EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<r1@y>\r\nRCPT TO:<r2@y>\r\nRCPT TO:<r3@y>\r\nDATA\r\n")
            .await;
        p.expect("220").await;
        p.reply().await;
        p.expect("250 2.1.0").await;
        p.expect("250 2.1.5").await;
        p.expect("250 2.1.5").await;
        assert_eq!(p.code().await, "452 4.5.3 Too many recipients");
        p.expect("354").await;
        p.send("hi\r\n.\r\n").await;
        p.expect("250 2.0.0").await;
        assert_eq!(h.mails()[0].0.rcpt_to, vec!["r1@y", "r2@y"]);
    }

    #[tokio::test]
    async fn ordering_errors_and_misc_commands() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, _task) = start(cfg(), h.clone());
        p.expect("220").await;
        p.send("MAIL FROM:<a@x>\r\n").await;
        p.expect("503 5.5.1").await;
        p.send("EHLO c\r\n").await;
        p.reply().await;
        p.send("RCPT TO:<b@y>\r\n").await;
        p.expect("503 5.5.1").await;
        p.send("DATA\r\n").await;
        p.expect("503 5.5.1").await;
        p.send("MAIL FROM:<a@x>\r\n").await;
        p.expect("250").await;
        p.send("MAIL FROM:<a@x>\r\n").await;
        p.expect("503 5.5.1").await;
        p.send("DATA\r\n").await;
        p.expect("503 5.5.1").await;
        p.send("RCPT TO:<>\r\n").await;
        p.expect("501").await;
        p.send("RCPT TO:<b@y> NOTIFY=NEVER\r\n").await;
        p.expect("555").await;
        p.send("VRFY root\r\n").await;
        assert_eq!(p.code().await, "252 2.5.2 Cannot VRFY user");
        p.send("NOOP\r\n").await;
        p.expect("250").await;
        p.send("HELP\r\n").await;
        p.expect("214").await;
        p.send("STARTTLS\r\n").await;
        p.expect("502 5.5.1").await;
        p.send("BDAT 10 LAST\r\n").await;
        p.expect("502 5.5.1").await;
        p.send("FOO bar\r\n").await;
        p.expect("500 5.5.2").await;
        p.send("RSET\r\n").await;
        p.expect("250").await;
        p.send("RCPT TO:<b@y>\r\n").await;
        p.expect("503").await;
        p.send("QUIT\r\n").await;
        p.expect("221").await;
        assert!(h.mails().is_empty());
    }

    #[tokio::test]
    async fn line_too_long() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            max_command_line: 64,
            ..cfg()
        };
        let (mut p, _task) = start(c, h);
        p.expect("220").await;
        p.send(&format!("NOOP {}\r\n", "x".repeat(10_000))).await;
        assert_eq!(p.code().await, "500 5.5.2 Line too long");
        p.send("NOOP\r\n").await;
        p.expect("250").await;
    }

    #[tokio::test]
    async fn verdicts_map_to_replies() {
        for (verdict, expected) in [
            (Verdict::TempFail("db down".into()), "451 4.3.0 db down"),
            (
                Verdict::PermFail("policy\r\n250 x".into()),
                "554 5.6.0 policy  250 x",
            ),
        ] {
            let h = Recorder::new(verdict);
            let (mut p, _task) = start(cfg(), h.clone());
            p.send("EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
                .await;
            p.expect("220").await;
            p.reply().await;
            p.expect("250").await;
            p.expect("250").await;
            p.expect("354").await;
            p.send("x\r\n.\r\nMAIL FROM:<a@x>\r\n").await;
            assert_eq!(p.code().await, expected);
            // Transaction reset: a new MAIL is not "nested".
            p.expect("250 2.1.0").await;
            assert_eq!(h.mails().len(), 1);
        }
    }

    #[tokio::test]
    async fn command_timeout_closes() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            command_timeout: Duration::from_millis(100),
            ..cfg()
        };
        let (mut p, task) = start(c, h);
        p.expect("220").await;
        assert_eq!(p.code().await, "421 4.4.2 mx.test Timeout");
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn data_timeout_closes() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            data_timeout: Duration::from_millis(100),
            ..cfg()
        };
        let (mut p, task) = start(c, h.clone());
        p.send("HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            .await;
        for prefix in ["220", "250", "250", "250", "354"] {
            p.expect(prefix).await;
        }
        p.send("partial\r\n").await;
        assert_eq!(p.code().await, "421 4.4.2 mx.test Timeout");
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
        assert!(h.mails().is_empty());
    }

    #[tokio::test]
    async fn trickling_data_is_cut_off_at_the_deadline() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let c = SessionConfig {
            data_timeout: Duration::from_millis(1000),
            data_deadline: Duration::from_millis(500),
            ..cfg()
        };
        let (mut p, task) = start(c, h.clone());
        p.send("HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            .await;
        for prefix in ["220", "250", "250", "250", "354"] {
            p.expect(prefix).await;
        }
        // Each byte comes well within data_timeout; only the deadline can end this early:
        // without it the 421 would come 1 s after the last byte (at about 1.3 s).
        let started = std::time::Instant::now();
        for _ in 0..3 {
            p.send("x").await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert_eq!(p.code().await, "421 4.4.2 mx.test Timeout");
        assert!(started.elapsed() < Duration::from_millis(1000));
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
        assert!(h.mails().is_empty());
    }

    #[tokio::test]
    async fn too_many_bad_commands_disconnects() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, task) = start(cfg(), h);
        p.expect("220").await;
        // One at a time: a client that sends on after a refusal without reading it is cut
        // off sooner (improper pipelining).
        for _ in 0..10 {
            p.send("XYZZY\r\n").await;
            p.expect("500").await;
        }
        p.send("XYZZY\r\n").await;
        p.expect("500").await;
        p.expect("421 4.7.0").await;
        assert!(p.eof().await);
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn good_command_resets_bad_count() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, _task) = start(cfg(), h);
        p.expect("220").await;
        for _ in 0..2 {
            for _ in 0..10 {
                p.send("XYZZY\r\n").await;
                p.expect("500").await;
            }
            p.send("NOOP\r\n").await;
            p.expect("250").await;
        }
    }

    #[tokio::test]
    async fn invalid_mailboxes_are_refused() {
        let h = Recorder::new(Verdict::Accepted("Q".into()));
        let (mut p, _task) = start(cfg(), h.clone());
        p.expect("220").await;
        p.send("EHLO c\r\n").await;
        p.reply().await;
        for bad in [
            "a@b@c", "a@b,c@d", "@b", "a b@c", "a..b@c", "a@-x", "@r:u@h",
        ] {
            p.send(&format!("MAIL FROM:<{bad}>\r\n")).await;
            let r = p.code().await;
            assert!(
                r.starts_with("501 5.1.7") || r.starts_with("553 5.1.7"),
                "{bad}: {r}"
            );
        }
        p.send("MAIL FROM:<a@x>\r\n").await;
        p.expect("250").await;
        for bad in [
            "a@b@c", "a@b,c@d", "@b", "a\"b@c", "a..b@c", "a@b_c", "@r:u@h", ",@x",
        ] {
            p.send(&format!("RCPT TO:<{bad}>\r\n")).await;
            let r = p.code().await;
            assert!(
                r.starts_with("501 5.1.3") || r.starts_with("553 5.1.3"),
                "{bad}: {r}"
            );
        }
        p.send("RCPT TO:<jörg@münchen.de>\r\nRCPT TO:<\"a b\"@y>\r\nDATA\r\n")
            .await;
        p.expect("250 2.1.5").await;
        p.expect("250 2.1.5").await;
        p.expect("354").await;
        p.send("x\r\n.\r\n").await;
        p.expect("250").await;
        assert_eq!(h.mails()[0].0.rcpt_to, vec!["jörg@münchen.de", "\"a b\"@y"]);
    }

    #[test]
    fn path_parsing() {
        assert_eq!(parse_path("<a@b>"), Some(("a@b".into(), "")));
        assert_eq!(parse_path("<> SIZE=1"), Some(("".into(), " SIZE=1")));
        assert_eq!(parse_path(" a@b"), Some(("a@b".into(), "")));
        // Source routes are refused, not stripped.
        assert_eq!(parse_path("<@r1,@r2:u@h>"), None);
        assert_eq!(
            parse_path("<\"a b\"@h> SIZE=1"),
            Some(("\"a b\"@h".into(), " SIZE=1"))
        );
        // Angle brackets inside an address are refused outright: the address
        // is later written between brackets again (outbound RCPT).
        assert_eq!(parse_path("<\"a>b\"@h>"), None);
        assert_eq!(parse_path("<a@b"), None);
        assert_eq!(parse_path("<a@b>x"), None);
        assert_eq!(parse_path("<a\u{1}@b>"), None);
        assert_eq!(parse_path(""), None);
    }
}
