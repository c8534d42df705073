//! The sealing step: one envelope and one carrier mail per external recipient, built before
//! the write transaction (on SQLite it holds the database's single write lock, so it should
//! only write) and off the async executor.
//!
//! Here the recipient domain's delivery profile is applied, with the size guard: a carrier
//! above `carrier.max_size` switches to a link where `delivery.link_fallback` allows it, and
//! is otherwise not built at all (the sender gets a bounce instead, see [`super::refusal`]).

use sealpost_crypto::{KeyId, RecipientKey};
use sealpost_mime::inbound::{InboundHeader, OriginalHeaders, TriggerPolicy};
use sealpost_mime::{
    Branding, CarrierDelivery, CarrierInput, CarrierNotes, FirstContact, build_carrier,
};

use crate::settings::DeliveryProfile;
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
    pub delivery: DeliveryPlan,
    /// How the recipient gets in the first time.
    pub first_contact: FirstContact,
    /// The recipient's personal security phrase, for the carrier's notes.
    pub security_phrase: Option<String>,
    /// When this copy expires (`X-Sealpost-Expires` or `messages.expiry_days`).
    pub expires_at: Option<i64>,
}

/// The delivery settings of a recipient's domain.
#[derive(Debug, Clone)]
pub(super) struct DeliveryPlan {
    /// `delivery.profile`.
    pub profile: DeliveryProfile,
    /// `delivery.link_fallback`: an oversized carrier may switch to a link.
    pub link_fallback: bool,
    /// `carrier.max_size`, bytes.
    pub max_size: usize,
    /// When a link copy made now expires (`delivery.link_days` from now).
    pub link_expires_at: i64,
}

impl DeliveryPlan {
    pub fn for_settings(settings: &Settings, now: i64) -> Self {
        DeliveryPlan {
            profile: settings.delivery_profile,
            link_fallback: settings.link_fallback,
            max_size: settings.carrier_max_size,
            link_expires_at: now + i64::from(settings.link_days) * 86_400,
        }
    }
}

/// One recipient's sealed copy.
pub(super) struct SealedCopy {
    /// The envelope's message id, the ledger's key.
    pub envelope_id: String,
    /// Its message secret (format version 2), wrapped under the master key for the ledger.
    pub wrapped_secret: Vec<u8>,
    pub expires_at: Option<i64>,
    /// What is handed on for this recipient.
    pub outcome: CopyOutcome,
}

pub(super) enum CopyOutcome {
    /// The carrier to queue, with the encrypted copy to keep under the link profile.
    Carrier {
        carrier: Vec<u8>,
        link: Option<KeptCopy>,
    },
    /// The carrier would exceed `carrier.max_size` (its smallest form was `size` bytes) and
    /// may not switch to a link: nothing is queued, the sender gets a bounce.
    TooLarge { size: usize, max: usize },
}

/// The envelope kept on the server for a `/m/{id}` link, as sealed (ciphertext).
pub(super) struct KeptCopy {
    /// SHA-256 (hex) of the link id; only the carrier has the id itself.
    pub link_hash: String,
    pub envelope: Vec<u8>,
    pub expires_at: i64,
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
    /// `carrier.auto_open`: secure.htm submits itself on load.
    pub auto_open: bool,
    /// The inbound Message-ID with angle brackets: the carriers refer to it.
    pub original_message_id: Option<String>,
}

/// The carrier's delivery for a domain's `delivery.profile`.
pub(crate) fn carrier_delivery(profile: DeliveryProfile) -> CarrierDelivery {
    match profile {
        DeliveryProfile::Attachment => CarrierDelivery::Attachment,
        DeliveryProfile::Datafile => CarrierDelivery::Datafile,
        // Only sealing from SMTP keeps link copies (pipeline::deliver); other carriers (the
        // portal reply's copy) attach secure.htm.
        DeliveryProfile::Link => CarrierDelivery::Attachment,
    }
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
/// blocking thread.
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
                let envelope_id = header.message_id_hex();
                let build = |delivery: CarrierDelivery| {
                    build_carrier(&CarrierInput {
                        original,
                        recipient: &job.rcpt,
                        payload_b64: &payload,
                        public_url: &common.public_url,
                        lang: &job.language,
                        branding: &common.branding,
                        hostname: &common.hostname,
                        notes: &CarrierNotes {
                            ledger_id: Some(envelope_id.clone()),
                            delivery,
                            first_contact: job.first_contact,
                            security_phrase: job.security_phrase.clone(),
                            expires_at: job.expires_at,
                            auto_open: common.auto_open,
                            original_message_id: common.original_message_id.clone(),
                        },
                    })
                };
                let outcome = deliver(&job.delivery, &common.public_url, sealed, build);
                Ok(SealedCopy {
                    envelope_id,
                    wrapped_secret,
                    expires_at: job.expires_at,
                    outcome,
                })
            })
            .collect()
    })
    .await
    .map_err(|_| CoreError::Join)?
}

/// Applies the profile and the size guard: builds the carrier (`build` renders one for a
/// delivery) and, for a link, the copy to keep.
fn deliver(
    plan: &DeliveryPlan,
    public_url: &str,
    envelope: Vec<u8>,
    build: impl Fn(CarrierDelivery) -> Vec<u8>,
) -> CopyOutcome {
    let fits = |carrier: &Vec<u8>| carrier.len() <= plan.max_size;
    let build = &build;
    // Called at most once, on one of the paths below: takes the envelope without a copy.
    let link = move |first_try_attached: bool| {
        let (id, link_hash) = sealpost_crypto::new_token();
        let url = format!("{}/m/{id}", public_url.trim().trim_end_matches('/'));
        let mut carrier = Vec::new();
        if first_try_attached {
            // secure.htm stays attached as the durable fallback while the carrier fits.
            carrier = build(CarrierDelivery::Link {
                url: url.clone(),
                attach: true,
            });
        }
        if carrier.is_empty() || !fits(&carrier) {
            carrier = build(CarrierDelivery::Link { url, attach: false });
        }
        if !fits(&carrier) {
            return CopyOutcome::TooLarge {
                size: carrier.len(),
                max: plan.max_size,
            };
        }
        CopyOutcome::Carrier {
            carrier,
            link: Some(KeptCopy {
                link_hash,
                envelope,
                expires_at: plan.link_expires_at,
            }),
        }
    };
    let delivery = match plan.profile {
        DeliveryProfile::Link => return link(true),
        DeliveryProfile::Attachment => CarrierDelivery::Attachment,
        DeliveryProfile::Datafile => CarrierDelivery::Datafile,
    };
    let carrier = build(delivery);
    if fits(&carrier) {
        CopyOutcome::Carrier {
            carrier,
            link: None,
        }
    } else if plan.link_fallback {
        // The attached form is what is too large: the link goes alone.
        link(false)
    } else {
        CopyOutcome::TooLarge {
            size: carrier.len(),
            max: plan.max_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(profile: DeliveryProfile, link_fallback: bool, max_size: usize) -> DeliveryPlan {
        DeliveryPlan {
            profile,
            link_fallback,
            max_size,
            link_expires_at: 1_000,
        }
    }

    /// A stand-in carrier whose size says what was built: 100 bytes with an attachment, 10
    /// without (a link alone).
    fn fake_carrier(delivery: CarrierDelivery) -> Vec<u8> {
        match delivery {
            CarrierDelivery::Link { attach: false, .. } => vec![b'l'; 10],
            _ => vec![b'a'; 100],
        }
    }

    fn link_of(outcome: &CopyOutcome) -> Option<(&Vec<u8>, &KeptCopy)> {
        match outcome {
            CopyOutcome::Carrier {
                carrier,
                link: Some(link),
            } => Some((carrier, link)),
            _ => None,
        }
    }

    #[test]
    fn the_link_profile_keeps_the_envelope_and_attaches_while_it_fits() {
        let envelope = b"SPX envelope".to_vec();
        let out = deliver(
            &plan(DeliveryProfile::Link, false, 100),
            "https://p.example/",
            envelope.clone(),
            fake_carrier,
        );
        let (carrier, kept) = link_of(&out).expect("a link copy");
        assert_eq!(carrier.len(), 100, "secure.htm stays attached");
        assert_eq!(kept.envelope, envelope, "the sealed envelope as it is");
        assert_eq!(kept.expires_at, 1_000);
        assert_eq!(kept.link_hash.len(), 64);

        let out = deliver(
            &plan(DeliveryProfile::Link, false, 99),
            "https://p.example",
            envelope,
            fake_carrier,
        );
        let (carrier, _) = link_of(&out).expect("a link copy");
        assert_eq!(
            carrier.len(),
            10,
            "too large with secure.htm: the link alone"
        );
    }

    #[test]
    fn the_link_url_is_under_the_public_url_with_an_unguessable_id() {
        let urls = std::sync::Mutex::new(Vec::new());
        let record = |delivery: CarrierDelivery| {
            if let CarrierDelivery::Link { url, .. } = &delivery {
                urls.lock().unwrap().push(url.clone());
            }
            fake_carrier(delivery)
        };
        let out = deliver(
            &plan(DeliveryProfile::Link, false, 100),
            "https://p.example/",
            vec![1],
            record,
        );
        let (_, kept) = link_of(&out).unwrap();
        let url = urls.lock().unwrap()[0].clone();
        let id = url
            .strip_prefix("https://p.example/m/")
            .expect("{public_url}/m/{id}");
        assert_eq!(id.len(), 43, "256 bits, base64url");
        assert_eq!(kept.link_hash, sealpost_crypto::hash_token(id));
    }

    #[test]
    fn an_oversized_carrier_switches_to_a_link_only_where_allowed() {
        for profile in [DeliveryProfile::Attachment, DeliveryProfile::Datafile] {
            let fits = deliver(
                &plan(profile, false, 100),
                "https://p",
                vec![1],
                fake_carrier,
            );
            assert!(matches!(fits, CopyOutcome::Carrier { link: None, .. }));

            let bounced = deliver(
                &plan(profile, false, 99),
                "https://p",
                vec![1],
                fake_carrier,
            );
            assert!(matches!(
                bounced,
                CopyOutcome::TooLarge { size: 100, max: 99 }
            ));

            let linked = deliver(&plan(profile, true, 99), "https://p", vec![1], fake_carrier);
            let (carrier, _) = link_of(&linked).expect("switched to a link");
            assert_eq!(carrier.len(), 10);
        }
        // Not even the link alone fits: bounced, under every profile.
        for profile in [DeliveryProfile::Attachment, DeliveryProfile::Link] {
            let out = deliver(&plan(profile, true, 9), "https://p", vec![1], fake_carrier);
            assert!(matches!(out, CopyOutcome::TooLarge { size: 10, max: 9 }));
        }
    }

    #[test]
    fn delivery_follows_the_profile() {
        assert_eq!(
            carrier_delivery(DeliveryProfile::Attachment),
            CarrierDelivery::Attachment
        );
        assert_eq!(
            carrier_delivery(DeliveryProfile::Datafile),
            CarrierDelivery::Datafile
        );
    }

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
