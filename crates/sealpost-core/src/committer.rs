//! Group commit for accepted mail. Every accepted message needs its rows durably committed
//! before the SMTP `250`; committing each message on its own makes concurrent sessions queue
//! for the database's write lock and pay one disk flush each. The committer collects the write
//! sets of all sessions waiting at that moment and commits them in one transaction, one flush.
//! If a group fails, its members are retried one by one, so one bad write set (say, two
//! messages creating the same account) never fails the others.

use sealpost_store::{LedgerEntry, NewAccount, NewQueuedMail, Store};
use tokio::sync::{mpsc, oneshot};

use crate::CoreError;

/// Everything one accepted message writes.
#[derive(Default)]
pub struct WriteSet {
    accounts: Vec<AccountRow>,
    queue: Vec<QueueRow>,
    ledger: Vec<LedgerEntry>,
}

struct AccountRow {
    id: String,
    address: String,
    password_hash: String,
    created_by: Option<String>,
    created_at: i64,
    valid_until: Option<i64>,
    wrapped_key: Vec<u8>,
}

struct QueueRow {
    id: String,
    kind: &'static str,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
    now: i64,
    give_up_at: i64,
}

impl WriteSet {
    #[allow(clippy::too_many_arguments)]
    pub fn account(
        &mut self,
        id: &str,
        address: &str,
        password_hash: &str,
        created_by: Option<&str>,
        created_at: i64,
        valid_until: Option<i64>,
        wrapped_key: &[u8],
    ) {
        self.accounts.push(AccountRow {
            id: id.to_string(),
            address: address.to_string(),
            password_hash: password_hash.to_string(),
            created_by: created_by.map(str::to_string),
            created_at,
            valid_until,
            wrapped_key: wrapped_key.to_vec(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &mut self,
        id: &str,
        kind: &'static str,
        mail_from: &str,
        rcpt_to: &[String],
        data: Vec<u8>,
        now: i64,
        give_up_at: i64,
    ) {
        self.queue.push(QueueRow {
            id: id.to_string(),
            kind,
            mail_from: mail_from.to_string(),
            rcpt_to: rcpt_to.to_vec(),
            data,
            now,
            give_up_at,
        });
    }

    pub fn ledger(&mut self, entry: LedgerEntry) {
        self.ledger.push(entry);
    }

    async fn apply(
        &self,
        store: &Store,
        tx: &mut sealpost_store::StoreTx,
    ) -> Result<(), CoreError> {
        for a in &self.accounts {
            store
                .insert_account(
                    tx,
                    &NewAccount {
                        id: &a.id,
                        address: &a.address,
                        password_hash: &a.password_hash,
                        language: None,
                        created_by: a.created_by.as_deref(),
                        created_at: a.created_at,
                        valid_until: a.valid_until,
                        must_change_password: true,
                    },
                    &a.wrapped_key,
                )
                .await?;
        }
        for q in &self.queue {
            store
                .enqueue(
                    tx,
                    &NewQueuedMail {
                        id: &q.id,
                        kind: q.kind,
                        mail_from: &q.mail_from,
                        rcpt_to: &q.rcpt_to,
                        data: &q.data,
                        now: q.now,
                        give_up_at: q.give_up_at,
                    },
                )
                .await?;
        }
        for entry in &self.ledger {
            store.insert_ledger(tx, entry).await?;
        }
        Ok(())
    }
}

type Request = (WriteSet, oneshot::Sender<Result<(), CoreError>>);

/// Most write sets committed together; bounds the transaction's size.
const MAX_GROUP: usize = 64;

#[derive(Clone)]
pub struct Committer {
    requests: mpsc::Sender<Request>,
}

impl Committer {
    /// Starts the committing task; it ends when the last `Committer` is dropped.
    pub fn start(store: Store) -> Self {
        let (requests, mut incoming) = mpsc::channel::<Request>(1024);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match incoming.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                commit_group(&store, group).await;
            }
        });
        Committer { requests }
    }

    /// Returns once `writes` is durably committed, or with the reason it is not.
    pub async fn commit(&self, writes: WriteSet) -> Result<(), CoreError> {
        let (done, result) = oneshot::channel();
        self.requests
            .send((writes, done))
            .await
            .map_err(|_| CoreError::Join)?;
        result.await.map_err(|_| CoreError::Join)?
    }
}

async fn commit_group(store: &Store, group: Vec<Request>) {
    if group.len() > 1 {
        match commit_all(store, group.iter().map(|(w, _)| w)).await {
            Ok(()) => {
                for (_, done) in group {
                    let _ = done.send(Ok(()));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, size = group.len(), "group commit failed; committing one by one");
            }
        }
    }
    for (writes, done) in group {
        let result = commit_all(store, std::iter::once(&writes)).await;
        let _ = done.send(result);
    }
}

async fn commit_all<'a>(
    store: &Store,
    sets: impl Iterator<Item = &'a WriteSet>,
) -> Result<(), CoreError> {
    let mut tx = store.begin().await?;
    for writes in sets {
        writes.apply(store, &mut tx).await?;
    }
    sealpost_store::commit(tx).await?;
    Ok(())
}
