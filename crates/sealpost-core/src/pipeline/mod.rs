//! The encryption pipeline: one inbound SMTP transaction in, queued outbound mails out.
//!
//! Every mail derived from one inbound message (carrier mails, credentials mails, relayed
//! copies, bounces for refused recipients) is written in one database transaction (shared
//! with other sessions' messages by the [`Committer`]); the SMTP `250` is given only after it
//! commits, and any failure before that answers `451` with nothing kept, so the sending MTA
//! retries and no mail is lost or half-processed.
//!
//! [`Gateway::accept`] runs the steps in order: read the header once and apply the trigger
//! policy ([`classify`]), resolve or plan each external recipient's account ([`provision`]),
//! seal and build the carriers ([`seal`]), then collect one write set and commit it.
//! Recipients for whom no account may be created, or whose carrier would be too large, are
//! refused ([`refusal`]). Under the `link` delivery profile the write set also holds the
//! encrypted copy the carrier's link opens, so a `250` means the copy exists.

mod classify;
mod provision;
mod refusal;
mod seal;

pub(crate) use seal::carrier_delivery;

use std::sync::Arc;

use sealpost_mime::Branding;
use sealpost_mime::inbound::{InboundHeader, TriggerPolicy};
use sealpost_smtp::inbound::{Envelope, MessageHandler, Verdict};
use sealpost_store::{LedgerEntry, MessageSubject, NewLinkCopy, SealedEntry, Store, StoreError};

use crate::settings::ReportSubject;
use tokio::sync::Notify;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::committer::{Committer, WriteSet};
use crate::{CoreError, KeyRing, Settings, SettingsHandle, kind, normalise_address, unix_now};

use classify::RecipientSplit;
use provision::{Lookup, RecipientPlan};
use refusal::{RefusalReason, RefusedRecipient};
use seal::{CarrierCommon, CopyOutcome, DeliveryPlan, SealJob, SealedCopy};
use sealpost_mime::FirstContact;

/// What happened to one accepted message, for the SMTP reply and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub queue_id: String,
    pub encrypted_for: Vec<String>,
    pub new_accounts: Vec<String>,
    pub relayed_to: Vec<String>,
    /// Recipients not delivered (no account may be created for them); the sender gets a
    /// bounce naming them.
    pub refused: Vec<String>,
}

/// The pipeline's decision on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed: the SMTP `250`.
    Accepted(Accepted),
    /// Nothing was kept and no recipient gets the message: a permanent SMTP refusal.
    Refused { reason: String },
}

#[derive(Clone)]
pub struct Gateway {
    store: Store,
    keys: KeyRing,
    settings: SettingsHandle,
    hostname: String,
    delivery_wake: Arc<Notify>,
    committer: Committer,
}

/// The facts of one inbound message every step reads.
pub(super) struct MessageContext<'a> {
    pub settings: &'a Settings,
    /// The id the SMTP reply shows.
    pub queue_id: String,
    pub mail_from: &'a str,
    /// The message as received.
    pub data: &'a [u8],
    /// Its Message-ID, without angle brackets.
    pub message_id: Option<&'a str>,
    /// Its subject as received (for the delivery reports' `message_subjects`).
    pub subject: &'a str,
    pub hostname: &'a str,
    pub now: i64,
    pub give_up_at: i64,
}

/// The recipients of a flagged message after provisioning.
struct Provisioned {
    /// Internal recipients: the message is relayed to them unchanged.
    relayed: Vec<String>,
    /// Recipients to seal for (RCPT TO spelling, plan), in RCPT order.
    plans: Vec<(String, RecipientPlan)>,
    refused: Vec<RefusedRecipient>,
}

impl Gateway {
    /// `committer` is shared with the delivery worker (see [`Committer`]).
    pub fn new(
        store: Store,
        committer: Committer,
        keys: KeyRing,
        settings: SettingsHandle,
        hostname: String,
        delivery_wake: Arc<Notify>,
    ) -> Self {
        Gateway {
            committer,
            store,
            keys,
            settings,
            hostname,
            delivery_wake,
        }
    }

    /// Processes one inbound message; `Accepted` only once everything derived from it is
    /// committed.
    pub async fn accept(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        data: &[u8],
    ) -> Result<Outcome, CoreError> {
        let settings = self.settings.get();
        let policy = TriggerPolicy {
            keywords: &settings.trigger_keywords,
            header: &settings.trigger_header,
        };
        let now = unix_now();
        let header = InboundHeader::parse(data);
        let message = MessageContext {
            settings: &settings,
            queue_id: Uuid::new_v4().simple().to_string(),
            mail_from,
            data,
            message_id: header.summary().message_id.as_deref(),
            subject: &header.summary().subject,
            hostname: &self.hostname,
            now,
            give_up_at: now + settings.retry_give_up_secs,
        };

        if !header.is_flagged(&policy) {
            return self.relay_unchanged(&message, rcpt_to).await;
        }

        let split = RecipientSplit::of(&settings, rcpt_to);
        let provisioned = self.provision(&message, &split).await?;
        if provisioned.plans.is_empty()
            && provisioned.relayed.is_empty()
            && !provisioned.refused.is_empty()
        {
            // Policy is decided after DATA, so the refusal is the reply to the whole message.
            refusal::audit(&self.store, &message, &provisioned.refused).await;
            return Ok(Outcome::Refused {
                reason: refusal::whole_message_reason(&provisioned.refused),
            });
        }

        let branding = settings.branding();
        let expires_header = header.field_value(crate::messages::EXPIRES_HEADER);
        let jobs = provisioned
            .plans
            .iter()
            .map(|(rcpt, plan)| {
                let (key_id, key) = plan.key();
                let domain_settings = crate::address_domain(plan.address())
                    .map_or(&*settings, |domain| settings.for_domain(domain));
                SealJob {
                    rcpt: rcpt.clone(),
                    address: plan.address().to_string(),
                    language: plan
                        .language(&settings, header.summary().language())
                        .to_string(),
                    key_id,
                    key: key.clone(),
                    keep_subject: domain_settings.keep_subject,
                    delivery: DeliveryPlan::for_settings(domain_settings, now),
                    first_contact: match plan {
                        RecipientPlan::Existing { .. } => FirstContact::Existing,
                        RecipientPlan::New(new) => new.first_contact(),
                    },
                    security_phrase: plan.security_phrase().map(str::to_string),
                    expires_at: crate::messages::expiry(
                        expires_header.as_deref(),
                        domain_settings.message_expiry_days,
                        now,
                    ),
                }
            })
            .collect();
        let common = CarrierCommon {
            headers: seal::carrier_headers(&header, &policy, true, &settings),
            neutral_headers: seal::carrier_headers(&header, &policy, false, &settings),
            public_url: settings.public_url.clone(),
            branding: branding.clone(),
            hostname: self.hostname.clone(),
            auto_open: settings.carrier_auto_open,
            original_message_id: message.message_id.map(|id| format!("<{id}>")),
        };
        let subject = common.headers.subject.clone();
        // The control header is for the gateway: neither the sealed copy nor the carrier has it.
        let sealed = seal::seal_all(
            header.strip_trigger_and(&policy, &[crate::messages::EXPIRES_HEADER]),
            jobs,
            common,
            self.keys.clone(),
            now,
        )
        .await?;

        let refused = refused_after_sealing(&provisioned, &sealed);
        let nothing_sealed = sealed
            .iter()
            .all(|copy| matches!(copy.outcome, CopyOutcome::TooLarge { .. }));
        if nothing_sealed && provisioned.relayed.is_empty() {
            // Every copy is too large: nobody gets the message, so the reply refuses it whole
            // and no account is created.
            refusal::audit(&self.store, &message, &refused).await;
            return Ok(Outcome::Refused {
                reason: refusal::whole_message_reason(&refused),
            });
        }

        let (writes, accepted) = collect_writes(
            &message,
            &branding,
            &provisioned,
            sealed,
            &refused,
            &subject,
        );
        self.committer.commit(writes).await?;
        self.delivery_wake.notify_one();
        crate::metrics::record(
            &self.store,
            crate::metrics::ENCRYPTED,
            accepted.encrypted_for.len() as i64,
        );
        crate::metrics::record(
            &self.store,
            crate::metrics::PASSED,
            accepted.relayed_to.len() as i64,
        );
        self.audit_new_accounts(now, &accepted.new_accounts).await;
        refusal::audit(&self.store, &message, &refused).await;
        Ok(Outcome::Accepted(accepted))
    }

    /// A message that is not flagged goes on as it is, to every recipient.
    async fn relay_unchanged(
        &self,
        message: &MessageContext<'_>,
        rcpt_to: &[String],
    ) -> Result<Outcome, CoreError> {
        let mut writes = WriteSet::default();
        writes.enqueue(
            &message.queue_id,
            kind::RELAY,
            message.mail_from,
            rcpt_to,
            message.data.to_vec(),
            message.now,
            message.give_up_at,
        );
        self.committer.commit(writes).await?;
        self.delivery_wake.notify_one();
        crate::metrics::record(&self.store, crate::metrics::PASSED, rcpt_to.len() as i64);
        Ok(Outcome::Accepted(Accepted {
            queue_id: message.queue_id.clone(),
            encrypted_for: Vec::new(),
            new_accounts: Vec::new(),
            relayed_to: rcpt_to.to_vec(),
            refused: Vec::new(),
        }))
    }

    /// Resolves each external recipient's account; plans one where the recipient's domain
    /// lets it be reached: under `mailbox-code` always (nobody receives a secret), under
    /// `sender` with a generated password where the credentials policy allows, and refuses the
    /// recipient where it does not. The policy is decided before any password is hashed, so a
    /// refused message costs no Argon2 run.
    async fn provision(
        &self,
        message: &MessageContext<'_>,
        split: &RecipientSplit,
    ) -> Result<Provisioned, CoreError> {
        let lookups =
            provision::look_up_recipients(&self.store, &self.keys, &split.external_addresses())
                .await?;
        let route = provision::credentials_route(message.settings, message.mail_from);
        let mut provisioned = Provisioned {
            relayed: split.internal.clone(),
            plans: Vec::with_capacity(lookups.len()),
            refused: Vec::new(),
        };
        for (rcpt, lookup) in split.external.iter().zip(lookups) {
            match (lookup, &route) {
                (Lookup::Found(plan), _) => provisioned.plans.push((rcpt.clone(), plan)),
                (Lookup::Unknown(address), _)
                    if message.settings.for_address(&address).first_contact
                        == crate::settings::FirstContact::MailboxCode =>
                {
                    let new = provision::plan_new_account(&self.keys, &address, None).await?;
                    provisioned
                        .plans
                        .push((rcpt.clone(), RecipientPlan::New(new)));
                }
                (Lookup::Unknown(address), Ok(credentials_to)) => {
                    let new = provision::plan_new_account(
                        &self.keys,
                        &address,
                        Some(credentials_to.clone()),
                    )
                    .await?;
                    provisioned
                        .plans
                        .push((rcpt.clone(), RecipientPlan::New(new)));
                }
                (Lookup::Unknown(_), Err(reason)) => provisioned.refused.push(RefusedRecipient {
                    rcpt: rcpt.clone(),
                    reason: RefusalReason::NoCredentials(*reason),
                }),
            }
        }
        Ok(provisioned)
    }

    async fn audit_new_accounts(&self, now: i64, addresses: &[String]) {
        for address in addresses {
            // Best effort: the audit trail must not turn an accepted mail into a retry.
            if let Err(e) = self
                .store
                .audit(now, "smtp", "account.created", Some(address), None, None)
                .await
            {
                tracing::warn!(error = %e, "audit write failed");
            }
        }
    }
}

/// The recipients refused by provisioning, then those whose copy came out too large.
fn refused_after_sealing(
    provisioned: &Provisioned,
    sealed: &[SealedCopy],
) -> Vec<RefusedRecipient> {
    let mut refused = provisioned.refused.clone();
    for ((rcpt, _), copy) in provisioned.plans.iter().zip(sealed) {
        if let CopyOutcome::TooLarge { size, max } = copy.outcome {
            tracing::info!(
                size,
                max,
                "carrier over carrier.max_size; recipient refused"
            );
            refused.push(RefusedRecipient {
                rcpt: rcpt.clone(),
                reason: RefusalReason::TooLarge { max },
            });
        }
    }
    refused
}

/// Everything the message writes, in one set: the relayed copy for internal recipients, the
/// new accounts with their credentials mails, one carrier and ledger row per sealed copy (and
/// the encrypted copy of a link delivery), and the bounce for refused recipients. A copy that
/// came out too large writes nothing, not even the account it would have created.
fn collect_writes(
    message: &MessageContext,
    branding: &Branding,
    provisioned: &Provisioned,
    sealed: Vec<SealedCopy>,
    refused: &[RefusedRecipient],
    subject: &str,
) -> (WriteSet, Accepted) {
    // One id for the message across its recipients (`sealpost message show|revoke`).
    let message_id = Uuid::new_v4().simple().to_string();
    let subject_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(subject.as_bytes()));
    let mut writes = WriteSet::default();
    if !provisioned.relayed.is_empty() {
        writes.enqueue(
            &Uuid::new_v4().simple().to_string(),
            kind::RELAY,
            message.mail_from,
            &provisioned.relayed,
            message.data.to_vec(),
            message.now,
            message.give_up_at,
        );
    }
    let mut accepted = Accepted {
        queue_id: message.queue_id.clone(),
        encrypted_for: Vec::new(),
        new_accounts: Vec::new(),
        relayed_to: provisioned.relayed.clone(),
        refused: refused.iter().map(|r| normalise_address(&r.rcpt)).collect(),
    };
    // The first carrier takes the id shown in the SMTP reply.
    let mut reply_id = provisioned
        .relayed
        .is_empty()
        .then(|| message.queue_id.clone());
    for ((rcpt, plan), copy) in provisioned.plans.iter().zip(sealed) {
        let CopyOutcome::Carrier { carrier, link } = copy.outcome else {
            continue;
        };
        let account_id = match plan {
            RecipientPlan::Existing { account_id, .. } => account_id.clone(),
            RecipientPlan::New(new) => {
                provision::write_new_account(
                    &mut writes,
                    message,
                    branding,
                    new,
                    &copy.envelope_id,
                    copy.expires_at,
                );
                accepted.new_accounts.push(new.address.clone());
                new.account_id.to_string()
            }
        };
        let id = reply_id
            .take()
            .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
        writes.enqueue(
            &id,
            kind::CARRIER,
            message.mail_from,
            std::slice::from_ref(rcpt),
            carrier,
            message.now,
            message.give_up_at,
        );
        writes.subject(MessageSubject {
            envelope_id: copy.envelope_id.clone(),
            subject_sha256: sealpost_crypto::report::subject_sha256(message.subject),
            subject: (message.settings.report_subject == ReportSubject::Clear)
                .then(|| message.subject.to_string()),
        });
        if let Some(kept) = link {
            writes.link_copy(NewLinkCopy {
                link_hash: kept.link_hash,
                envelope_id: copy.envelope_id.clone(),
                account_id: account_id.clone(),
                payload: kept.envelope,
                created_at: message.now,
                expires_at: kept.expires_at,
            });
        }
        let keep_subject = crate::address_domain(plan.address())
            .map_or(message.settings, |d| message.settings.for_domain(d))
            .keep_subject;
        writes.sealed(SealedEntry {
            entry: LedgerEntry {
                envelope_id: copy.envelope_id,
                sender: normalise_address(message.mail_from),
                recipient: plan.address().to_string(),
                account_id,
                created_at: message.now,
                first_opened_at: None,
            },
            message_id: message_id.clone(),
            queue_id: Some(id.clone()),
            wrapped_secret: Some(copy.wrapped_secret),
            expires_at: copy.expires_at,
            // The subject is kept only where it travels in clear in the carrier anyway.
            subject: keep_subject.then(|| subject.to_string()),
            subject_hash: Some(subject_hash.clone()),
        });
        accepted.encrypted_for.push(plan.address().to_string());
    }
    refusal::queue_bounce(&mut writes, message, refused);
    (writes, accepted)
}

/// Argon2 takes tens of milliseconds of CPU and 19 MiB: it runs on the [`crate::hashing`] threads.
pub async fn hash_off_executor(secret: Zeroizing<String>) -> Result<String, CoreError> {
    crate::hashing::run(move || sealpost_crypto::hash_secret(&secret))
        .await?
        .map_err(|_| CoreError::Hashing)
}

impl MessageHandler for Gateway {
    fn session_limits(&self) -> Option<(usize, usize)> {
        let settings = self.settings.get();
        Some((settings.max_message_size, settings.max_recipients))
    }

    async fn handle(&self, envelope: Envelope, data: Vec<u8>) -> Verdict {
        match self
            .accept(&envelope.mail_from, &envelope.rcpt_to, &data)
            .await
        {
            Ok(Outcome::Accepted(accepted)) => Verdict::Accepted(accepted.queue_id),
            Ok(Outcome::Refused { reason }) => Verdict::PermFail(reason),
            Err(CoreError::Store(StoreError::Conflict)) => {
                // Two messages created the same account at once; the retry finds it.
                Verdict::TempFail("Concurrent account creation, try again".to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "message not accepted");
                Verdict::TempFail("Local error in processing, try again later".to_string())
            }
        }
    }
}
