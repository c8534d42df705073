//! Lockout race, per-source throttling, audit of authentication and content access, files on disk.

#[allow(unused_imports)]
use super::*;

use sealpost_core::accounts::{
    LoginOutcome, ResetOutcome, login, may_recover_while_locked, reset_with_answer,
    set_secret_question,
};
use sealpost_core::admin::{AdminLoginOutcome, admin_login};

/// How many audit events of `action` the node recorded.
async fn audited(node: &TestNode, action: &str) -> i64 {
    node.node.store.count_audit_since(action, 0).await.unwrap()
}

/// Polls `condition` every few milliseconds for up to 20 s.
async fn wait_until<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "condition not reached");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn account_of(node: &TestNode, address: &str) -> sealpost_store::Account {
    node.node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap()
}

/// Finding 5: fifteen wrong guesses at once, and the right password right behind them. Each
/// guess is reserved before its (slow) Argon2 check, so only the threshold's worth are tried,
/// the fifth locks, and the right password that follows is refused. Before, every guess read
/// the account before any failure was written, so all fifteen were tried (and a right
/// password read in that window signed in).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_lock_the_account_before_the_right_one_is_tried() {
    let node = TestNode::start().await;
    let r = provision(&node, "race@example.com").await;
    let store = node.node.store.clone();
    let settings = node.node.settings.get();
    assert_eq!(settings.lockout_threshold, 5, "the default threshold");
    let mut guesses = Vec::new();
    for i in 0..15 {
        let (store, settings) = (store.clone(), settings.clone());
        guesses.push(tokio::spawn(async move {
            login(
                &store,
                &settings,
                "race@example.com",
                &format!("wrong guess {i}"),
                "198.51.100.5",
            )
            .await
            .unwrap()
        }));
    }
    // The right password goes in once the threshold's worth of guesses is counted: with the
    // fix that is as soon as they are reserved, long before their hashes are done.
    wait_until(|| async { account_of(&node, "race@example.com").await.failed_logins >= 5 }).await;
    let right = login(
        &store,
        &settings,
        "race@example.com",
        &r.password,
        "198.51.100.6",
    )
    .await
    .unwrap();
    for g in guesses {
        assert!(matches!(g.await.unwrap(), LoginOutcome::Refused));
    }
    assert!(
        matches!(right, LoginOutcome::Refused),
        "the right password behind 15 concurrent guesses is refused: {right:?}"
    );
    let a = account_of(&node, "race@example.com").await;
    assert_eq!(a.failed_logins, 5, "exactly the threshold was tried");
    assert!(
        a.locked_until
            .is_some_and(|t| t > sealpost_store::unix_now()),
        "locked"
    );
    assert_eq!(a.last_login_at, None, "nobody signed in");
    assert_eq!(audited(&node, "portal.lockout").await, 1, "one lockout");
    assert_eq!(
        audited(&node, "portal.login_failed").await,
        16,
        "every refusal is audited, the right password's too"
    );
    assert_eq!(audited(&node, "portal.login").await, 0);
    // The holder keeps the mailed-code way in while locked.
    assert!(may_recover_while_locked(&a));
    node.stop().await;
}

/// Finding 5, admin sign-in: the same race against an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_admin_passwords_lock_before_the_right_one_is_tried() {
    let node = TestNode::start().await;
    let store = node.node.store.clone();
    let password = create_admin(&store, "racer", &Actor::cli()).await.unwrap();
    let settings = node.node.settings.get();
    let mut guesses = Vec::new();
    for i in 0..10 {
        let (store, settings) = (store.clone(), settings.clone());
        guesses.push(tokio::spawn(async move {
            admin_login(
                &store,
                &settings,
                "racer",
                &format!("wrong guess {i}"),
                "",
                "198.51.100.5",
            )
            .await
            .unwrap()
        }));
    }
    wait_until(|| async {
        let admin = store.admin_by_name("racer").await.unwrap().unwrap();
        admin.failed_logins >= 5
    })
    .await;
    let right = admin_login(&store, &settings, "racer", &password, "", "198.51.100.6")
        .await
        .unwrap();
    for g in guesses {
        assert!(matches!(g.await.unwrap(), AdminLoginOutcome::Refused));
    }
    assert!(
        matches!(right, AdminLoginOutcome::Refused),
        "the right admin password behind 10 concurrent guesses is refused"
    );
    let admin = store.admin_by_name("racer").await.unwrap().unwrap();
    assert_eq!(admin.failed_logins, 5);
    assert!(admin.locked_until.is_some());
    assert_eq!(admin.last_login_at, None);
    assert_eq!(audited(&node, "admin.lockout").await, 1);
    assert_eq!(audited(&node, "admin.login_failed").await, 11);
    node.stop().await;
}

/// Finding 20: one client address cannot lock every account it knows of. After its failure
/// budget it is refused before any account's counter (known and unknown addresses alike, over
/// HTTP a 429), while the holder, from their own address, still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_source_is_throttled_before_it_can_lock_more_accounts() {
    let node = TestNode::start().await;
    let victims = ["v1@example.com", "v2@example.com", "v3@example.com"];
    let mut provisioned = Vec::new();
    for v in victims {
        provisioned.push(provision(&node, v).await);
    }
    let store = node.node.store.clone();
    set_setting(&node, "security.source_failure_limit", "8").await;
    let settings = node.node.settings.get();
    let attacker = "203.0.113.9";
    // Five failures lock v1, three more use up the budget on v2.
    for (address, n) in [(victims[0], 5), (victims[1], 3)] {
        for _ in 0..n {
            let o = login(&store, &settings, address, "guess", attacker)
                .await
                .unwrap();
            assert!(matches!(o, LoginOutcome::Refused));
        }
    }
    for address in [victims[1], victims[2], "nobody@example.com"] {
        let o = login(&store, &settings, address, "guess", attacker)
            .await
            .unwrap();
        assert!(
            matches!(o, LoginOutcome::Throttled),
            "{address}: the same refusal for every address once the budget is spent"
        );
    }
    let o = reset_with_answer(
        &store,
        &node.node.keys,
        &settings,
        victims[2],
        "",
        "guess",
        attacker,
    )
    .await
    .unwrap();
    assert!(matches!(o, ResetOutcome::Throttled), "answers too");
    let v2 = account_of(&node, victims[1]).await;
    let v3 = account_of(&node, victims[2]).await;
    assert_eq!(
        (v2.failed_logins, v2.locked_until),
        (3, None),
        "v2 not locked"
    );
    assert_eq!(
        (v3.failed_logins, v3.failed_answers),
        (0, 0),
        "v3 untouched"
    );
    assert!(audited(&node, "auth.source_throttled").await >= 4);
    // The holder of v3 signs in from elsewhere; the locked v1 may still recover by mail.
    let o = login(
        &store,
        &settings,
        victims[2],
        &provisioned[2].password,
        "192.0.2.33",
    )
    .await
    .unwrap();
    assert!(matches!(o, LoginOutcome::Success(_)));
    assert!(may_recover_while_locked(
        &account_of(&node, victims[0]).await
    ));

    // Over HTTP (all from 127.0.0.1): a 429 for known and unknown addresses alike.
    set_setting(&node, "security.source_failure_limit", "2").await;
    let client = node.client();
    for _ in 0..2 {
        assert_eq!(
            node.login(&client, "nobody@example.com", "guess")
                .await
                .status(),
            401
        );
    }
    for address in [victims[1], "nobody@example.com"] {
        assert_eq!(node.login(&client, address, "guess").await.status(), 429);
    }
    node.stop().await;
}

/// Finding 14: a failed login, a lockout, a wrong answer, a right answer, an open and the
/// downloads are audited (account, client address; never content) and counted in /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authentication_decisions_and_content_access_are_audited_and_counted() {
    let node = TestNode::start().await;
    let mail = crlf(&format!(
        "From: Anna Advisor <{ADVISOR}>\nTo: audited@example.com\nSubject: Statement [secure]\n\
Message-ID: <audit-{}@bank.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n\
Dear customer, the statement is attached.\n--b1\nContent-Type: application/pdf\n\
Content-Disposition: attachment; filename=\"statement.pdf\"\n\
Content-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcOkw7zDtsOfCg==\n--b1--\n",
        nanos()
    ));
    let r = provision_with(&node, "audited@example.com", &mail).await;
    let store = node.node.store.clone();
    // Through the portal: five wrong passwords lock the account.
    let client = node.client();
    for _ in 0..5 {
        assert_eq!(
            node.login(&client, &r.address, "wrong password")
                .await
                .status(),
            401
        );
    }
    let account = account_of(&node, &r.address).await;
    set_secret_question(&store, &account, "std:pet", "Rex")
        .await
        .unwrap();
    // The answer alone resets under `answer-only`; the mailed code is the recovery suite's.
    let mut settings = (*node.node.settings.get()).clone();
    settings.recovery_policy = sealpost_core::settings::RecoveryPolicy::AnswerOnly;
    let o = reset_with_answer(
        &store,
        &node.node.keys,
        &settings,
        &r.address,
        "",
        "Fluffy",
        "192.0.2.40",
    )
    .await
    .unwrap();
    assert!(matches!(o, ResetOutcome::Wrong));
    let o = reset_with_answer(
        &store,
        &node.node.keys,
        &settings,
        &r.address,
        "",
        " rex ",
        "192.0.2.40",
    )
    .await
    .unwrap();
    let ResetOutcome::NewPassword(new_password) = o else {
        panic!("the right answer resets");
    };
    // The reset lifted the lock: sign in and open the message.
    let client = node.client();
    assert_eq!(
        node.login(&client, &r.address, &new_password)
            .await
            .status(),
        303
    );
    // Read the message, download its attachment and the .eml through the portal itself:
    // each handler that serves decrypted content audits it.
    complete_first_login(&node, &client, NEW_PASSWORD).await;
    let account = account_of(&node, &r.address).await;
    let open = node.post_open(&client, &r.payload).await;
    assert_eq!(open.status(), 303);
    let message_page = location(&open);
    let page = page_text(&node, &client, &message_page).await;
    let at = page
        .find("/part/")
        .expect("an attachment link on the message page");
    let start = page[..at].rfind('"').unwrap() + 1;
    let end = at + page[at..].find('"').unwrap();
    let part_link = page[start..end].replace("&#x2f;", "/");
    let part_index = part_link.rsplit('/').next().unwrap().to_string();
    assert_eq!(get(&node, &client, &part_link).await.status(), 200);
    let eml = format!("{message_page}/message.eml");
    assert_eq!(get(&node, &client, &eml).await.status(), 200);

    let events = store.recent_audit(100).await.unwrap();
    let of = |action: &str| -> Vec<&sealpost_store::AuditEvent> {
        events.iter().filter(|e| e.action == action).collect()
    };
    for (action, n) in [
        ("portal.login_failed", 5),
        ("portal.lockout", 1),
        ("portal.secret_answer_wrong", 1),
        ("portal.password_reset_by_answer", 1),
        ("portal.login", 1),
        ("portal.message_read", 1),
        ("portal.part_downloaded", 1),
        ("portal.eml_downloaded", 1),
    ] {
        let found = of(action);
        assert_eq!(found.len(), n, "{action}: {events:#?}");
        for e in found {
            assert_eq!(e.actor, r.address, "{action} names the account");
            assert_eq!(e.subject.as_deref(), Some(account.id.as_str()));
            assert!(e.ip.is_some(), "{action} has the client address");
        }
    }
    let part_detail = of("portal.part_downloaded")[0]
        .detail
        .clone()
        .unwrap_or_default();
    assert!(
        part_detail.starts_with("message ")
            && part_detail.ends_with(&format!(" part {part_index}")),
        "{part_detail}"
    );
    assert_eq!(
        of("portal.message_read")[0].ip.as_deref(),
        Some("127.0.0.1")
    );
    for e in &events {
        let text = format!("{e:?}");
        for secret in [r.password.as_str(), new_password.as_str(), "Fluffy", "Rex"] {
            assert!(!text.contains(secret), "no secret in the audit: {text}");
        }
    }

    // /metrics counts each kind.
    set_setting(
        &node,
        "metrics.token_sha256",
        &sealpost_crypto::hash_token("metrics-test-token"),
    )
    .await;
    let text = node
        .client()
        .get(node.url("/metrics"))
        .bearer_auth("metrics-test-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (metric, n) in [
        ("sealpost_portal_login_failures", 5),
        ("sealpost_lockouts", 1),
        ("sealpost_secret_answer_failures", 1),
        ("sealpost_password_resets", 1),
        ("sealpost_portal_logins", 1),
        ("sealpost_content_reads", 1),
        ("sealpost_part_downloads", 1),
        ("sealpost_eml_downloads", 1),
    ] {
        let line = format!("{metric}{{period=\"today\"}} {n}\n");
        assert!(text.contains(&line), "{line:?} in {text}");
    }
    node.stop().await;
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Finding 15: once the credentials mail is delivered, its generated password is in neither
/// the database file nor its WAL, and the data files are the node user's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivered_password_leaves_no_trace_in_the_database_files_and_files_are_private() {
    let node = TestNode::start().await;
    let r = provision(&node, "at-rest@example.com").await;
    let store = node.node.store.clone();
    let dir = node.dir.path().to_path_buf();
    let db = dir.join("sealpost.db");
    let wal = dir.join("sealpost.db-wal");
    let shm = dir.join("sealpost.db-shm");
    // Delivered means the queue row is gone; housekeeping truncates the WAL within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queued = store
            .queue_stats(sealpost_store::unix_now())
            .await
            .unwrap()
            .queued;
        let in_files = [&db, &wal]
            .iter()
            .any(|f| std::fs::read(f).is_ok_and(|b| contains(&b, &r.password)));
        if queued == 0 && !in_files {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the delivered password is still readable (queued: {queued})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !contains(&std::fs::read(&db).unwrap(), &r.password),
        "sealpost.db"
    );
    assert!(
        !std::fs::read(&wal).is_ok_and(|b| contains(&b, &r.password)),
        "sealpost.db-wal"
    );
    for file in [&db, &wal, &shm] {
        if file.exists() {
            assert_eq!(mode_of(file), 0o600, "{}", file.display());
        }
    }
    assert_eq!(mode_of(&db), 0o600);
    assert_eq!(mode_of(&dir.join("master.key")), 0o600, "master key");
    assert_eq!(mode_of(&dir.join("tls").join("key.pem")), 0o600, "TLS key");
    assert_eq!(mode_of(&dir.join("tls")), 0o700, "TLS directory");
    node.stop().await;

    // A data directory made by the node is private; an old 0644 database is narrowed.
    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("new-data");
    sealpost::node::ensure_data_dir(&data).unwrap();
    assert_eq!(mode_of(&data), 0o700, "data directory");
    let old_db = data.join("old.db");
    std::fs::write(&old_db, b"").unwrap();
    std::fs::set_permissions(&old_db, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let s = sealpost_store::Store::connect(&format!("sqlite://{}", old_db.display()))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    assert_eq!(mode_of(&old_db), 0o600, "an existing database is narrowed");
    s.close().await;
}
