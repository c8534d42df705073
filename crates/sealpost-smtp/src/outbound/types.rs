//! The vocabulary every outbound transport shares: what to send, how, and what became of each
//! recipient. (The next hop itself is `crate::next_hop::NextHop`.)

use std::time::Duration;

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
    /// certificate (see `outbound::tls`).
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
