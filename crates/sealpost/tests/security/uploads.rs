//! Forged uploads, web listener limits, breached passwords, branded framework errors.

#[allow(unused_imports)]
use super::*;

use sealpost::config::TlsSetting;
use sealpost_crypto::{EnvelopeHeader, KeyId, RecipientKey};
use tokio::io::AsyncReadExt;

/// Bytes that do not compress, so a sealed envelope of them is as large as asked.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The header of a real recipient's envelope.
fn header_of(payload: &str) -> EnvelopeHeader {
    let envelope = sealpost_crypto::decode_payload(payload).unwrap();
    sealpost_crypto::read_header(&envelope).unwrap()
}

/// A payload whose header parses, sealed with a key this portal never had.
fn forged(recipient: &str, key_id: KeyId, len: usize) -> String {
    let key = RecipientKey::generate();
    let (_, envelope) = sealpost_crypto::seal(
        &key,
        key_id,
        recipient,
        1_700_000_000,
        &noise(len, len as u64),
    )
    .unwrap();
    sealpost_crypto::encode_payload(&envelope)
}

async fn stored_rows(node: &TestNode) -> i64 {
    node.node.store.count_temp_open_rows().await.unwrap()
}

#[tokio::test]
async fn uploads_for_no_account_or_key_here_store_nothing_and_look_alike() {
    let node = TestNode::start().await;
    let r = provision(&node, "upload.owner@example.com").await;
    let real = header_of(&r.payload).key_id;
    let stranger = node.client();
    let other_id = KeyId {
        account_id: uuid::Uuid::new_v4(),
        version: real.version,
    };
    let missing_version = KeyId {
        account_id: real.account_id,
        version: real.version + 7,
    };
    let forgeries = [
        (
            "unknown address",
            forged("nobody@example.com", other_id, 4096),
        ),
        (
            "known address, other account id",
            forged(&r.address, other_id, 4096),
        ),
        (
            "known account, no such key version",
            forged(&r.address, missing_version, 4096),
        ),
        // Large enough to be stored in chunks while it arrives.
        (
            "unknown address, large",
            forged("nobody@example.com", other_id, 3 << 20),
        ),
        (
            "known address, large",
            forged(&r.address, other_id, 3 << 20),
        ),
    ];
    let mut locations = Vec::new();
    for (what, payload) in &forgeries {
        let resp = node.post_open(&stranger, payload).await;
        // Answered like an accepted upload: a stranger learns nothing about the address.
        assert_eq!(resp.status(), 303, "{what}");
        let open = location(&resp);
        assert!(open.starts_with("/open/"), "{what}: {open}");
        assert_eq!(stored_rows(&node).await, 0, "{what}: nothing is stored");
        locations.push(open);
    }
    // Also as a multipart upload.
    let form = reqwest::multipart::Form::new().text("payload", forgeries[1].1.clone());
    let resp = stranger
        .post(node.url("/open"))
        .header("origin", "null")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(stored_rows(&node).await, 0, "multipart: nothing is stored");

    // The signed-in recipient gets the same "cannot be opened here" page for each.
    let client = logged_in(&node, &r).await;
    let mut pages = Vec::new();
    for open in &locations {
        let resp = get(&node, &client, open).await;
        assert_eq!(resp.status(), 410, "{open}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("cannot be opened here"), "{page}");
        pages.push(page);
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "one page for every reason"
    );

    // The real envelope is stored and opens.
    let (_, page) = open_message(&node, &client, &r.payload).await;
    assert!(page.contains("Dear customer"));
    assert!(stored_rows(&node).await > 0);
    node.stop().await;
}

#[tokio::test]
async fn uploads_are_bounded_by_the_message_size_limit_and_parked_bytes_per_client() {
    let node = TestNode::start_with(|c| c.web.max_parked_mib_per_client = 2).await;
    let r = provision(&node, "upload.sizes@example.com").await;
    let real = header_of(&r.payload).key_id;
    let client = node.client();

    // Over the message-size limit (a 1 MiB limit; a 3 MiB envelope): 413, nothing stored.
    set_setting(&node, "limits.max_message_size", &(1 << 20).to_string()).await;
    let resp = node
        .post_open(&client, &forged(&r.address, real, 3 << 20))
        .await;
    assert_eq!(resp.status(), 413, "too large");
    assert!(resp.text().await.unwrap().contains("too large"));
    assert_eq!(stored_rows(&node).await, 0);
    set_setting(&node, "limits.max_message_size", &(50 << 20).to_string()).await;

    // An envelope that passes the header check (tag unchecked until opening) takes room
    // from the client's 2 MiB until it expires.
    let resp = node
        .post_open(&client, &forged(&r.address, real, 1200 << 10))
        .await;
    assert_eq!(resp.status(), 303);
    let rows = stored_rows(&node).await;
    assert!(rows > 0);
    // The next one does not fit: refused on its first chunk, nothing more is written.
    let resp = node
        .post_open(&client, &forged(&r.address, real, 3 << 20))
        .await;
    assert_eq!(resp.status(), 429);
    assert!(
        resp.text().await.unwrap().contains("Secure messages"),
        "branded"
    );
    assert_eq!(stored_rows(&node).await, rows);
    // A small one also over the rest of the room: refused before its row is written.
    let resp = node
        .post_open(&client, &forged(&r.address, real, 900 << 10))
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(stored_rows(&node).await, rows);
    node.stop().await;
}

/// A plain-HTTP node (the raw-socket tests speak HTTP/1.1 themselves).
async fn plain_node(adjust: impl FnOnce(&mut sealpost::config::Config)) -> TestNode {
    TestNode::start_with(|c| {
        c.web.tls = TlsSetting::Mode("off".into());
        adjust(c);
    })
    .await
}

/// Sends `request` on a new connection and reads until the server closes it (10 s at most).
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

fn open_request(body: &str, announced: usize) -> Vec<u8> {
    format!(
        "POST /open HTTP/1.1\r\nHost: x\r\nOrigin: null\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {announced}\r\n\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test]
async fn uploads_over_the_node_cap_get_a_branded_503() {
    let node = plain_node(|c| c.web.max_concurrent_uploads = 1).await;
    let addr = node.node.web_addr.unwrap();
    // One upload that is still arriving holds the node's only upload slot …
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(&open_request("payload=U1BY", 100_000))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // … so the next one is refused at once, with the portal's page.
    let answer = exchange(addr, &open_request("payload=U1BY", 12)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Secure messages"), "{answer}");
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = exchange(addr, &open_request("payload=U1BY", 12)).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a free slot again: {answer}"
    );
    node.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_client_cap_are_closed() {
    let node = plain_node(|c| {
        c.web.max_connections_per_client = 4;
        c.web.header_timeout_secs = 30;
    })
    .await;
    let addr = node.node.web_addr.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // An upload whose body never comes: the connection stays open.
        s.write_all(&open_request("payload=U1BY", 100_000))
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The fifth from the same address is closed without an answer.
    let started = Instant::now();
    let answer = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer, "", "no answer over the cap");
    assert!(started.elapsed() < Duration::from_secs(5), "closed at once");
    // A closed connection frees its place.
    held.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    node.stop().await;
}

#[tokio::test]
async fn a_request_whose_body_stalls_or_an_idle_connection_is_closed_after_the_deadline() {
    let node = plain_node(|c| {
        c.web.request_timeout_secs = 2;
        c.web.header_timeout_secs = 1;
    })
    .await;
    let addr = node.node.web_addr.unwrap();
    // The headers arrive, the body stops after a few bytes.
    let started = Instant::now();
    let answer = exchange(addr, &open_request("payload=U1BY", 100_000)).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut off by the deadline"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Secure messages"), "branded: {answer}");
    assert_eq!(stored_rows(&node).await, 0);
    // A connection that sends nothing at all is closed too.
    let started = Instant::now();
    let answer = exchange(addr, b"").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connection closed"
    );
    assert!(!answer.contains("200 OK"));
    node.stop().await;
}

#[tokio::test]
async fn framework_refusals_get_the_branded_page_without_framework_text() {
    let node = TestNode::start().await;
    let client = node.client();
    let origin = node.base.clone();
    let post = |body: Vec<u8>, content_type: &'static str| {
        client
            .post(node.url("/login"))
            .header("origin", origin.clone())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            "missing field",
            post(
                b"address=a%40b.example".to_vec(),
                "application/x-www-form-urlencoded",
            )
            .await
            .unwrap(),
        ),
        (
            "malformed form",
            post(
                b"address=%ZZ&&=&password".to_vec(),
                "application/x-www-form-urlencoded",
            )
            .await
            .unwrap(),
        ),
        (
            "wrong content type",
            post(b"{}".to_vec(), "application/json").await.unwrap(),
        ),
        (
            "oversized body",
            post(vec![b'a'; 3 << 20], "application/x-www-form-urlencoded")
                .await
                .unwrap(),
        ),
        (
            "method not allowed",
            client.get(node.url("/logout")).send().await.unwrap(),
        ),
        (
            "bad path",
            client
                .get(node.url("/open/abc/part/notanumber"))
                .send()
                .await
                .unwrap(),
        ),
    ];
    for (what, resp) in cases {
        let status = resp.status();
        assert!(status.is_client_error(), "{what}: {status}");
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("text/html"),
            "{what}: {content_type}"
        );
        if status == 405 {
            assert!(
                resp.headers().contains_key("allow"),
                "{what}: Allow is kept"
            );
        }
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("Secure messages") && page.contains("/static/portal.css"),
            "{what}: {page}"
        );
        for framework in [
            "Failed to",
            "deserialize",
            "missing field",
            "Content-Type",
            "length limit",
            "Invalid URL",
        ] {
            assert!(!page.contains(framework), "{what}: {framework:?} in {page}");
        }
    }
    node.stop().await;
}

#[tokio::test]
async fn a_password_deep_in_the_breach_list_is_refused_a_passphrase_accepted() {
    // Line 250,020 of the source list: far past the 470 common passwords of the old list.
    assert_eq!(
        sealpost_core::password_policy::check(
            "roundandround",
            "roundandround",
            "x@example.com",
            10
        ),
        Err(sealpost_core::password_policy::PolicyViolation::Common)
    );
    assert_eq!(
        sealpost_core::password_policy::check(
            "vivid-otter-mantle-quorum-7",
            "vivid-otter-mantle-quorum-7",
            "x@example.com",
            10
        ),
        Ok(())
    );
}
