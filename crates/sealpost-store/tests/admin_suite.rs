//! Store suite for the admin tables (admins, statistics counters) and admin-only queries, on
//! every configured backend.

#![allow(clippy::unwrap_used)]
// The shared helpers serve the main suite too; not all are used here.
#![allow(dead_code, unused_macros)]

#[macro_use]
mod common;

use common::{NOW, add_account};
use sealpost_store::{
    LedgerEntry, LedgerQuery, MessageSubject, NewSenderLink, Store, StoreError, day_of,
};

store_tests!(
    admins_lifecycle,
    admin_lockout_at_threshold,
    totp_steps_are_single_use,
    counters_add_up_per_day,
    search_count_and_last_sender,
    ledger_search_filters_and_pages,
    subjects_and_sender_links,
);

async fn admins_lifecycle(store: Store) {
    assert_eq!(store.count_admins().await.unwrap(), 0);
    store
        .insert_admin("a1", "root", "hash1", true, NOW)
        .await
        .unwrap();
    assert!(matches!(
        store.insert_admin("a2", "root", "hash2", true, NOW).await,
        Err(StoreError::Conflict)
    ));
    store
        .insert_admin("a3", "alice", "hash3", false, NOW)
        .await
        .unwrap();
    let names: Vec<_> = store
        .list_admins()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, vec!["alice", "root"]);
    let root = store.admin_by_name("root").await.unwrap().unwrap();
    assert!(root.must_change_password);
    assert!(root.totp_secret.is_none());
    assert!(
        store
            .set_admin_password("a1", "hash9", false)
            .await
            .unwrap()
    );
    assert!(!store.set_admin_password("nope", "x", false).await.unwrap());
    store
        .set_admin_totp("a1", Some("JBSWY3DPEHPK3PXP"))
        .await
        .unwrap();
    store
        .record_admin_login_success("a1", NOW + 5)
        .await
        .unwrap();
    let root = store.admin_by_id("a1").await.unwrap().unwrap();
    assert_eq!(root.password_hash, "hash9");
    assert!(!root.must_change_password);
    assert_eq!(root.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert_eq!(root.last_login_at, Some(NOW + 5));
    assert!(store.admin_by_name("ROOT").await.unwrap().is_none());
}

async fn totp_steps_are_single_use(store: Store) {
    store
        .insert_admin("a1", "root", "hash", false, NOW)
        .await
        .unwrap();
    // Before any code was used, any step is new.
    assert!(store.claim_admin_totp_step("a1", 100).await.unwrap());
    // The same step, and an older one, are refused; a newer one is accepted once.
    assert!(!store.claim_admin_totp_step("a1", 100).await.unwrap());
    assert!(!store.claim_admin_totp_step("a1", 99).await.unwrap());
    assert!(store.claim_admin_totp_step("a1", 101).await.unwrap());
    assert!(!store.claim_admin_totp_step("nobody", 500).await.unwrap());
    // A new secret starts afresh.
    store
        .set_admin_totp("a1", Some("JBSWY3DPEHPK3PXP"))
        .await
        .unwrap();
    assert!(store.claim_admin_totp_step("a1", 50).await.unwrap());
    assert!(!store.claim_admin_totp_step("a1", 50).await.unwrap());
}

async fn admin_lockout_at_threshold(store: Store) {
    store
        .insert_admin("a1", "root", "hash", false, NOW)
        .await
        .unwrap();
    for expected in 1..=2 {
        let n = store
            .record_admin_login_failure("a1", 3, NOW + 900)
            .await
            .unwrap();
        assert_eq!(n, expected);
    }
    assert!(
        store
            .admin_by_id("a1")
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_none()
    );
    store
        .record_admin_login_failure("a1", 3, NOW + 900)
        .await
        .unwrap();
    assert_eq!(
        store.admin_by_id("a1").await.unwrap().unwrap().locked_until,
        Some(NOW + 900)
    );
    store.set_admin_password("a1", "new", false).await.unwrap();
    let a = store.admin_by_id("a1").await.unwrap().unwrap();
    assert_eq!(a.failed_logins, 0);
    assert!(a.locked_until.is_none());
}

async fn counters_add_up_per_day(store: Store) {
    let today = day_of(NOW);
    assert_eq!(day_of(0), 0);
    assert_eq!(day_of(86_399), 0);
    assert_eq!(day_of(86_400), 1);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.bump_counter("encrypted", today, 2).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store.bump_counter("bounced", today - 1, 1).await.unwrap();
    store.bump_counter("bounced", today - 40, 7).await.unwrap();
    let rows = store.counters_since(today - 30).await.unwrap();
    assert!(
        rows.contains(&(today, "encrypted".to_string(), 20)),
        "{rows:?}"
    );
    assert!(rows.contains(&(today - 1, "bounced".to_string(), 1)));
    assert_eq!(rows.len(), 2, "older days are left out: {rows:?}");
}

async fn search_count_and_last_sender(store: Store) {
    for i in 0..25 {
        add_account(
            &store,
            &format!("id-{i:02}"),
            &format!("user{i:02}@example.org"),
            b"k",
        )
        .await;
    }
    add_account(&store, "id-x", "other@example.com", b"k").await;
    assert_eq!(
        store.count_accounts_matching("example.org").await.unwrap(),
        25
    );
    assert_eq!(store.count_accounts_matching("USER1").await.unwrap(), 10);
    assert_eq!(store.count_accounts_matching("").await.unwrap(), 26);
    let page = store.search_accounts("example.org", 10, 20).await.unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0].address, "user20@example.org");
    assert_eq!(store.count_accounts_created_since(NOW).await.unwrap(), 26);
    assert_eq!(
        store.count_accounts_created_since(NOW + 1).await.unwrap(),
        0
    );

    assert_eq!(store.last_sender("id-00").await.unwrap(), None);
    for (envelope, sender, at) in [
        ("e1", "old@bank.example", NOW),
        ("e2", "new@bank.example", NOW + 10),
    ] {
        let mut tx = store.begin().await.unwrap();
        store
            .insert_ledger(
                &mut tx,
                &LedgerEntry {
                    envelope_id: envelope.into(),
                    sender: sender.into(),
                    recipient: "user00@example.org".into(),
                    account_id: "id-00".into(),
                    created_at: at,
                    first_opened_at: None,
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(
        store.last_sender("id-00").await.unwrap().as_deref(),
        Some("new@bank.example")
    );
    store.mark_opened("e1", NOW + 20).await.unwrap();
    assert_eq!(store.count_opens_since(NOW).await.unwrap(), 1);
    assert_eq!(store.count_locked_accounts(NOW).await.unwrap(), 0);
    store
        .record_login_failure("id-01", 1, NOW + 60)
        .await
        .unwrap();
    assert_eq!(store.count_locked_accounts(NOW).await.unwrap(), 1);
    store.set_setting("x.y", "v", NOW).await.unwrap();
    assert_eq!(
        store.setting_value("x.y").await.unwrap().as_deref(),
        Some("v")
    );
    assert_eq!(store.setting_value("x.z").await.unwrap(), None);
}

async fn ledger_row(store: &Store, id: &str, sender: &str, recipient: &str, at: i64) {
    let mut tx = store.begin().await.unwrap();
    store
        .insert_ledger(
            &mut tx,
            &LedgerEntry {
                envelope_id: id.into(),
                sender: sender.into(),
                recipient: recipient.into(),
                account_id: "acc".into(),
                created_at: at,
                first_opened_at: None,
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn ledger_search_filters_and_pages(store: Store) {
    for i in 0..12 {
        ledger_row(
            &store,
            &format!("ab{i:02}"),
            if i % 2 == 0 {
                "even@bank.example"
            } else {
                "odd@bank.example"
            },
            &format!("r{i}@example.org"),
            NOW + i,
        )
        .await;
    }
    ledger_row(
        &store,
        "cd00",
        "odd_x%@bank.example",
        "x@example.org",
        NOW + 100,
    )
    .await;
    let ids = |v: Vec<LedgerEntry>| v.into_iter().map(|e| e.envelope_id).collect::<Vec<_>>();
    let q = |f: &dyn Fn(&mut LedgerQuery)| {
        let mut q = LedgerQuery {
            limit: 50,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = ids(store.search_ledger(&q(&|_| {})).await.unwrap());
    assert_eq!(all.len(), 13);
    assert_eq!(all[0], "cd00", "newest first");
    let even = store
        .search_ledger(&q(&|q| q.sender = Some("EVEN@".into())))
        .await
        .unwrap();
    assert_eq!(even.len(), 6);
    assert!(even.iter().all(|e| e.sender == "even@bank.example"));
    // Wildcards typed by the admin are literal.
    let literal = ids(store
        .search_ledger(&q(&|q| q.sender = Some("_x%".into())))
        .await
        .unwrap());
    assert_eq!(literal, vec!["cd00"]);
    assert_eq!(
        ids(store
            .search_ledger(&q(&|q| q.recipient = Some("r11@".into())))
            .await
            .unwrap()),
        vec!["ab11"]
    );
    assert_eq!(
        ids(store
            .search_ledger(&q(&|q| q.id = Some("AB1".into())))
            .await
            .unwrap()),
        vec!["ab11", "ab10"]
    );
    let ranged = ids(store
        .search_ledger(&q(&|q| {
            q.from = Some(NOW + 2);
            q.until = Some(NOW + 4);
        }))
        .await
        .unwrap());
    assert_eq!(ranged, vec!["ab04", "ab03", "ab02"]);
    let page2 = ids(store
        .search_ledger(&q(&|q| {
            q.limit = 5;
            q.offset = 5;
        }))
        .await
        .unwrap());
    assert_eq!(page2, all[5..10].to_vec());
    let bounded = store
        .search_ledger(&q(&|q| q.limit = 1_000_000))
        .await
        .unwrap();
    assert_eq!(bounded.len(), 13);
}

async fn subjects_and_sender_links(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let subject = MessageSubject {
        envelope_id: "m1".into(),
        subject_sha256: "ab".repeat(32),
        subject: Some("Offer".into()),
    };
    store
        .insert_message_subject(&mut tx, &subject)
        .await
        .unwrap();
    for (token, envelope) in [("t1", "m1"), ("t2", "m2")] {
        store
            .insert_sender_link(
                &mut tx,
                &NewSenderLink {
                    token_hash: token.into(),
                    envelope_id: envelope.into(),
                    sender: "advisor@bank.example".into(),
                    created_at: NOW,
                    expires_at: NOW + 100,
                },
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(store.message_subject("m1").await.unwrap(), Some(subject));
    assert_eq!(store.message_subject("m2").await.unwrap(), None);

    // Following consumes the link exactly once; the capability is bound to its copy and
    // never outlives the link.
    let grant = store
        .follow_sender_link("t1", "c1", NOW + 1000, NOW + 1)
        .await
        .unwrap()
        .expect("live link");
    assert_eq!(grant.envelope_id, "m1");
    assert_eq!(grant.sender, "advisor@bank.example");
    assert_eq!(grant.capability_expires_at, NOW + 100);
    assert_eq!(
        store
            .follow_sender_link("t1", "c9", NOW + 50, NOW + 2)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.sender_capability("c9", NOW + 2).await.unwrap(), None);
    assert_eq!(
        store
            .sender_capability("c1", NOW + 2)
            .await
            .unwrap()
            .map(|g| g.envelope_id),
        Some("m1".to_string())
    );
    assert_eq!(
        store.sender_capability("c1", NOW + 100).await.unwrap(),
        None
    );
    assert!(store.end_sender_capability("c1").await.unwrap());
    assert!(!store.end_sender_capability("c1").await.unwrap());
    assert_eq!(store.sender_capability("c1", NOW + 2).await.unwrap(), None);

    // An expired link cannot be followed; sweeping and revocation remove links.
    assert_eq!(
        store
            .follow_sender_link("t2", "c2", NOW + 200, NOW + 100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.sweep_sender_links(NOW + 100).await.unwrap(), 2);
    assert_eq!(store.delete_sender_links("m2").await.unwrap(), 0);
}
