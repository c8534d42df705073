//! Protocol-edge limits of the web listener.

mod common;

use std::time::{Duration, Instant};

use common::{TestNode, get};
use sealpost::config::TlsSetting;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn slowloris_http_client_is_cut_off() {
    let node = TestNode::start_with(|c| {
        c.web.tls = TlsSetting::Mode("off".into());
        c.web.header_timeout_secs = 1;
    })
    .await;
    let addr = node.node.web_addr.expect("web");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Headers trickle in and never finish.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = String::from_utf8_lossy(&buf);
    assert!(
        !text.contains("200 OK"),
        "no answer to an unfinished request: {text}"
    );

    // A normal client on a new connection is still served.
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    ok.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    node.stop().await;
}

#[tokio::test]
async fn admin_ui_can_live_on_its_own_listener() {
    let node = TestNode::start_with(|c| {
        c.web.admin_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let admin_addr = node.node.admin_addr.expect("admin listener");
    let client = node.client();
    // The public listener no longer knows the admin UI …
    let r = get(&node, &client, "/admin/login").await;
    assert_eq!(r.status(), 404);
    // … but still serves the portal,
    let r = get(&node, &client, "/login").await;
    assert_eq!(r.status(), 200);
    // and the admin listener serves the admin UI and not the portal.
    let admin = format!("https://{admin_addr}");
    let r = client
        .get(format!("{admin}/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{admin}/login")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    node.stop().await;
}

#[tokio::test]
async fn password_guessing_from_one_address_is_rate_limited() {
    let node = TestNode::start().await;
    let client = node.client();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let r = node
            .login(&client, "victim@example.com", &format!("guess-{i}"))
            .await;
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses[..20].iter().all(|s| *s == 401),
        "the first attempts are answered normally: {statuses:?}"
    );
    assert!(
        statuses[20..].contains(&429),
        "later attempts are refused: {statuses:?}"
    );
    // Other pages still answer.
    let r = get(&node, &client, "/login").await;
    assert_eq!(r.status(), 200);
    node.stop().await;
}
