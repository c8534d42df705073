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
    password_change_ends_other_sessions
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
