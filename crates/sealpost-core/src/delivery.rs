//! The delivery worker: leases due queue items, hands them to the next hop, and records the
//! per-recipient outcome: delivered recipients are done, 4xx and connection errors are retried
//! with backoff until the give-up time, 5xx (or giving up) produce one bounce to the sender.

use std::sync::Arc;
use std::time::Duration;

use sealpost_mime::{BounceInput, build_bounce};
use sealpost_smtp::next_hop::NextHop;
use sealpost_smtp::outbound::{ClientConfig, OutboundMessage, RcptResult, Sender};
use sealpost_store::{QueueItem, Store};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::committer::{Committer, Pending, WriteSet};
use crate::{CoreError, SettingsHandle, kind, unix_now};

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub next_hop: NextHop,
    pub client: ClientConfig,
    /// Unique per process, so leases tell which node holds an item.
    pub owner: String,
    pub hostname: String,
    pub lease: Duration,
    pub batch: i64,
    /// Concurrent sessions to the next hop.
    pub concurrency: usize,
    /// Most queue items sent over one session.
    pub per_session: usize,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub idle_poll: Duration,
    /// Signs every mail Sealpost wrote just before it is handed to the next hop (`None`: no
    /// `[delivery.dkim]`); mail relayed unchanged is never signed (see `dkim::signs_kind`).
    pub dkim: Option<Arc<crate::dkim::Signer>>,
}

impl DeliveryConfig {
    pub fn new(next_hop: NextHop, hostname: &str) -> Self {
        DeliveryConfig {
            next_hop,
            client: ClientConfig {
                helo_name: hostname.to_string(),
                ..ClientConfig::default()
            },
            owner: format!("{hostname}-{}", Uuid::new_v4().simple()),
            hostname: hostname.to_string(),
            lease: Duration::from_secs(600),
            batch: 256,
            concurrency: 16,
            per_session: 20,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            idle_poll: Duration::from_secs(2),
            dkim: None,
        }
    }
}

/// Most queue items one refilling session carries before it closes and a new one starts, so a
/// next hop that limits messages per connection, or changes, is met again now and then.
const MAX_ITEMS_PER_SESSION: usize = 1000;

#[derive(Clone)]
pub struct DeliveryWorker {
    store: Store,
    committer: Committer,
    settings: SettingsHandle,
    config: Arc<DeliveryConfig>,
    wake: Arc<Notify>,
}

/// Recipients delivered, deferred and bounced, per attempt (logs) and per round (metrics).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AttemptSummary {
    pub delivered: usize,
    pub deferred: usize,
    pub bounced: usize,
}

impl AttemptSummary {
    fn add(&mut self, other: &AttemptSummary) {
        self.delivered += other.delivered;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
    }
}

impl DeliveryWorker {
    /// `committer` should be the one the [`crate::Gateway`] uses, so that accepted mail and
    /// delivery outcomes share transactions (on SQLite there is only one writer anyway).
    pub fn new(
        store: Store,
        committer: Committer,
        settings: SettingsHandle,
        config: DeliveryConfig,
        wake: Arc<Notify>,
    ) -> Self {
        DeliveryWorker {
            store,
            committer,
            settings,
            config: Arc::new(config),
            wake,
        }
    }

    /// Runs until the task is dropped. Items are leased only when a delivery slot is free, so
    /// a lease is never spent waiting in a local backlog (which would let another node take the
    /// item over and deliver it twice). Database errors are logged and retried: the queue is the
    /// source of truth, so a worker that restarts simply continues from it.
    pub async fn run(self) {
        let slots = self.config.concurrency.max(1);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() >= slots {
                let _ = tasks.join_next().await;
            }
            let free = (slots - tasks.len()) as i64;
            let now = unix_now();
            let lease_until = now + self.config.lease.as_secs() as i64;
            let items = match self
                .store
                .lease_due(
                    &self.config.owner,
                    now,
                    lease_until,
                    (free * self.config.per_session as i64).min(self.config.batch),
                )
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "queue lease failed");
                    tokio::time::sleep(self.config.idle_poll).await;
                    continue;
                }
            };
            if items.is_empty() {
                // Wait for new mail, a finished delivery (which may free a retry), or the poll tick.
                tokio::select! {
                    _ = self.wake.notified() => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                }
                continue;
            }
            // Spread the leased items over the free slots, one SMTP session per chunk.
            let per_chunk = items.len().div_ceil(free.max(1) as usize).max(1);
            let mut items = items.into_iter();
            loop {
                let chunk: Vec<QueueItem> = items.by_ref().take(per_chunk).collect();
                if chunk.is_empty() {
                    break;
                }
                let worker = self.clone();
                tasks.spawn(async move {
                    if let Err(e) = worker.session(chunk).await {
                        tracing::warn!(error = %e, "delivery bookkeeping failed");
                    }
                });
            }
        }
    }

    /// Delivers `items` over one session to the next hop, then leases more due items (a few
    /// at a time) and carries on until the queue has nothing due,
    /// so that under load a handful of long sessions do the work instead of one connection,
    /// greeting and EHLO per few mails. Each item's outcome is committed as soon as its
    /// transaction ends (grouped with whatever else the committer has waiting) while the next
    /// one is sent, so a crash redelivers at most two messages per session.
    async fn session(&self, mut items: Vec<QueueItem>) -> Result<(), CoreError> {
        let next_hop = self.next_hop();
        let mut sender = Sender::new(&next_hop, &self.config.client);
        let mut sent = 0;
        let mut pending: Option<Pending> = None;
        let outcome = 'session: loop {
            let mut round = AttemptSummary::default();
            for item in &items {
                let signed = self.sign(item);
                let results = sender
                    .send(&OutboundMessage {
                        mail_from: &item.mail_from,
                        rcpt_to: &item.rcpt_to,
                        data: signed.as_deref().unwrap_or(&item.data),
                    })
                    .await;
                let mut writes = WriteSet::default();
                let summary = self.settle(&mut writes, item, results, unix_now());
                // The previous item's outcome committed while this one was on the wire; wait
                // for it before handing over the next, so at most two are ever unrecorded.
                if let Some(previous) = pending.take()
                    && let Err(e) = previous.wait().await
                {
                    break 'session Err(e);
                }
                match self.committer.submit(writes).await {
                    Ok(p) => pending = Some(p),
                    Err(e) => break 'session Err(e),
                }
                tracing::info!(
                    queue_id = %item.id,
                    kind = %item.kind,
                    delivered = summary.delivered,
                    deferred = summary.deferred,
                    bounced = summary.bounced,
                    "delivery attempt"
                );
                round.add(&summary);
            }
            crate::metrics::live::delivery(round.delivered, round.deferred, round.bounced);
            crate::metrics::record(&self.store, crate::metrics::BOUNCED, round.bounced as i64);
            sent += items.len();
            // After a permanent refusal the bounce just queued must not go straight back over
            // this session to the hop that refused: it waits for a fresh session (the worker's
            // loop), as it did before sessions refilled.
            if sent >= MAX_ITEMS_PER_SESSION || round.bounced > 0 {
                break Ok(());
            }
            let now = unix_now();
            items = match self
                .store
                .lease_due(
                    &self.config.owner,
                    now,
                    now + self.config.lease.as_secs() as i64,
                    (self.config.per_session as i64).min(self.config.batch),
                )
                .await
            {
                Ok(more) if !more.is_empty() => more,
                Ok(_) => break Ok(()),
                Err(e) => break Err(CoreError::from(e)),
            };
        };
        let last = match pending {
            Some(p) => p.wait().await,
            None => Ok(()),
        };
        sender.finish().await;
        outcome.and(last)
    }

    /// The item's data with its DKIM signatures, when DKIM is configured and the item is a mail
    /// Sealpost wrote. Signed at each attempt, so the signature's time is the sending time and
    /// one place covers every kind. A signing failure (which a key that loaded at boot does not
    /// give) is logged and the mail goes unsigned rather than never.
    fn sign(&self, item: &QueueItem) -> Option<Vec<u8>> {
        let signer = self.config.dkim.as_ref()?;
        if !crate::dkim::signs_kind(&item.kind) {
            return None;
        }
        match signer.sign(&item.data) {
            Ok(signed) => Some(signed),
            Err(e) => {
                tracing::error!(queue_id = %item.id, kind = %item.kind, error = %e, "DKIM signing failed; sending unsigned");
                None
            }
        }
    }

    /// An admin's next-hop setting overrides the configured relay without a restart.
    fn next_hop(&self) -> NextHop {
        let settings = self.settings.get();
        let hop = settings.next_hop.trim();
        if hop.is_empty() {
            return self.config.next_hop.clone();
        }
        match hop.parse::<NextHop>() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "delivery.next_hop setting ignored");
                self.config.next_hop.clone()
            }
        }
    }

    /// Records one item's per-recipient results: delivered recipients are done, deferred ones
    /// stay queued with backoff, failed ones (and deferred ones past the give-up time) bounce.
    fn settle(
        &self,
        writes: &mut WriteSet,
        item: &QueueItem,
        results: Vec<RcptResult>,
        now: i64,
    ) -> AttemptSummary {
        let give_up = now >= item.give_up_at;
        let mut summary = AttemptSummary::default();
        let mut remaining = Vec::new();
        let mut failures: Vec<(String, String)> = Vec::new();
        let mut last_error = String::new();
        // A missing result (which a well-behaved client never gives) counts as deferred, so
        // a recipient can never silently drop out of the queue.
        let mut results = results.into_iter();
        for rcpt in &item.rcpt_to {
            let result = results
                .next()
                .unwrap_or_else(|| RcptResult::Deferred("no delivery result".into()));
            match result {
                RcptResult::Delivered => summary.delivered += 1,
                RcptResult::Deferred(reason) if !give_up => {
                    last_error = reason;
                    remaining.push(rcpt.clone());
                }
                RcptResult::Deferred(reason) => {
                    failures.push((rcpt.clone(), format!("giving up after retries: {reason}")))
                }
                RcptResult::Failed(reason) => failures.push((rcpt.clone(), reason)),
            }
        }
        summary.deferred = remaining.len();
        summary.bounced = failures.len();
        // The message timeline: a carrier handed over or refused (nothing for other mail).
        if item.kind == kind::CARRIER {
            if summary.delivered > 0 {
                writes.carrier_event(
                    &item.id,
                    now,
                    sealpost_store::MessageEventKind::HandedOver,
                    &format!("accepted by {}", self.next_hop()),
                );
            }
            for (_, reason) in &failures {
                writes.carrier_event(
                    &item.id,
                    now,
                    sealpost_store::MessageEventKind::Bounced,
                    reason,
                );
            }
        }
        if !failures.is_empty() {
            self.queue_bounce(writes, item, &failures, now);
        }
        if remaining.is_empty() {
            writes.complete(&item.id, &self.config.owner);
        } else {
            let next = now + self.backoff(item.attempts).as_secs() as i64;
            writes.reschedule(&item.id, &self.config.owner, &remaining, next, &last_error);
        }
        summary
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 20) as u32 - 1;
        let delay = self
            .config
            .retry_base
            .saturating_mul(2u32.saturating_pow(exp));
        delay.min(self.config.retry_max)
    }

    fn queue_bounce(
        &self,
        writes: &mut WriteSet,
        item: &QueueItem,
        failures: &[(String, String)],
        now: i64,
    ) {
        // Never bounce a bounce, and a null sender has nobody to tell (RFC 5321 §6.1).
        if item.mail_from.is_empty() || item.kind == kind::BOUNCE {
            tracing::warn!(queue_id = %item.id, "undeliverable mail without a sender to notify dropped");
            return;
        }
        let settings = self.settings.get();
        let header_end = find_header_end(&item.data);
        let from = format!("MAILER-DAEMON@{}", self.config.hostname);
        // The next hop that answered; a maildir is local, with no remote MTA.
        let remote = match self.next_hop() {
            NextHop::Smtp { host, .. } => Some(host),
            NextHop::Maildir(_) => None,
        };
        let bounce = build_bounce(&BounceInput {
            from: &from,
            to: &item.mail_from,
            failures,
            original_headers: &item.data[..header_end],
            reporting_mta: &self.config.hostname,
            remote_mta: remote.as_deref(),
            arrival_date: Some(item.created_at),
            last_attempt_date: Some(now),
            lang: &settings.default_language,
            hostname: &self.config.hostname,
        });
        let id = Uuid::new_v4().simple().to_string();
        writes.enqueue(
            &id,
            kind::BOUNCE,
            "",
            std::slice::from_ref(&item.mail_from),
            bounce,
            now,
            now + settings.retry_give_up_secs,
        );
    }
}

/// Length of the header section including the blank line that ends it (whole mail if none).
fn find_header_end(data: &[u8]) -> usize {
    if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
        return p + 4;
    }
    if let Some(p) = data.windows(2).position(|w| w == b"\n\n") {
        return p + 2;
    }
    data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_found_for_crlf_and_lf() {
        assert_eq!(find_header_end(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(find_header_end(b"A: b\n\nbody"), 6);
        assert_eq!(find_header_end(b"A: b"), 4);
    }
}
