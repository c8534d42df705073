//! Message control through a real node (issue 16): a sent message is opened, answered and
//! revoked with `sealpost message revoke`; the same secure.htm payload then shows the revoked
//! page, the ledger row holds no secret, and not even the store plus the master key can open
//! the envelope. Expiry by header: the page says so and the sweeper deletes the secret.

#[allow(unused_imports)]
use super::*;

use std::process::Command;
use std::time::Duration;

use sealpost_crypto::EnvelopeError;
use sealpost_store::MessageEventKind;

const SENDER: &str = "anna.advisor@bank.example";

fn secure_mail(to: &str, extra_header: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Anna Advisor <{SENDER}>\nTo: {to}\nSubject: Your loan [secure]\n{extra_header}\
Date: Thu, 26 Nov 2026 10:00:00 +0000\nMessage-ID: <mc-1@bank.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\nThe contract is attached in spirit.\n"
    ))
}

/// Sends one secure mail to a new recipient; returns (carrier, password).
async fn send_to_new(
    node: &TestNode,
    to: &str,
    extra_header: &str,
    already: usize,
) -> (sealpost_smtp::sink::ReceivedMail, String) {
    let results = node
        .send(SENDER, &[to], &secure_mail(to, extra_header))
        .await;
    assert_eq!(
        results,
        vec![sealpost_smtp::outbound::RcptResult::Delivered]
    );
    let mails = node.wait_for_mails(already + 2).await;
    let fresh = &mails[already..];
    let carrier = fresh
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .expect("carrier")
        .clone();
    let cred = fresh
        .iter()
        .find(|m| kind_of(m) == "credentials")
        .expect("credentials");
    (carrier, credentials_password(cred))
}

async fn signed_in(node: &TestNode, address: &str, password: &str) -> reqwest::Client {
    let client = node.client();
    assert_eq!(node.login(&client, address, password).await.status(), 303);
    complete_first_login(node, &client, password).await;
    client
}

/// Posts the payload as secure.htm does and follows to the opened page.
async fn open_page(
    node: &TestNode,
    client: &reqwest::Client,
    payload: &str,
) -> (u16, String, String) {
    let open = location(&node.post_open(client, payload).await);
    assert!(open.starts_with("/open/"), "upload accepted: {open}");
    let resp = get(node, client, &open).await;
    let status = resp.status().as_u16();
    (status, open, resp.text().await.unwrap())
}

fn envelope_of(payload: &str) -> (sealpost_crypto::EnvelopeHeader, Vec<u8>) {
    let envelope = sealpost_crypto::decode_payload(payload).unwrap();
    (sealpost_crypto::read_header(&envelope).unwrap(), envelope)
}

/// Runs the built `sealpost` binary against the node's own database.
fn cli(node: &TestNode, args: &[&str]) -> std::process::Output {
    let config = node.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n", node.dir.path().display()),
    )
    .unwrap();
    // The CLI is a second SQLite writer beside the running node; its start-up migration
    // check can meet the node's write lock, which a script simply retries.
    let mut out = None;
    for _ in 0..10 {
        let o = Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("SEALPOST_LOG", "error")
            .env_remove("SEALPOST_CONFIG")
            .output()
            .unwrap();
        let locked = String::from_utf8_lossy(&o.stderr).contains("database is locked");
        out = Some(o);
        if !locked {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    out.unwrap()
}

async fn wait_for_event(node: &TestNode, envelope_id: &str, kind: MessageEventKind) {
    for _ in 0..100 {
        let events = node
            .node
            .store
            .message_events(&[envelope_id.to_string()])
            .await
            .unwrap();
        if events.iter().any(|e| e.kind == kind) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no {kind} event for {envelope_id}");
}

#[tokio::test]
async fn revocation_is_cryptographic_and_the_timeline_shows_everything() {
    let node = TestNode::start().await;
    let to = "kunde@kunde.example";
    let (carrier, password) = send_to_new(&node, to, "", 0).await;
    let payload = carrier_payload(&carrier);
    let (header, envelope) = envelope_of(&payload);
    assert_eq!(
        header.version,
        sealpost_crypto::ENVELOPE_VERSION_2,
        "new mail is format 2"
    );
    let envelope_id = header.message_id_hex();
    let entry = node
        .node
        .store
        .message_entry(&envelope_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        entry.wrapped_secret.is_some(),
        "the ledger row holds the secret"
    );
    assert!(entry.queue_id.is_some());
    wait_for_event(&node, &envelope_id, MessageEventKind::HandedOver).await;

    // Open and reply.
    let client = signed_in(&node, to, &password).await;
    let (status, open, page) = open_page(&node, &client, &payload).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("attached in spirit"));
    let csrf = csrf_of(&page);
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("body", "Thanks, received.".to_string());
    let resp = client
        .post(node.url(&format!("{open}/reply")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // Revoke from the CLI by the message id (all recipients).
    let out = cli(
        &node,
        &[
            "message",
            "revoke",
            &entry.message_id,
            "--by",
            "Anna Advisor",
            "--reason",
            "sent to the wrong customer",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("revoked {to}")));

    // The row no longer holds a secret.
    let row = node
        .node
        .store
        .message_entry(&envelope_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.wrapped_secret.is_none(),
        "secret deleted from the ledger row"
    );
    assert!(row.secret_deleted_at.is_some());

    // The very same payload now shows the revoked page: who and when, not why.
    let (status, _, page) = open_page(&node, &client, &payload).await;
    assert_eq!(status, 410);
    assert!(page.contains("revoked by Anna Advisor on"), "{page}");
    assert!(!page.contains("wrong customer"), "private reason not shown");

    // Not even the store and the master key open it now.
    let keys = &node.node.keys;
    let key = keys
        .version(&node.node.store, &header.key_id)
        .await
        .unwrap()
        .expect("the recipient key still exists");
    assert_eq!(
        sealpost_crypto::open_with_secret(&key, None, &envelope, 1 << 20).map(|_| ()),
        Err(EnvelopeError::SecretMissing)
    );
    // A secret from another row is no substitute either.
    let other = sealpost_crypto::MessageSecret::generate();
    assert_eq!(
        sealpost_crypto::open_with_secret(&key, Some(&other), &envelope, 1 << 20).map(|_| ()),
        Err(EnvelopeError::WrongSecret)
    );

    // `message show` lists the whole life of the message.
    let out = cli(&node, &["message", "show", &envelope_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for kind in [
        "sealed",
        "handed-over",
        "first-opened",
        "replied",
        "revoked",
        "secret-deleted",
    ] {
        assert!(
            shown.lines().any(|l| l.contains(&format!("  {kind}"))),
            "{kind} missing in:\n{shown}"
        );
    }
    assert!(shown.contains("revoked by Anna Advisor"));
    // Client addresses are truncated by default.
    assert!(shown.contains("from 127.0.0.0/24"), "{shown}");

    // Revoking again changes nothing; an unknown id is a one-line error.
    let out = cli(&node, &["message", "revoke", &envelope_id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already revoked"));
    let out = cli(
        &node,
        &["message", "show", "0123456789abcdef0123456789abcdef"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no message"));
    node.stop().await;
}

#[tokio::test]
async fn expiry_by_header_shows_the_expired_page_and_the_sweeper_deletes_the_secret() {
    let node = TestNode::start().await;
    let to = "spaet@kunde.example";
    let (carrier, password) =
        send_to_new(&node, to, "X-Sealpost-Expires: 2001-01-01T00:00:00Z\n", 0).await;
    // The control header is removed before delivery.
    assert!(header_value(&carrier.data, "X-Sealpost-Expires").is_none());
    let payload = carrier_payload(&carrier);
    let (header, _) = envelope_of(&payload);
    let envelope_id = header.message_id_hex();
    let entry = node
        .node
        .store
        .message_entry(&envelope_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.expires_at, Some(978_307_200));

    let client = signed_in(&node, to, &password).await;
    let (status, _, page) = open_page(&node, &client, &payload).await;
    assert_eq!(status, 410);
    assert!(page.contains("This message has expired"), "{page}");
    assert!(page.contains(SENDER), "names the sender: {page}");

    // The sweeper (every few seconds) deletes the secret and records it.
    wait_for_event(&node, &envelope_id, MessageEventKind::SecretDeleted).await;
    let row = node
        .node
        .store
        .message_entry(&envelope_id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.wrapped_secret.is_none());
    let kinds: Vec<_> = node
        .node
        .store
        .message_events(std::slice::from_ref(&envelope_id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&MessageEventKind::Expired));

    // In German too.
    let de = node.client();
    assert_eq!(node.login(&de, to, &password).await.status(), 303);
    let open = location(&node.post_open(&de, &payload).await);
    let page = de
        .get(node.url(&open))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Diese Nachricht ist abgelaufen"), "{page}");
    node.stop().await;
}

#[tokio::test]
async fn messages_expiry_days_applies_per_domain_and_a_revoked_reason_can_be_public() {
    let node = TestNode::start().await;
    node.node
        .store
        .set_setting(
            "messages.expiry_days@kunde.example",
            "3",
            sealpost_store::unix_now() + 1,
        )
        .await
        .unwrap();
    node.node.settings.reload(&node.node.store).await.unwrap();
    let to = "drei@kunde.example";
    let (carrier, password) = send_to_new(&node, to, "", 0).await;
    let payload = carrier_payload(&carrier);
    let (header, _) = envelope_of(&payload);
    let entry = node
        .node
        .store
        .message_entry(&header.message_id_hex())
        .await
        .unwrap()
        .unwrap();
    let expires = entry.expires_at.expect("domain default applies");
    assert!((expires - entry.created_at - 3 * 86_400).abs() <= 1);
    // The portal shows until when it can be read.
    let reader = signed_in(&node, to, &password).await;
    let (status, _, page) = open_page(&node, &reader, &payload).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Can be read until"), "{page}");
    assert!(page.contains("id=\"expires\""), "{page}");

    sealpost_core::messages::revoke(
        &node.node.store,
        &header.message_id_hex(),
        Some(to),
        "Compliance",
        Some("Duplicate of an earlier letter"),
        true,
        sealpost_store::unix_now(),
    )
    .await
    .unwrap();
    let client = signed_in(&node, to, &password).await;
    let (status, _, page) = open_page(&node, &client, &payload).await;
    assert_eq!(status, 410);
    assert!(page.contains("revoked by Compliance"));
    assert!(
        page.contains("Duplicate of an earlier letter"),
        "public reason shown"
    );
    node.stop().await;
}
