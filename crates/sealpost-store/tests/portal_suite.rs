//! Store suite for the portal's account queries (secret-answer attempts, password and question
//! changes), on every configured backend.

#![allow(clippy::unwrap_used)]
// The shared helpers serve the main suite too; not all are used here.
#![allow(dead_code, unused_macros)]

#[macro_use]
mod common;

use common::{NOW, add_account};
use sealpost_store::{NewSession, SessionKind, Store};

store_tests!(
    answer_failures_count_and_clear,
    password_change_ends_other_sessions,
    recovery_codes_are_rate_limited_tried_and_single_use,
    reset_links_are_single_use_and_expire
);

async fn answer_failures_count_and_clear(store: Store) {
    add_account(&store, "acc", "q@example.org", b"k").await;
    store
        .set_secret_question("acc", "std:pet", "$argon2id$fake")
        .await
        .unwrap();
    for expected in 1..=3 {
        assert_eq!(store.record_answer_failure("acc").await.unwrap(), expected);
    }
    store
        .record_login_failure("acc", 1, NOW + 900)
        .await
        .unwrap();
    store.clear_answer_failures("acc").await.unwrap();
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.failed_answers, 0);
    assert_eq!(a.failed_logins, 1, "the login lockout is not touched");
    assert_eq!(a.secret_question.as_deref(), Some("std:pet"));
}

async fn password_change_ends_other_sessions(store: Store) {
    add_account(&store, "acc", "s@example.org", b"k").await;
    for token in ["keep", "other1", "other2"] {
        store
            .create_session(&NewSession {
                token_hash: token,
                kind: SessionKind::Portal,
                principal_id: "acc",
                csrf_token: "csrf",
                ip: "127.0.0.1",
                now: NOW,
                expires_at: NOW + 600,
            })
            .await
            .unwrap();
    }
    store
        .set_password("acc", "$argon2id$new", false)
        .await
        .unwrap();
    assert_eq!(
        store.delete_sessions_of("acc", Some("keep")).await.unwrap(),
        2
    );
    assert!(
        store
            .session("keep", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session("other1", SessionKind::Portal, NOW)
            .await
            .unwrap()
            .is_none()
    );
    let a = store.account_by_id("acc").await.unwrap().unwrap();
    assert_eq!(a.password_hash, "$argon2id$new");
    assert!(!a.must_change_password);
}

async fn recovery_codes_are_rate_limited_tried_and_single_use(store: Store) {
    add_account(&store, "acc", "c@example.org", b"k").await;
    // Three codes per hour: the fourth is refused until the window has passed.
    for i in 0..3 {
        let hash = format!("h{i}");
        assert!(
            store
                .issue_recovery_code("acc", &hash, NOW + i, NOW + 900, 3600, 3)
                .await
                .unwrap()
        );
    }
    assert!(
        !store
            .issue_recovery_code("acc", "h3", NOW + 10, NOW + 900, 3600, 3)
            .await
            .unwrap()
    );
    // Only the last code counts, with a limited number of tries.
    for _ in 0..2 {
        assert_eq!(
            store.try_recovery_code("acc", NOW + 20, 2).await.unwrap(),
            Some("h2".to_string())
        );
    }
    assert_eq!(
        store.try_recovery_code("acc", NOW + 20, 2).await.unwrap(),
        None
    );
    // A new window: a fresh code with fresh tries, usable once.
    assert!(
        store
            .issue_recovery_code("acc", "h4", NOW + 3700, NOW + 4600, 3600, 3)
            .await
            .unwrap()
    );
    assert_eq!(
        store.try_recovery_code("acc", NOW + 3701, 5).await.unwrap(),
        Some("h4".to_string())
    );
    assert!(!store.consume_recovery_code("acc", "h2").await.unwrap());
    assert!(store.consume_recovery_code("acc", "h4").await.unwrap());
    assert!(!store.consume_recovery_code("acc", "h4").await.unwrap());
    assert_eq!(
        store.try_recovery_code("acc", NOW + 3702, 5).await.unwrap(),
        None
    );
    // Expired codes are not offered.
    assert!(
        store
            .issue_recovery_code("acc", "h5", NOW + 3800, NOW + 3900, 3600, 3)
            .await
            .unwrap()
    );
    assert_eq!(
        store.try_recovery_code("acc", NOW + 3900, 5).await.unwrap(),
        None
    );
    assert!(store.delete_account("acc").await.unwrap());
}

async fn reset_links_are_single_use_and_expire(store: Store) {
    add_account(&store, "acc", "l@example.org", b"k").await;
    store
        .insert_reset_link("t1", "acc", NOW, NOW + 100)
        .await
        .unwrap();
    assert_eq!(
        store.reset_link_account("t1", NOW + 1).await.unwrap(),
        Some("acc".to_string())
    );
    // A newer link replaces the older one.
    store
        .insert_reset_link("t2", "acc", NOW + 1, NOW + 100)
        .await
        .unwrap();
    assert_eq!(store.reset_link_account("t1", NOW + 2).await.unwrap(), None);
    assert_eq!(
        store.reset_link_account("t2", NOW + 100).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.consume_reset_link("t2", NOW + 2).await.unwrap(),
        Some("acc".to_string())
    );
    assert_eq!(store.consume_reset_link("t2", NOW + 3).await.unwrap(), None);
}
