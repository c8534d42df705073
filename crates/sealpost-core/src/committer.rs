//! Group commit for the mail path. Every accepted message needs its rows durably committed
//! before the SMTP `250`, and every delivery its outcome before the next; committing each on
//! its own makes concurrent sessions queue for the database's write lock and pay one disk
//! flush each. The committer collects the write sets of all sessions waiting at that moment
//! (inbound and delivery alike) and commits them in one transaction, one flush, with one
//! multi-row statement per table. If a group fails, its members are retried one by one, so one
//! bad write set (say, two messages creating the same account) never fails the others.

use sealpost_store::{
    LedgerEntry, MessageEventKind, MessageSubject, NewAccount, NewLinkCopy, NewQueuedMail,
    NewSenderLink, SealedEntry, Store,
};
use tokio::sync::{mpsc, oneshot};

use crate::CoreError;

/// Everything one accepted message writes.
#[derive(Default)]
pub struct WriteSet {
    accounts: Vec<AccountRow>,
    queue: Vec<QueueRow>,
    ledger: Vec<LedgerEntry>,
    /// Each sealed copy's subject as its delivery report names it.
    subjects: Vec<MessageSubject>,
    /// Sender status links handed out in the mails of this set (credentials mails).
    sender_links: Vec<NewSenderLink>,
    link_copies: Vec<NewLinkCopy>,
    sealed: Vec<SealedEntry>,
    carrier_events: Vec<CarrierEvent>,
    completed: Vec<Completed>,
    rescheduled: Vec<Rescheduled>,
}

/// A delivery result for the ledger: an event for the envelope whose carrier is `queue_id`.
struct CarrierEvent {
    queue_id: String,
    at: i64,
    kind: MessageEventKind,
    detail: String,
}

/// A delivered queue item to remove, if `owner` still holds its lease.
struct Completed {
    id: String,
    owner: String,
}

/// A queue item with recipients left to try later.
struct Rescheduled {
    id: String,
    owner: String,
    remaining: Vec<String>,
    next_attempt_at: i64,
    error: String,
}

struct AccountRow {
    id: String,
    address: String,
    password_hash: String,
    created_by: Option<String>,
    created_at: i64,
    valid_until: Option<i64>,
    wrapped_key: Vec<u8>,
    /// `accounts.first_contact` when it is not the default `sender`.
    first_contact: Option<&'static str>,
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
            first_contact: None,
        });
    }

    /// An account created under `recipients.first_contact = mailbox-code`: no password (the
    /// empty hash matches none) until its holder signs in with a mailed code and chooses one.
    pub fn account_mailbox_code(
        &mut self,
        id: &str,
        address: &str,
        created_by: Option<&str>,
        created_at: i64,
        valid_until: Option<i64>,
        wrapped_key: &[u8],
    ) {
        self.accounts.push(AccountRow {
            id: id.to_string(),
            address: address.to_string(),
            password_hash: String::new(),
            created_by: created_by.map(str::to_string),
            created_at,
            valid_until,
            wrapped_key: wrapped_key.to_vec(),
            first_contact: Some(crate::settings::FirstContact::MailboxCode.as_str()),
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

    pub fn subject(&mut self, subject: MessageSubject) {
        self.subjects.push(subject);
    }

    pub fn sender_link(&mut self, link: NewSenderLink) {
        self.sender_links.push(link);
    }

    /// The encrypted copy a `link` carrier opens; committed with the carrier.
    pub fn link_copy(&mut self, copy: NewLinkCopy) {
        self.link_copies.push(copy);
    }

    /// A ledger row with its message secret and expiry (message control), plus its `sealed`
    /// event.
    pub fn sealed(&mut self, entry: SealedEntry) {
        self.sealed.push(entry);
    }

    /// An event for the envelope whose carrier was queued as `queue_id` (handed over,
    /// bounced); nothing is written when the item is not a carrier.
    pub fn carrier_event(&mut self, queue_id: &str, at: i64, kind: MessageEventKind, detail: &str) {
        self.carrier_events.push(CarrierEvent {
            queue_id: queue_id.to_string(),
            at,
            kind,
            detail: detail.to_string(),
        });
    }

    /// Removes a delivered item (nothing happens if another worker took its lease over).
    pub fn complete(&mut self, id: &str, owner: &str) {
        self.completed.push(Completed {
            id: id.to_string(),
            owner: owner.to_string(),
        });
    }

    /// Keeps `remaining` recipients of an item and releases its lease until `next_attempt_at`.
    pub fn reschedule(
        &mut self,
        id: &str,
        owner: &str,
        remaining: &[String],
        next_attempt_at: i64,
        error: &str,
    ) {
        self.rescheduled.push(Rescheduled {
            id: id.to_string(),
            owner: owner.to_string(),
            remaining: remaining.to_vec(),
            next_attempt_at,
            error: error.to_string(),
        });
    }
}

/// Writes the union of `sets` inside `tx`: accounts first (carriers' ledger rows refer to
/// them), then one multi-row statement each for queue rows, ledger rows and completions
/// (link copies, which can be megabytes, one statement each).
async fn apply_all(
    store: &Store,
    tx: &mut sealpost_store::StoreTx,
    sets: &[&WriteSet],
) -> Result<(), CoreError> {
    for a in sets.iter().flat_map(|w| &w.accounts) {
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
        if let Some(mode) = a.first_contact {
            store.set_first_contact(tx, &a.id, mode).await?;
        }
    }
    let queue: Vec<NewQueuedMail<'_>> = sets
        .iter()
        .flat_map(|w| &w.queue)
        .map(|q| NewQueuedMail {
            id: &q.id,
            kind: q.kind,
            mail_from: &q.mail_from,
            rcpt_to: &q.rcpt_to,
            data: &q.data,
            now: q.now,
            give_up_at: q.give_up_at,
        })
        .collect();
    store.enqueue_many(tx, &queue).await?;
    let ledger: Vec<LedgerEntry> = sets.iter().flat_map(|w| w.ledger.iter().cloned()).collect();
    store.insert_ledger_many(tx, &ledger).await?;
    for s in sets.iter().flat_map(|w| &w.subjects) {
        store.insert_message_subject(tx, s).await?;
    }
    for l in sets.iter().flat_map(|w| &w.sender_links) {
        store.insert_sender_link(tx, l).await?;
    }
    for w in sets {
        store.insert_link_copies(tx, &w.link_copies).await?;
    }
    let sealed: Vec<SealedEntry> = sets.iter().flat_map(|w| w.sealed.iter().cloned()).collect();
    store.insert_sealed_many(tx, &sealed).await?;
    for e in sets.iter().flat_map(|w| &w.carrier_events) {
        store
            .add_carrier_event(tx, &e.queue_id, e.at, e.kind, Some(&e.detail))
            .await?;
    }
    // Completions are grouped by lease owner (one per node, so normally one group).
    let mut completed: Vec<&Completed> = sets.iter().flat_map(|w| &w.completed).collect();
    completed.sort_by(|a, b| a.owner.cmp(&b.owner));
    for same_owner in completed.chunk_by(|a, b| a.owner == b.owner) {
        let ids: Vec<String> = same_owner.iter().map(|c| c.id.clone()).collect();
        store.complete_many(tx, &ids, &same_owner[0].owner).await?;
    }
    for r in sets.iter().flat_map(|w| &w.rescheduled) {
        store
            .reschedule(
                tx,
                &r.id,
                &r.owner,
                &r.remaining,
                r.next_attempt_at,
                &r.error,
            )
            .await?;
    }
    Ok(())
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
        self.submit(writes).await?.wait().await
    }

    /// Hands `writes` over and returns at once; [`Pending::wait`] tells when they are
    /// committed. Lets a delivery session send its next mail while the last outcome commits.
    pub async fn submit(&self, writes: WriteSet) -> Result<Pending, CoreError> {
        let (done, result) = oneshot::channel();
        self.requests
            .send((writes, done))
            .await
            .map_err(|_| CoreError::Join)?;
        Ok(Pending { result })
    }
}

/// A write set handed to the [`Committer`] and not yet known to be committed.
pub struct Pending {
    result: oneshot::Receiver<Result<(), CoreError>>,
}

impl Pending {
    pub async fn wait(self) -> Result<(), CoreError> {
        self.result.await.map_err(|_| CoreError::Join)?
    }
}

async fn commit_group(store: &Store, group: Vec<Request>) {
    if group.len() > 1 {
        let sets: Vec<&WriteSet> = group.iter().map(|(w, _)| w).collect();
        match commit_all(store, &sets).await {
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
        let result = commit_all(store, &[&writes]).await;
        let _ = done.send(result);
    }
}

async fn commit_all(store: &Store, sets: &[&WriteSet]) -> Result<(), CoreError> {
    let mut tx = store.begin().await?;
    apply_all(store, &mut tx, sets).await?;
    sealpost_store::commit(tx).await?;
    Ok(())
}
