//! Group commit: many sessions' write sets share transactions, and one bad write set never
//! fails or loses the others.

use sealpost_core::committer::{Committer, WriteSet};
use sealpost_store::testing::fresh_store;
use sealpost_store::unix_now;

fn account_and_mail(n: usize, address: &str) -> WriteSet {
    let mut w = WriteSet::default();
    let now = unix_now();
    w.account(
        &format!("00000000-0000-4000-8000-{n:012}"),
        address,
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        None,
        now,
        None,
        &[1, 2, 3],
    );
    w.enqueue(
        &format!("q{n}"),
        "carrier",
        "a@bank.example",
        &[address.to_string()],
        b"data".to_vec(),
        now,
        now + 100,
    );
    w
}

#[tokio::test]
async fn concurrent_write_sets_commit_and_a_conflict_stays_alone() {
    let (store, guard) = fresh_store("sqlite:").await.expect("store");
    let committer = Committer::start(store.clone());
    let mut tasks = Vec::new();
    for n in 0..40 {
        let committer = committer.clone();
        // Two write sets create the same account: exactly one of them can win.
        let address = if n == 39 {
            "r0@example.com".to_string()
        } else {
            format!("r{n}@example.com")
        };
        tasks.push(tokio::spawn(async move {
            committer.commit(account_and_mail(n, &address)).await
        }));
    }
    let mut ok = 0;
    let mut failed = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    assert_eq!((ok, failed), (39, 1), "only the duplicate account fails");
    assert_eq!(store.count_accounts().await.unwrap(), 39);
    let stats = store.queue_stats(unix_now()).await.unwrap();
    assert_eq!(
        stats.queued, 39,
        "the failed write set left no queue row behind"
    );
    guard.drop_database().await.unwrap();
}
