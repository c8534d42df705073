//! A small but real SMTP sink for integration tests, demos and benchmarks:
//! it runs the same session code as the inbound service and records every
//! accepted message.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::inbound::{
    BareLineEnds, Envelope, MessageHandler, SessionConfig, Verdict, run_session_with,
};

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Dot-unstuffed, line ends exactly as sent.
    pub data: Vec<u8>,
}

type RcptFn = dyn Fn(&str) -> Option<(u16, String)> + Send + Sync;

/// SMTP sink listening on 127.0.0.1; stops when dropped.
pub struct TestSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: JoinHandle<()>,
}

struct Recorder {
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    next_id: AtomicU64,
}

impl MessageHandler for Recorder {
    async fn handle(&self, envelope: Envelope, data: Vec<u8>) -> Verdict {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.mails).push(ReceivedMail {
            mail_from: envelope.mail_from,
            rcpt_to: envelope.rcpt_to,
            data,
        });
        Verdict::Accepted(format!("SINK{id}"))
    }
}

/// A test that panicked while holding the lock should not hide what was
/// received from the others.
fn lock(m: &Mutex<Vec<ReceivedMail>>) -> MutexGuard<'_, Vec<ReceivedMail>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TestSink {
    /// A sink that accepts every recipient.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(|_| None).await
    }

    /// A sink whose reply to each RCPT is decided by `rcpt_reply`: `None`
    /// accepts (250), `Some((code, text))` answers `code text`.
    pub async fn start_with(
        rcpt_reply: impl Fn(&str) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(Recorder {
            mails: Arc::clone(&mails),
            next_id: AtomicU64::new(1),
        });
        let rcpt_reply: Arc<RcptFn> = Arc::new(rcpt_reply);
        let cfg = Arc::new(SessionConfig {
            hostname: "sink.test".to_string(),
            // The sink stands in for the next hop and records what it is given; a bare CR
            // that a "keep" node passes on is data to record, not a reason to refuse.
            bare_line_ends: BareLineEnds::Keep,
            ..SessionConfig::default()
        });
        let task = tokio::spawn(async move {
            // Sessions live in the JoinSet so that aborting this task (on
            // drop) aborts them too.
            let mut sessions = JoinSet::new();
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(a) => a,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Reap finished sessions so the set does not grow forever.
                while sessions.try_join_next().is_some() {}
                let handler = Arc::clone(&handler);
                let rcpt_reply = Arc::clone(&rcpt_reply);
                let cfg = Arc::clone(&cfg);
                sessions.spawn(async move {
                    let check: &RcptFn = rcpt_reply.as_ref();
                    let _ =
                        run_session_with(stream, peer.ip(), &cfg, handler.as_ref(), Some(check))
                            .await;
                });
            }
        });
        Ok(TestSink { addr, mails, task })
    }

    /// Messages received so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        lock(&self.mails).clone()
    }

    /// Waits until at least `n` messages have arrived or `timeout` passes,
    /// then returns what has arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    #[tokio::test]
    async fn records_mail_and_applies_rcpt_reply() {
        let sink =
            TestSink::start_with(|r| (r == "bad@x").then(|| (550, "5.1.1 nope".to_string())))
                .await
                .unwrap();
        let s = tokio::net::TcpStream::connect(sink.addr).await.unwrap();
        let mut s = BufReader::new(s);
        s.get_mut()
            .write_all(
                b"EHLO t\r\nMAIL FROM:<a@x>\r\nRCPT TO:<bad@x>\r\nRCPT TO:<good@x>\r\nDATA\r\n",
            )
            .await
            .unwrap();
        let mut all = String::new();
        // Message data only after the 354, as RFC 2920 asks.
        while !all.contains("354 ") {
            let mut l = String::new();
            assert!(s.read_line(&mut l).await.unwrap() > 0, "{all}");
            all.push_str(&l);
        }
        s.get_mut()
            .write_all(b"..dot\r\n.\r\nQUIT\r\n")
            .await
            .unwrap();
        loop {
            let mut l = String::new();
            if s.read_line(&mut l).await.unwrap() == 0 {
                break;
            }
            all.push_str(&l);
        }
        assert!(all.contains("550 5.1.1 nope\r\n"), "{all}");
        assert!(all.contains("250 2.0.0 Ok: queued as SINK1\r\n"), "{all}");
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got[0].rcpt_to, vec!["good@x".to_string()]);
        assert_eq!(got[0].data, b".dot\r\n");
        assert!(
            sink.wait_for(2, Duration::from_millis(50)).await.len() == 1,
            "wait_for returns after the timeout with what it has"
        );
    }
}
