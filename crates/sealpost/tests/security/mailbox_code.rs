//! Recipient access without the sender in the loop (issue 15): `recipients.first_contact =
//! mailbox-code` from the SMTP mail to the read message, and sign-in with a mailed code —
//! expiry, single use, five tries, the per-client budget, no user enumeration, and tries
//! shared by two nodes on one database.

#[allow(unused_imports)]
use super::*;

const CODE_DOMAIN_SETTING: &str = "recipients.first_contact@code.example";

/// The code of a `code` mail ("Code: 123456").
fn mailed_code(mail: &sealpost_smtp::sink::ReceivedMail) -> String {
    mail_text(mail)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Code: ").map(str::to_string))
        .expect("a code line")
}

/// A node whose `code.example` recipients get in by mailbox code.
async fn code_node() -> TestNode {
    let node = TestNode::start().await;
    set_setting(&node, CODE_DOMAIN_SETTING, "mailbox-code").await;
    node
}

/// Sends a flagged mail to a new `code.example` address: only the carrier leaves (no
/// credentials mail); returns its payload.
async fn provision_by_code(node: &TestNode, address: &str) -> String {
    let before = node.sink.received().len();
    let results = node
        .send(ADVISOR, &[address], &plain_mail(address, "Your contract"))
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(before + 1).await;
    let carrier = mails[before..]
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .expect("the carrier");
    carrier_payload(carrier)
}

async fn request_code(
    node: &TestNode,
    client: &reqwest::Client,
    address: &str,
    next: &str,
) -> (u16, String) {
    let r = client
        .post(node.url("/login/code"))
        .form(&[("address", address), ("next", next)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn enter_code(
    node: &TestNode,
    client: &reqwest::Client,
    address: &str,
    code: &str,
    next: &str,
) -> reqwest::Response {
    client
        .post(node.url("/login/code/verify"))
        .form(&[("address", address), ("code", code), ("next", next)])
        .send()
        .await
        .unwrap()
}

/// Asks for a code and returns the mailed one.
async fn fresh_code(node: &TestNode, address: &str) -> String {
    let before = node.sink.received().len();
    let (status, _) = request_code(node, &raw_client(), address, "/").await;
    assert_eq!(status, 200);
    mailed_code(&wait_for_kind(node, "code", address, before).await)
}

/// A code that is surely not `code`.
fn other_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

async fn account_id(node: &TestNode, address: &str) -> String {
    node.node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn mailbox_code_first_contact_reads_the_message_without_a_credentials_mail() {
    let node = code_node().await;
    let address = "new@code.example";
    let before = node.sink.received().len();
    let payload = provision_by_code(&node, address).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds: Vec<String> = node.sink.received()[before..].iter().map(kind_of).collect();
    assert_eq!(kinds, vec!["carrier"], "no credentials mail to anyone");
    let id = account_id(&node, address).await;
    let access = node.node.store.account_access(&id).await.unwrap().unwrap();
    assert_eq!(access.first_contact, "mailbox-code");
    assert!(!access.has_password);

    // No password works, not even the empty one, and recovery sends nothing: the code is the
    // only way in until the holder chooses a password.
    let c = raw_client();
    assert_eq!(node.login(&c, address, "").await.status(), 401);
    let before = node.sink.received().len();
    let r = c
        .post(node.url("/forgot"))
        .form(&[("address", address)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // secure.htm → sign-in detour → code → password → the message.
    let client = node.client();
    let open = location(&node.post_open(&client, &payload).await);
    let r = get(&node, &client, &open).await;
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with("/login?next=/open/"),
        "{}",
        location(&r)
    );
    let login_page = page_text(&node, &client, &location(&r)).await;
    assert!(
        login_page.contains("formaction=\"/login/code\""),
        "{login_page}"
    );
    let (status, page) = request_code(&node, &client, address, &open).await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"code\""), "{page}");
    let code_mail = wait_for_kind(&node, "code", address, before).await;
    let kinds: Vec<String> = node.sink.received()[before..].iter().map(kind_of).collect();
    assert_eq!(kinds, vec!["code"], "the forgot page mailed nothing");
    assert_eq!(code_mail.rcpt_to, vec![address.to_string()]);
    let code = mailed_code(&code_mail);
    assert_eq!(code.len(), 6);

    let r = enter_code(&node, &client, address, &code, &open).await;
    assert_eq!(r.status(), 303);
    let welcome = location(&r);
    assert!(welcome.starts_with("/welcome?next=/open/"), "{welcome}");
    // Not the message yet: a password comes first.
    assert_eq!(location(&get(&node, &client, &open).await), welcome);
    let page = page_text(&node, &client, &welcome).await;
    assert!(page.contains("You signed in with a code"), "{page}");
    // The password policy applies.
    let weak = client
        .post(node.url("/welcome"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("next", open.as_str()),
            ("password", "short"),
            ("password2", "short"),
            ("question", "pet"),
            ("answer", "sealpost"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 400);
    let r = client
        .post(node.url("/welcome"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("next", open.as_str()),
            ("password", NEW_PASSWORD),
            ("password2", NEW_PASSWORD),
            ("question", "pet"),
            ("answer", "sealpost"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), open);
    let r = get(&node, &client, &open).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Dear customer"));

    // The code was single-use; the chosen password now works; the sign-in's method is audited.
    let again = enter_code(&node, &raw_client(), address, &code, "/").await;
    assert_eq!(again.status(), 401);
    assert_eq!(
        node.login(&raw_client(), address, NEW_PASSWORD)
            .await
            .status(),
        303
    );
    let events = node.node.store.recent_audit(200).await.unwrap();
    let methods: Vec<Option<&str>> = events
        .iter()
        .filter(|e| e.action == "portal.login" && e.subject.as_deref() == Some(id.as_str()))
        .map(|e| e.detail.as_deref())
        .collect();
    assert_eq!(
        methods,
        vec![Some("password"), Some("code")],
        "newest first"
    );
    let access = node.node.store.account_access(&id).await.unwrap().unwrap();
    assert!(access.has_password);
    node.stop().await;
}

#[tokio::test]
async fn a_sign_in_code_expires_and_dies_after_five_wrong_tries() {
    let node = code_node().await;
    let address = "tries@code.example";
    provision_by_code(&node, address).await;
    let id = account_id(&node, address).await;

    // Five wrong tries use the code up: the right one is refused afterwards.
    let code = fresh_code(&node, address).await;
    let wrong = other_code(&code);
    for _ in 0..5 {
        assert_eq!(
            enter_code(&node, &raw_client(), address, &wrong, "/")
                .await
                .status(),
            401
        );
    }
    let r = enter_code(&node, &raw_client(), address, &code, "/").await;
    assert_eq!(r.status(), 401, "locked after five tries");
    assert!(r.text().await.unwrap().contains("ask for a new code"));

    // A code past its 15 minutes is refused: the live row is rewritten with the same hash and
    // an expiry in the past.
    let code = fresh_code(&node, address).await;
    let store = &node.node.store;
    let now = sealpost_store::unix_now();
    let hash = store.try_recovery_code(&id, now, 5).await.unwrap().unwrap();
    assert!(
        store
            .issue_recovery_code(&id, &hash, now, now - 1, 3600, 100)
            .await
            .unwrap()
    );
    assert_eq!(
        enter_code(&node, &raw_client(), address, &code, "/")
            .await
            .status(),
        401
    );

    // A fresh code works once.
    let code = fresh_code(&node, address).await;
    let r = enter_code(&node, &raw_client(), address, &code, "/").await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/welcome"), "{}", location(&r));
    assert_eq!(
        enter_code(&node, &raw_client(), address, &code, "/")
            .await
            .status(),
        401
    );
    node.stop().await;
}

#[tokio::test]
async fn code_requests_are_budgeted_per_client_across_addresses() {
    let node = code_node().await;
    let client = raw_client();
    for i in 0..sealpost_core::mailbox_code::CODE_REQUESTS_PER_CLIENT {
        let (status, _) =
            request_code(&node, &client, &format!("nobody{i}@example.com"), "/").await;
        assert_eq!(status, 200, "request {i}");
    }
    let (status, _) = request_code(&node, &client, "one-more@example.com", "/").await;
    assert_eq!(status, 429);
    node.stop().await;
}

#[tokio::test]
async fn code_sign_in_does_not_tell_which_addresses_have_accounts() {
    let node = code_node().await;
    let by_code = "known@code.example";
    provision_by_code(&node, by_code).await;
    // An account with a password where code sign-in is off (the default).
    let with_password = provision(&node, "pw@example.com").await;
    let unknown = "stranger@example.com";

    let normalised = |page: String, address: &str| page.replace(address, "ADDRESS");
    let before = node.sink.received().len();
    let mut pages = Vec::new();
    for address in [by_code, with_password.address.as_str(), unknown] {
        let (status, page) = request_code(&node, &raw_client(), address, "/").await;
        pages.push((status, normalised(page, address)));
    }
    assert!(
        pages.iter().all(|p| *p == pages[0]),
        "same status and page: {pages:?}"
    );
    assert_eq!(pages[0].0, 200);
    wait_for_kind(&node, "code", by_code, before).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent: Vec<Vec<String>> = node.sink.received()[before..]
        .iter()
        .map(|m| m.rcpt_to.clone())
        .collect();
    assert_eq!(
        sent,
        vec![vec![by_code.to_string()]],
        "no mail to the others"
    );

    let mut pages = Vec::new();
    for address in [by_code, with_password.address.as_str(), unknown] {
        let r = enter_code(&node, &raw_client(), address, "123456", "/").await;
        let status = r.status().as_u16();
        pages.push((status, normalised(r.text().await.unwrap(), address)));
    }
    assert!(
        pages.iter().all(|p| *p == pages[0]),
        "same wrong-code answer: {pages:?}"
    );
    assert_eq!(pages[0].0, 401);

    // Where the domain's policy allows it, an account with a password signs in by code too.
    set_setting(&node, "recipients.code_sign_in@example.com", "true").await;
    let code = fresh_code(&node, &with_password.address).await;
    let r = enter_code(&node, &raw_client(), &with_password.address, &code, "/").await;
    assert_eq!(r.status(), 303);
    node.stop().await;
}

#[tokio::test]
async fn code_tries_are_shared_by_two_nodes_on_one_database() {
    let a = code_node().await;
    // The second node shares the first one's data directory (database and master key) and its
    // next hop, so whichever node's delivery worker leases a mail, it reaches `a`'s sink.
    let data_dir = a.dir.path().to_path_buf();
    let relay = format!("smtp://{}", a.sink.addr);
    let b = TestNode::start_with(|c| {
        c.data_dir = data_dir;
        c.delivery.relay = relay;
    })
    .await;
    let address = "shared@code.example";
    provision_by_code(&a, address).await;
    let code = fresh_code(&a, address).await;
    let wrong = other_code(&code);
    for node in [&a, &b, &a, &b, &b] {
        assert_eq!(
            enter_code(node, &raw_client(), address, &wrong, "/")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        enter_code(&a, &raw_client(), address, &code, "/")
            .await
            .status(),
        401,
        "five tries over both nodes used the code up"
    );
    // A new code asked on one node signs in on the other, once.
    let before = a.sink.received().len();
    let (status, _) = request_code(&b, &raw_client(), address, "/").await;
    assert_eq!(status, 200);
    let mail = wait_for_kind(&a, "code", address, before).await;
    let new_code = mailed_code(&mail);
    assert_eq!(
        enter_code(&a, &raw_client(), address, &new_code, "/")
            .await
            .status(),
        303
    );
    assert_eq!(
        enter_code(&b, &raw_client(), address, &new_code, "/")
            .await
            .status(),
        401
    );
    b.stop().await;
    a.stop().await;
}
