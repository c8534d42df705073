//! Shared helpers of the store suite: the per-backend test generator and small builders.

use std::future::Future;

use sealpost_store::testing::{fresh_database, server_url_or_skip};
use sealpost_store::{NewAccount, NewQueuedMail, Store};

/// For every listed `async fn name(store: Store)` generates `mod name { sqlite, postgres, mysql }`
/// tests, each on a fresh, migrated database of its own (skipped when the backend is not set).
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                sealpost_store::testing::run_store_test("sqlite", super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                sealpost_store::testing::run_store_test("postgres", super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                sealpost_store::testing::run_store_test("mysql", super::$name).await;
            }
        }
    )*};
}

/// Like [`store_tests!`] for `async fn name(db_url: String)`: the test gets the URL of a fresh,
/// empty (not migrated) database and connects itself.
macro_rules! database_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_database_test("sqlite", super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_database_test("postgres", super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::common::run_database_test("mysql", super::$name).await;
            }
        }
    )*};
}

pub async fn run_database_test<F, Fut>(label: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(server) = server_url_or_skip(label) else {
        return;
    };
    let (url, guard) = fresh_database(&server).await.expect("create test database");
    let outcome = tokio::spawn(test(url)).await;
    guard.drop_database().await.expect("drop test database");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub const NOW: i64 = 1_700_000_000;

pub fn account<'a>(id: &'a str, address: &'a str) -> NewAccount<'a> {
    NewAccount {
        id,
        address,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        language: None,
        created_by: None,
        created_at: NOW,
        valid_until: None,
        must_change_password: false,
    }
}

/// Inserts and commits an account with key version 1 = `key`.
pub async fn add_account(store: &Store, id: &str, address: &str, key: &[u8]) {
    let mut tx = store.begin().await.expect("begin");
    store
        .insert_account(&mut tx, &account(id, address), key)
        .await
        .expect("insert account");
    tx.commit().await.expect("commit");
}

/// Enqueues and commits one mail due at `now`.
pub async fn enqueue(store: &Store, id: &str, rcpts: &[&str], now: i64) {
    let rcpt_to: Vec<String> = rcpts.iter().map(|r| r.to_string()).collect();
    let mut tx = store.begin().await.expect("begin");
    store
        .enqueue(
            &mut tx,
            &NewQueuedMail {
                id,
                kind: "sealed",
                mail_from: "sender@example.org",
                rcpt_to: &rcpt_to,
                data: format!("Subject: {id}\r\n\r\nbody").as_bytes(),
                now,
                give_up_at: now + 5 * 86_400,
            },
        )
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
}

/// Every byte value, to check that blobs survive unchanged.
pub fn all_bytes() -> Vec<u8> {
    (0..=255u8).chain((0..=255u8).rev()).collect()
}
