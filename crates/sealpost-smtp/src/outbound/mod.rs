//! Outbound delivery to the next hop: the delivery API and the dispatch to a transport,
//! either SMTP to the organisation's own MTA (`smtp`, with `tls` for STARTTLS) or files in a
//! maildir (`maildir`). The types they share live in `types`; no transport imports this module.

mod maildir;
mod smtp;
mod tls;
mod types;

pub use types::{ClientConfig, OutboundMessage, RcptResult};

use crate::next_hop::NextHop;
use smtp::{SmtpSession, defer_all};

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
            NextHop::Maildir(dir) => return maildir::deliver_async(dir, msg).await,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use crate::sink::TestSink;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncWriteExt, BufReader};

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
