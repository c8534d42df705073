//! Edge-case mail through a real node: odd but legal (or merely common) input must either be
//! relayed unchanged or be encrypted and open in the portal; limits answer with the right
//! codes and leave the connection usable; slow clients are cut off. Raw SMTP over TCP is used
//! wherever the test client in `common` would clean the input up (bare LF, NUL, 8-bit without
//! BODY=8BITMIME, streamed 100 MB, thousands of pipelined RCPTs).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sealpost_smtp::inbound::BareLineEnds;
use sealpost_smtp::sink::ReceivedMail;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const SENDER: &str = "advisor@bank.example";

/// A raw SMTP client: sends exactly the bytes it is given.
struct Raw {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Raw {
    async fn connect(node: &TestNode) -> Raw {
        let s = TcpStream::connect(node.smtp).await.expect("connect");
        let (r, w) = s.into_split();
        let mut raw = Raw {
            r: BufReader::new(r),
            w,
        };
        assert_eq!(raw.reply().await.0, 220);
        raw
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.expect("write");
    }

    /// One complete (multi-line) reply: code and the text of its last line.
    async fn reply(&mut self) -> (u16, String) {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(120), self.r.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "connection closed while waiting for a reply");
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).expect("code");
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, line.trim_end().to_string());
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// MAIL (with `params`), RCPTs, DATA with `data` dot-stuffed and terminated; the final
    /// reply code.
    async fn mail(&mut self, params: &str, rcpts: &[&str], data: &[u8]) -> u16 {
        assert_eq!(
            self.cmd(&format!("MAIL FROM:<{SENDER}>{params}")).await.0,
            250
        );
        for r in rcpts {
            assert_eq!(self.cmd(&format!("RCPT TO:<{r}>")).await.0, 250, "{r}");
        }
        assert_eq!(self.cmd("DATA").await.0, 354);
        self.send(&dot_stuff(data)).await;
        self.reply().await.0
    }
}

/// Dot-stuffs lines starting with "." and appends the terminator. Only CRLF ends a line in
/// SMTP data (a bare LF is a byte of its line), so only CRLF starts a line to stuff, and the
/// terminator is always CRLF.CRLF: data that does not end in CRLF gets one first.
fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut at_start = true;
    for &b in data {
        if at_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_start = b == b'\n' && out.ends_with(b"\r\n");
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// What the next hop receives for `data`: our SMTP client sends CRLF line ends and a final
/// line end, and nothing else changes.
fn on_the_wire(data: &[u8]) -> Vec<u8> {
    let data = as_received(data);
    let mut out = Vec::with_capacity(data.len() + 8);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What the node received for `data` (= what it seals): a final CRLF is added if missing.
fn as_received(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The body: everything after the first empty line (empty if there is none).
fn body(data: &[u8]) -> &[u8] {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => &data[a.min(b)..],
        (Some(a), None) | (None, Some(a)) => &data[a..],
        (None, None) => &[],
    }
}

struct Edge {
    name: &'static str,
    /// Sent without BODY=8BITMIME even when it holds 8-bit bytes.
    data: Vec<u8>,
    /// Text the portal page must show.
    shows: Option<&'static str>,
}

fn multipart_many(n: usize) -> String {
    let mut m = String::from(
        "From: a@bank.example\r\nTo: edge@example.com\r\nSubject: many parts [secure]\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nmarker-many-parts\r\n",
    );
    for i in 0..n {
        m.push_str(&format!(
            "--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"p{i}.txt\"\r\n\r\npart {i}\r\n"
        ));
    }
    m.push_str("--B--\r\n");
    m
}

fn nested(depth: usize) -> String {
    let mut m = String::from(
        "From: a@bank.example\r\nTo: edge@example.com\r\nSubject: nested [secure]\r\nMIME-Version: 1.0\r\n",
    );
    for d in 0..depth {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"n{d}\"\r\n\r\n--n{d}\r\n"
        ));
    }
    m.push_str("Content-Type: text/plain\r\n\r\nmarker-deepest\r\n");
    for d in (0..depth).rev() {
        m.push_str(&format!("--n{d}--\r\n"));
    }
    m
}

fn edge_cases(flag: &str) -> Vec<Edge> {
    let head = |subject: &str| {
        format!(
            "From: Anna <a@bank.example>\r\nTo: edge@example.com\r\nSubject: {subject}{flag}\r\n"
        )
    };
    let mut eight_bit = head("8-bit").into_bytes();
    eight_bit.extend_from_slice(b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe aus K\xf6ln marker-8bit\r\n");
    let mut nul = head("nul").into_bytes();
    nul.extend_from_slice(b"\r\nbefore\0after marker-nul\r\n\0\0\r\n");
    let mut garbage =
        b"From: \xff\xfe =?utf-8?q?=FF=FE?= <a@bank.example>\r\nTo: edge@example.com\r\n".to_vec();
    garbage.extend_from_slice(
        b"Subject: =?utf-8?b?!!notbase64?= =?x-unknown?q?abc?= =?utf-8?q?unterminated \xc3\x28 ",
    );
    garbage.extend_from_slice(format!("{flag}\r\n").as_bytes());
    garbage.extend_from_slice(b"X-Broken: =?=?=?\xff\r\n\r\nmarker-garbage\r\n");
    let mut cases = vec![
        Edge {
            name: "empty body",
            data: format!("{}\r\n", head("empty")).into_bytes(),
            shows: None,
        },
        Edge {
            name: "only headers, no empty line, no final CRLF",
            data: head("only headers").trim_end().as_bytes().to_vec(),
            shows: None,
        },
        Edge {
            name: "8-bit without 8BITMIME",
            data: eight_bit,
            shows: None,
        },
        Edge {
            name: "NUL bytes",
            data: nul,
            shows: None,
        },
        Edge {
            name: "bare LF line ends",
            data: format!("{}\r\nline one\nline two marker-bare-lf\n", head("bare lf"))
                .replace("\r\n", "\n")
                .into_bytes(),
            shows: Some("marker-bare-lf"),
        },
        Edge {
            name: "2,000-character lines",
            data: format!(
                "{}\r\n{}\r\nmarker-long\r\n",
                head("long"),
                "x".repeat(2000)
            )
            .into_bytes(),
            shows: Some("marker-long"),
        },
        Edge {
            name: "invalid UTF-8 and RFC 2047 garbage in headers",
            data: garbage,
            shows: Some("marker-garbage"),
        },
    ];
    if !flag.is_empty() {
        cases.push(Edge {
            name: "10,000 MIME parts",
            data: multipart_many(10_000).into_bytes(),
            shows: Some("p9999.txt"),
        });
        cases.push(Edge {
            name: "50-level nesting",
            data: nested(50).into_bytes(),
            shows: None,
        });
    }
    cases
}

async fn queue_is_empty(node: &TestNode) -> bool {
    for _ in 0..100 {
        let stats = node
            .node
            .store
            .queue_stats(sealpost_store::unix_now())
            .await
            .expect("stats");
        if stats.queued == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn unflagged_edge_mails_are_relayed_unchanged() {
    // Bare LFs are refused by default; a node that keeps them must relay such mail unchanged.
    let node = TestNode::start_with(|c| c.smtp.bare_lf = BareLineEnds::Keep).await;
    let cases = edge_cases("");
    let mut smtp = Raw::connect(&node).await;
    assert_eq!(smtp.cmd("EHLO mta.bank.example").await.0, 250);
    for case in &cases {
        let code = smtp.mail("", &["edge@example.com"], &case.data).await;
        assert_eq!(code, 250, "{}", case.name);
    }
    assert_eq!(smtp.cmd("QUIT").await.0, 221);
    let mails = node.wait_for_mails(cases.len()).await;
    for case in &cases {
        let want = on_the_wire(&case.data);
        assert!(
            mails.iter().any(|m| m.data == want),
            "{}: not relayed unchanged",
            case.name
        );
    }
    assert!(queue_is_empty(&node).await, "queue drained");
    node.stop().await;
}

/// The decoded text of a credentials mail.
fn credentials_text(mail: &ReceivedMail) -> String {
    mail_parser::MessageParser::default()
        .parse(&mail.data)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// Logs in as `address` with the password from `cred`. The first-login detour (new password,
/// secret question) is switched off in the database: it has its own tests, and here it
/// would only stand between the login and the message.
async fn portal_login(node: &TestNode, cred: &ReceivedMail, address: &str) -> reqwest::Client {
    node.node
        .store
        .execute_unchecked("UPDATE accounts SET must_change_password = 0")
        .await
        .expect("update");
    let client = node.client();
    let r = node
        .login(&client, address, &credentials_password(cred))
        .await;
    assert_eq!(r.status(), 303, "login as {address}");
    client
}

/// The credentials mail that names `address` (the decoded text, as the sender reads it).
fn credentials_for<'a>(mails: &'a [ReceivedMail], address: &str) -> &'a ReceivedMail {
    mails
        .iter()
        .find(|m| kind_of(m) == "credentials" && credentials_text(m).contains(address))
        .unwrap_or_else(|| panic!("credentials mail naming {address}"))
}

async fn portal_client(node: &TestNode, mails: &[ReceivedMail], address: &str) -> reqwest::Client {
    portal_login(node, credentials_for(mails, address), address).await
}

/// Opens a carrier in the portal: the page and the decrypted message.
async fn open(
    node: &TestNode,
    client: &reqwest::Client,
    carrier: &ReceivedMail,
) -> (String, Vec<u8>) {
    let r = node.post_open(client, &carrier_payload(carrier)).await;
    assert_eq!(r.status(), 303);
    let path = location(&r);
    let r = client.get(node.url(&path)).send().await.expect("open page");
    assert_eq!(r.status(), 200, "open page for {path}: {}", location(&r));
    let page = r.text().await.expect("page");
    let r = client
        .get(node.url(&format!("{path}/message.eml")))
        .send()
        .await
        .expect("eml");
    assert_eq!(r.status(), 200);
    (page, r.bytes().await.expect("eml").to_vec())
}

#[tokio::test]
async fn flagged_edge_mails_encrypt_and_open_in_the_portal() {
    let node = TestNode::start_with(|c| c.smtp.bare_lf = BareLineEnds::Keep).await;
    let cases = edge_cases(" [secure]");
    let mut smtp = Raw::connect(&node).await;
    assert_eq!(smtp.cmd("EHLO mta.bank.example").await.0, 250);
    for case in &cases {
        let code = smtp.mail("", &["edge@example.com"], &case.data).await;
        assert_eq!(code, 250, "{}", case.name);
    }
    assert_eq!(smtp.cmd("QUIT").await.0, 221);
    // One carrier per mail plus one credentials mail for the new account.
    let mails = node.wait_for_mails(cases.len() + 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails_now = node.sink.received();
    assert_eq!(mails_now.len(), cases.len() + 1, "no extra mails");
    let client = portal_client(&node, &mails, "edge@example.com").await;
    let carriers: Vec<_> = mails.iter().filter(|m| kind_of(m) == "carrier").collect();
    assert_eq!(carriers.len(), cases.len());
    let keywords = vec!["[secure]".to_string()];
    let policy = sealpost_mime::TriggerPolicy {
        keywords: &keywords,
        header: "X-Sealpost-Encrypt",
    };
    let mut opened = Vec::new();
    for c in &carriers {
        opened.push(open(&node, &client, c).await);
    }
    for case in &cases {
        // Byte for byte what the node received, minus the trigger keyword in the Subject.
        let want = sealpost_mime::strip_trigger(&as_received(&case.data), &policy);
        let i = opened
            .iter()
            .position(|(_, eml)| *eml == want)
            .unwrap_or_else(|| panic!("{}: no carrier opens to the original", case.name));
        let (page, _) = opened.remove(i);
        assert!(
            !String::from_utf8_lossy(&want).contains("[secure]"),
            "{}: trigger removed",
            case.name
        );
        assert_eq!(
            body(&want),
            body(&as_received(&case.data)),
            "{}: body kept",
            case.name
        );
        if let Some(text) = case.shows {
            assert!(page.contains(text), "{}: page shows {text}", case.name);
        }
    }
    assert!(queue_is_empty(&node).await, "queue drained");
    node.stop().await;
}

const QUOTED: &str = "\"john doe\"@example.com";
const IDN: &str = "kunde@bücher.example";

async fn send_idn_and_quoted(node: &TestNode) -> Vec<ReceivedMail> {
    let data = "From: a@bank.example\r\nTo: \"john doe\"@example.com, kunde@b\u{fc}cher.example\r\n\
Subject: IDN [secure]\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nmarker-idn\r\n";
    let mut smtp = Raw::connect(node).await;
    assert_eq!(smtp.cmd("EHLO mta.bank.example").await.0, 250);
    let code = smtp
        .mail(" SMTPUTF8 BODY=8BITMIME", &[QUOTED, IDN], data.as_bytes())
        .await;
    assert_eq!(code, 250);
    assert_eq!(smtp.cmd("QUIT").await.0, 221);
    node.wait_for_mails(4).await
}

fn carrier_to<'a>(mails: &'a [ReceivedMail], rcpt: &str) -> &'a ReceivedMail {
    mails
        .iter()
        .find(|m| kind_of(m) == "carrier" && m.rcpt_to == vec![rcpt.to_string()])
        .unwrap_or_else(|| panic!("carrier for {rcpt}"))
}

#[tokio::test]
async fn idn_and_quoted_local_part_recipients_get_accounts_and_open() {
    let node = TestNode::start().await;
    let mails = send_idn_and_quoted(&node).await;
    // The IDN address: its own account, named in the credentials mail, opens in the portal.
    let client = portal_client(&node, &mails, IDN).await;
    let (page, _) = open(&node, &client, carrier_to(&mails, IDN)).await;
    assert!(page.contains("marker-idn"));
    // The quoted local part is a mailbox of its own (not johndoe@example.com): its account
    // is under the exact address. Its credentials mail is the other one.
    assert!(
        node.node
            .store
            .account_by_address(QUOTED)
            .await
            .expect("lookup")
            .is_some(),
        "account under the quoted address"
    );
    let idn_cred = credentials_for(&mails, IDN);
    let cred = mails
        .iter()
        .find(|m| kind_of(m) == "credentials" && !std::ptr::eq(*m, idn_cred))
        .expect("second credentials mail");
    let client = portal_login(&node, cred, QUOTED).await;
    let (page, _) = open(&node, &client, carrier_to(&mails, QUOTED)).await;
    assert!(page.contains("marker-idn"));
    node.stop().await;
}

/// Known bug (reported to the lead): generate.rs `clean_address` drops the quotes and the
/// space, so the credentials mail (and the carrier's To:) name johndoe@example.com, a
/// different mailbox, and the recipient is told a login that does not exist.
#[tokio::test]
async fn credentials_mail_names_a_quoted_local_part_exactly() {
    let node = TestNode::start().await;
    let mails = send_idn_and_quoted(&node).await;
    credentials_for(&mails, QUOTED);
    node.stop().await;
}

#[tokio::test]
async fn data_over_the_size_limit_gets_552_and_the_connection_stays_usable() {
    // The default limit is 50 MB; 100 MB is streamed in 1 MB chunks, never held in memory.
    let node = TestNode::start().await;
    assert_eq!(node.config.smtp.max_message_size, 50 * 1024 * 1024);
    let mut smtp = Raw::connect(&node).await;
    assert_eq!(smtp.cmd("EHLO mta.bank.example").await.0, 250);
    assert_eq!(smtp.cmd(&format!("MAIL FROM:<{SENDER}>")).await.0, 250);
    assert_eq!(smtp.cmd("RCPT TO:<big@example.com>").await.0, 250);
    assert_eq!(smtp.cmd("DATA").await.0, 354);
    smtp.send(b"Subject: huge\r\n\r\n").await;
    let mut line = "y".repeat(998);
    line.push_str("\r\n");
    let chunk = line.repeat(1024 * 1024 / line.len());
    let mut sent = 0usize;
    while sent < 100 * 1024 * 1024 {
        smtp.send(chunk.as_bytes()).await;
        sent += chunk.len();
    }
    smtp.send(b".\r\n").await;
    let (code, text) = smtp.reply().await;
    assert_eq!(code, 552, "{text}");

    // Same connection: the next transaction goes through.
    let small = b"Subject: after the big one\r\n\r\nstill here\r\n";
    assert_eq!(smtp.mail("", &["small@example.com"], small).await, 250);
    assert_eq!(smtp.cmd("QUIT").await.0, 221);
    let mails = node.wait_for_mails(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.sink.received().len(), 1, "only the small mail");
    assert_eq!(mails[0].data, small.to_vec());
    assert!(
        queue_is_empty(&node).await,
        "nothing of the big mail queued"
    );
    node.stop().await;
}

#[tokio::test]
async fn ten_thousand_rcpt_get_452_after_the_limit() {
    let node = TestNode::start().await;
    let limit = node.config.smtp.max_recipients;
    let s = TcpStream::connect(node.smtp).await.expect("connect");
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    // Pipelined: write everything from another task while this one reads the replies.
    let writer = tokio::spawn(async move {
        let mut script = format!("EHLO mta.bank.example\r\nMAIL FROM:<{SENDER}>\r\n");
        for i in 0..10_000 {
            script.push_str(&format!("RCPT TO:<r{i}@example.com>\r\n"));
        }
        w.write_all(script.as_bytes()).await.expect("write");
        w
    });
    let mut codes = Vec::new();
    let mut line = String::new();
    // greeting, EHLO (multi-line), MAIL, 10,000 RCPT
    while codes.len() < 3 + 10_000 {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(60), r.read_line(&mut line))
            .await
            .expect("replies in time")
            .expect("read");
        assert!(n > 0, "connection closed after {} replies", codes.len());
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        codes.push(line[..3].to_string());
    }
    let rcpt = &codes[3..];
    assert!(rcpt[..limit].iter().all(|c| c == "250"));
    assert!(
        rcpt[limit..].iter().all(|c| c == "452"),
        "452 after the limit"
    );
    let mut w = writer.await.expect("writer");
    w.write_all(b"DATA\r\n").await.expect("write");
    line.clear();
    r.read_line(&mut line).await.expect("read");
    assert!(line.starts_with("354"), "{line}");
    w.write_all(b"Subject: many\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        .await
        .expect("write");
    line.clear();
    r.read_line(&mut line).await.expect("read");
    assert!(line.starts_with("250"), "{line}");
    let mails = node.wait_for_mails(1).await;
    assert_eq!(mails[0].rcpt_to.len(), limit);
    assert_eq!(
        mails[0].rcpt_to[limit - 1],
        format!("r{}@example.com", limit - 1)
    );
    node.stop().await;
}

#[tokio::test]
async fn slowloris_smtp_client_is_cut_off_by_the_command_timeout() {
    let node = TestNode::start_with(|c| {
        c.smtp.command_timeout_secs = 2;
        c.smtp.data_timeout_secs = 2;
    })
    .await;
    // One byte per second, never completing a command line.
    let s = TcpStream::connect(node.smtp).await.expect("connect");
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("greeting");
    assert!(line.starts_with("220"));
    let start = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        for b in b"EHLO slow.example.with.a.long.name\r\n" {
            if w.write_all(&[*b]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sent
    });
    line.clear();
    r.read_line(&mut line).await.expect("read");
    assert!(line.starts_with("421 4.4.2"), "{line:?}");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut rest))
        .await
        .expect("closed after the 421")
        .expect("read");
    assert_eq!(n, 0, "nothing after the 421");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "cut off after {took:?}, not after the 2 s timeout"
    );
    let sent = trickle.await.expect("trickle");
    assert!(
        sent < 10,
        "the slow client sent {sent} bytes before the cut"
    );

    // A client that stops sending in the middle of DATA is cut off by the data timeout, and
    // the half-sent mail is not queued.
    let mut smtp = Raw::connect(&node).await;
    assert_eq!(smtp.cmd("EHLO mta.bank.example").await.0, 250);
    assert_eq!(smtp.cmd(&format!("MAIL FROM:<{SENDER}>")).await.0, 250);
    assert_eq!(smtp.cmd("RCPT TO:<x@example.com>").await.0, 250);
    assert_eq!(smtp.cmd("DATA").await.0, 354);
    smtp.send(b"Subject: half\r\n\r\nhalf a mail").await;
    let (code, text) = smtp.reply().await;
    assert_eq!(code, 421, "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(node.sink.received().is_empty());
    assert!(queue_is_empty(&node).await);
    node.stop().await;
}
