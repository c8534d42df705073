//! The sender's control with nothing to install (issue 16): the single-use status link in the
//! credentials mail and in the open notification (`messages.receipts`), the capability it
//! leaves, and revocation by the sender. The link is used up only by the page's POST (a mail
//! scanner's GET leaves it alone), works once, is bound to its one copy and ends with the
//! message.

#[allow(unused_imports)]
use super::*;

use std::time::Duration;

use sealpost_smtp::sink::ReceivedMail;

const SENDER: &str = "berta.beraterin@bank.example";

fn mail_to(to: &[&str], subject: &str, extra_header: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Berta Beraterin <{SENDER}>\nTo: {}\nSubject: {subject} [secure]\n{extra_header}\
Date: Thu, 26 Nov 2026 10:00:00 +0000\nMessage-ID: <sc-{}@bank.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\nPlease find the offer.\n",
        to.join(", "),
        subject.len()
    ))
}

fn body_of(mail: &ReceivedMail) -> String {
    mail_parser::MessageParser::default()
        .parse(&mail.data)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned()
}

/// The `/s/…` path of the status link in a mail's text.
fn status_link(mail: &ReceivedMail) -> String {
    let body = body_of(mail);
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/s/"))
        .unwrap_or_else(|| panic!("a status link in:\n{body}"));
    line[line.find("/s/").unwrap()..].to_string()
}

/// Sends to one new recipient; returns the carrier and the credentials mail.
async fn send_new(
    node: &TestNode,
    to: &str,
    subject: &str,
    extra_header: &str,
    already: usize,
) -> (ReceivedMail, ReceivedMail) {
    let results = node
        .send(SENDER, &[to], &mail_to(&[to], subject, extra_header))
        .await;
    assert_eq!(
        results,
        vec![sealpost_smtp::outbound::RcptResult::Delivered]
    );
    let mails = node.wait_for_mails(already + 2).await;
    let fresh = &mails[already..];
    let pick = |kind: &str| {
        fresh
            .iter()
            .find(|m| kind_of(m) == kind)
            .unwrap_or_else(|| panic!("a {kind} mail"))
            .clone()
    };
    (pick("carrier"), pick("credentials"))
}

/// Opens the landing page of `link` (GET, as a scanner would too) and presses its button;
/// returns the status of the POST.
async fn follow(node: &TestNode, client: &reqwest::Client, link: &str) -> u16 {
    let landing = get(node, client, link).await;
    if landing.status() != 200 {
        return landing.status().as_u16();
    }
    let page = landing.text().await.unwrap();
    assert!(page.contains("id=\"show-status\""), "{page}");
    let csrf = csrf_of(&page);
    client
        .post(node.url(link))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn envelope_id_of(carrier: &ReceivedMail) -> String {
    let envelope = sealpost_crypto::decode_payload(&carrier_payload(carrier)).unwrap();
    sealpost_crypto::read_header(&envelope)
        .unwrap()
        .message_id_hex()
}

#[tokio::test]
async fn the_credentials_mails_link_works_once_shows_the_status_and_revokes_only_its_copy() {
    let node = TestNode::start().await;
    let (carrier_a, cred_a) = send_new(&node, "erste@kunde.example", "Offer", "", 0).await;
    let (carrier_b, cred_b) = send_new(&node, "zweite@kunde.example", "Other offer", "", 2).await;
    let (id_a, id_b) = (envelope_id_of(&carrier_a), envelope_id_of(&carrier_b));
    let link_a = status_link(&cred_a);
    assert_ne!(link_a, status_link(&cred_b), "a link per copy");
    // Only the token's hash is stored.
    let token = link_a.trim_start_matches("/s/");
    assert_eq!(token.len(), 43, "{link_a}");

    // A GET (a mail scanner, a preview) does not use the link up.
    let scanner = node.client();
    for _ in 0..2 {
        assert_eq!(get(&node, &scanner, &link_a).await.status(), 200);
    }
    // Without the cookie there is no status page; a made-up link is refused like a used one.
    assert_eq!(get(&node, &scanner, "/s/status").await.status(), 410);
    let fake = format!("/s/{}", "A".repeat(43));
    assert_eq!(follow(&node, &scanner, &fake).await, 410);

    let sender = node.client();
    assert_eq!(follow(&node, &sender, &link_a).await, 303);
    // Once only: a second browser (or the same one) cannot follow it again.
    assert_eq!(follow(&node, &node.client(), &link_a).await, 410);
    let status = get(&node, &sender, "/s/status").await;
    assert_eq!(status.status(), 200);
    let page = status.text().await.unwrap();
    assert!(page.contains("erste@kunde.example"), "{page}");
    assert!(!page.contains("zweite@kunde.example"), "only its own copy");
    assert!(page.contains("Not opened yet"), "{page}");
    assert!(page.contains("Encrypted and sent"), "{page}");
    // The reader's client address is never shown to the sender.
    assert!(!page.contains("127.0.0"), "{page}");

    // A revoke without the page's form token is refused and changes nothing.
    let r = sender
        .post(node.url("/s/revoke"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let row = node.node.store.message_entry(&id_a).await.unwrap().unwrap();
    assert!(row.wrapped_secret.is_some());

    let csrf = csrf_of(&page);
    let r = sender
        .post(node.url("/s/revoke"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done = r.text().await.unwrap();
    assert!(done.contains("id=\"revoked-notice\""), "{done}");
    assert!(done.contains(&format!("Revoked by {SENDER}")), "{done}");

    // The secret of that copy is gone; the other message is untouched.
    let row = node.node.store.message_entry(&id_a).await.unwrap().unwrap();
    assert!(row.wrapped_secret.is_none(), "secret deleted");
    assert_eq!(row.revocation.as_ref().unwrap().by, SENDER);
    let other = node.node.store.message_entry(&id_b).await.unwrap().unwrap();
    assert!(other.wrapped_secret.is_some() && other.revocation.is_none());
    // The capability ended with the revocation: the cookie revokes nothing more.
    assert_eq!(get(&node, &sender, "/s/status").await.status(), 410);
    let r = sender
        .post(node.url("/s/revoke"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    // The audit log names the sender as the revoker, and records the link's one use.
    let audit = node.node.store.recent_audit(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "message.revoked" && a.actor == format!("sender:{SENDER}")),
        "{audit:?}"
    );
    let used: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "message.status_link_used")
        .collect();
    assert_eq!(used.len(), 1, "{audit:?}");
    assert_eq!(used[0].subject.as_deref(), Some(id_a.as_str()));

    // The recipient's secure.htm now shows who revoked it.
    let password = credentials_password(&cred_a);
    let reader = node.client();
    assert_eq!(
        node.login(&reader, "erste@kunde.example", &password)
            .await
            .status(),
        303
    );
    complete_first_login(&node, &reader, &password).await;
    let open = location(&node.post_open(&reader, &carrier_payload(&carrier_a)).await);
    let page = get(&node, &reader, &open).await;
    assert_eq!(page.status(), 410);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("revoked by {SENDER}"))
    );
    node.stop().await;
}

#[tokio::test]
async fn a_status_link_ends_with_its_message() {
    let node = TestNode::start().await;
    // Expired at once (a date in the past): the link in its credentials mail is dead already.
    let (_, cred) = send_new(
        &node,
        "vorbei@kunde.example",
        "Old offer",
        "X-Sealpost-Expires: 2001-01-01T00:00:00Z\n",
        0,
    )
    .await;
    let link = status_link(&cred);
    assert_eq!(follow(&node, &node.client(), &link).await, 410);
    node.stop().await;
}

#[tokio::test]
async fn receipts_tell_an_internal_sender_at_the_first_open_only_with_a_fresh_link() {
    let node = TestNode::start().await;
    node.node
        .store
        .set_setting("messages.receipts", "true", sealpost_store::unix_now() + 1)
        .await
        .unwrap();
    node.node.settings.reload(&node.node.store).await.unwrap();
    let to = "leserin@kunde.example";
    let (carrier, cred) = send_new(&node, to, "Statement", "", 0).await;
    let password = credentials_password(&cred);
    let reader = node.client();
    assert_eq!(node.login(&reader, to, &password).await.status(), 303);
    complete_first_login(&node, &reader, &password).await;
    let payload = carrier_payload(&carrier);
    for _ in 0..2 {
        let open = location(&node.post_open(&reader, &payload).await);
        assert_eq!(get(&node, &reader, &open).await.status(), 200);
    }
    let mails = node.wait_for_mails(3).await;
    let receipt = mails
        .iter()
        .find(|m| kind_of(m) == "receipt")
        .expect("a receipt")
        .clone();
    assert_eq!(receipt.rcpt_to, vec![SENDER.to_string()]);
    let text = body_of(&receipt);
    assert!(text.contains(to), "{text}");
    // Only the first open is announced.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receipts = node
        .sink
        .received()
        .iter()
        .filter(|m| kind_of(m) == "receipt")
        .count();
    assert_eq!(receipts, 1);
    // Its link is a new one, and works.
    let link = status_link(&receipt);
    assert_ne!(link, status_link(&cred));
    let sender = node.client();
    assert_eq!(follow(&node, &sender, &link).await, 303);
    let page = page_text(&node, &sender, "/s/status").await;
    assert!(page.contains("First opened on"), "{page}");
    node.stop().await;
}

#[tokio::test]
async fn no_receipt_is_sent_by_default() {
    let node = TestNode::start().await;
    let to = "still@kunde.example";
    let (carrier, cred) = send_new(&node, to, "Quiet", "", 0).await;
    let password = credentials_password(&cred);
    let reader = node.client();
    assert_eq!(node.login(&reader, to, &password).await.status(), 303);
    complete_first_login(&node, &reader, &password).await;
    let open = location(&node.post_open(&reader, &carrier_payload(&carrier)).await);
    assert_eq!(get(&node, &reader, &open).await.status(), 200);
    let envelope_id = envelope_id_of(&carrier);
    // Receipts off (the default): nothing is queued, even directly asked.
    let settings = node.node.settings.get();
    assert!(
        !sealpost_core::sender_control::send_receipt(
            &node.node.store,
            &settings,
            &envelope_id,
            sealpost_store::unix_now()
        )
        .await
        .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(node.sink.received().iter().all(|m| kind_of(m) != "receipt"));
    node.stop().await;
}
