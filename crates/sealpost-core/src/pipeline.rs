//! The encryption pipeline: one inbound SMTP transaction in, queued outbound mails out.
//!
//! Every mail derived from one inbound message (carrier mails, credentials mails, relayed
//! copies) is written in one database transaction (shared with other sessions' messages by
//! the [`Committer`]); the SMTP `250` is given only after it commits, and any failure before
//! that answers `451` with nothing kept, so the sending MTA retries and no mail is lost or
//! half-processed.

use std::collections::HashMap;
use std::sync::Arc;

use sealpost_crypto::{KeyId, RecipientKey};
use sealpost_mime::inbound::{TriggerPolicy, is_flagged, original_headers, strip_trigger};
use sealpost_mime::{
    Branding, CarrierInput, CredentialsInput, CredentialsKind, build_carrier, build_credentials,
};
use sealpost_smtp::inbound::{Envelope, MessageHandler, Verdict};
use sealpost_store::{LedgerEntry, SealingRecipient, Store, StoreError};
use tokio::sync::Notify;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::committer::{Committer, WriteSet};
use crate::settings::CredentialsTo;
use crate::{CoreError, KeyRing, Settings, SettingsHandle, kind, normalise_address, unix_now};

/// What happened to one accepted message, for the SMTP reply and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub queue_id: String,
    pub encrypted_for: Vec<String>,
    pub new_accounts: Vec<String>,
    pub relayed_to: Vec<String>,
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

/// A recipient's key, resolved before the write transaction so the transaction only writes.
enum RecipientPlan {
    Existing {
        address: String,
        account_id: String,
        language: Option<String>,
        key_id: KeyId,
        key: RecipientKey,
    },
    New {
        address: String,
        account_id: Uuid,
        password: Zeroizing<String>,
        password_hash: String,
        key_id: KeyId,
        key: RecipientKey,
        wrapped: Vec<u8>,
    },
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

    /// Processes one inbound message; Ok only once everything derived from it is committed.
    pub async fn accept(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        data: &[u8],
    ) -> Result<Accepted, CoreError> {
        let settings = self.settings.get();
        let policy = TriggerPolicy {
            keywords: &settings.trigger_keywords,
            header: &settings.trigger_header,
        };
        let now = unix_now();
        let give_up_at = now + settings.retry_give_up_secs;
        let queue_id = Uuid::new_v4().simple().to_string();

        if !is_flagged(data, &policy) {
            let mut writes = WriteSet::default();
            writes.enqueue(
                &queue_id,
                kind::RELAY,
                mail_from,
                rcpt_to,
                data.to_vec(),
                now,
                give_up_at,
            );
            self.committer.commit(writes).await?;
            self.delivery_wake.notify_one();
            crate::metrics::record(&self.store, crate::metrics::PASSED, rcpt_to.len() as i64);
            return Ok(Accepted {
                queue_id,
                encrypted_for: Vec::new(),
                new_accounts: Vec::new(),
                relayed_to: rcpt_to.to_vec(),
            });
        }

        let (internal, external): (Vec<String>, Vec<String>) = rcpt_to
            .iter()
            .cloned()
            .partition(|r| settings.is_internal(&normalise_address(r)));
        let mut external_unique: Vec<String> = Vec::new();
        for r in external {
            let n = normalise_address(&r);
            if !external_unique.iter().any(|e| normalise_address(e) == n) {
                external_unique.push(r);
            }
        }

        let stripped = strip_trigger(data, &policy);
        let original = original_headers(&stripped);
        let normalised: Vec<String> = external_unique
            .iter()
            .map(|r| normalise_address(r))
            .collect();
        let plans: Vec<(String, RecipientPlan)> = external_unique
            .iter()
            .cloned()
            .zip(self.plan_recipients(&normalised).await?)
            .collect();

        let branding = Branding {
            org_name: settings.org_name.clone(),
            accent_color: settings.accent_color.clone(),
            footer: String::new(),
        };
        // Seal and build every carrier before the write transaction: on SQLite the transaction
        // holds the database's single write lock, so it should only write. Compression and
        // encryption run on a blocking thread, off the async executor.
        let sealing: Vec<(String, String, String, KeyId, RecipientKey)> = plans
            .iter()
            .map(|(rcpt, plan)| match plan {
                RecipientPlan::Existing {
                    address,
                    language,
                    key_id,
                    key,
                    ..
                } => (
                    rcpt.clone(),
                    address.clone(),
                    language
                        .clone()
                        .unwrap_or_else(|| settings.default_language.clone()),
                    *key_id,
                    key.clone(),
                ),
                RecipientPlan::New {
                    address,
                    key_id,
                    key,
                    ..
                } => (
                    rcpt.clone(),
                    address.clone(),
                    settings.default_language.clone(),
                    *key_id,
                    key.clone(),
                ),
            })
            .collect();
        let carriers = {
            let settings = settings.clone();
            let branding = branding.clone();
            let hostname = self.hostname.clone();
            tokio::task::spawn_blocking(move || -> Result<Vec<(String, Vec<u8>)>, CoreError> {
                // Compressed once; only the encryption is per recipient.
                let prepared = sealpost_crypto::prepare(&stripped)?;
                sealing
                    .iter()
                    .map(|(rcpt, address, lang, key_id, key)| {
                        let (header, sealed) =
                            sealpost_crypto::seal_prepared(key, *key_id, address, now, &prepared)?;
                        let payload = sealpost_crypto::encode_payload(&sealed);
                        let carrier = build_carrier(&CarrierInput {
                            original: &original,
                            recipient: rcpt,
                            payload_b64: &payload,
                            public_url: &settings.public_url,
                            lang,
                            branding: &branding,
                            hostname: &hostname,
                        });
                        Ok((header.message_id_hex(), carrier))
                    })
                    .collect()
            })
            .await
            .map_err(|_| CoreError::Join)??
        };

        let mut writes = WriteSet::default();
        if !internal.is_empty() {
            let id = Uuid::new_v4().simple().to_string();
            writes.enqueue(
                &id,
                kind::RELAY,
                mail_from,
                &internal,
                data.to_vec(),
                now,
                give_up_at,
            );
        }
        let mut accepted = Accepted {
            queue_id: queue_id.clone(),
            encrypted_for: Vec::new(),
            new_accounts: Vec::new(),
            relayed_to: internal.clone(),
        };
        for (index, ((rcpt, plan), (envelope_id, carrier))) in
            plans.iter().zip(carriers).enumerate()
        {
            let (address, account_id) = match plan {
                RecipientPlan::Existing {
                    address,
                    account_id,
                    ..
                } => (address, account_id.clone()),
                RecipientPlan::New {
                    address,
                    account_id,
                    password,
                    password_hash,
                    wrapped,
                    ..
                } => {
                    let id = account_id.to_string();
                    self.create_account(
                        &mut writes,
                        &settings,
                        &branding,
                        address,
                        &id,
                        password,
                        password_hash,
                        wrapped,
                        mail_from,
                        now,
                        give_up_at,
                    );
                    accepted.new_accounts.push(address.clone());
                    (address, id)
                }
            };
            // The first carrier takes the id shown in the SMTP reply.
            let id = if index == 0 && internal.is_empty() {
                queue_id.clone()
            } else {
                Uuid::new_v4().simple().to_string()
            };
            writes.enqueue(
                &id,
                kind::CARRIER,
                mail_from,
                std::slice::from_ref(rcpt),
                carrier,
                now,
                give_up_at,
            );
            writes.ledger(LedgerEntry {
                envelope_id,
                sender: normalise_address(mail_from),
                recipient: address.clone(),
                account_id: account_id.clone(),
                created_at: now,
                first_opened_at: None,
            });
            accepted.encrypted_for.push(address.clone());
        }
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
        for address in &accepted.new_accounts {
            // Best effort: the audit trail must not turn an accepted mail into a retry.
            if let Err(e) = self
                .store
                .audit(now, "smtp", "account.created", Some(address), None, None)
                .await
            {
                tracing::warn!(error = %e, "audit write failed");
            }
        }
        Ok(accepted)
    }

    /// Resolves every recipient's account and key with one query (a message to ten people
    /// must not cost twenty round trips); addresses without an account get a new one planned.
    async fn plan_recipients(&self, addresses: &[String]) -> Result<Vec<RecipientPlan>, CoreError> {
        let mut known: HashMap<String, SealingRecipient> = self
            .store
            .sealing_recipients(addresses)
            .await?
            .into_iter()
            .map(|r| (normalise_address(&r.address), r))
            .collect();
        let mut plans = Vec::with_capacity(addresses.len());
        for address in addresses {
            let plan = match known.remove(address) {
                Some(found) => {
                    let (version, wrapped) = found
                        .key
                        .ok_or_else(|| CoreError::MissingKey(found.account_id.clone()))?;
                    let (key_id, key) =
                        self.keys
                            .unwrap_stored(&found.account_id, version, &wrapped)?;
                    RecipientPlan::Existing {
                        address: found.address,
                        account_id: found.account_id,
                        language: found.language,
                        key_id,
                        key,
                    }
                }
                None => self.plan_new_account(address).await?,
            };
            plans.push(plan);
        }
        Ok(plans)
    }

    async fn plan_new_account(&self, address: &str) -> Result<RecipientPlan, CoreError> {
        let account_id = Uuid::new_v4();
        let password = sealpost_crypto::generate_password();
        let password_hash = hash_off_executor(password.clone()).await?;
        let (key_id, key, wrapped) = self.keys.new_account_key(account_id);
        Ok(RecipientPlan::New {
            address: address.to_string(),
            account_id,
            password,
            password_hash,
            key_id,
            key,
            wrapped,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn create_account(
        &self,
        writes: &mut WriteSet,
        settings: &Settings,
        branding: &Branding,
        address: &str,
        account_id: &str,
        password: &str,
        password_hash: &str,
        wrapped: &[u8],
        mail_from: &str,
        now: i64,
        give_up_at: i64,
    ) {
        let sender = normalise_address(mail_from);
        writes.account(
            account_id,
            address,
            password_hash,
            (!sender.is_empty()).then_some(sender.as_str()),
            now,
            Some(now + settings.account_validity_days * 86_400),
            wrapped,
        );
        let to = match &settings.credentials_to {
            CredentialsTo::Sender => sender.clone(),
            CredentialsTo::Address(address) => address.clone(),
        };
        if to.is_empty() {
            // A null sender (a bounce) cannot receive credentials; an admin reset helps.
            tracing::warn!(account = %account_id, "new account without a sender to notify");
            return;
        }
        let mail = build_credentials(&CredentialsInput {
            kind: CredentialsKind::FirstUse,
            from: &settings.notification_from,
            to: &to,
            recipient: address,
            password,
            public_url: &settings.public_url,
            lang: &settings.default_language,
            branding,
            hostname: &self.hostname,
        });
        let id = Uuid::new_v4().simple().to_string();
        writes.enqueue(
            &id,
            kind::CREDENTIALS,
            &settings.notification_from,
            std::slice::from_ref(&to),
            mail,
            now,
            give_up_at,
        );
    }
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
            Ok(accepted) => Verdict::Accepted(accepted.queue_id),
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
