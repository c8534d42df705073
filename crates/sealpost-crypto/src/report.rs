//! Proof-of-delivery reports: a JSON document about one message (who sent it, to whom, what
//! happened to each copy and when), signed with the node's Ed25519 report key so that anyone
//! holding the public key can check it offline.
//!
//! The signed file is exactly
//!
//! ```text
//! {"report":<REPORT>,"signature":{"algorithm":"Ed25519","public_key":"<B64>","value":"<B64>"}}\n
//! ```
//!
//! where `<REPORT>` is the report document as emitted (pretty-printed JSON) and the signature
//! is Ed25519 over `"sealpost-report/1\n"` followed by the bytes of `<REPORT>`. Verification
//! re-serialises nothing: it takes the bytes of the `report` member as they stand in the file
//! (serde_json's `RawValue`), checks the signature over them, and also rebuilds the outer frame
//! around them and requires it to equal the file byte for byte, so a change anywhere — inside
//! the report, in the signature, the key or the whitespace around them — fails.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::keys::{KeyError, MasterKey};

/// The `format` member of every report this code writes.
pub const REPORT_FORMAT: &str = "sealpost-report/1";

/// Domain separation: what is signed is this prefix, then the report's bytes.
const SIGNING_PREFIX: &[u8] = b"sealpost-report/1\n";

const ALGORITHM: &str = "Ed25519";

/// Why a report does not verify. Each message is one line an operator can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// Not the JSON layout of a signed report (truncated, edited into invalid JSON, members
    /// missing or added).
    #[error("not a signed Sealpost report: {0}")]
    Malformed(String),
    /// Valid JSON, but bytes outside the signed `report` member differ from what was written.
    #[error("the file was changed outside the signed report (layout, whitespace or extra data)")]
    FrameAltered,
    /// The embedded public key is not a valid Ed25519 key.
    #[error("the embedded public key is not a valid Ed25519 key")]
    BadPublicKey,
    /// The signature member is not 64 bytes of base64.
    #[error("the signature is not a valid Ed25519 signature encoding")]
    BadSignatureEncoding,
    /// The signature does not match the report's bytes under the embedded key.
    #[error("signature check failed: the report was changed after it was signed")]
    SignatureMismatch,
    /// The report is signed correctly, but by another key than the expected one.
    #[error("signed by another key (fingerprint {found}), not the expected {expected}")]
    WrongKey { expected: String, found: String },
    /// The signed document is not of a format this version understands.
    #[error("unknown report format {0:?}")]
    UnknownFormat(String),
}

/// One event in the life of one copy (sealed, handed over, opened, revoked, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEvent {
    /// RFC 3339, UTC.
    pub at: String,
    pub kind: String,
    /// What the event records besides its kind (the next hop's reply, who revoked, the
    /// client address as configured); absent when there is nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One recipient's copy of the message and its events, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRecipient {
    pub address: String,
    /// The ledger id of this recipient's copy (hex).
    pub copy_id: String,
    pub events: Vec<ReportEvent>,
}

/// The report document (the signed part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDocument {
    pub format: String,
    /// The node that signed it (its configured host name).
    pub issuer: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub message_id: String,
    pub sender: String,
    /// The subject in clear, when `messages.report_subject = clear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// SHA-256 (hex) of the subject as received, when `messages.report_subject = hash`: it
    /// proves which subject was meant without the report disclosing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_sha256: Option<String>,
    pub recipients: Vec<ReportRecipient>,
}

/// SHA-256 of a subject, lower-case hex, as `subject_sha256` carries it.
pub fn subject_sha256(subject: &str) -> String {
    hex::encode(Sha256::digest(subject.as_bytes()))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureMember {
    algorithm: String,
    public_key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedFrame<'a> {
    #[serde(borrow)]
    report: &'a RawValue,
    signature: SignatureMember,
}

fn frame(report: &str, signature: &SignatureMember) -> Result<String, ReportError> {
    let signature =
        serde_json::to_string(signature).map_err(|e| ReportError::Malformed(e.to_string()))?;
    Ok(format!(
        "{{\"report\":{report},\"signature\":{signature}}}\n"
    ))
}

/// The node's Ed25519 report key. Zeroised on drop (ed25519-dalek's `zeroize` feature);
/// `Debug` shows only the public fingerprint.
pub struct ReportKey(SigningKey);

impl fmt::Debug for ReportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReportKey({})", self.public().fingerprint())
    }
}

impl ReportKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self::from_seed_key(&MasterKey::generate())
    }

    fn from_seed_key(seed: &MasterKey) -> Self {
        Self(SigningKey::from_bytes(seed.raw()))
    }

    /// The key from base64 of its 32-byte seed (the environment form).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Ok(Self::from_seed_key(&MasterKey::from_base64(text)?))
    }

    /// Loads the key file or creates it: the same format and the same atomic, mode-0600
    /// creation as the master key file (base64 of 32 random bytes, here the Ed25519 seed).
    /// Returns `(key, created)`.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        let (seed, created) = MasterKey::load_or_create(path)?;
        Ok((Self::from_seed_key(&seed), created))
    }

    pub fn public(&self) -> ReportPublicKey {
        ReportPublicKey(self.0.verifying_key())
    }

    /// Signs `document` and returns the whole signed file (see the module docs).
    pub fn sign(&self, document: &ReportDocument) -> Result<String, ReportError> {
        let report = serde_json::to_string_pretty(document)
            .map_err(|e| ReportError::Malformed(e.to_string()))?;
        let mut message = SIGNING_PREFIX.to_vec();
        message.extend_from_slice(report.as_bytes());
        let signature = self.0.sign(&message);
        frame(
            &report,
            &SignatureMember {
                algorithm: ALGORITHM.into(),
                public_key: self.public().to_base64(),
                value: STANDARD.encode(signature.to_bytes()),
            },
        )
    }
}

/// A report public key: what verifiers need, published in the admin UI and by
/// `sealpost message report-key`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReportPublicKey(VerifyingKey);

impl fmt::Debug for ReportPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReportPublicKey({})", self.fingerprint())
    }
}

impl ReportPublicKey {
    /// Parses base64 (44 characters) or hex (64 characters) of the 32 key bytes.
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| ReportError::BadPublicKey)?
        } else {
            STANDARD
                .decode(text)
                .map_err(|_| ReportError::BadPublicKey)?
        };
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ReportError::BadPublicKey)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| ReportError::BadPublicKey)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// `SHA256:` and the unpadded base64 of the key's SHA-256, as OpenSSH prints key
    /// fingerprints: short enough to read out on the phone.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }
}

/// A report whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedReport {
    pub document: ReportDocument,
    /// The key that signed it (the embedded one).
    pub signer: ReportPublicKey,
}

/// Checks a signed report file offline: its frame, its signature under the embedded key and,
/// when `expected` is given, that the embedded key is that one.
pub fn verify_report(
    file: &[u8],
    expected: Option<&ReportPublicKey>,
) -> Result<VerifiedReport, ReportError> {
    let text = std::str::from_utf8(file)
        .map_err(|_| ReportError::Malformed("the file is not UTF-8".into()))?;
    let signed: SignedFrame<'_> =
        serde_json::from_str(text).map_err(|e| ReportError::Malformed(e.to_string()))?;
    let report = signed.report.get();
    if frame(report, &signed.signature)? != text {
        return Err(ReportError::FrameAltered);
    }
    if signed.signature.algorithm != ALGORITHM {
        return Err(ReportError::Malformed(format!(
            "unknown signature algorithm {:?}",
            signed.signature.algorithm
        )));
    }
    let signer = ReportPublicKey::parse(&signed.signature.public_key)?;
    if let Some(expected) = expected
        && expected != &signer
    {
        return Err(ReportError::WrongKey {
            expected: expected.fingerprint(),
            found: signer.fingerprint(),
        });
    }
    let signature: [u8; 64] = STANDARD
        .decode(&signed.signature.value)
        .ok()
        .and_then(|b| b.as_slice().try_into().ok())
        .ok_or(ReportError::BadSignatureEncoding)?;
    let mut message = SIGNING_PREFIX.to_vec();
    message.extend_from_slice(report.as_bytes());
    signer
        .0
        .verify_strict(&message, &Signature::from_bytes(&signature))
        .map_err(|_| ReportError::SignatureMismatch)?;
    let document: ReportDocument =
        serde_json::from_str(report).map_err(|e| ReportError::Malformed(e.to_string()))?;
    if document.format != REPORT_FORMAT {
        return Err(ReportError::UnknownFormat(document.format));
    }
    Ok(VerifiedReport { document, signer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> ReportDocument {
        ReportDocument {
            format: REPORT_FORMAT.into(),
            issuer: "gw.bank.example".into(),
            generated_at: "2026-03-01T10:00:00Z".into(),
            message_id: "00112233445566778899aabbccddeeff".into(),
            sender: "advisor@bank.example".into(),
            subject: None,
            subject_sha256: Some(subject_sha256("Your mortgage")),
            recipients: vec![ReportRecipient {
                address: "customer@example.com".into(),
                copy_id: "00112233445566778899aabbccddeeff".into(),
                events: vec![
                    ReportEvent {
                        at: "2026-03-01T09:00:00Z".into(),
                        kind: "sealed".into(),
                        detail: None,
                    },
                    ReportEvent {
                        at: "2026-03-01T09:05:00Z".into(),
                        kind: "opened".into(),
                        detail: Some("192.0.2.0/24".into()),
                    },
                ],
            }],
        }
    }

    fn signed() -> (ReportKey, String) {
        let key = ReportKey::generate();
        let file = key.sign(&document()).expect("sign");
        (key, file)
    }

    #[test]
    fn a_signed_report_verifies_and_returns_its_document() {
        let (key, file) = signed();
        let verified = verify_report(file.as_bytes(), Some(&key.public())).expect("verifies");
        assert_eq!(verified.document, document());
        assert_eq!(verified.signer, key.public());
        assert!(file.ends_with("}\n"));
    }

    #[test]
    fn every_field_changed_after_signing_fails_the_signature() {
        let (_, file) = signed();
        let edits = [
            (
                "00112233445566778899aabbccddeeff",
                "00112233445566778899aabbccddeef0",
            ),
            ("advisor@bank.example", "advisor@evil.example"),
            ("customer@example.com", "customer@example.org"),
            ("2026-03-01T09:05:00Z", "2026-03-01T09:06:00Z"),
            ("\"opened\"", "\"bounced\""),
            ("192.0.2.0/24", "198.51.100.0/24"),
            ("gw.bank.example", "gw.bank.exampl3"),
            ("2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z"),
            (
                &subject_sha256("Your mortgage"),
                &subject_sha256("Your loan"),
            ),
        ];
        for (from, to) in edits {
            assert!(file.contains(from), "{from} in the report");
            let tampered = file.replacen(from, to, 1);
            assert_eq!(
                verify_report(tampered.as_bytes(), None).map(|_| ()),
                Err(ReportError::SignatureMismatch),
                "edit {from} -> {to}"
            );
        }
    }

    #[test]
    fn a_changed_signature_or_foreign_key_fails() {
        let (key, file) = signed();
        let frame: serde_json::Value = serde_json::from_str(&file).expect("json");
        let value = frame["signature"]["value"]
            .as_str()
            .expect("value")
            .to_string();
        let mut bytes = STANDARD.decode(&value).expect("b64");
        bytes[10] ^= 1;
        let tampered = file.replace(&value, &STANDARD.encode(&bytes));
        assert_eq!(
            verify_report(tampered.as_bytes(), None).map(|_| ()),
            Err(ReportError::SignatureMismatch)
        );
        let truncated = file.replace(&value, &value[..20]);
        assert_eq!(
            verify_report(truncated.as_bytes(), None).map(|_| ()),
            Err(ReportError::BadSignatureEncoding)
        );

        // Re-signed by someone else: the embedded key changes, so it verifies only without
        // an expected key, and fails against the node's.
        let other = ReportKey::generate();
        let forged = other.sign(&document()).expect("sign");
        assert!(verify_report(forged.as_bytes(), None).is_ok());
        assert!(matches!(
            verify_report(forged.as_bytes(), Some(&key.public())),
            Err(ReportError::WrongKey { .. })
        ));
        // Swapping only the embedded key breaks the signature.
        let swapped = file.replace(&key.public().to_base64(), &other.public().to_base64());
        assert_eq!(
            verify_report(swapped.as_bytes(), None).map(|_| ()),
            Err(ReportError::SignatureMismatch)
        );
    }

    #[test]
    fn any_single_changed_byte_fails() {
        let (_, file) = signed();
        let bytes = file.as_bytes();
        for i in 0..bytes.len() {
            let mut tampered = bytes.to_vec();
            // Keep the byte ASCII so most edits stay valid UTF-8 and reach the checks.
            tampered[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            assert!(
                verify_report(&tampered, None).is_err(),
                "byte {i} ({:?}) changed and still verified",
                bytes[i] as char
            );
        }
        let mut longer = file.clone();
        longer.push(' ');
        assert_eq!(
            verify_report(longer.as_bytes(), None).map(|_| ()),
            Err(ReportError::FrameAltered)
        );
        let reflowed = file.replacen("{\"report\":", "{ \"report\":", 1);
        assert_eq!(
            verify_report(reflowed.as_bytes(), None).map(|_| ()),
            Err(ReportError::FrameAltered)
        );
        assert!(matches!(
            verify_report(&bytes[..bytes.len() / 2], None),
            Err(ReportError::Malformed(_))
        ));
    }

    #[test]
    fn public_keys_parse_from_base64_and_hex_and_keys_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.key");
        let (key, created) = ReportKey::load_or_create(&path).expect("create");
        assert!(created);
        let (again, created) = ReportKey::load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(key.public(), again.public());
        let public = key.public();
        assert_eq!(ReportPublicKey::parse(&public.to_base64()), Ok(public));
        assert_eq!(ReportPublicKey::parse(&public.to_hex()), Ok(public));
        assert_eq!(
            ReportPublicKey::parse("not a key"),
            Err(ReportError::BadPublicKey)
        );
        assert!(public.fingerprint().starts_with("SHA256:"));
        assert!(
            !format!("{key:?}").contains(
                &*MasterKey::from_base64(&std::fs::read_to_string(&path).expect("read"))
                    .expect("seed")
                    .to_base64()
            )
        );
    }
}
