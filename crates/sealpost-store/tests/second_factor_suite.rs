//! Store suite for recipients' second factor (TOTP state and step claims, recovery codes,
//! remembered devices, pending sign-ins), on every configured backend.

#![allow(clippy::unwrap_used)]
// The shared helpers serve the main suite too; not all are used here.
#![allow(dead_code, unused_macros)]

#[macro_use]
mod common;

use common::{NOW, add_account};
use sealpost_store::{NewPendingSignIn, Store};

store_tests!(
    totp_enrolment_and_removal,
    totp_steps_are_claimed_once_even_when_racing,
    recovery_codes_are_single_use_and_per_account,
    remembered_devices_are_bound_expire_and_are_revoked,
    pending_sign_ins_are_taken_once_and_expire,
    deleting_an_account_removes_its_factors,
);

async fn totp_enrolment_and_removal(store: Store) {
    add_account(&store, "acc", "t@example.org", b"k").await;
    let empty = store.totp_state("acc").await.unwrap();
    assert!(!empty.enrolled() && empty.pending_wrapped.is_none() && !empty.must_enrol);
    // Nothing pending: nothing to confirm.
    assert!(!store.confirm_totp("acc", 5, NOW).await.unwrap());
    store.set_totp_pending("acc", &[1, 2, 3]).await.unwrap();
    let s = store.totp_state("acc").await.unwrap();
    assert_eq!(s.pending_wrapped.as_deref(), Some(&[1u8, 2, 3][..]));
    assert!(!s.enrolled());
    assert!(store.confirm_totp("acc", 5, NOW).await.unwrap());
    assert!(!store.confirm_totp("acc", 6, NOW).await.unwrap(), "once");
    let s = store.totp_state("acc").await.unwrap();
    assert_eq!(s.secret_wrapped.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!((s.enrolled_at, s.last_step), (Some(NOW), Some(5)));
    assert!(s.pending_wrapped.is_none());
    // A new enrolment keeps the old seed until it is confirmed.
    store.set_totp_pending("acc", &[9; 40]).await.unwrap();
    let s = store.totp_state("acc").await.unwrap();
    assert_eq!(s.secret_wrapped.as_deref(), Some(&[1u8, 2, 3][..]));
    store.clear_totp("acc", true).await.unwrap();
    let s = store.totp_state("acc").await.unwrap();
    assert!(!s.enrolled() && s.pending_wrapped.is_none() && s.last_step.is_none());
    assert!(s.must_enrol);
    // Enrolling again clears the administrator's demand.
    store.set_totp_pending("acc", &[4]).await.unwrap();
    assert!(store.confirm_totp("acc", 9, NOW).await.unwrap());
    assert!(!store.totp_state("acc").await.unwrap().must_enrol);
    // Clearing an account that never had a row creates one only to hold the flag.
    add_account(&store, "other", "o@example.org", b"k").await;
    store.clear_totp("other", false).await.unwrap();
    assert!(!store.totp_state("other").await.unwrap().must_enrol);
}

async fn totp_steps_are_claimed_once_even_when_racing(store: Store) {
    add_account(&store, "acc", "s@example.org", b"k").await;
    assert!(
        !store.claim_totp_step("acc", 10).await.unwrap(),
        "no claim without an enrolled seed"
    );
    store.set_totp_pending("acc", &[1]).await.unwrap();
    assert!(store.confirm_totp("acc", 10, NOW).await.unwrap());
    assert!(
        !store.claim_totp_step("acc", 10).await.unwrap(),
        "the confirming step"
    );
    assert!(
        !store.claim_totp_step("acc", 9).await.unwrap(),
        "older steps"
    );
    // Eight concurrent claims of one new step: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_totp_step("acc", 11).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(store.claim_totp_step("acc", 12).await.unwrap());
    assert_eq!(store.totp_state("acc").await.unwrap().last_step, Some(12));
}

async fn recovery_codes_are_single_use_and_per_account(store: Store) {
    add_account(&store, "a", "a@example.org", b"k").await;
    add_account(&store, "b", "b@example.org", b"k").await;
    let hashes: Vec<String> = (0..10).map(|i| format!("hash{i}")).collect();
    store
        .replace_factor_recovery_codes("a", &hashes, NOW)
        .await
        .unwrap();
    assert_eq!(store.unused_factor_recovery_codes("a").await.unwrap(), 10);
    assert!(
        !store
            .use_factor_recovery_code("b", "hash0", NOW)
            .await
            .unwrap(),
        "not b's"
    );
    assert!(
        store
            .use_factor_recovery_code("a", "hash0", NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_factor_recovery_code("a", "hash0", NOW)
            .await
            .unwrap(),
        "once"
    );
    assert!(
        !store
            .use_factor_recovery_code("a", "nope", NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.unused_factor_recovery_codes("a").await.unwrap(), 9);
    // Racing uses of one code: one wins.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.use_factor_recovery_code("a", "hash1", NOW).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    // New codes replace all old ones.
    store
        .replace_factor_recovery_codes("a", &["new".to_string()], NOW)
        .await
        .unwrap();
    assert_eq!(store.unused_factor_recovery_codes("a").await.unwrap(), 1);
    assert!(
        !store
            .use_factor_recovery_code("a", "hash2", NOW)
            .await
            .unwrap()
    );
    store.delete_factor_recovery_codes("a").await.unwrap();
    assert_eq!(store.unused_factor_recovery_codes("a").await.unwrap(), 0);
}

async fn remembered_devices_are_bound_expire_and_are_revoked(store: Store) {
    add_account(&store, "a", "a@example.org", b"k").await;
    add_account(&store, "b", "b@example.org", b"k").await;
    store
        .insert_remembered_device("d1", "a", "Firefox on Linux", NOW, NOW + 100)
        .await
        .unwrap();
    store
        .insert_remembered_device("d2", "a", "Safari on iOS", NOW, NOW + 100)
        .await
        .unwrap();
    assert!(
        store
            .use_remembered_device("d1", "a", NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_remembered_device("d1", "b", NOW + 10)
            .await
            .unwrap(),
        "bound to a"
    );
    assert!(
        !store
            .use_remembered_device("d1", "a", NOW + 100)
            .await
            .unwrap(),
        "expired"
    );
    let list = store.remembered_devices("a", NOW + 20).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].token_hash, "d1", "most recently used first");
    assert_eq!(list[0].last_used_at, NOW + 10);
    assert_eq!(list[1].user_agent, "Safari on iOS");
    assert!(
        store
            .remembered_devices("a", NOW + 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store.delete_remembered_device("b", "d1").await.unwrap(),
        "not b's"
    );
    assert!(store.delete_remembered_device("a", "d1").await.unwrap());
    assert!(
        !store
            .use_remembered_device("d1", "a", NOW + 11)
            .await
            .unwrap()
    );
    // A password change revokes every device of the account.
    store
        .set_password("a", "$argon2id$new", false)
        .await
        .unwrap();
    assert!(store.remembered_devices("a", NOW).await.unwrap().is_empty());
    store
        .insert_remembered_device("d3", "a", "x", NOW, NOW + 5)
        .await
        .unwrap();
    assert_eq!(store.delete_remembered_devices_of("a").await.unwrap(), 1);
    // Expired devices are purged.
    store
        .insert_remembered_device("d4", "a", "x", NOW, NOW + 5)
        .await
        .unwrap();
    store.purge_expired(NOW + 5).await.unwrap();
    assert!(!store.use_remembered_device("d4", "a", NOW).await.unwrap());
}

async fn pending_sign_ins_are_taken_once_and_expire(store: Store) {
    add_account(&store, "a", "a@example.org", b"k").await;
    let p = NewPendingSignIn {
        token_hash: "p1",
        account_id: "a",
        first_method: "password",
        next_path: "/open/abc",
        ip: "192.0.2.1",
        now: NOW,
        expires_at: NOW + 300,
    };
    store.create_pending_sign_in(&p).await.unwrap();
    let got = store.pending_sign_in("p1", NOW + 1).await.unwrap().unwrap();
    assert_eq!(got.account_id, "a");
    assert_eq!(got.first_method, "password");
    assert_eq!(got.next_path, "/open/abc");
    assert_eq!(got.expires_at, NOW + 300);
    assert!(
        store
            .pending_sign_in("p1", NOW + 300)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(store.pending_sign_in("nope", NOW).await.unwrap().is_none());
    // Racing completions: one wins.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.take_pending_sign_in("p1", NOW + 2).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(
        store
            .pending_sign_in("p1", NOW + 3)
            .await
            .unwrap()
            .is_none()
    );
    // An expired one cannot be taken, and is purged.
    store
        .create_pending_sign_in(&NewPendingSignIn {
            token_hash: "p2",
            expires_at: NOW + 10,
            ..p
        })
        .await
        .unwrap();
    assert!(!store.take_pending_sign_in("p2", NOW + 10).await.unwrap());
    store.purge_expired(NOW + 10).await.unwrap();
    store
        .create_pending_sign_in(&NewPendingSignIn {
            token_hash: "p2",
            ..p
        })
        .await
        .unwrap();
    assert_eq!(store.delete_pending_sign_ins_of("a").await.unwrap(), 1);
}

async fn deleting_an_account_removes_its_factors(store: Store) {
    add_account(&store, "a", "a@example.org", b"k").await;
    store.set_totp_pending("a", &[1]).await.unwrap();
    store.confirm_totp("a", 1, NOW).await.unwrap();
    store
        .replace_factor_recovery_codes("a", &["h".to_string()], NOW)
        .await
        .unwrap();
    store
        .insert_remembered_device("d", "a", "x", NOW, NOW + 100)
        .await
        .unwrap();
    store
        .create_pending_sign_in(&NewPendingSignIn {
            token_hash: "p",
            account_id: "a",
            first_method: "password",
            next_path: "/",
            ip: "",
            now: NOW,
            expires_at: NOW + 300,
        })
        .await
        .unwrap();
    assert!(store.delete_account("a").await.unwrap());
    // A new account with the same id starts with nothing.
    add_account(&store, "a", "a@example.org", b"k").await;
    assert!(!store.totp_state("a").await.unwrap().enrolled());
    assert_eq!(store.unused_factor_recovery_codes("a").await.unwrap(), 0);
    assert!(store.remembered_devices("a", NOW).await.unwrap().is_empty());
    assert!(store.pending_sign_in("p", NOW).await.unwrap().is_none());
}
