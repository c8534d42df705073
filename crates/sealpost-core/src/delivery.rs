//! The delivery worker: leases due queue items, hands them to the next hop, and records the
//! per-recipient outcome: delivered recipients are done, 4xx and connection errors are retried
//! with backoff until the give-up time, 5xx (or giving up) produce one bounce to the sender.

use std::sync::Arc;
use std::time::Duration;

use sealpost_mime::generate::{BounceInput, build_bounce};
use sealpost_smtp::client::{ClientConfig, OutboundMessage, RcptResult, deliver};
use sealpost_smtp::next_hop::NextHop;
use sealpost_store::{NewQueuedMail, QueueItem, Store};
use tokio::sync::Notify;
use uuid::Uuid;

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
    pub concurrency: usize,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub idle_poll: Duration,
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
            batch: 64,
            concurrency: 16,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            idle_poll: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
pub struct DeliveryWorker {
    store: Store,
    settings: SettingsHandle,
    config: Arc<DeliveryConfig>,
    wake: Arc<Notify>,
}

/// What one delivery attempt did, for tests and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AttemptSummary {
    pub delivered: usize,
    pub deferred: usize,
    pub bounced: usize,
}

impl DeliveryWorker {
    pub fn new(
        store: Store,
        settings: SettingsHandle,
        config: DeliveryConfig,
        wake: Arc<Notify>,
    ) -> Self {
        DeliveryWorker {
            store,
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
                    free.min(self.config.batch),
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
            for item in items {
                let worker = self.clone();
                tasks.spawn(async move {
                    let id = item.id.clone();
                    if let Err(e) = worker.attempt(item).await {
                        tracing::warn!(queue_id = %id, error = %e, "delivery bookkeeping failed");
                    }
                });
            }
        }
    }

    /// One attempt for one leased item.
    pub async fn attempt(&self, item: QueueItem) -> Result<AttemptSummary, CoreError> {
        // An admin's next-hop setting overrides the configured relay without a restart.
        let override_hop = {
            let settings = self.settings.get();
            let hop = settings.next_hop.trim();
            if hop.is_empty() {
                None
            } else {
                match hop.parse::<NextHop>() {
                    Ok(h) => Some(h),
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery.next_hop setting ignored");
                        None
                    }
                }
            }
        };
        let results = deliver(
            override_hop.as_ref().unwrap_or(&self.config.next_hop),
            &self.config.client,
            &OutboundMessage {
                mail_from: &item.mail_from,
                rcpt_to: &item.rcpt_to,
                data: &item.data,
            },
        )
        .await;
        let now = unix_now();
        let give_up = now >= item.give_up_at;
        let mut summary = AttemptSummary::default();
        let mut remaining = Vec::new();
        let mut failures: Vec<(String, String)> = Vec::new();
        let mut last_error = String::new();
        for (rcpt, result) in item.rcpt_to.iter().zip(results) {
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
        crate::metrics::live::delivery(summary.delivered, summary.deferred, summary.bounced);

        let mut tx = self.store.begin().await?;
        if !failures.is_empty() {
            self.queue_bounce(&mut tx, &item, &failures, now).await?;
        }
        if remaining.is_empty() {
            self.store
                .complete(&mut tx, &item.id, &self.config.owner)
                .await?;
        } else {
            let next = now + self.backoff(item.attempts).as_secs() as i64;
            self.store
                .reschedule(
                    &mut tx,
                    &item.id,
                    &self.config.owner,
                    &remaining,
                    next,
                    &last_error,
                )
                .await?;
        }
        sealpost_store::commit(tx).await?;
        crate::metrics::record(&self.store, crate::metrics::BOUNCED, summary.bounced as i64).await;
        tracing::info!(
            queue_id = %item.id,
            kind = %item.kind,
            delivered = summary.delivered,
            deferred = summary.deferred,
            bounced = summary.bounced,
            "delivery attempt"
        );
        Ok(summary)
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 20) as u32 - 1;
        let delay = self
            .config
            .retry_base
            .saturating_mul(2u32.saturating_pow(exp));
        delay.min(self.config.retry_max)
    }

    async fn queue_bounce(
        &self,
        tx: &mut sealpost_store::StoreTx,
        item: &QueueItem,
        failures: &[(String, String)],
        now: i64,
    ) -> Result<(), CoreError> {
        // Never bounce a bounce, and a null sender has nobody to tell (RFC 5321 §6.1).
        if item.mail_from.is_empty() || item.kind == kind::BOUNCE {
            tracing::warn!(queue_id = %item.id, "undeliverable mail without a sender to notify dropped");
            return Ok(());
        }
        let settings = self.settings.get();
        let header_end = find_header_end(&item.data);
        let from = format!("MAILER-DAEMON@{}", self.config.hostname);
        let bounce = build_bounce(&BounceInput {
            from: &from,
            to: &item.mail_from,
            failures,
            original_headers: &item.data[..header_end],
            reporting_mta: &self.config.hostname,
            lang: &settings.default_language,
            hostname: &self.config.hostname,
        });
        let id = Uuid::new_v4().simple().to_string();
        self.store
            .enqueue(
                tx,
                &NewQueuedMail {
                    id: &id,
                    kind: kind::BOUNCE,
                    mail_from: "",
                    rcpt_to: std::slice::from_ref(&item.mail_from),
                    data: &bounce,
                    now,
                    give_up_at: now + settings.retry_give_up_secs,
                },
            )
            .await?;
        Ok(())
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
