//! SMTP: smuggling, pipelining, addresses and the address rules.

use super::*;
use sealpost_smtp::inbound::BareLineEnds;
use sealpost_smtp::sink::ReceivedMail;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A raw SMTP client for sessions the real client would never produce.
struct Raw {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl Raw {
    async fn connect(node: &TestNode) -> Self {
        let stream = tokio::net::TcpStream::connect(node.smtp).await.unwrap();
        let (read, write) = stream.into_split();
        let mut raw = Raw {
            lines: BufReader::new(read).lines(),
            write,
        };
        assert!(raw.reply().await.starts_with("220"));
        raw
    }

    async fn send(&mut self, text: &str) {
        self.write.write_all(text.as_bytes()).await.unwrap();
    }

    /// The last line of the next reply ("" at end of stream).
    async fn reply(&mut self) -> String {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
                .await
                .expect("reply in time")
                .unwrap()
                .unwrap_or_default();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    async fn expect(&mut self, prefix: &str) -> String {
        let r = self.reply().await;
        assert!(r.starts_with(prefix), "expected {prefix}, got {r:?}");
        r
    }

    /// EHLO, MAIL, RCPT and DATA up to the 354.
    async fn open_data(&mut self, from: &str, to: &str) {
        self.send("EHLO client.test\r\n").await;
        self.expect("250").await;
        self.send(&format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n"))
            .await;
        self.expect("250").await;
        self.expect("250").await;
        self.expect("354").await;
    }
}

const SPOOF: &str = "ceo@bank.example";
const CUSTOMER: &str = "customer@example.net";

/// Every non-standard end of data an attacker may put before a second transaction.
const SMUGGLED_ENDS: [&str; 5] = ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r"];

fn smuggling_payload(end: &str) -> String {
    format!(
        "From: {ADVISOR}\r\nTo: {CUSTOMER}\r\nSubject: first\r\n\r\nhello{end}\
MAIL FROM:<{SPOOF}>\r\nRCPT TO:<{CUSTOMER}>\r\nDATA\r\nFrom: {SPOOF}\r\nTo: {CUSTOMER}\r\n\
Subject: smuggled\r\n\r\npay now\r\n.\r\n"
    )
}

/// Runs every smuggling variant against a node in `mode`, then one ordinary marker message;
/// returns the per-variant replies and every mail at the sink once the marker is there.
async fn smuggle_all(mode: BareLineEnds) -> (Vec<String>, Vec<ReceivedMail>) {
    let node = TestNode::start_with(|c| c.smtp.bare_lf = mode).await;
    let mut replies = Vec::new();
    for end in SMUGGLED_ENDS {
        let mut raw = Raw::connect(&node).await;
        raw.open_data(ADVISOR, CUSTOMER).await;
        raw.send(&smuggling_payload(end)).await;
        replies.push(raw.reply().await);
        // Whatever came after the real end is never taken for a second transaction: the
        // session answers the next command as the first one after the message.
        raw.send("NOOP\r\n").await;
        raw.expect("250").await;
    }
    let mut raw = Raw::connect(&node).await;
    raw.open_data(ADVISOR, CUSTOMER).await;
    raw.send(&format!(
        "From: {ADVISOR}\r\nTo: {CUSTOMER}\r\nSubject: marker\r\n\r\nmarker\r\n.\r\n"
    ))
    .await;
    raw.expect("250").await;
    let expected = if mode == BareLineEnds::Keep { 6 } else { 1 };
    node.wait_for_mails(expected).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = node.sink.received();
    node.stop().await;
    (replies, mails)
}

fn assert_never_spoofed(mails: &[ReceivedMail]) {
    for mail in mails {
        assert_eq!(
            mail.mail_from, ADVISOR,
            "a mail left with a smuggled sender"
        );
        let text = String::from_utf8_lossy(&mail.data);
        assert!(
            !text.starts_with(&format!("From: {SPOOF}")),
            "a smuggled message became a mail of its own: {text}"
        );
    }
}

#[tokio::test]
async fn smuggled_second_transaction_is_refused_with_550_by_default() {
    let (replies, mails) = smuggle_all(BareLineEnds::Refuse).await;
    for (end, reply) in SMUGGLED_ENDS.iter().zip(&replies) {
        assert!(reply.starts_with("550 5.6.0"), "{end:?}: {reply}");
    }
    // Only the marker reached the next hop: nothing of any smuggling attempt was queued.
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(String::from_utf8_lossy(&mails[0].data).contains("marker"));
    assert_never_spoofed(&mails);
}

#[tokio::test]
async fn smuggled_second_transaction_stays_data_of_the_first_in_keep_mode() {
    let (replies, mails) = smuggle_all(BareLineEnds::Keep).await;
    for (end, reply) in SMUGGLED_ENDS.iter().zip(&replies) {
        assert!(reply.starts_with("250 2.0.0"), "{end:?}: {reply}");
    }
    // One mail per attempt plus the marker, each from the real sender; the would-be
    // second message is text inside the first.
    assert_eq!(mails.len(), SMUGGLED_ENDS.len() + 1, "{mails:?}");
    assert_never_spoofed(&mails);
    for mail in &mails[..SMUGGLED_ENDS.len()] {
        assert!(String::from_utf8_lossy(&mail.data).contains("pay now"));
    }
}

#[tokio::test]
async fn improper_pipelining_closes_the_session_and_queues_nothing() {
    let node = TestNode::start().await;
    // Message data sent before the 354.
    let mut raw = Raw::connect(&node).await;
    raw.send("EHLO client.test\r\n").await;
    raw.expect("250").await;
    raw.send(&format!(
        "MAIL FROM:<{ADVISOR}>\r\nRCPT TO:<{CUSTOMER}>\r\nDATA\r\nSubject: early\r\n\r\nx\r\n.\r\n"
    ))
    .await;
    raw.expect("250").await;
    raw.expect("250").await;
    raw.expect("554 5.5.0").await;
    assert_eq!(raw.reply().await, "", "the session is closed");
    // A refused DATA (bad recipient) with a forged transaction already behind it.
    let mut raw = Raw::connect(&node).await;
    raw.send("EHLO client.test\r\n").await;
    raw.expect("250").await;
    raw.send(&format!(
        "MAIL FROM:<{ADVISOR}>\r\nRCPT TO:<a@b@c>\r\nDATA\r\nMAIL FROM:<{SPOOF}>\r\n\
RCPT TO:<{CUSTOMER}>\r\nDATA\r\nSubject: forged\r\n\r\nx\r\n.\r\n"
    ))
    .await;
    raw.expect("250").await;
    raw.expect("553 5.1.3").await;
    raw.expect("503").await;
    raw.expect("554 5.5.0").await;
    assert_eq!(raw.reply().await, "", "the session is closed");
    // Legitimate pipelining still works: the real client pipelines MAIL/RCPT/DATA.
    let results = node
        .send(ADVISOR, &[CUSTOMER], &crlf("Subject: fine\n\nfine\n"))
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.sink.received().len(), 1, "{mails:?}");
    assert_never_spoofed(&node.sink.received());
    node.stop().await;
}

#[tokio::test]
async fn addresses_that_are_not_one_mailbox_are_refused() {
    let node = TestNode::start().await;
    let mut raw = Raw::connect(&node).await;
    raw.send("EHLO client.test\r\n").await;
    raw.expect("250").await;
    raw.send("MAIL FROM:<a@b@bank.example>\r\n").await;
    raw.expect("553 5.1.7").await;
    raw.send(&format!("MAIL FROM:<{ADVISOR}>\r\n")).await;
    raw.expect("250").await;
    for bad in [
        "a@b@example.net",
        "a@example.net,b@example.net",
        "@example.net",
        "a b@example.net",
        "@relay.example:a@example.net",
        "a\u{7f}@example.net",
    ] {
        raw.send(&format!("RCPT TO:<{bad}>\r\n")).await;
        let r = raw.reply().await;
        assert!(
            r.starts_with("553 5.1.3") || r.starts_with("501 5.1.3"),
            "{bad:?}: {r}"
        );
    }
    raw.send("QUIT\r\n").await;
    node.stop().await;
}

#[tokio::test]
async fn u_label_and_a_label_of_one_domain_are_one_account() {
    let node = TestNode::start().await;
    for to in ["jörg@xn--mnchen-3ya.example", "Jörg@MÜNCHEN.example"] {
        let results = node.send(ADVISOR, &[to], &plain_mail(to, "idn")).await;
        assert_eq!(results, vec![RcptResult::Delivered], "{to}");
    }
    let mails = node.wait_for_mails(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds: Vec<String> = node.sink.received().iter().map(kind_of).collect();
    let credentials = kinds.iter().filter(|k| *k == "credentials").count();
    assert_eq!(
        credentials, 1,
        "one account, one credentials mail: {kinds:?}"
    );
    assert!(mails.len() >= 3);
    node.stop().await;
}
