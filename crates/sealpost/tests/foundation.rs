//! End to end through a real node: SMTP in, queue, delivery to a real SMTP sink, portal open.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod common;

use common::*;
use sealpost_smtp::outbound::RcptResult;

const SENDER: &str = "advisor@bank.example";

/// A mail with a text body and a binary attachment (every byte value, base64).
fn flagged_mail(to: &str, subject: &str, body: &str) -> (Vec<u8>, Vec<u8>) {
    let attachment: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let b64 = base64_lines(&attachment);
    let text = format!(
        "From: Anna Advisor <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <orig-1@bank.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"statement.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{b64}--b1--\r\n"
    );
    (text.into_bytes(), attachment)
}

fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(T[((n >> (18 - 6 * j)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
        if (i + 1) % 19 == 0 {
            out.push_str("\r\n");
        }
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

fn extract_between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let s = html.find(start)? + start.len();
    let e = html[s..].find(end)? + s;
    Some(&html[s..e])
}

#[tokio::test]
async fn flagged_mail_is_encrypted_per_recipient_and_opens_in_the_portal() {
    let node = TestNode::start().await;
    let (mail, attachment) = flagged_mail(
        "kunde1@example.com, Kunde Zwei <Kunde2@Example.org>, colleague@bank.example",
        "Your statement [secure]",
        "Dear customer, the balance is 1,234.56 EUR.",
    );
    let results = node
        .send(
            SENDER,
            &[
                "kunde1@example.com",
                "Kunde2@Example.org",
                "colleague@bank.example",
            ],
            &mail,
        )
        .await;
    assert!(
        results.iter().all(|r| *r == RcptResult::Delivered),
        "{results:?}"
    );

    // 2 carriers + 2 credentials mails (one per new account) + the internal copy.
    let mails = node.wait_for_mails(5).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(node.sink.received().len(), 5, "no extra mails");
    let carriers: Vec<_> = mails.iter().filter(|m| kind_of(m) == "carrier").collect();
    let credentials: Vec<_> = mails
        .iter()
        .filter(|m| kind_of(m) == "credentials")
        .collect();
    let relayed: Vec<_> = mails.iter().filter(|m| kind_of(m).is_empty()).collect();
    assert_eq!(carriers.len(), 2);
    assert_eq!(credentials.len(), 2);
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].rcpt_to, vec!["colleague@bank.example"]);
    assert_eq!(
        relayed[0].data, mail,
        "internal recipient gets the mail unchanged"
    );
    for c in &credentials {
        assert_eq!(c.rcpt_to, vec![SENDER], "credentials go to the sender");
    }
    let carrier_text = String::from_utf8_lossy(&carriers[0].data).to_string();
    assert!(
        !carrier_text.contains("balance is"),
        "carrier holds no plaintext body"
    );
    let subject = header_value(&carriers[0].data, "Subject").unwrap_or_default();
    assert!(!subject.contains("[secure]"), "keyword removed: {subject}");
    assert!(subject.contains("Your statement"));

    for (rcpt, address) in [
        ("kunde1@example.com", "kunde1@example.com"),
        ("Kunde2@Example.org", "kunde2@example.org"),
    ] {
        let carrier = carriers
            .iter()
            .find(|m| m.rcpt_to == vec![rcpt.to_string()])
            .expect("carrier for recipient");
        assert_eq!(carrier.mail_from, SENDER);
        let cred = credentials
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(address))
            .expect("credentials naming the recipient");
        let password = credentials_password(cred);

        let client = node.client();
        let payload = carrier_payload(carrier);
        // Not logged in: /open parks the payload and the page asks for a login first.
        let r = node.post_open(&client, &payload).await;
        assert_eq!(r.status(), 303);
        let open_path = location(&r);
        assert!(open_path.starts_with("/open/"), "{open_path}");
        let r = get(&node, &client, &open_path).await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/login?next=/open/"));

        let r = node.login(&client, address, &password).await;
        assert_eq!(r.status(), 303, "login succeeds");
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with("__Host-sealpost="));
        assert!(
            cookie.contains("Secure")
                && cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
        );

        complete_first_login(&node, &client, &password).await;
        let r = get(&node, &client, &open_path).await;
        assert_eq!(r.status(), 200);
        let csp = r
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"));
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Dear customer, the balance is 1,234.56 EUR."),
            "body shown"
        );
        assert!(page.contains("statement.bin"));
        let part_link =
            extract_between(&page, &format!("{open_path}/part/"), "\"").expect("attachment link");
        let r = get(&node, &client, &format!("{open_path}/part/{part_link}")).await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()
                .get("content-disposition")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            attachment,
            "attachment byte-identical"
        );

        let r = get(&node, &client, &format!("{open_path}/message.eml")).await;
        assert_eq!(r.status(), 200);
        let eml = r.bytes().await.unwrap();
        assert!(
            String::from_utf8_lossy(&eml).contains("Dear customer, the balance is 1,234.56 EUR.")
        );
    }

    // A second mail to a known recipient: a carrier, and no new credentials mail.
    let (mail2, _) = flagged_mail(
        "kunde1@example.com",
        "[SECURE] Follow-up",
        "Second message.",
    );
    let results = node.send(SENDER, &["kunde1@example.com"], &mail2).await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(6).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let all = node.sink.received();
    assert_eq!(all.len(), 6, "exactly one more mail");
    assert_eq!(kind_of(&mails[5]), "carrier");
    assert_eq!(
        all.iter().filter(|m| kind_of(m) == "credentials").count(),
        2
    );
    node.stop().await;
}

#[tokio::test]
async fn unflagged_mail_passes_byte_identical() {
    let node = TestNode::start().await;
    let mail = crlf(
        "From: a@bank.example\nTo: b@example.com\nSubject: Lunch?\n\n.leading dot\nTrailing space \n\n\u{00e4}8-bit body\n",
    );
    let results = node
        .send("a@bank.example", &["b@example.com", "c@example.net"], &mail)
        .await;
    assert!(results.iter().all(|r| *r == RcptResult::Delivered));
    let mails = node.wait_for_mails(1).await;
    assert_eq!(mails[0].data, mail);
    assert_eq!(mails[0].rcpt_to, vec!["b@example.com", "c@example.net"]);
    assert_eq!(mails[0].mail_from, "a@bank.example");
    node.stop().await;
}

#[tokio::test]
async fn failure_before_commit_answers_451_and_keeps_nothing() {
    let node = TestNode::start().await;
    // Simulate a fault in the middle of the transaction: the account row and the credentials
    // mail are already written when the carrier insert fails.
    node.node
        .store
        .execute_unchecked(
            "CREATE TRIGGER fail_carrier BEFORE INSERT ON outbound_queue WHEN NEW.kind = 'carrier' \
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END",
        )
        .await
        .unwrap();
    let (mail, _) = flagged_mail("new@example.com", "[secure] Hi", "Body");
    let results = node.send(SENDER, &["new@example.com"], &mail).await;
    match &results[0] {
        RcptResult::Deferred(reply) => assert!(reply.contains("451"), "{reply}"),
        other => panic!("expected a 451 deferral, got {other:?}"),
    }
    assert!(
        node.node
            .store
            .account_by_address("new@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let stats = node
        .node
        .store
        .queue_stats(sealpost_store::unix_now())
        .await
        .unwrap();
    assert_eq!(stats.queued, 0, "nothing half-done stays queued");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(node.sink.received().is_empty());

    // The MTA retries once the fault is gone, and the mail goes through.
    node.node
        .store
        .execute_unchecked("DROP TRIGGER fail_carrier")
        .await
        .unwrap();
    let results = node.send(SENDER, &["new@example.com"], &mail).await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(2).await;
    assert_eq!(
        mails.iter().filter(|m| kind_of(m) == "credentials").count(),
        1
    );
    node.stop().await;
}

#[tokio::test]
async fn size_and_recipient_limits_are_enforced() {
    let node = TestNode::start_with(|c| {
        c.smtp.max_message_size = 10_000;
        c.smtp.max_recipients = 2;
    })
    .await;
    let big = crlf(&format!("Subject: big\n\n{}\n", "x".repeat(20_000)));
    let results = node.send(SENDER, &["a@example.com"], &big).await;
    match &results[0] {
        RcptResult::Failed(reply) => assert!(reply.contains("552"), "{reply}"),
        other => panic!("expected 552, got {other:?}"),
    }
    let small = crlf("Subject: small\n\nhello\n");
    let results = node
        .send(
            SENDER,
            &["a@example.com", "b@example.com", "c@example.com"],
            &small,
        )
        .await;
    assert_eq!(results[0], RcptResult::Delivered);
    assert_eq!(results[1], RcptResult::Delivered);
    match &results[2] {
        RcptResult::Deferred(reply) => assert!(reply.contains("452"), "{reply}"),
        other => panic!("expected 452, got {other:?}"),
    }
    let mails = node.wait_for_mails(1).await;
    assert_eq!(mails[0].rcpt_to, vec!["a@example.com", "b@example.com"]);
    node.stop().await;
}

#[tokio::test]
async fn envelopes_open_only_for_their_account_and_tampering_is_detected() {
    let node = TestNode::start().await;
    let (mail_a, _) = flagged_mail("alice@example.com", "[secure] for A", "Secret for Alice");
    let (mail_b, _) = flagged_mail("bob@example.com", "[secure] for B", "Secret for Bob");
    node.send(SENDER, &["alice@example.com"], &mail_a).await;
    node.send(SENDER, &["bob@example.com"], &mail_b).await;
    let mails = node.wait_for_mails(4).await;
    let carrier_for = |rcpt: &str| {
        mails
            .iter()
            .find(|m| kind_of(m) == "carrier" && m.rcpt_to == vec![rcpt.to_string()])
            .map(carrier_payload)
            .expect("carrier")
    };
    let password_for = |rcpt: &str| {
        mails
            .iter()
            .find(|m| {
                kind_of(m) == "credentials" && String::from_utf8_lossy(&m.data).contains(rcpt)
            })
            .map(credentials_password)
            .expect("credentials")
    };
    let alice_payload = carrier_for("alice@example.com");
    let bob_payload = carrier_for("bob@example.com");

    let bob = node.client();
    assert_eq!(
        node.login(&bob, "bob@example.com", &password_for("bob@example.com"))
            .await
            .status(),
        303
    );
    complete_first_login(&node, &bob, &password_for("bob@example.com")).await;
    let r = node.post_open(&bob, &alice_payload).await;
    let path = location(&r);
    let r = get(&node, &bob, &path).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(!page.contains("Secret for Alice"));
    assert!(
        page.contains("another e-mail address"),
        "clear wrong-recipient page"
    );

    // Flip one character deep inside the ciphertext: the header still parses, the tag fails.
    let mut chars: Vec<char> = bob_payload.chars().collect();
    let i = chars.len() - 40;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let r = node.post_open(&bob, &tampered).await;
    let path = location(&r);
    let r = get(&node, &bob, &path).await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("damaged"), "clear damaged page");
    assert!(!page.contains("Secret for Bob"));

    // Garbage is refused at the door with a page, not stored.
    let r = node.post_open(&bob, "not a payload at all").await;
    assert_eq!(r.status(), 400);

    // The untouched envelope opens.
    let r = node.post_open(&bob, &bob_payload).await;
    let r = get(&node, &bob, &location(&r)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Secret for Bob"));
    node.stop().await;
}

#[tokio::test]
async fn wrong_password_is_refused_without_revealing_accounts() {
    let node = TestNode::start().await;
    let (mail, _) = flagged_mail("carol@example.com", "[secure] x", "y");
    node.send(SENDER, &["carol@example.com"], &mail).await;
    node.wait_for_mails(2).await;
    let client = node.client();
    let known = node
        .login(&client, "carol@example.com", "wrong-password")
        .await;
    let unknown = node
        .login(&client, "nobody@example.com", "wrong-password")
        .await;
    assert_eq!(known.status(), 401);
    assert_eq!(unknown.status(), 401);
    let a = known.text().await.unwrap();
    let b = unknown.text().await.unwrap();
    assert_eq!(
        a.replace("carol@example.com", "X"),
        b.replace("nobody@example.com", "X"),
        "same page for known and unknown addresses"
    );
    node.stop().await;
}

#[tokio::test]
async fn limits_changed_at_run_time_apply_to_the_next_session() {
    let node = TestNode::start().await;
    let store = &node.node.store;
    store
        .set_setting(
            "limits.max_recipients",
            "1",
            sealpost_store::unix_now() + 10,
        )
        .await
        .unwrap();
    node.node.settings.reload(store).await.unwrap();
    let small = crlf("Subject: small\n\nhello\n");
    let results = node
        .send(SENDER, &["a@example.com", "b@example.com"], &small)
        .await;
    assert_eq!(results[0], RcptResult::Delivered);
    match &results[1] {
        RcptResult::Deferred(reply) => assert!(reply.contains("452"), "{reply}"),
        other => panic!("expected 452 under the new limit, got {other:?}"),
    }
    node.stop().await;
}

/// Identities of generated mail: every Message-ID uses the boot `hostname` (not the public
/// URL's host, an IP in tests), the carrier refers to the original it replaces, the default
/// notification sender is noreply@ the first internal domain, and a new account's carrier
/// speaks the original's Content-Language.
#[tokio::test]
async fn generated_mail_names_the_node_and_refers_to_the_original() {
    let node = TestNode::start().await;
    let mail = crlf(
        "From: Anna Advisor <advisor@bank.example>\nTo: neu@example.com\nSubject: Kredit [secure]\n\
Message-ID: <orig-7@bank.example>\nContent-Language: de-DE\n\nVertraulich.\n",
    );
    let results = node
        .send("advisor@bank.example", &["neu@example.com"], &mail)
        .await;
    assert!(results.iter().all(|r| *r == RcptResult::Delivered));
    let carrier = wait_for_kind(&node, "carrier", "neu@example.com", 0).await;
    let credentials = wait_for_kind(&node, "credentials", "advisor@bank.example", 0).await;
    let parser = mail_parser::MessageParser::default();
    for generated in [&carrier, &credentials] {
        let msg = parser.parse(&generated.data).unwrap();
        let id = msg.message_id().unwrap();
        assert!(id.ends_with("@gw.test"), "{id}");
    }
    assert_eq!(credentials.mail_from, "noreply@bank.example");
    let msg = parser.parse(&carrier.data).unwrap();
    assert_eq!(
        header_value(&carrier.data, "X-Sealpost-Original-Message-Id").as_deref(),
        Some("<orig-7@bank.example>")
    );
    assert_eq!(msg.references().as_text(), Some("orig-7@bank.example"));
    // New account, German original: the carrier is German, not the default English.
    let text = mail_text(&carrier);
    assert!(
        text.contains("Sie haben eine verschlüsselte Nachricht erhalten"),
        "{text}"
    );
    node.stop().await;
}

/// Verifies every DKIM signature of `data` with mail-auth's verifier, the records given
/// directly (`selector._domainkey.domain` → TXT value); one result per signature.
async fn dkim_verifies(data: &[u8], records: &[(String, String)]) -> Vec<bool> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
    use mail_auth::{ResolverCache, Txt};
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::Mutex;

    struct Records(Mutex<HashMap<Box<str>, Txt>>);
    impl ResolverCache<Box<str>, Txt> for Records {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }
        fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
            self.0.lock().unwrap().insert(key, value);
        }
    }
    let cache = Records(Mutex::new(HashMap::new()));
    for (name, value) in records {
        let key = DomainKey::parse(value.as_bytes()).unwrap();
        cache.insert(
            format!("{name}.").into(),
            Txt::from(key),
            std::time::Instant::now(),
        );
    }
    let auth = MessageAuthenticator::new(
        mail_auth::hickory_resolver::config::ResolverConfig::default(),
        mail_auth::hickory_resolver::config::ResolverOpts::default(),
    )
    .unwrap();
    let msg = AuthenticatedMessage::parse(data).unwrap();
    auth.verify_dkim(Parameters::new(&msg).with_txt_cache(&cache))
        .await
        .iter()
        .map(|o| *o.result() == DkimResult::Pass)
        .collect()
}

#[tokio::test]
async fn with_dkim_every_generated_mail_is_signed_and_relayed_mail_is_not() {
    use sealpost_core::dkim::{DkimAlgorithm, generate};
    use std::os::unix::fs::OpenOptionsExt;
    let keys = tempfile::tempdir().unwrap();
    let mut records = Vec::new();
    let mut files = Vec::new();
    for (algorithm, selector) in [(DkimAlgorithm::Rsa, "sp1"), (DkimAlgorithm::Ed25519, "sp2")] {
        let key = generate(algorithm).unwrap();
        let path = keys.path().join(format!("{selector}.pem"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, key.private_pem.as_bytes()).unwrap();
        records.push((
            format!("{selector}._domainkey.bank.example"),
            key.txt_value(),
        ));
        files.push(path);
    }
    let node = TestNode::start_with(|c| {
        c.delivery.dkim = Some(sealpost::config::DkimConfig {
            domain: "bank.example".into(),
            selector: "sp1".into(),
            key_file: Some(files[0].clone()),
            ed25519_key_file: Some(files[1].clone()),
            ed25519_selector: Some("sp2".into()),
        });
    })
    .await;
    let (mail, _) = flagged_mail("signed@example.com", "[secure] Contract", "Dear customer");
    let results = node.send(SENDER, &["signed@example.com"], &mail).await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let plain = crlf("From: a@bank.example\nTo: b@example.com\nSubject: Lunch?\n\nNoon?\n");
    let results = node
        .send("a@bank.example", &["b@example.com"], &plain)
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(3).await;
    let mut kinds = Vec::new();
    for m in &mails {
        let kind = kind_of(m);
        if kind.is_empty() {
            assert_eq!(m.data, plain, "relayed unchanged: no signature added");
            continue;
        }
        let text = String::from_utf8_lossy(&m.data);
        assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{kind}");
        assert!(text.contains("a=rsa-sha256") && text.contains("a=ed25519-sha256"));
        assert!(text.contains("d=bank.example"));
        assert_eq!(
            dkim_verifies(&m.data, &records).await,
            [true, true],
            "{kind}"
        );
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(kinds, ["carrier", "credentials"]);
    node.stop().await;
}
