//! `POST /open` + `GET /open/{token}` with envelopes of several megabytes, through a real
//! node: the body is decoded as it arrives and stored in chunks, the page lists the attachment
//! without decoding it, and every later view (download, .eml) reads the chunks back intact.
//! Damaged and oversized uploads are refused.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod common;

use common::*;
use sealpost::config::TlsSetting;
use sealpost_smtp::outbound::RcptResult;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SENDER: &str = "advisor@bank.example";
const NEW_PASSWORD: &str = "green lamp 58 under bridges";

fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A [secure] mail with an incompressible attachment of `len` bytes, as bench/extra.py sends.
fn mail_with_attachment(to: &str, attachment: &[u8]) -> Vec<u8> {
    // Standard base64 in 76-character lines, as in MIME.
    let lines = sealpost_crypto::encode_payload(attachment) + "\n";
    crlf(&format!(
        "From: {SENDER}\nTo: {to}\nSubject: Statement [secure]\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n\
Statement attached.\n\n--b1\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\
Content-Disposition: attachment; filename=\"statement.pdf\"\n\n{lines}--b1--\n"
    ))
}

/// As a browser submits secure.htm's form: the textarea's lines end in CR LF.
fn browser_form(payload: &str) -> String {
    let text = payload.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = String::from("payload=");
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn post_form(node: &TestNode, client: &reqwest::Client, body: String) -> reqwest::Response {
    client
        .post(node.url("/open"))
        .header("origin", "null")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_large_message_opens_and_its_parts_read_back_from_the_database() {
    let node = TestNode::start().await;
    let address = "reader@example.com";
    let attachment = noise(3 * 1024 * 1024 + 12_345);
    let mail = mail_with_attachment(address, &attachment);
    assert_eq!(
        node.send(SENDER, &[address], &mail).await,
        vec![RcptResult::Delivered]
    );
    let mails = node.wait_for_mails(2).await;
    let carrier = mails.iter().find(|m| kind_of(m) == "carrier").unwrap();
    let cred = mails.iter().find(|m| kind_of(m) == "credentials").unwrap();
    let payload = carrier_payload(carrier);
    let password = credentials_password(cred);

    let client = node.client();
    assert_eq!(node.login(&client, address, &password).await.status(), 303);
    complete_first_login(&node, &client, NEW_PASSWORD).await;

    // A damaged payload (one character near the end) is refused, also after its first
    // megabytes were decoded; so is one that is not an envelope at all.
    let mut damaged = payload.clone().into_bytes();
    let at = damaged.len() - 100;
    damaged[at] = b'*';
    let resp = post_form(
        &node,
        &client,
        browser_form(&String::from_utf8(damaged).unwrap()),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let other = sealpost_crypto::encode_payload(&noise(2 * 1024 * 1024));
    assert_eq!(
        post_form(&node, &client, browser_form(&other))
            .await
            .status(),
        400
    );

    // The real one, as a browser sends it.
    let resp = post_form(&node, &client, browser_form(&payload)).await;
    assert_eq!(resp.status(), 303);
    let open = location(&resp);
    assert!(open.starts_with("/open/"), "{open}");
    let page = get(&node, &client, &open).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("statement.pdf"), "{page}");
    assert!(page.contains("3.0 MB"), "decoded size listed: {page}");

    // Later views read the chunked envelope from the database.
    let part = get(&node, &client, &format!("{open}/part/0")).await;
    assert_eq!(part.status(), 200);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &attachment[..]);
    let eml = get(&node, &client, &format!("{open}/message.eml")).await;
    assert_eq!(eml.status(), 200);
    let eml = eml.bytes().await.unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&eml[..])
        .unwrap();
    assert_eq!(parsed.attachment(0).unwrap().contents(), &attachment[..]);
    // The page again (a reload): from the database too.
    assert_eq!(get(&node, &client, &open).await.status(), 200);
    node.stop().await;
}

#[tokio::test]
async fn an_oversized_open_is_refused_before_its_body_is_read() {
    let node = TestNode::start_with(|c| c.web.tls = TlsSetting::Mode("off".into())).await;
    let addr = node.node.web_addr.unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /open HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 400000000\r\nConnection: close\r\n\r\npayload=U1BY",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "answered without waiting for 400 MB");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    node.stop().await;
}
