//! The sealing step: one envelope and one carrier mail per external recipient, built before
//! the write transaction (on SQLite it holds the database's single write lock, so it should
//! only write) and off the async executor.

use sealpost_crypto::{KeyId, RecipientKey};
use sealpost_mime::inbound::{InboundHeader, OriginalHeaders, TriggerPolicy};
use sealpost_mime::{Branding, CarrierInput, CarrierNotes, build_carrier};

use crate::{CoreError, KeyRing, Settings};

/// What sealing needs of one recipient, owned so it can move to the blocking thread.
pub(super) struct SealJob {
    /// The recipient as given in RCPT TO: the carrier's fallback `To:`.
    pub rcpt: String,
    /// The account address the envelope is sealed to.
    pub address: String,
    pub language: String,
    pub key_id: KeyId,
    pub key: RecipientKey,
    /// The carrier shows the real subject (`mail.keep_subject` for the recipient's domain);
    /// else the neutral one.
    pub keep_subject: bool,
    /// When this copy expires (`X-Sealpost-Expires` or `messages.expiry_days`).
    pub expires_at: Option<i64>,
}

/// One recipient's sealed copy.
pub(super) struct SealedCopy {
    /// The envelope's message id, the ledger's key.
    pub envelope_id: String,
    /// Its message secret (format version 2), wrapped under the master key for the ledger.
    pub wrapped_secret: Vec<u8>,
    pub expires_at: Option<i64>,
    pub carrier: Vec<u8>,
}

/// Everything the carriers of one message share.
pub(super) struct CarrierCommon {
    /// The header values as the sender wrote them (trigger removed).
    pub headers: OriginalHeaders,
    /// The same with the neutral subject, for domains that do not keep the subject.
    pub neutral_headers: OriginalHeaders,
    pub public_url: String,
    pub branding: Branding,
    pub hostname: String,
}

/// The header values the carrier shows. The carrier travels in clear, so with
/// `mail.keep_subject` off its Subject is the neutral one (an empty subject makes the carrier
/// builder use the locale's); the sealed message keeps the real one.
pub(super) fn carrier_headers(
    header: &InboundHeader,
    policy: &TriggerPolicy,
    keep_subject: bool,
    settings: &Settings,
) -> OriginalHeaders {
    let mut headers = header.carrier_headers(policy);
    if !keep_subject {
        headers.subject = settings.neutral_subject.trim().to_string();
    }
    headers
}

/// Compresses `message` once and seals it for every job, each with its carrier; runs on a
/// blocking thread. Every envelope is format version 2 with a fresh message secret, which
/// goes to the ledger wrapped under the master key (message control: revocation and expiry
/// delete it).
pub(super) async fn seal_all(
    message: Vec<u8>,
    jobs: Vec<SealJob>,
    common: CarrierCommon,
    keys: KeyRing,
    now: i64,
) -> Result<Vec<SealedCopy>, CoreError> {
    tokio::task::spawn_blocking(move || -> Result<Vec<SealedCopy>, CoreError> {
        // Compressed once; only the encryption is per recipient.
        let prepared = sealpost_crypto::prepare(&message)?;
        jobs.iter()
            .map(|job| {
                let secret = sealpost_crypto::MessageSecret::generate();
                let (header, sealed) = sealpost_crypto::seal_prepared_v2(
                    &job.key,
                    &secret,
                    job.key_id,
                    &job.address,
                    now,
                    &prepared,
                )?;
                let wrapped_secret = keys.wrap_message_secret(&header.message_id, &secret);
                let payload = sealpost_crypto::encode_payload(&sealed);
                let original = if job.keep_subject {
                    &common.headers
                } else {
                    &common.neutral_headers
                };
                let carrier = build_carrier(&CarrierInput {
                    original,
                    recipient: &job.rcpt,
                    payload_b64: &payload,
                    public_url: &common.public_url,
                    lang: &job.language,
                    branding: &common.branding,
                    hostname: &common.hostname,
                    notes: &CarrierNotes {
                        ledger_id: Some(header.message_id_hex()),
                        expires_at: job.expires_at,
                        ..CarrierNotes::default()
                    },
                });
                Ok(SealedCopy {
                    envelope_id: header.message_id_hex(),
                    wrapped_secret,
                    expires_at: job.expires_at,
                    carrier,
                })
            })
            .collect()
    })
    .await
    .map_err(|_| CoreError::Join)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_neutral_subject_replaces_the_real_one_only_when_keep_subject_is_off() {
        let keywords = vec!["[secure]".to_string()];
        let policy = TriggerPolicy {
            keywords: &keywords,
            header: "X-Sealpost-Encrypt",
        };
        let raw = b"From: a@bank.example\r\nSubject: Kredit 4711 [secure]\r\n\r\nbody\r\n";
        let header = InboundHeader::parse(raw);
        let defaults = Settings::default();
        assert_eq!(
            carrier_headers(&header, &policy, true, &defaults).subject,
            "Kredit 4711"
        );
        assert_eq!(
            carrier_headers(&header, &policy, false, &defaults).subject,
            ""
        );
        let own = Settings {
            neutral_subject: "Nachricht Ihrer Bank".into(),
            ..Settings::default()
        };
        assert_eq!(
            carrier_headers(&header, &policy, false, &own).subject,
            "Nachricht Ihrer Bank"
        );
    }
}
