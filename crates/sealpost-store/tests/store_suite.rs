//! The store suite: every test runs against SQLite and, when configured through
//! `SEALPOST_TEST_POSTGRES_URL` / `SEALPOST_TEST_MYSQL_URL`, PostgreSQL and MariaDB, each on a
//! database of its own.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::HashSet;

use common::{NOW, account, add_account, all_bytes, enqueue};
use sealpost_store::{
    AccountStatus, LedgerEntry, LinkCopy, LockPolicy, NewAccount, NewLinkCopy, NewQueuedMail,
    NewSession, NodeInfo, Principal, Reservation, SessionKind, Store, StoreError,
};

database_tests!(migrate_twice_is_idempotent, concurrent_migrations_agree);

store_tests!(
    ping_answers,
    account_round_trip_keeps_every_field,
    account_search_and_count,
    duplicate_account_is_a_conflict,
    key_versions,
    delete_account_removes_keys_and_sessions,
    login_failures_lock_at_threshold,
    concurrent_login_reservations_stop_at_the_threshold,
    admin_login_reservations_lock_and_release,
    concurrent_answer_reservations_stop_at_the_limit,
    concurrent_source_reservations_stop_at_the_limit,
    sessions_lifecycle,
    temp_opens_expire_and_purge,
    enqueue_is_transactional,
    concurrent_leases_never_overlap,
    expired_lease_is_taken_over,
    reschedule_keeps_remaining_recipients,
    complete_by_non_owner_does_nothing,
    queue_stats_counts,
    settings_set_seed_and_version,
    audit_events,
    ledger_first_open_only,
    heartbeats_upsert,
    sealing_recipients_in_one_query,
    multi_row_writes_span_statement_chunks,
    link_copies_keep_fetch_sweep_and_revoke,
);

// ---------------------------------------------------------------------------------------------
// Migrations

async fn migrate_twice_is_idempotent(url: String) {
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
    assert!(store.migrate().await.unwrap().is_empty());
    // Another node starting on the same database sees nothing to do either.
    let other = Store::connect(&url).await.unwrap();
    assert!(other.migrate().await.unwrap().is_empty());
    assert_eq!(other.count_accounts().await.unwrap(), 0);
    other.close().await;
    store.close().await;
}

async fn concurrent_migrations_agree(url: String) {
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.migrate().await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { b.migrate().await }
        }),
    );
    let ra = ra.unwrap().expect("first node migrates");
    let rb = rb.unwrap().expect("second node migrates");
    let mut all = ra.clone();
    all.extend(&rb);
    all.sort_unstable();
    assert_eq!(
        all,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        "each version applied exactly once: {ra:?} {rb:?}"
    );
    assert!(a.migrate().await.unwrap().is_empty());
    add_account(&b, "acc-1", "a@example.org", b"k").await;
    assert_eq!(a.count_accounts().await.unwrap(), 1);
    a.close().await;
    b.close().await;
}

async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Accounts and keys

async fn account_round_trip_keeps_every_field(store: Store) {
    let full = NewAccount {
        id: "acc-full",
        address: "Full.Name@example.org",
        password_hash: "$argon2id$v=19$full",
        language: Some("de"),
        created_by: Some("admin@example.org"),
        created_at: NOW - 10,
        valid_until: Some(NOW + 86_400),
        must_change_password: true,
    };
    let mut tx = store.begin().await.unwrap();
    store
        .insert_account(&mut tx, &full, &all_bytes())
        .await
        .unwrap();
    store
        .insert_account(&mut tx, &account("acc-min", "min@example.org"), b"k")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let a = store
        .account_by_address("Full.Name@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, "acc-full");
    assert_eq!(a.address, "Full.Name@example.org");
    assert_eq!(a.password_hash, "$argon2id$v=19$full");
    assert_eq!(a.status, AccountStatus::Active);
    assert!(a.must_change_password);
    assert_eq!(a.language.as_deref(), Some("de"));
    assert_eq!(a.secret_question, None);
    assert_eq!(a.secret_answer_hash, None);
    assert_eq!(a.failed_logins, 0);
    assert_eq!(a.failed_answers, 0);
    assert_eq!(a.locked_until, None);
    assert_eq!(a.created_at, NOW - 10);
    assert_eq!(a.created_by.as_deref(), Some("admin@example.org"));
    assert_eq!(a.last_login_at, None);
    assert_eq!(a.last_login_ip, None);
    assert_eq!(a.prev_login_at, None);
    assert_eq!(a.prev_login_ip, None);
    assert_eq!(a.valid_until, Some(NOW + 86_400));

    let by_id = store.account_by_id("acc-full").await.unwrap().unwrap();
    assert_eq!(by_id.address, a.address);
    assert_eq!(by_id.valid_until, a.valid_until);

    let m = store.account_by_id("acc-min").await.unwrap().unwrap();
    assert_eq!(m.address, "min@example.org");
    assert!(!m.must_change_password);
    assert_eq!(m.language, None);
    assert_eq!(m.created_by, None);
    assert_eq!(m.valid_until, None);

    assert!(
        store
            .account_by_address("nobody@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.account_by_id("nobody").await.unwrap().is_none());
    // Lookups are exact, on every backend (MariaDB uses a binary collation).
    assert!(
        store
            .account_by_address("full.name@example.org")
            .await
            .unwrap()
            .is_none()
    );

    // Every setter, then every field again.
    store
        .set_secret_question("acc-full", "Erste Katze? 🐈", "answer-hash")
        .await
        .unwrap();
    store
        .record_login_success("acc-full", "192.0.2.1", NOW + 1)
        .await
        .unwrap();
    store
        .record_login_success("acc-full", "2001:db8::2", NOW + 2)
        .await
        .unwrap();
    store
        .set_status("acc-full", AccountStatus::Disabled)
        .await
        .unwrap();
    store.set_valid_until("acc-full", None).await.unwrap();
    store.set_language("acc-full", "fr").await.unwrap();
    store
        .set_password("acc-full", "$argon2id$new", false)
        .await
        .unwrap();
    assert_eq!(store.record_answer_failure("acc-full").await.unwrap(), 1);

    let a = store.account_by_id("acc-full").await.unwrap().unwrap();
    assert_eq!(a.status, AccountStatus::Disabled);
    assert_eq!(a.password_hash, "$argon2id$new");
    assert!(!a.must_change_password);
    assert_eq!(a.language.as_deref(), Some("fr"));
    assert_eq!(a.secret_question.as_deref(), Some("Erste Katze? 🐈"));
    assert_eq!(a.secret_answer_hash.as_deref(), Some("answer-hash"));
    assert_eq!(a.failed_answers, 1);
    assert_eq!(a.last_login_at, Some(NOW + 2));
    assert_eq!(a.last_login_ip.as_deref(), Some("2001:db8::2"));
    assert_eq!(a.prev_login_at, Some(NOW + 1));
    assert_eq!(a.prev_login_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(a.valid_until, None);
    assert_eq!(a.created_at, NOW - 10);

    // The other account is untouched.
    let m2 = store.account_by_id("acc-min").await.unwrap().unwrap();
    assert_eq!(m2.status, AccountStatus::Active);
    assert_eq!(m2.last_login_at, None);
}

async fn account_search_and_count(store: Store) {
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    for i in 0..5 {
        add_account(
            &store,
            &format!("id-{i}"),
            &format!("user{i}@example.org"),
            b"k",
        )
        .await;
    }
    add_account(&store, "id-x", "other@example.net", b"k").await;
    assert_eq!(store.count_accounts().await.unwrap(), 6);

    let page1 = store.search_accounts("example.org", 2, 0).await.unwrap();
    let page2 = store.search_accounts("example.org", 2, 2).await.unwrap();
    let page3 = store.search_accounts("example.org", 2, 4).await.unwrap();
    let addrs =
        |v: &[sealpost_store::Account]| v.iter().map(|a| a.address.clone()).collect::<Vec<_>>();
    assert_eq!(addrs(&page1), ["user0@example.org", "user1@example.org"]);
    assert_eq!(addrs(&page2), ["user2@example.org", "user3@example.org"]);
    assert_eq!(addrs(&page3), ["user4@example.org"]);
    assert_eq!(store.search_accounts("", 100, 0).await.unwrap().len(), 6);
    assert!(
        store
            .search_accounts("nothing", 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn duplicate_account_is_a_conflict(store: Store) {
    add_account(&store, "acc-1", "dup@example.org", b"k").await;

    let mut tx = store.begin().await.unwrap();
    let err = store
        .insert_account(&mut tx, &account("acc-2", "dup@example.org"), b"k")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict),
        "duplicate address: {err:?}"
    );
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let err = store
        .insert_account(&mut tx, &account("acc-1", "fresh@example.org"), b"k")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "duplicate id: {err:?}");
    drop(tx);

    assert_eq!(store.count_accounts().await.unwrap(), 1);
    assert!(
        store
            .account_by_address("fresh@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.key_versions("acc-2").await.unwrap(), vec![]);
}

async fn key_versions(store: Store) {
    let k1 = all_bytes();
    add_account(&store, "acc", "keys@example.org", &k1).await;
    assert_eq!(
        store.current_key("acc").await.unwrap(),
        Some((1, k1.clone()))
    );
    assert_eq!(store.key_version("acc", 1).await.unwrap(), Some(k1.clone()));
    assert_eq!(store.key_version("acc", 2).await.unwrap(), None);

    let k2 = vec![0u8, 1, 2, 0, 255];
    store
        .add_key_version("acc", 2, &k2, NOW + 100)
        .await
        .unwrap();
    assert_eq!(
        store.current_key("acc").await.unwrap(),
        Some((2, k2.clone()))
    );
    assert_eq!(store.key_version("acc", 1).await.unwrap(), Some(k1.clone()));
    assert_eq!(store.key_version("acc", 2).await.unwrap(), Some(k2.clone()));

    let err = store
        .add_key_version("acc", 2, b"other", NOW + 200)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict),
        "duplicate version: {err:?}"
    );
    assert_eq!(store.key_version("acc", 2).await.unwrap(), Some(k2.clone()));

    // Versions are ordered numerically, not as text.
    store
        .add_key_version("acc", 10, b"ten", NOW + 300)
        .await
        .unwrap();
    assert_eq!(
        store.key_versions("acc").await.unwrap(),
        vec![(1, NOW), (2, NOW + 100), (10, NOW + 300)]
    );
    assert_eq!(
        store.current_key("acc").await.unwrap(),
        Some((10, b"ten".to_vec()))
    );

    assert_eq!(store.current_key("nobody").await.unwrap(), None);
    assert!(store.key_versions("nobody").await.unwrap().is_empty());
}

async fn delete_account_removes_keys_and_sessions(store: Store) {
    add_account(&store, "gone", "gone@example.org", b"k1").await;
    add_account(&store, "stays", "stays@example.org", b"k9").await;
    store.add_key_version("gone", 2, b"k2", NOW).await.unwrap();
    store
        .create_session(&NewSession {
            token_hash: "t-gone",
            kind: SessionKind::Portal,
            principal_id: "gone",
            csrf_token: "csrf",
            ip: "192.0.2.1",
            now: NOW,
            expires_at: NOW + 600,
        })
        .await
        .unwrap();
    store
        .create_session(&NewSession {
            token_hash: "t-stays",
            kind: SessionKind::Portal,
            principal_id: "stays",
            csrf_token: "csrf",
            ip: "192.0.2.1",
            now: NOW,
            expires_at: NOW + 600,
        })
        .await
        .unwrap();

    assert!(store.delete_account("gone").await.unwrap());
    assert!(store.account_by_id("gone").await.unwrap().is_none());
    assert!(
        store
            .account_by_address("gone@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.current_key("gone").await.unwrap(), None);
    assert!(store.key_versions("gone").await.unwrap().is_empty());
    assert!(
        store
            .session("t-gone", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );

    assert!(store.account_by_id("stays").await.unwrap().is_some());
    assert_eq!(
        store.current_key("stays").await.unwrap(),
        Some((1, b"k9".to_vec()))
    );
    assert!(
        store
            .session("t-stays", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_some()
    );

    assert!(!store.delete_account("gone").await.unwrap());
    // The address is free again and starts over at key version 1.
    add_account(&store, "gone", "gone@example.org", b"new").await;
    assert_eq!(store.key_versions("gone").await.unwrap(), vec![(1, NOW)]);
}

async fn login_failures_lock_at_threshold(store: Store) {
    add_account(&store, "acc", "lock@example.org", b"k").await;
    let lock = NOW + 900;
    assert_eq!(store.record_login_failure("acc", 3, lock).await.unwrap(), 1);
    assert_eq!(store.record_login_failure("acc", 3, lock).await.unwrap(), 2);
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.failed_logins, 2);
    assert_eq!(a.locked_until, None, "not locked below the threshold");

    assert_eq!(store.record_login_failure("acc", 3, lock).await.unwrap(), 3);
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.failed_logins, 3);
    assert_eq!(a.locked_until, Some(lock));

    store
        .record_login_success("acc", "192.0.2.7", NOW + 1000)
        .await
        .unwrap();
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.failed_logins, 0);
    assert_eq!(a.locked_until, None);

    assert_eq!(store.record_answer_failure("acc").await.unwrap(), 1);
    assert_eq!(store.record_answer_failure("acc").await.unwrap(), 2);
    store.record_login_failure("acc", 1, lock).await.unwrap();
    store.unlock_account("acc").await.unwrap();
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(
        (a.failed_logins, a.failed_answers, a.locked_until),
        (0, 0, None)
    );
}

// ---------------------------------------------------------------------------------------------
// Sessions and temporary opens

async fn sessions_lifecycle(store: Store) {
    store
        .create_session(&NewSession {
            token_hash: "s1",
            kind: SessionKind::Portal,
            principal_id: "p",
            csrf_token: "csrf-1",
            ip: "192.0.2.1",
            now: NOW,
            expires_at: NOW + 100,
        })
        .await
        .unwrap();
    let s = store
        .session("s1", SessionKind::Portal, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.principal_id, "p");
    assert_eq!(s.csrf_token, "csrf-1");
    assert_eq!(
        (s.created_at, s.last_seen_at, s.expires_at),
        (NOW, NOW, NOW + 100)
    );

    assert!(
        store
            .session("s1", SessionKind::Admin, NOW)
            .await
            .unwrap()
            .is_none(),
        "wrong kind"
    );
    assert!(
        store
            .session("nope", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session("s1", SessionKind::Portal, NOW + 100)
            .await
            .unwrap()
            .is_none(),
        "expired at expires_at"
    );

    store
        .touch_session("s1", NOW + 50, NOW + 200)
        .await
        .unwrap();
    let s = store
        .session("s1", SessionKind::Portal, NOW + 150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.created_at, s.last_seen_at, s.expires_at),
        (NOW, NOW + 50, NOW + 200)
    );

    for (t, kind, who) in [
        ("s2", SessionKind::Portal, "p"),
        ("s3", SessionKind::Admin, "p"),
        ("s4", SessionKind::Portal, "q"),
    ] {
        store
            .create_session(&NewSession {
                token_hash: t,
                kind,
                principal_id: who,
                csrf_token: "c",
                ip: "192.0.2.2",
                now: NOW,
                expires_at: NOW + 500,
            })
            .await
            .unwrap();
    }
    assert_eq!(store.delete_sessions_of("p", Some("s1")).await.unwrap(), 2);
    assert!(
        store
            .session("s1", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session("s2", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session("s3", SessionKind::Admin, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session("s4", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(store.delete_sessions_of("q", None).await.unwrap(), 1);
    assert!(
        store
            .session("s4", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );

    store.delete_session("s1").await.unwrap();
    assert!(
        store
            .session("s1", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );
}

async fn temp_opens_expire_and_purge(store: Store) {
    let payload = all_bytes();
    store
        .insert_temp_open("short", &payload, NOW, NOW + 10)
        .await
        .unwrap();
    store
        .insert_temp_open("long", b"envelope", NOW, NOW + 100)
        .await
        .unwrap();
    store
        .create_session(&NewSession {
            token_hash: "old",
            kind: SessionKind::Portal,
            principal_id: "p",
            csrf_token: "c",
            ip: "192.0.2.1",
            now: NOW,
            expires_at: NOW + 5,
        })
        .await
        .unwrap();
    store
        .create_session(&NewSession {
            token_hash: "new",
            kind: SessionKind::Portal,
            principal_id: "p",
            csrf_token: "c",
            ip: "192.0.2.1",
            now: NOW,
            expires_at: NOW + 500,
        })
        .await
        .unwrap();

    assert_eq!(store.temp_open("short", NOW).await.unwrap(), Some(payload));
    assert_eq!(
        store.temp_open("short", NOW + 10).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.temp_open("unknown", NOW).await.unwrap(), None);

    // One expired temp open and one expired session.
    assert_eq!(store.purge_expired(NOW + 10).await.unwrap(), 2);
    assert_eq!(store.temp_open("short", NOW).await.unwrap(), None, "purged");
    assert!(
        store
            .session("old", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.temp_open("long", NOW + 10).await.unwrap(),
        Some(b"envelope".to_vec())
    );
    assert!(
        store
            .session("new", SessionKind::Portal, NOW + 10)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.purge_expired(NOW + 10).await.unwrap(), 0);

    store.delete_temp_open("long").await.unwrap();
    assert_eq!(store.temp_open("long", NOW).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Queue

async fn enqueue_is_transactional(store: Store) {
    let rcpts = vec!["a@example.org".to_string(), "b@example.net".to_string()];
    let data = all_bytes();
    let mail = sealpost_store::NewQueuedMail {
        id: "m1",
        kind: "bounce",
        mail_from: "",
        rcpt_to: &rcpts,
        data: &data,
        now: NOW,
        give_up_at: NOW + 432_000,
    };

    let mut tx = store.begin().await.unwrap();
    store.enqueue(&mut tx, &mail).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 0);
    assert!(
        store
            .lease_due("w", NOW, NOW + 60, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Dropping an uncommitted transaction rolls back as well.
    {
        let mut tx = store.begin().await.unwrap();
        store.enqueue(&mut tx, &mail).await.unwrap();
    }
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 0);

    let mut tx = store.begin().await.unwrap();
    store.enqueue(&mut tx, &mail).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 1);

    let mut tx = store.begin().await.unwrap();
    let err = store.enqueue(&mut tx, &mail).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict),
        "same id twice: {err:?}"
    );
    drop(tx);

    let items = store.lease_due("w", NOW, NOW + 60, 10).await.unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.id, "m1");
    assert_eq!(item.kind, "bounce");
    assert_eq!(item.mail_from, "");
    assert_eq!(item.rcpt_to, rcpts);
    assert_eq!(item.data, data);
    assert_eq!(item.created_at, NOW);
    assert_eq!(item.attempts, 1);
    assert_eq!(item.give_up_at, NOW + 432_000);
    assert_eq!(item.last_error, None);
}

async fn concurrent_leases_never_overlap(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let rcpts = vec!["r@example.org".to_string()];
    let ids: Vec<String> = (0..50).map(|i| format!("q{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .enqueue(
                &mut tx,
                &sealpost_store::NewQueuedMail {
                    id,
                    kind: "sealed",
                    mail_from: "s@example.org",
                    rcpt_to: &rcpts,
                    data: b"x",
                    now: NOW - i as i64,
                    give_up_at: NOW + 1000,
                },
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let spawn = |owner: &'static str| {
        let store = store.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            store.lease_due(owner, NOW, NOW + 60, 50).await.unwrap()
        })
    };
    let (a, b) = (spawn("node-a"), spawn("node-b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());

    let a_ids: HashSet<String> = a.iter().map(|i| i.id.clone()).collect();
    let b_ids: HashSet<String> = b.iter().map(|i| i.id.clone()).collect();
    assert_eq!(a_ids.len(), a.len(), "no id twice for one owner");
    assert_eq!(b_ids.len(), b.len(), "no id twice for one owner");
    let both: Vec<_> = a_ids.intersection(&b_ids).collect();
    assert!(both.is_empty(), "leased by both owners: {both:?}");
    let all: HashSet<String> = a_ids.union(&b_ids).cloned().collect();
    assert_eq!(
        all,
        ids.iter().cloned().collect::<HashSet<_>>(),
        "together they get all"
    );
    assert!(a.iter().chain(&b).all(|i| i.attempts == 1));

    // Everything is leased: nothing is due for a third owner.
    assert!(
        store
            .lease_due("node-c", NOW + 1, NOW + 61, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn expired_lease_is_taken_over(store: Store) {
    enqueue(&store, "m", &["a@example.org"], NOW).await;
    let first = store.lease_due("crashed", NOW, NOW + 60, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .lease_due("other", NOW + 30, NOW + 90, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .lease_due("other", NOW + 59, NOW + 119, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let again = store
        .lease_due("other", NOW + 61, NOW + 121, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, "m");
    assert_eq!(again[0].attempts, 2);

    // The crashed node's late completion no longer counts.
    let mut tx = store.begin().await.unwrap();
    assert!(!store.complete(&mut tx, "m", "crashed").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 1);

    let mut tx = store.begin().await.unwrap();
    assert!(store.complete(&mut tx, "m", "other").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 0);
}

async fn reschedule_keeps_remaining_recipients(store: Store) {
    enqueue(
        &store,
        "m",
        &["a@example.org", "b@example.org", "c@example.org"],
        NOW,
    )
    .await;
    let leased = store.lease_due("w", NOW, NOW + 60, 10).await.unwrap();
    assert_eq!(leased[0].rcpt_to.len(), 3);

    // A stranger cannot reschedule it.
    let mut tx = store.begin().await.unwrap();
    store
        .reschedule(&mut tx, "m", "stranger", &[], NOW, "x")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    store
        .reschedule(
            &mut tx,
            "m",
            "w",
            &["b@example.org".to_string()],
            NOW + 300,
            "451 4.7.1 later",
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert!(
        store
            .lease_due("w2", NOW + 100, NOW + 160, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .lease_due("w2", NOW + 299, NOW + 359, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.queue_recent_errors(10).await.unwrap(),
        vec![("m".to_string(), "451 4.7.1 later".to_string())]
    );

    let due = store
        .lease_due("w2", NOW + 300, NOW + 360, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].rcpt_to, vec!["b@example.org".to_string()]);
    assert_eq!(due[0].attempts, 2);
    assert_eq!(due[0].last_error.as_deref(), Some("451 4.7.1 later"));
}

async fn complete_by_non_owner_does_nothing(store: Store) {
    enqueue(&store, "m", &["a@example.org"], NOW).await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        !store.complete(&mut tx, "m", "w").await.unwrap(),
        "not leased yet"
    );
    tx.commit().await.unwrap();

    store.lease_due("w", NOW, NOW + 60, 10).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(!store.complete(&mut tx, "m", "intruder").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 1);

    // A completion rolled back leaves the item in place.
    let mut tx = store.begin().await.unwrap();
    assert!(store.complete(&mut tx, "m", "w").await.unwrap());
    tx.rollback().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 1);

    let mut tx = store.begin().await.unwrap();
    assert!(store.complete(&mut tx, "m", "w").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, 0);
}

async fn queue_stats_counts(store: Store) {
    let s = store.queue_stats(NOW).await.unwrap();
    assert_eq!((s.queued, s.deferred, s.oldest_created_at), (0, 0, None));

    enqueue(&store, "old", &["a@example.org"], NOW - 100).await;
    enqueue(&store, "mid", &["a@example.org"], NOW - 50).await;
    enqueue(&store, "new", &["a@example.org"], NOW).await;
    let s = store.queue_stats(NOW).await.unwrap();
    assert_eq!(
        (s.queued, s.deferred, s.oldest_created_at),
        (3, 0, Some(NOW - 100))
    );

    // Two attempted: "old" is deferred to the future, "mid" is due again.
    let leased = store.lease_due("w", NOW, NOW + 60, 2).await.unwrap();
    let ids: HashSet<_> = leased.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["old", "mid"]), "oldest due first");
    let mut tx = store.begin().await.unwrap();
    store
        .reschedule(
            &mut tx,
            "old",
            "w",
            &["a@example.org".into()],
            NOW + 600,
            "421",
        )
        .await
        .unwrap();
    store
        .reschedule(&mut tx, "mid", "w", &["a@example.org".into()], NOW, "421")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let s = store.queue_stats(NOW).await.unwrap();
    assert_eq!(
        (s.queued, s.deferred, s.oldest_created_at),
        (3, 1, Some(NOW - 100))
    );
    let s = store.queue_stats(NOW + 600).await.unwrap();
    assert_eq!(s.deferred, 0);
}

// ---------------------------------------------------------------------------------------------
// Settings, audit, ledger, nodes

async fn settings_set_seed_and_version(store: Store) {
    assert_eq!(store.settings_version().await.unwrap(), 0);
    assert!(store.all_settings().await.unwrap().is_empty());

    store
        .set_setting("banner", "Willkommen\nzweite Zeile ✓", NOW)
        .await
        .unwrap();
    assert_eq!(store.settings_version().await.unwrap(), NOW);
    store
        .set_setting("banner", "changed", NOW + 5)
        .await
        .unwrap();
    assert_eq!(store.settings_version().await.unwrap(), NOW + 5);

    store
        .seed_setting("banner", "default", NOW + 10)
        .await
        .unwrap();
    store
        .seed_setting("max_size", "25000000", NOW + 20)
        .await
        .unwrap();
    let mut all = store.all_settings().await.unwrap();
    all.sort();
    assert_eq!(
        all,
        vec![
            ("banner".to_string(), "changed".to_string()),
            ("max_size".to_string(), "25000000".to_string()),
        ]
    );
    assert_eq!(store.settings_version().await.unwrap(), NOW + 20);

    // Seeding an existing setting changes neither value nor version.
    store.seed_setting("max_size", "1", NOW + 30).await.unwrap();
    assert_eq!(store.settings_version().await.unwrap(), NOW + 20);
    store.set_setting("max_size", "2", NOW + 40).await.unwrap();
    assert_eq!(store.settings_version().await.unwrap(), NOW + 40);
    let all = store.all_settings().await.unwrap();
    assert!(all.contains(&("max_size".to_string(), "2".to_string())));
    assert_eq!(all.len(), 2);
}

async fn audit_events(store: Store) {
    store
        .audit(
            NOW,
            "admin@example.org",
            "account.create",
            Some("a@example.org"),
            Some("via UI"),
            Some("192.0.2.9"),
        )
        .await
        .unwrap();
    store
        .audit(NOW + 1, "system", "login.failed", None, None, None)
        .await
        .unwrap();
    store
        .audit(
            NOW + 2,
            "system",
            "login.failed",
            Some("b@example.org"),
            None,
            None,
        )
        .await
        .unwrap();

    let recent = store.recent_audit(2).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].at, NOW + 2);
    assert_eq!(recent[0].subject.as_deref(), Some("b@example.org"));
    assert_eq!(recent[1].at, NOW + 1);
    assert_eq!(recent[1].subject, None);

    let all = store.recent_audit(10).await.unwrap();
    assert_eq!(all.len(), 3);
    let first = &all[2];
    assert_eq!(first.at, NOW);
    assert_eq!(first.actor, "admin@example.org");
    assert_eq!(first.action, "account.create");
    assert_eq!(first.subject.as_deref(), Some("a@example.org"));
    assert_eq!(first.detail.as_deref(), Some("via UI"));
    assert_eq!(first.ip.as_deref(), Some("192.0.2.9"));

    assert_eq!(
        store.count_audit_since("login.failed", NOW).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .count_audit_since("login.failed", NOW + 2)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_audit_since("login.failed", NOW + 3)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.count_audit_since("account.create", 0).await.unwrap(),
        1
    );
}

async fn ledger_first_open_only(store: Store) {
    let entry = |id: &str, at: i64| LedgerEntry {
        envelope_id: id.to_string(),
        sender: "sender@example.org".to_string(),
        recipient: "Rcpt@example.net".to_string(),
        account_id: "acc-1".to_string(),
        created_at: at,
        first_opened_at: None,
    };
    let mut tx = store.begin().await.unwrap();
    store
        .insert_ledger(&mut tx, &entry("e1", NOW))
        .await
        .unwrap();
    store
        .insert_ledger(&mut tx, &entry("e2", NOW + 10))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    store
        .insert_ledger(&mut tx, &entry("rolled-back", NOW))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(store.ledger_entry("rolled-back").await.unwrap().is_none());

    let e = store.ledger_entry("e1").await.unwrap().unwrap();
    assert_eq!(e.envelope_id, "e1");
    assert_eq!(e.sender, "sender@example.org");
    assert_eq!(e.recipient, "Rcpt@example.net");
    assert_eq!(e.account_id, "acc-1");
    assert_eq!(e.created_at, NOW);
    assert_eq!(e.first_opened_at, None);

    store.mark_opened("e1", NOW + 100).await.unwrap();
    store.mark_opened("e1", NOW + 200).await.unwrap();
    store.mark_opened("unknown", NOW + 200).await.unwrap();
    assert_eq!(
        store
            .ledger_entry("e1")
            .await
            .unwrap()
            .unwrap()
            .first_opened_at,
        Some(NOW + 100)
    );
    assert_eq!(
        store
            .ledger_entry("e2")
            .await
            .unwrap()
            .unwrap()
            .first_opened_at,
        None
    );

    assert_eq!(store.count_ledger_since(NOW).await.unwrap(), 2);
    assert_eq!(store.count_ledger_since(NOW + 1).await.unwrap(), 1);
    assert_eq!(store.count_ledger_since(NOW + 11).await.unwrap(), 0);
}

async fn heartbeats_upsert(store: Store) {
    assert!(store.nodes().await.unwrap().is_empty());
    let node = |name: &str, version: &str, beat: i64| NodeInfo {
        name: name.to_string(),
        version: version.to_string(),
        roles: "smtp,web".to_string(),
        started_at: NOW,
        heartbeat_at: beat,
    };
    store
        .heartbeat(&node("node-b", "0.1.0", NOW))
        .await
        .unwrap();
    store
        .heartbeat(&node("node-a", "0.1.0", NOW))
        .await
        .unwrap();
    store
        .heartbeat(&node("node-b", "0.2.0", NOW + 30))
        .await
        .unwrap();

    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].name, "node-a");
    assert_eq!(nodes[0].heartbeat_at, NOW);
    assert_eq!(nodes[1].name, "node-b");
    assert_eq!(nodes[1].version, "0.2.0");
    assert_eq!(nodes[1].roles, "smtp,web");
    assert_eq!(nodes[1].started_at, NOW);
    assert_eq!(nodes[1].heartbeat_at, NOW + 30);
}

// ---------------------------------------------------------------------------------------------
// Batched statements of the mail path

async fn sealing_recipients_in_one_query(store: Store) {
    add_account(&store, "a1", "one@example.org", b"k1-v1").await;
    add_account(&store, "a2", "two@example.org", b"k2-v1").await;
    store
        .add_key_version("a2", 2, b"k2-v2", NOW + 1)
        .await
        .unwrap();
    store.set_language("a2", "de").await.unwrap();

    let asked: Vec<String> = ["two@example.org", "nobody@example.org", "one@example.org"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut found = store.sealing_recipients(&asked).await.unwrap();
    found.sort_by(|a, b| a.address.cmp(&b.address));
    assert_eq!(found.len(), 2, "the unknown address is simply absent");
    assert_eq!(found[0].account_id, "a1");
    assert_eq!(found[0].address, "one@example.org");
    assert_eq!(found[0].language, None);
    assert_eq!(found[0].key, Some((1, b"k1-v1".to_vec())));
    assert_eq!(found[1].account_id, "a2");
    assert_eq!(found[1].language.as_deref(), Some("de"));
    assert_eq!(
        found[1].key,
        Some((2, b"k2-v2".to_vec())),
        "the newest key version, not the first"
    );
    assert!(store.sealing_recipients(&[]).await.unwrap().is_empty());
}

async fn multi_row_writes_span_statement_chunks(store: Store) {
    // More rows than one statement carries, so the chunking is exercised too.
    let n = 150;
    let ids: Vec<String> = (0..n).map(|i| format!("q{i:03}")).collect();
    let rcpts: Vec<Vec<String>> = (0..n)
        .map(|i| vec![format!("r{i}@example.org"), format!("s{i}@example.org")])
        .collect();
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut b = all_bytes();
            b.push(i as u8);
            b
        })
        .collect();
    let mails: Vec<NewQueuedMail<'_>> = (0..n)
        .map(|i| NewQueuedMail {
            id: &ids[i],
            kind: "carrier",
            mail_from: "sender@example.org",
            rcpt_to: &rcpts[i],
            data: &bodies[i],
            now: NOW,
            give_up_at: NOW + 86_400,
        })
        .collect();
    add_account(&store, "acc", "ledger@example.org", b"k").await;
    let entries: Vec<LedgerEntry> = (0..n)
        .map(|i| LedgerEntry {
            envelope_id: format!("{i:032x}"),
            sender: "sender@example.org".into(),
            recipient: "ledger@example.org".into(),
            account_id: "acc".into(),
            created_at: NOW,
            first_opened_at: None,
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    store.enqueue_many(&mut tx, &mails).await.unwrap();
    store.insert_ledger_many(&mut tx, &entries).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, n as i64);

    let leased = store.lease_due("w", NOW, NOW + 60, n as i64).await.unwrap();
    assert_eq!(leased.len(), n);
    for item in &leased {
        let i: usize = item.id[1..].parse().unwrap();
        assert_eq!(item.rcpt_to, rcpts[i], "recipients of {}", item.id);
        assert_eq!(item.data, bodies[i], "body of {}", item.id);
    }
    let last = store
        .ledger_entry(&format!("{:032x}", n - 1))
        .await
        .unwrap()
        .expect("the last ledger row of the second chunk");
    assert_eq!(last.account_id, "acc");
    assert_eq!(last.first_opened_at, None);

    // Only the lease owner's completions count; a rolled-back batch leaves everything queued.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        store
            .complete_many(&mut tx, &ids, "intruder")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .complete_many(&mut tx, &ids[..100], "w")
            .await
            .unwrap(),
        100
    );
    tx.rollback().await.unwrap();
    assert_eq!(store.queue_stats(NOW).await.unwrap().queued, n as i64);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        store
            .complete_many(&mut tx, &ids[..100], "w")
            .await
            .unwrap(),
        100
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.queue_stats(NOW).await.unwrap().queued,
        (n - 100) as i64
    );
}

// --- Attempt reservations (lockout race, per-source budget) ---

const POLICY: LockPolicy = LockPolicy {
    threshold: 5,
    lock_secs: 900,
    max_lock_secs: 900 * 4,
};

async fn concurrent_login_reservations_stop_at_the_threshold(store: Store) {
    add_account(&store, "acc", "a@example.com", b"k").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_login_attempt(Principal::Account, "acc", POLICY, NOW)
                .await
                .unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let proceeded = answers
        .iter()
        .filter(|r| matches!(r, Reservation::Proceed { .. }))
        .count();
    assert_eq!(
        proceeded, 5,
        "exactly the threshold may be tried: {answers:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|r| **r == Reservation::Proceed { locks: true })
            .count(),
        1,
        "exactly one attempt locks"
    );
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.failed_logins, 5);
    assert_eq!(
        a.locked_until,
        Some(NOW + 900),
        "locked from the fifth attempt on"
    );
    // Still locked a second before the end; afterwards a fresh count starts.
    assert_eq!(
        store
            .reserve_login_attempt(Principal::Account, "acc", POLICY, NOW + 899)
            .await
            .unwrap(),
        Reservation::Refused
    );
    let later = NOW + 900;
    for _ in 0..4 {
        assert_eq!(
            store
                .reserve_login_attempt(Principal::Account, "acc", POLICY, later)
                .await
                .unwrap(),
            Reservation::Proceed { locks: false }
        );
    }
    assert_eq!(
        store
            .reserve_login_attempt(Principal::Account, "acc", POLICY, later)
            .await
            .unwrap(),
        Reservation::Proceed { locks: true }
    );
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(
        a.locked_until,
        Some(later + 1800),
        "the second lock lasts twice as long"
    );
    // The holder's right password (or a reset) ends lock and growth.
    store
        .release_login_attempt(Principal::Account, "acc")
        .await
        .unwrap();
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!((a.failed_logins, a.locked_until), (0, None));
    for _ in 0..5 {
        store
            .reserve_login_attempt(Principal::Account, "acc", POLICY, later)
            .await
            .unwrap();
    }
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.locked_until, Some(later + 900), "growth starts again");
    assert_eq!(
        store
            .reserve_login_attempt(Principal::Account, "nobody", POLICY, NOW)
            .await
            .unwrap(),
        Reservation::Refused
    );
}

async fn admin_login_reservations_lock_and_release(store: Store) {
    store
        .insert_admin("ad", "root", "hash", false, NOW)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_login_attempt(Principal::Admin, "ad", POLICY, NOW)
                .await
                .unwrap()
        }));
    }
    let mut proceeded = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Reservation::Proceed { .. }) {
            proceeded += 1;
        }
    }
    assert_eq!(proceeded, 5);
    let a = store.admin_by_id("ad").await.unwrap().unwrap();
    assert_eq!((a.failed_logins, a.locked_until), (5, Some(NOW + 900)));
    store.record_admin_login_success("ad", NOW).await.unwrap();
    let a = store.admin_by_id("ad").await.unwrap().unwrap();
    assert_eq!((a.failed_logins, a.locked_until), (0, None));
}

async fn concurrent_answer_reservations_stop_at_the_limit(store: Store) {
    add_account(&store, "acc", "a@example.com", b"k").await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_answer_attempt("acc", 5).await.unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        if let Some(n) = t.await.unwrap() {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        vec![1, 2, 3, 4, 5],
        "each attempt has its own number"
    );
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.failed_answers, 5);
    assert_eq!(a.failed_logins, 0, "the login counter is not touched");
    store.clear_answer_failures("acc").await.unwrap();
    assert_eq!(
        store.reserve_answer_attempt("acc", 5).await.unwrap(),
        Some(1)
    );
}

async fn concurrent_source_reservations_stop_at_the_limit(store: Store) {
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_source_attempt("192.0.2.1", 20, 900, NOW)
                .await
                .unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 20,
        "exactly the limit, first attempts racing included"
    );
    assert!(
        !store
            .reserve_source_attempt("192.0.2.1", 20, 900, NOW + 899)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_source_attempt("192.0.2.2", 20, 900, NOW)
            .await
            .unwrap(),
        "other sources are not affected"
    );
    // A right secret gives its reservation back.
    store.release_source_attempt("192.0.2.1").await.unwrap();
    assert!(
        store
            .reserve_source_attempt("192.0.2.1", 20, 900, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_source_attempt("192.0.2.1", 20, 900, NOW + 10)
            .await
            .unwrap()
    );
    // A new window starts when the old one is over.
    assert!(
        store
            .reserve_source_attempt("192.0.2.1", 20, 900, NOW + 900)
            .await
            .unwrap()
    );
    assert_eq!(store.purge_source_failures(NOW + 1).await.unwrap(), 1);
    assert!(
        store
            .reserve_source_attempt("192.0.2.2", 20, 900, NOW + 900)
            .await
            .unwrap(),
        "a purged source starts again"
    );
}

// ---------------------------------------------------------------------------------------------
// Link copies (the opt-in `link` delivery profile)

async fn link_copies_keep_fetch_sweep_and_revoke(store: Store) {
    let copy = |hash: &str, envelope: &str, account: &str, expires_at: i64| NewLinkCopy {
        link_hash: hash.to_string(),
        envelope_id: envelope.to_string(),
        account_id: account.to_string(),
        payload: all_bytes(),
        created_at: NOW,
        expires_at,
    };
    // Written with the transaction: a rolled-back one leaves nothing.
    let mut tx = store.begin().await.unwrap();
    store
        .insert_link_copies(&mut tx, &[copy("h-gone", "env-rolled", "acc-1", NOW + 100)])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        store
            .link_copies_for_envelope("env-rolled")
            .await
            .unwrap()
            .is_empty()
    );

    let mut tx = store.begin().await.unwrap();
    store
        .insert_link_copies(
            &mut tx,
            &[
                copy("h-1", "env-1", "acc-1", NOW + 100),
                copy("h-2", "env-2", "acc-1", NOW + 10),
                copy("h-3", "env-3", "acc-2", NOW + 100),
            ],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let LinkCopy {
        envelope_id,
        account_id,
        payload,
        created_at,
        expires_at,
    } = store.link_copy("h-1", "acc-1", NOW).await.unwrap().unwrap();
    assert_eq!(envelope_id, "env-1");
    assert_eq!(account_id, "acc-1");
    assert_eq!(
        payload,
        all_bytes(),
        "the ciphertext comes back byte for byte"
    );
    assert_eq!((created_at, expires_at), (NOW, NOW + 100));
    // Another account's id, an unknown id and an expired copy look alike.
    assert!(
        store
            .link_copy("h-1", "acc-2", NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .link_copy("h-x", "acc-1", NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .link_copy("h-2", "acc-1", NOW + 10)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .link_copy("h-2", "acc-1", NOW + 9)
            .await
            .unwrap()
            .is_some()
    );

    // The sweeper deletes the rows (not just hides them) and counts them.
    assert_eq!(store.sweep_link_copies(NOW + 9).await.unwrap(), 0);
    assert_eq!(store.sweep_link_copies(NOW + 10).await.unwrap(), 1);
    assert!(
        store
            .link_copies_for_envelope("env-2")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.link_copies_for_envelope("env-1").await.unwrap().len(),
        1
    );

    // Revocation removes every copy of its envelope and nothing else.
    assert_eq!(
        store
            .delete_link_copies_for_envelope("env-1")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_link_copies_for_envelope("env-1")
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .link_copy("h-1", "acc-1", NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .link_copy("h-3", "acc-2", NOW)
            .await
            .unwrap()
            .is_some()
    );

    // A test clock: moving the expiry makes the sweeper take it.
    assert_eq!(store.set_link_copies_expiry("env-3", NOW).await.unwrap(), 1);
    assert_eq!(store.sweep_link_copies(NOW).await.unwrap(), 1);
    assert!(
        store
            .link_copies_for_envelope("env-3")
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Security phrases

store_tests!(security_phrase_round_trip);

async fn security_phrase_round_trip(store: Store) {
    add_account(&store, "ph", "ph@example.org", b"k1").await;
    add_account(&store, "other", "other@example.org", b"k2").await;
    assert_eq!(store.security_phrase("ph").await.unwrap(), None);
    let phrase = "Grüne Äpfel im Mai – 🍏";
    store
        .set_security_phrase("ph", Some(phrase), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.security_phrase("ph").await.unwrap().as_deref(),
        Some(phrase)
    );
    // Changing it replaces the one row.
    store
        .set_security_phrase("ph", Some("blue heron"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.security_phrase("ph").await.unwrap().as_deref(),
        Some("blue heron")
    );
    assert_eq!(store.security_phrase("other").await.unwrap(), None);
    // Removing it, and deleting the account, leave nothing behind.
    store
        .set_security_phrase("ph", None, NOW + 2)
        .await
        .unwrap();
    assert_eq!(store.security_phrase("ph").await.unwrap(), None);
    store
        .set_security_phrase("other", Some("kept until deleted"), NOW)
        .await
        .unwrap();
    assert!(store.delete_account("other").await.unwrap());
    add_account(&store, "other", "other@example.org", b"k3").await;
    assert_eq!(store.security_phrase("other").await.unwrap(), None);
}
