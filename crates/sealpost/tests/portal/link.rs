//! The opt-in `link` delivery profile and the carrier size guard, through a real node: the
//! carrier's `/m/{id}` link, the encrypted copy in the database, sign-in and return, another
//! account's refusal, the sweep after expiry, and oversized carriers (link or bounce).

use super::*;

const LINKED: &str = "kunde@link.example";

/// The `/m/{id}` path in a carrier's text part.
fn link_path(mail: &sealpost_smtp::sink::ReceivedMail) -> String {
    let text = mail_text(mail);
    let start = text.find("/m/").expect("a /m/ link in the carrier's text");
    // The id is base64url; the text may put the link in parentheses or end a sentence with it.
    let id: String = text[start + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/m/{id}")
}

/// The envelope (ledger) id behind a carrier's link, found the way the route finds it: by the
/// hash of the link id and the recipient's account.
async fn envelope_of_link(node: &TestNode, path: &str, address: &str) -> String {
    let account = node
        .node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .expect("the recipient's account");
    let id = path.strip_prefix("/m/").expect("a /m/ path");
    node.node
        .store
        .link_copy(
            &sealpost_crypto::hash_token(id),
            &account.id,
            sealpost_store::unix_now(),
        )
        .await
        .unwrap()
        .expect("a kept copy behind the link")
        .envelope_id
}

fn attachment_count(mail: &sealpost_smtp::sink::ReceivedMail) -> usize {
    mail_parser::MessageParser::default()
        .parse(&mail.data)
        .unwrap()
        .attachments()
        .count()
}

/// Waits (the node's housekeeping runs every few seconds) until the envelope's copies are
/// gone from the database.
async fn wait_until_swept(node: &TestNode, envelope_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = node
            .node
            .store
            .link_copies_for_envelope(envelope_id)
            .await
            .unwrap();
        if rows.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sweeper left {} rows",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_link_opens_its_message_for_its_account_only_until_it_is_swept() {
    let node = TestNode::start().await;
    set_setting(&node, "delivery.profile@link.example", "link").await;
    set_setting(&node, "delivery.link_days", "7").await;

    let r = provision(&node, LINKED, 0).await;
    let carrier = wait_for_kind(&node, "carrier", LINKED, 0).await;
    let path = link_path(&carrier);
    assert!(
        mail_text(&carrier).contains(&node.url(&path)),
        "the link is under the public URL"
    );
    assert_eq!(attachment_count(&carrier), 1, "secure.htm stays attached");

    // The copy is in the database: the envelope as sealed, for this account, for 7 days.
    let envelope_id = envelope_of_link(&node, &path, LINKED).await;
    let sealed = sealpost_crypto::decode_payload(&r.payload).unwrap();
    assert_eq!(
        envelope_id,
        sealpost_crypto::read_header(&sealed)
            .unwrap()
            .message_id_hex(),
        "the copy is of this carrier's envelope"
    );
    let rows = node
        .node
        .store
        .link_copies_for_envelope(&envelope_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let account = node
        .node
        .store
        .account_by_address(LINKED)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows[0].account_id, account.id);
    assert_eq!(
        rows[0].payload, sealed,
        "the stored copy is the ciphertext the carrier carries"
    );
    assert_eq!(rows[0].expires_at - rows[0].created_at, 7 * 86_400);
    let id = path.strip_prefix("/m/").unwrap();
    assert_ne!(id, envelope_id, "the link id is not the ledger id");

    // Not signed in: to the sign-in page, which returns to the link.
    let anonymous = node.client();
    let resp = get(&node, &anonymous, &path).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("/login?next={path}"));

    // Signed in as its recipient: the message opens like a posted secure.htm.
    let reader = first_login(&node, &r, "rex").await;
    let resp = get(&node, &reader, &path).await;
    assert_eq!(resp.status(), 303);
    let open = location(&resp);
    assert!(open.starts_with("/open/"), "{open}");
    let page = page_text(&node, &reader, &open).await;
    assert!(page.contains("Dear customer, here it is."), "{page}");
    // A second visit works as well: the copy stays until it expires.
    let again = get(&node, &reader, &path).await;
    assert_eq!(again.status(), 303);

    // Another account, and an id that never existed, get the same expired page, no content.
    let other = provision(&node, "someone@example.net", 2).await;
    let stranger = first_login(&node, &other, "rex").await;
    let refused = get(&node, &stranger, &path).await;
    assert_eq!(refused.status(), 410);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("This link has expired"), "{refused}");
    assert!(!refused.contains("Dear customer"));
    let (unknown, _) = sealpost_crypto::new_token();
    let unknown = page_text(&node, &stranger, &format!("/m/{unknown}")).await;
    assert_eq!(unknown, refused, "unknown and foreign ids look alike");

    // Past its expiry the sweeper deletes the row, and the link says it has expired.
    node.node
        .store
        .set_link_copies_expiry(&envelope_id, sealpost_store::unix_now())
        .await
        .unwrap();
    wait_until_swept(&node, &envelope_id).await;
    let expired = get(&node, &reader, &path).await;
    assert_eq!(expired.status(), 410);
    assert!(
        expired
            .text()
            .await
            .unwrap()
            .contains("This link has expired")
    );
    node.stop().await;
}

/// Revoking a message deletes its link copy at once (not at the copy's own expiry), and the
/// link then says it has expired.
#[tokio::test]
async fn revoking_a_message_deletes_its_link_copy() {
    let node = TestNode::start().await;
    set_setting(&node, "delivery.profile@link.example", "link").await;
    let r = provision(&node, LINKED, 0).await;
    let carrier = wait_for_kind(&node, "carrier", LINKED, 0).await;
    let path = link_path(&carrier);
    let envelope_id = envelope_of_link(&node, &path, LINKED).await;
    let store = &node.node.store;
    assert_eq!(
        store
            .link_copies_for_envelope(&envelope_id)
            .await
            .unwrap()
            .len(),
        1
    );

    let done = sealpost_core::messages::revoke(
        store,
        &envelope_id,
        None,
        "ops",
        None,
        false,
        sealpost_store::unix_now(),
    )
    .await
    .unwrap();
    assert_eq!(done.revoked.len(), 1);
    assert!(
        store
            .link_copies_for_envelope(&envelope_id)
            .await
            .unwrap()
            .is_empty(),
        "the copy went with the secret"
    );
    let reader = first_login(&node, &r, "rex").await;
    assert_eq!(get(&node, &reader, &path).await.status(), 410);
    node.stop().await;
}

/// Every part of a mail, transfer-decoded, as text.
fn decoded_parts(data: &[u8]) -> String {
    let msg = mail_parser::MessageParser::default().parse(data).unwrap();
    msg.parts
        .iter()
        .map(|p| String::from_utf8_lossy(p.contents()).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A body that compresses poorly, so the carrier is about as large as it says.
fn bulky_body(bytes: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(bytes + bytes / 76);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for i in 0..bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(ALPHABET[(x % 64) as usize] as char);
        if i % 76 == 75 {
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn an_oversized_carrier_becomes_a_link_where_allowed_and_bounces_otherwise() {
    let node = TestNode::start().await;
    set_setting(&node, "carrier.max_size", "65536").await;
    set_setting(&node, "delivery.link_fallback@big.example", "true").await;
    let linked = "a@big.example";
    let bounced = "b@small.example";
    let mail = original_mail(
        &format!("{linked}, {bounced}"),
        "Scans",
        &bulky_body(120 * 1024),
    );
    let results = node
        .send(ADVISOR, &[linked, bounced, "colleague@bank.example"], &mail)
        .await;
    assert_eq!(results, vec![RcptResult::Delivered; 3]);

    // Allowed: a carrier with the link and without secure.htm, within the limit.
    let carrier = wait_for_kind(&node, "carrier", linked, 0).await;
    assert!(carrier.data.len() <= 65536, "{} bytes", carrier.data.len());
    assert_eq!(
        attachment_count(&carrier),
        0,
        "too large to carry secure.htm"
    );
    assert!(link_path(&carrier).starts_with("/m/"));
    let rows = node
        .node
        .store
        .link_copies_for_envelope(&envelope_of_link(&node, &link_path(&carrier), linked).await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);

    // Not allowed: the sender gets a bounce saying why; no carrier, no account.
    let bounce = wait_for_kind(&node, "bounce", ADVISOR, 0).await;
    let bounce_text = decoded_parts(&bounce.data);
    assert!(bounce_text.contains(bounced), "{bounce_text}");
    assert!(bounce_text.contains("552 5.3.4"), "{bounce_text}");
    assert!(bounce_text.contains("carrier.max_size"), "{bounce_text}");
    wait_for_kind(&node, "credentials", ADVISOR, 0).await;
    assert!(
        node.sink
            .received()
            .iter()
            .all(|m| !m.rcpt_to.iter().any(|r| r == bounced)),
        "nothing too large was handed on"
    );
    assert!(
        node.node
            .store
            .account_by_address(bounced)
            .await
            .unwrap()
            .is_none()
    );

    // A message nobody can receive is refused whole, with the reason.
    let alone = original_mail(bounced, "Scans", &bulky_body(120 * 1024));
    let results = node.send(ADVISOR, &[bounced], &alone).await;
    match &results[..] {
        [RcptResult::Failed(reply)] => assert!(reply.contains("carrier.max_size"), "{reply}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    node.stop().await;
}
