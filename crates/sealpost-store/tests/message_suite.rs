//! Store suite for message control (issue 16): secrets in the ledger, the event timeline,
//! revocation, the expiry sweep and retention, on every configured backend.

#![allow(clippy::unwrap_used)]
// The shared helpers serve the main suite too; not all are used here.
#![allow(dead_code, unused_macros)]

#[macro_use]
mod common;

use common::{NOW, all_bytes};
use sealpost_store::{
    LedgerEntry, MessageEventKind, MessageFilter, SealedEntry, Store, StoreError,
};

store_tests!(
    sealed_rows_keep_their_secret_and_a_sealed_event,
    a_message_groups_its_recipients,
    opens_and_events_form_a_timeline,
    revocation_deletes_the_secret_once,
    the_sweeper_expires_only_what_is_due,
    retention_deletes_old_rows_and_events,
    search_by_sender_recipient_date_and_id,
    secrets_can_be_rewrapped_but_not_revived,
);

async fn secrets_can_be_rewrapped_but_not_revived(store: Store) {
    insert(
        &store,
        &[
            sealed("e1", "m1", "anna@kunde.example", Some(vec![1; 72])),
            sealed("e2", "m1", "ben@kunde.example", Some(vec![2; 72])),
            sealed("e3", "m1", "cleo@kunde.example", None),
        ],
    )
    .await;
    let page = store.message_secrets_after("", 1).await.unwrap();
    assert_eq!(page, vec![("e1".to_string(), vec![1; 72])]);
    let rest = store.message_secrets_after("e1", 10).await.unwrap();
    assert_eq!(rest.len(), 1, "rows without a secret are skipped");
    assert!(
        store
            .replace_message_secret("e1", &[1; 72], &[9; 72])
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_message_secret("e1", &[1; 72], &[8; 72])
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .message_entry("e1")
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret,
        Some(vec![9; 72])
    );
    // A revoked row never gets a secret back.
    store
        .revoke_envelope("e2", NOW, "x", None, false)
        .await
        .unwrap();
    assert!(
        !store
            .replace_message_secret("e2", &[2; 72], &[7; 72])
            .await
            .unwrap()
    );
    assert!(
        store
            .message_entry("e2")
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret
            .is_none()
    );
}

fn sealed(
    envelope_id: &str,
    message_id: &str,
    recipient: &str,
    secret: Option<Vec<u8>>,
) -> SealedEntry {
    SealedEntry {
        entry: LedgerEntry {
            envelope_id: envelope_id.to_string(),
            sender: "clerk@bank.example".to_string(),
            recipient: recipient.to_string(),
            account_id: format!("acct-{recipient}"),
            created_at: NOW,
            first_opened_at: None,
        },
        message_id: message_id.to_string(),
        queue_id: Some(format!("q-{envelope_id}")),
        wrapped_secret: secret,
        expires_at: None,
        subject: None,
        subject_hash: Some("ab".repeat(32)),
    }
}

async fn insert(store: &Store, rows: &[SealedEntry]) {
    let mut tx = store.begin().await.unwrap();
    store.insert_sealed_many(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
}

async fn kinds(store: &Store, envelope_id: &str) -> Vec<MessageEventKind> {
    store
        .message_events(&[envelope_id.to_string()])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn sealed_rows_keep_their_secret_and_a_sealed_event(store: Store) {
    insert(
        &store,
        &[
            sealed("e1", "m1", "anna@kunde.example", Some(all_bytes())),
            sealed("e0", "m0", "old@kunde.example", None),
        ],
    )
    .await;
    let e = store.message_entry("e1").await.unwrap().unwrap();
    assert_eq!(e.wrapped_secret.as_deref(), Some(&all_bytes()[..]));
    assert_eq!(e.message_id, "m1");
    assert_eq!(e.queue_id.as_deref(), Some("q-e1"));
    assert_eq!(e.subject_hash.as_deref(), Some(&*"ab".repeat(32)));
    assert!(e.revocation.is_none() && e.secret_deleted_at.is_none());
    // The plain ledger view agrees.
    assert_eq!(
        store.ledger_entry("e1").await.unwrap().unwrap().recipient,
        "anna@kunde.example"
    );
    assert!(
        store
            .message_entry("e0")
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret
            .is_none()
    );
    assert_eq!(kinds(&store, "e1").await, vec![MessageEventKind::Sealed]);
    let by_queue = store
        .message_entry_by_queue_id("q-e1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_queue.envelope_id, "e1");
    assert!(
        store
            .message_entry_by_queue_id("q-none")
            .await
            .unwrap()
            .is_none()
    );
    // An envelope id is a key: the same one again is a conflict, and nothing is half-written.
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        store
            .insert_sealed_many(&mut tx, &[sealed("e1", "m9", "x@y.example", None)])
            .await,
        Err(StoreError::Conflict)
    ));
}

async fn a_message_groups_its_recipients(store: Store) {
    insert(
        &store,
        &[
            sealed("e2", "m1", "ben@kunde.example", Some(vec![2; 72])),
            sealed("e1", "m1", "anna@kunde.example", Some(vec![1; 72])),
            sealed("e3", "m2", "anna@kunde.example", Some(vec![3; 72])),
        ],
    )
    .await;
    let all: Vec<_> = store
        .message_entries("m1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.envelope_id)
        .collect();
    assert_eq!(all, vec!["e1", "e2"]);
    let one: Vec<_> = store
        .message_entries("e3")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(one, vec!["m2"]);
    assert!(store.message_entries("nope").await.unwrap().is_empty());
}

async fn opens_and_events_form_a_timeline(store: Store) {
    insert(
        &store,
        &[sealed("e1", "m1", "anna@kunde.example", Some(vec![1; 72]))],
    )
    .await;
    // Delivery results find the envelope by its carrier's queue id; other mail writes nothing.
    let mut tx = store.begin().await.unwrap();
    store
        .add_carrier_event(
            &mut tx,
            "q-e1",
            NOW + 1,
            MessageEventKind::HandedOver,
            Some("250 2.0.0 Ok"),
        )
        .await
        .unwrap();
    store
        .add_carrier_event(
            &mut tx,
            "q-relay",
            NOW + 1,
            MessageEventKind::HandedOver,
            Some("x"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        store
            .record_open("e1", NOW + 5, Some("192.0.2.0"))
            .await
            .unwrap()
    );
    assert!(!store.record_open("e1", NOW + 9, None).await.unwrap());
    store
        .add_message_event(
            "e1",
            NOW + 10,
            MessageEventKind::Downloaded,
            Some("eml"),
            Some("192.0.2.0"),
        )
        .await
        .unwrap();
    store
        .add_message_event("e1", NOW + 11, MessageEventKind::Replied, None, None)
        .await
        .unwrap();
    let events = store.message_events(&["e1".to_string()]).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            MessageEventKind::Sealed,
            MessageEventKind::HandedOver,
            MessageEventKind::FirstOpened,
            MessageEventKind::Opened,
            MessageEventKind::Downloaded,
            MessageEventKind::Replied,
        ]
    );
    assert_eq!(events[1].detail.as_deref(), Some("250 2.0.0 Ok"));
    assert_eq!(events[2].client.as_deref(), Some("192.0.2.0"));
    assert_eq!(events[2].at, NOW + 5);
    // The first open time stays the first.
    assert_eq!(
        store
            .message_entry("e1")
            .await
            .unwrap()
            .unwrap()
            .first_opened_at,
        Some(NOW + 5)
    );
    assert_eq!(
        store
            .count_message_events_since(MessageEventKind::FirstOpened, NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_message_events_since(MessageEventKind::Opened, NOW + 10)
            .await
            .unwrap(),
        0
    );
}

async fn revocation_deletes_the_secret_once(store: Store) {
    insert(
        &store,
        &[
            sealed("e1", "m1", "anna@kunde.example", Some(all_bytes())),
            sealed("e2", "m1", "ben@kunde.example", Some(all_bytes())),
        ],
    )
    .await;
    assert!(
        store
            .revoke_envelope("e1", NOW + 60, "admin root", Some("wrong customer"), false)
            .await
            .unwrap()
    );
    // The row itself no longer holds the secret.
    let e = store.message_entry("e1").await.unwrap().unwrap();
    assert!(e.wrapped_secret.is_none());
    assert_eq!(e.secret_deleted_at, Some(NOW + 60));
    let r = e.revocation.unwrap();
    assert_eq!((r.at, r.by.as_str()), (NOW + 60, "admin root"));
    assert_eq!(r.reason.as_deref(), Some("wrong customer"));
    assert!(!r.reason_public);
    assert_eq!(
        kinds(&store, "e1").await,
        vec![
            MessageEventKind::Sealed,
            MessageEventKind::Revoked,
            MessageEventKind::SecretDeleted
        ]
    );
    // A second revocation changes nothing; the other recipient keeps its secret.
    assert!(
        !store
            .revoke_envelope("e1", NOW + 99, "someone else", None, true)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .message_entry("e1")
            .await
            .unwrap()
            .unwrap()
            .revocation
            .unwrap()
            .by,
        "admin root"
    );
    assert_eq!(kinds(&store, "e1").await.len(), 3);
    assert!(
        store
            .message_entry("e2")
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret
            .is_some()
    );
    assert!(
        !store
            .revoke_envelope("nope", NOW, "x", None, false)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_envelope("e2", NOW + 61, "clerk@bank.example", Some("typo"), true)
            .await
            .unwrap()
    );
    assert!(
        store
            .message_entry("e2")
            .await
            .unwrap()
            .unwrap()
            .revocation
            .unwrap()
            .reason_public
    );
    assert_eq!(
        store
            .count_message_events_since(MessageEventKind::Revoked, NOW)
            .await
            .unwrap(),
        2
    );
}

async fn the_sweeper_expires_only_what_is_due(store: Store) {
    let mut due = sealed("e1", "m1", "anna@kunde.example", Some(vec![1; 72]));
    due.expires_at = Some(NOW + 10);
    let mut later = sealed("e2", "m1", "ben@kunde.example", Some(vec![2; 72]));
    later.expires_at = Some(NOW + 1000);
    let never = sealed("e3", "m1", "cleo@kunde.example", Some(vec![3; 72]));
    insert(&store, &[due, later, never]).await;
    assert!(
        store
            .message_entry("e1")
            .await
            .unwrap()
            .unwrap()
            .is_expired(NOW + 10)
    );
    assert!(
        !store
            .message_entry("e2")
            .await
            .unwrap()
            .unwrap()
            .is_expired(NOW + 10)
    );

    assert_eq!(store.sweep_expired(NOW + 9, 100).await.unwrap(), 0);
    assert_eq!(store.sweep_expired(NOW + 10, 100).await.unwrap(), 1);
    // Nothing left to do: each expiry is recorded once.
    assert_eq!(store.sweep_expired(NOW + 11, 100).await.unwrap(), 0);
    let e1 = store.message_entry("e1").await.unwrap().unwrap();
    assert!(e1.wrapped_secret.is_none());
    assert_eq!(e1.secret_deleted_at, Some(NOW + 10));
    assert!(e1.revocation.is_none());
    assert_eq!(
        kinds(&store, "e1").await,
        vec![
            MessageEventKind::Sealed,
            MessageEventKind::Expired,
            MessageEventKind::SecretDeleted
        ]
    );
    assert!(
        store
            .message_entry("e2")
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret
            .is_some()
    );
    // An expiry moved into the past (as tests and administrators may) is swept next time.
    assert!(store.set_message_expiry("e3", Some(NOW)).await.unwrap());
    assert!(!store.set_message_expiry("nope", Some(NOW)).await.unwrap());
    assert_eq!(store.sweep_expired(NOW + 11, 100).await.unwrap(), 1);
    assert!(
        store
            .message_entry("e3")
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret
            .is_none()
    );
    assert_eq!(
        store
            .count_message_events_since(MessageEventKind::Expired, NOW)
            .await
            .unwrap(),
        2
    );
}

async fn retention_deletes_old_rows_and_events(store: Store) {
    let mut new = sealed("e2", "m2", "ben@kunde.example", Some(vec![2; 72]));
    new.entry.created_at = NOW + 500;
    insert(
        &store,
        &[
            sealed("e1", "m1", "anna@kunde.example", Some(vec![1; 72])),
            new,
        ],
    )
    .await;
    // The new row has an old stray event too (e.g. clocks apart): retention is by age.
    store
        .add_message_event("e2", NOW - 5, MessageEventKind::HandedOver, None, None)
        .await
        .unwrap();
    store
        .add_message_event("e1", NOW + 600, MessageEventKind::Opened, None, None)
        .await
        .unwrap();
    assert_eq!(store.delete_messages_before(NOW + 100).await.unwrap(), 1);
    assert!(store.message_entry("e1").await.unwrap().is_none());
    assert!(kinds(&store, "e1").await.is_empty());
    assert_eq!(kinds(&store, "e2").await, vec![MessageEventKind::Sealed]);
    assert_eq!(store.delete_messages_before(NOW + 100).await.unwrap(), 0);
}

async fn search_by_sender_recipient_date_and_id(store: Store) {
    let mut a = sealed("e1", "m1", "anna@kunde.example", None);
    a.entry.sender = "clerk_1@bank.example".into();
    let mut b = sealed("e2", "m2", "ben@kunde.example", None);
    b.entry.created_at = NOW + 100;
    b.entry.sender = "clerk%2@bank.example".into();
    let mut c = sealed("e3", "m2", "anna@other.example", None);
    c.entry.created_at = NOW + 100;
    insert(&store, &[a, b, c]).await;
    let ids = |rows: Vec<sealpost_store::MessageEntry>| {
        rows.into_iter().map(|e| e.envelope_id).collect::<Vec<_>>()
    };
    let all = ids(store
        .search_messages(&MessageFilter::default(), 10, 0)
        .await
        .unwrap());
    assert_eq!(all, vec!["e2", "e3", "e1"]);
    let anna = MessageFilter {
        recipient: Some("ANNA@".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.search_messages(&anna, 10, 0).await.unwrap()),
        vec!["e3", "e1"]
    );
    // LIKE wildcards in the query are literal characters.
    let pct = MessageFilter {
        sender: Some("k%2".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.search_messages(&pct, 10, 0).await.unwrap()),
        vec!["e2"]
    );
    let under = MessageFilter {
        sender: Some("k_".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.search_messages(&under, 10, 0).await.unwrap()),
        vec!["e1"]
    );
    let range = MessageFilter {
        from: Some(NOW + 1),
        until: Some(NOW + 101),
        recipient: Some("anna".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.search_messages(&range, 10, 0).await.unwrap()),
        vec!["e3"]
    );
    let by_message = MessageFilter {
        id: Some("m2".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.search_messages(&by_message, 10, 0).await.unwrap()),
        vec!["e2", "e3"]
    );
    let by_envelope = MessageFilter {
        id: Some("e1".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.search_messages(&by_envelope, 10, 0).await.unwrap()),
        vec!["e1"]
    );
    assert_eq!(
        ids(store
            .search_messages(&MessageFilter::default(), 1, 1)
            .await
            .unwrap()),
        vec!["e3"]
    );
}
