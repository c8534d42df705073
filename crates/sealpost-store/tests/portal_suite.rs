//! Store suite for the portal's account queries (secret-answer attempts, password and question
//! changes, passkeys and their ceremonies), on every configured backend.

#![allow(clippy::unwrap_used)]
// The shared helpers serve the main suite too; not all are used here.
#![allow(dead_code, unused_macros)]

#[macro_use]
mod common;

use common::{NOW, add_account};
use sealpost_store::{ChallengeKind, NewPasskey, NewSession, SessionKind, Store, StoreError};

store_tests!(
    answer_failures_count_and_clear,
    password_change_ends_other_sessions,
    recovery_codes_are_rate_limited_tried_and_single_use,
    reset_links_are_single_use_and_expire,
    passkeys_are_unique_per_credential_and_scoped_to_their_account,
    passkey_use_is_recorded_once_per_counter_value,
    passkey_challenges_are_single_use_kind_bound_and_expire
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

fn new_passkey<'a>(id: &'a str, account_id: &'a str, credential_key: &'a str) -> NewPasskey<'a> {
    NewPasskey {
        id,
        account_id,
        credential_key,
        passkey: "{\"cred\":1}",
        name: "Laptop",
        now: NOW,
        counter: 0,
    }
}

async fn passkeys_are_unique_per_credential_and_scoped_to_their_account(store: Store) {
    add_account(&store, "acc", "p@example.org", b"k").await;
    add_account(&store, "other", "o@example.org", b"k").await;
    store
        .insert_passkey(&new_passkey("pk1", "acc", "cred1"))
        .await
        .unwrap();
    store
        .insert_passkey(&NewPasskey {
            now: NOW + 1,
            ..new_passkey("pk2", "acc", "cred2")
        })
        .await
        .unwrap();
    // One credential belongs to one account only.
    assert!(matches!(
        store
            .insert_passkey(&new_passkey("pk3", "other", "cred1"))
            .await,
        Err(StoreError::Conflict)
    ));
    let listed = store.passkeys_of("acc").await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        vec!["pk1", "pk2"]
    );
    assert_eq!(listed[0].passkey, "{\"cred\":1}");
    assert_eq!(listed[0].last_used_at, None);
    assert!(store.passkeys_of("other").await.unwrap().is_empty());
    // Lookups, renames and removals never reach another account's passkey.
    assert!(
        store
            .passkey_by_credential("other", "cred1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .passkey_by_credential("acc", "cred1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "pk1"
    );
    assert!(!store.rename_passkey("other", "pk1", "Mine").await.unwrap());
    assert!(store.rename_passkey("acc", "pk1", "Phone").await.unwrap());
    assert!(
        store.rename_passkey("acc", "pk1", "Phone").await.unwrap(),
        "an unchanged name is still found"
    );
    assert_eq!(store.passkeys_of("acc").await.unwrap()[0].name, "Phone");
    assert!(!store.delete_passkey("other", "pk1").await.unwrap());
    assert!(store.delete_passkey("acc", "pk1").await.unwrap());
    assert!(!store.delete_passkey("acc", "pk1").await.unwrap());
    // Deleting the account deletes its passkeys.
    assert!(store.delete_account("acc").await.unwrap());
    assert!(store.passkeys_of("acc").await.unwrap().is_empty());
    store
        .insert_passkey(&new_passkey("pk4", "other", "cred2"))
        .await
        .unwrap();
}

async fn passkey_use_is_recorded_once_per_counter_value(store: Store) {
    add_account(&store, "acc", "u@example.org", b"k").await;
    store
        .insert_passkey(&new_passkey("pk1", "acc", "cred1"))
        .await
        .unwrap();
    assert!(
        store
            .record_passkey_use("pk1", "{\"cred\":2}", 0, 5, NOW + 10)
            .await
            .unwrap()
    );
    // A second sign-in that saw the old counter loses.
    assert!(
        !store
            .record_passkey_use("pk1", "{\"cred\":3}", 0, 5, NOW + 11)
            .await
            .unwrap()
    );
    let p = store
        .passkey_by_credential("acc", "cred1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.counter, p.last_used_at, p.passkey.as_str()),
        (5, Some(NOW + 10), "{\"cred\":2}")
    );
    assert!(
        !store
            .record_passkey_use("gone", "{}", 5, 6, NOW)
            .await
            .unwrap()
    );
}

async fn passkey_challenges_are_single_use_kind_bound_and_expire(store: Store) {
    store
        .insert_passkey_challenge(
            "c1",
            ChallengeKind::Register,
            Some("acc"),
            "s1",
            NOW,
            NOW + 300,
        )
        .await
        .unwrap();
    store
        .insert_passkey_challenge("c2", ChallengeKind::Auth, None, "s2", NOW, NOW + 300)
        .await
        .unwrap();
    // A sign-in cannot finish a registration's ceremony (nor use it up).
    assert_eq!(
        store
            .take_passkey_challenge("c1", ChallengeKind::Auth, NOW + 1)
            .await
            .unwrap(),
        None
    );
    let taken = store
        .take_passkey_challenge("c1", ChallengeKind::Register, NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.account_id.as_deref(), Some("acc"));
    assert_eq!(taken.state, "s1");
    assert_eq!(
        store
            .take_passkey_challenge("c1", ChallengeKind::Register, NOW + 2)
            .await
            .unwrap(),
        None,
        "single use"
    );
    // Two nodes finishing one ceremony at once: exactly one gets its state.
    let (a, b) = tokio::join!(
        store.take_passkey_challenge("c2", ChallengeKind::Auth, NOW + 3),
        store.take_passkey_challenge("c2", ChallengeKind::Auth, NOW + 3)
    );
    let winners = [a.unwrap(), b.unwrap()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].account_id, None);
    // An expired ceremony is refused, and the next start clears out expired rows.
    store
        .insert_passkey_challenge("c3", ChallengeKind::Auth, None, "s3", NOW, NOW + 300)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_passkey_challenge("c3", ChallengeKind::Auth, NOW + 300)
            .await
            .unwrap(),
        None
    );
    store
        .insert_passkey_challenge("c4", ChallengeKind::Auth, None, "s4", NOW, NOW + 10)
        .await
        .unwrap();
    store
        .insert_passkey_challenge("c5", ChallengeKind::Auth, None, "s5", NOW + 20, NOW + 320)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_passkey_challenge("c4", ChallengeKind::Auth, NOW + 5)
            .await
            .unwrap(),
        None,
        "removed when c5 started"
    );
}
