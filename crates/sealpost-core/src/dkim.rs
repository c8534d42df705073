//! DKIM signing of the mails Sealpost writes (RFC 6376; RSA-SHA256, and Ed25519-SHA256 per
//! RFC 8463), with Stalwart's `mail-auth`. One signature per configured key, relaxed/relaxed,
//! the usual headers over-signed. Keys are loaded once at boot from files that must be private
//! (0600, like the master key); the file text and its DER are zeroised after parsing.
//!
//! Which mails are signed is decided by the delivery worker (see [`signs_kind`]): every kind
//! Sealpost writes, never mail relayed unchanged.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use sealpost_mime::MailKind;
use zeroize::Zeroizing;

/// Headers covered by every signature. Each is named twice: `mail-auth` signs every instance
/// of a listed header and names one more for the second listing, so a header that is present
/// is over-signed (nobody can add a second `From:` or `Subject:` without breaking the
/// signature) and one that is absent cannot be added either (RFC 6376 §8.15).
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Language",
    "Auto-Submitted",
    "X-Sealpost-Kind",
    "X-Sealpost-Message",
];

/// RSA keys this size or larger only (RFC 8301 requires 1024, large receivers 2048).
pub const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// A key file that cannot be used; the text names the file and why, never its content.
    #[error("DKIM key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("DKIM configuration: {0}")]
    Config(String),
    #[error("DKIM signing failed: {0}")]
    Sign(String),
    #[error("DKIM key generation failed: {0}")]
    Generate(String),
}

/// The two signature algorithms Sealpost signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

impl DkimAlgorithm {
    /// The `k=` tag of the DNS record.
    pub const fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key_type())
    }
}

impl FromStr for DkimAlgorithm {
    type Err = DkimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rsa" => Ok(DkimAlgorithm::Rsa),
            "ed25519" => Ok(DkimAlgorithm::Ed25519),
            other => Err(DkimError::Config(format!(
                "algorithm {other:?}: use \"rsa\" or \"ed25519\""
            ))),
        }
    }
}

/// Whether the delivery worker signs a queue item of this kind: every kind Sealpost writes
/// (each is a [`MailKind`], whose text is also the queue kind), never anything else — in
/// particular not `relay`, mail passed through unchanged, which is someone else's to sign.
pub fn signs_kind(queue_kind: &str) -> bool {
    MailKind::from_header(queue_kind).is_some()
}

/// One signing key as configured: its algorithm, its selector, where it came from (a file
/// path, for errors) and its PEM text.
pub struct KeySpec<'a> {
    pub algorithm: DkimAlgorithm,
    pub selector: &'a str,
    pub source: &'a str,
    pub pem: &'a str,
}

/// Signs with one or two keys (RSA and/or Ed25519) for one domain, one selector per key.
pub struct Signer {
    domain: String,
    keys: Vec<(DkimAlgorithm, String, DkimSigner<DkimKey, Done>)>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.domain)
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|(a, s, _)| format!("{a} {s}"))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Signer {
    /// A signer from PEM texts (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`), each of
    /// the algorithm its spec names.
    pub fn from_pems(domain: &str, keys: &[KeySpec<'_>]) -> Result<Self, DkimError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&domain) {
            return Err(DkimError::Config(format!(
                "domain {domain:?} is not a domain name"
            )));
        }
        if keys.is_empty() {
            return Err(DkimError::Config(
                "no key: give key_file (RSA) and/or ed25519_key_file".into(),
            ));
        }
        let mut signers = Vec::with_capacity(keys.len());
        for spec in keys {
            let selector = spec.selector.trim().to_string();
            if !is_dns_name(&selector) {
                return Err(DkimError::Config(format!(
                    "selector {selector:?} is not a DNS name"
                )));
            }
            let key = parse_key(spec.algorithm, spec.pem).map_err(|reason| DkimError::Key {
                path: spec.source.to_string(),
                reason,
            })?;
            let signer = DkimSigner::from_key(key)
                .domain(domain.clone())
                .selector(selector.clone())
                .headers(SIGNED_HEADERS.iter().chain(SIGNED_HEADERS).copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed);
            signers.push((spec.algorithm, selector, signer));
        }
        Ok(Signer {
            domain,
            keys: signers,
        })
    }

    /// Loads key files, `(algorithm, selector, path)`, each readable by its owner only; then
    /// as [`Signer::from_pems`].
    pub fn load(domain: &str, files: &[(DkimAlgorithm, &str, &Path)]) -> Result<Self, DkimError> {
        let mut texts = Vec::with_capacity(files.len());
        for (algorithm, selector, path) in files {
            let shown = path.display().to_string();
            let text = read_private_file(path).map_err(|reason| DkimError::Key {
                path: shown.clone(),
                reason,
            })?;
            texts.push((*algorithm, *selector, shown, text));
        }
        let specs: Vec<KeySpec<'_>> = texts
            .iter()
            .map(|(algorithm, selector, source, pem)| KeySpec {
                algorithm: *algorithm,
                selector,
                source,
                pem,
            })
            .collect();
        Signer::from_pems(domain, &specs)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The keys' algorithms and selectors, in signing order.
    pub fn keys(&self) -> Vec<(DkimAlgorithm, &str)> {
        self.keys.iter().map(|(a, s, _)| (*a, s.as_str())).collect()
    }

    /// `message` with one `DKIM-Signature:` header per key in front of it.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let mut headers = String::new();
        for (_, _, signer) in &self.keys {
            let signature = signer
                .sign(message)
                .map_err(|e| DkimError::Sign(e.to_string()))?;
            headers.push_str(&signature.to_header());
        }
        let mut out = Vec::with_capacity(headers.len() + message.len());
        out.extend_from_slice(headers.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn parse_key(algorithm: DkimAlgorithm, pem: &str) -> Result<DkimKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "no PEM private key (PKCS#1 or PKCS#8) in the file".to_string())?;
    match algorithm {
        DkimAlgorithm::Rsa => match &der {
            PrivateKeyDer::Pkcs1(_) | PrivateKeyDer::Pkcs8(_) => {
                let key = RsaKey::<Sha256>::from_key_der(der).map_err(|_| {
                    format!("not an RSA private key of {RSA_BITS} to 4096 bits (an Ed25519 key belongs in ed25519_key_file)")
                })?;
                Ok(DkimKey::Rsa(key))
            }
            _ => Err("not an RSA private key".into()),
        },
        DkimAlgorithm::Ed25519 => match &der {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                // "Maybe unchecked" accepts PKCS#8 v1 too (no public key inside), as
                // `openssl genpkey -algorithm ed25519` writes it.
                let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der())
                    .map_err(|_| "not an Ed25519 private key (PKCS#8)".to_string())?;
                Ok(DkimKey::Ed25519(key))
            }
            _ => Err("not an Ed25519 private key (PKCS#8 \"PRIVATE KEY\")".into()),
        },
    }
}

/// The file's text, if only its owner may read it (as the master key).
fn read_private_file(path: &Path) -> Result<Zeroizing<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets other users read it; chmod 600",
            mode & 0o777
        ));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| e.to_string())?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err("not a PEM text file".into()),
    }
}

/// Checks a signing domain and a selector as [`Signer::from_pems`] does.
pub fn check_names(domain: &str, selector: &str) -> Result<(), DkimError> {
    if !is_dns_name(domain) {
        return Err(DkimError::Config(format!(
            "domain {domain:?} is not a domain name"
        )));
    }
    if !is_dns_name(selector) {
        return Err(DkimError::Config(format!(
            "selector {selector:?} is not a DNS name"
        )));
    }
    Ok(())
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, none empty or over 63.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A newly generated key: the private key as PEM (zeroised on drop) and the DNS record.
pub struct GeneratedKey {
    pub algorithm: DkimAlgorithm,
    pub private_pem: Zeroizing<String>,
    /// Base64 of the public key as the `p=` tag wants it (SubjectPublicKeyInfo for RSA, the
    /// raw 32 bytes for Ed25519).
    pub public_key_b64: String,
}

impl GeneratedKey {
    /// The value of the TXT record, e.g. `v=DKIM1; k=rsa; p=MIIB…`.
    pub fn txt_value(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.key_type(),
            self.public_key_b64
        )
    }

    /// The whole record in zone-file form, the TXT value split into quoted strings of at
    /// most 255 characters (RFC 7208 §3.3 style; one DNS character-string's limit).
    pub fn dns_record(&self, domain: &str, selector: &str) -> String {
        let value = self.txt_value();
        let parts: Vec<String> = value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!(
            "{selector}._domainkey.{} IN TXT {}",
            domain.trim_end_matches('.'),
            parts.join(" ")
        )
    }
}

/// Generates a key: RSA-2048 (PKCS#1 PEM) or Ed25519 (PKCS#8 PEM).
pub fn generate(algorithm: DkimAlgorithm) -> Result<GeneratedKey, DkimError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match algorithm {
        DkimAlgorithm::Rsa => {
            use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
            use rsa::pkcs8::EncodePublicKey;
            let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let pem = private
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let public = private
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            Ok(GeneratedKey {
                algorithm,
                private_pem: Zeroizing::new(pem.to_string()),
                public_key_b64: b64.encode(public.as_bytes()),
            })
        }
        DkimAlgorithm::Ed25519 => {
            let pkcs8 = Zeroizing::new(
                Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Generate(e.to_string()))?,
            );
            let key = Ed25519Key::from_pkcs8_der(&pkcs8)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let body = Zeroizing::new(b64.encode(pkcs8.as_slice()));
            let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
            for line in body.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            Ok(GeneratedKey {
                algorithm,
                private_pem: pem,
                public_key_b64: b64.encode(key.public_key()),
            })
        }
    }
}

/// Problems with the alignment between the signing domain and the domains in the `From:` of
/// generated mails (relaxed DMARC alignment: the same organisational domain; checked here as
/// "the signing domain or a subdomain of it", which never wrongly passes), as warnings for
/// `check-config` and `serve`. `dkim_domain` is `None` when DKIM is not configured.
pub fn alignment_warnings(
    dkim_domain: Option<&str>,
    notification_from: &str,
    hostname: &str,
) -> Vec<String> {
    let Some(domain) = dkim_domain else {
        return vec![
            "DKIM signing is not configured ([delivery.dkim]): receivers that enforce DMARC \
             (Gmail, Yahoo, Microsoft) may reject or junk the mails Sealpost writes unless the \
             next hop signs them"
                .to_string(),
        ];
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut warnings = Vec::new();
    let sender_domain = notification_from
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches(['>', '.']).to_ascii_lowercase())
        .unwrap_or_default();
    if !aligned(&sender_domain, &domain) {
        warnings.push(format!(
            "the notification sender {notification_from:?} (mail.notification_from) is not in \
             the DKIM signing domain {domain:?} or a subdomain of it: DMARC alignment fails for \
             every generated mail"
        ));
    }
    let host = hostname.trim_end_matches('.').to_ascii_lowercase();
    if !aligned(&host, &domain) {
        warnings.push(format!(
            "hostname {host:?} is not in the DKIM signing domain {domain:?} or a subdomain of \
             it: bounces (From: MAILER-DAEMON@{host}) do not align"
        ));
    }
    warnings
}

fn aligned(from_domain: &str, signing_domain: &str) -> bool {
    !from_domain.is_empty()
        && (from_domain == signing_domain || from_domain.ends_with(&format!(".{signing_domain}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
    use mail_auth::{ResolverCache, Txt};
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::{Mutex, OnceLock};

    /// DNS for the verifier: the TXT records we give it, nothing from the network.
    struct Records(Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for Records {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }
        fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
            self.0.lock().unwrap().insert(key, value);
        }
    }

    /// One RSA key for the whole test binary (generation takes seconds in a debug build).
    fn rsa_key() -> &'static GeneratedKey {
        static KEY: OnceLock<GeneratedKey> = OnceLock::new();
        KEY.get_or_init(|| generate(DkimAlgorithm::Rsa).unwrap())
    }

    const MAIL: &[u8] = b"From: Bank <noreply@bank.example>\r\n\
To: client@example.net\r\n\
Subject: Encrypted message\r\n\
Date: Mon, 4 May 2026 10:00:00 +0000\r\n\
Message-ID: <1@mx.bank.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
X-Sealpost-Kind: carrier\r\n\
\r\n\
Hello,\r\n\
  a line with  spaces \r\n\
\r\n\
\r\n";

    /// Verifies `signed` with mail-auth's verifier against the given records.
    async fn verify(signed: &[u8], records: &[(&str, &GeneratedKey)]) -> Vec<bool> {
        let cache = Records(Mutex::new(HashMap::new()));
        for (name, key) in records {
            let dk = DomainKey::parse(key.txt_value().as_bytes()).unwrap();
            cache
                .0
                .lock()
                .unwrap()
                .insert(format!("{name}.").into_boxed_str(), Txt::from(dk));
        }
        let auth = MessageAuthenticator::new(
            mail_auth::hickory_resolver::config::ResolverConfig::default(),
            mail_auth::hickory_resolver::config::ResolverOpts::default(),
        )
        .unwrap();
        let msg = AuthenticatedMessage::parse(signed).unwrap();
        let params = Parameters::new(&msg).with_txt_cache(&cache);
        auth.verify_dkim(params)
            .await
            .iter()
            .map(|o| *o.result() == DkimResult::Pass)
            .collect()
    }

    /// A signer for bank.example, the RSA key at selector `rsa`, the Ed25519 key at `ed`.
    fn signer(keys: &[(DkimAlgorithm, &GeneratedKey)]) -> Signer {
        let specs: Vec<_> = keys
            .iter()
            .map(|(a, k)| KeySpec {
                algorithm: *a,
                selector: selector(*a),
                source: "test",
                pem: k.private_pem.as_str(),
            })
            .collect();
        Signer::from_pems("bank.example", &specs).unwrap()
    }

    fn selector(a: DkimAlgorithm) -> &'static str {
        match a {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed",
        }
    }

    #[tokio::test]
    async fn rsa_and_ed25519_signatures_verify() {
        let ed = generate(DkimAlgorithm::Ed25519).unwrap();
        let rsa = rsa_key();
        for keys in [
            vec![(DkimAlgorithm::Rsa, rsa)],
            vec![(DkimAlgorithm::Ed25519, &ed)],
            vec![(DkimAlgorithm::Rsa, rsa), (DkimAlgorithm::Ed25519, &ed)],
        ] {
            let s = signer(&keys);
            let signed = s.sign(MAIL).unwrap();
            let text = String::from_utf8_lossy(&signed);
            assert_eq!(text.matches("DKIM-Signature:").count(), keys.len());
            assert!(text.contains("c=relaxed/relaxed"), "{text}");
            for (a, _) in &keys {
                let tag = match a {
                    DkimAlgorithm::Rsa => "a=rsa-sha256",
                    DkimAlgorithm::Ed25519 => "a=ed25519-sha256",
                };
                assert!(text.contains(tag), "{text}");
            }
            assert!(signed.ends_with(MAIL), "the message itself is unchanged");
            let names: Vec<String> = keys
                .iter()
                .map(|(a, _)| format!("{}._domainkey.bank.example", selector(*a)))
                .collect();
            let records: Vec<(&str, &GeneratedKey)> = names
                .iter()
                .zip(&keys)
                .map(|(n, (_, k))| (n.as_str(), *k))
                .collect();
            assert_eq!(verify(&signed, &records).await, vec![true; keys.len()]);
        }
    }

    #[tokio::test]
    async fn a_changed_header_or_body_fails_and_added_from_breaks_it() {
        let rsa = rsa_key();
        let signed = signer(&[(DkimAlgorithm::Rsa, rsa)]).sign(MAIL).unwrap();
        let record = [("rsa._domainkey.bank.example", rsa)];
        assert_eq!(verify(&signed, &record).await, [true]);
        let text = String::from_utf8(signed.clone()).unwrap();
        let body_changed = text.replace("Hello,", "Hallo,");
        assert_eq!(verify(body_changed.as_bytes(), &record).await, [false]);
        let subject_changed = text.replace("Encrypted message", "Urgent: pay now");
        assert_eq!(verify(subject_changed.as_bytes(), &record).await, [false]);
        // Over-signing: a second From: (the one a reader's client shows) breaks the signature.
        let added = text.replacen(
            "From: Bank",
            "From: Evil <ceo@evil.example>\r\nFrom: Bank",
            1,
        );
        assert_eq!(verify(added.as_bytes(), &record).await, [false]);
        // Relaxed: whitespace changes in a header pass.
        let refolded = text.replace(
            "Subject: Encrypted message",
            "Subject:  Encrypted\r\n message",
        );
        assert_eq!(verify(refolded.as_bytes(), &record).await, [true]);
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        let ed = generate(DkimAlgorithm::Ed25519).unwrap();
        let spec = |algorithm, selector, pem| KeySpec {
            algorithm,
            selector,
            source: "/etc/dkim.pem",
            pem,
        };
        let e = Signer::from_pems(
            "bank.example",
            &[spec(DkimAlgorithm::Rsa, "s1", ed.private_pem.as_str())],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/etc/dkim.pem") && e.contains("RSA"), "{e}");
        let e = Signer::from_pems(
            "bank.example",
            &[spec(DkimAlgorithm::Ed25519, "s1", "not a key")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no PEM private key"), "{e}");
        assert!(
            !e.contains("not a key"),
            "the file's content is never shown: {e}"
        );
        let ok = spec(DkimAlgorithm::Ed25519, "s1", ed.private_pem.as_str());
        assert!(Signer::from_pems("bank example", &[ok]).is_err());
        let bad_selector = spec(DkimAlgorithm::Ed25519, "s 1", ed.private_pem.as_str());
        assert!(Signer::from_pems("bank.example", &[bad_selector]).is_err());
        assert!(Signer::from_pems("bank.example", &[]).is_err());
    }

    #[test]
    fn key_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ed.pem");
        let ed = generate(DkimAlgorithm::Ed25519).unwrap();
        std::fs::write(&path, ed.private_pem.as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Signer::load("bank.example", &[(DkimAlgorithm::Ed25519, "s1", &path)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = Signer::load("Bank.Example.", &[(DkimAlgorithm::Ed25519, "s1", &path)]).unwrap();
        assert_eq!(s.domain(), "bank.example");
        assert_eq!(s.keys(), [(DkimAlgorithm::Ed25519, "s1")]);
        assert!(!format!("{s:?}").contains("PRIVATE"));
    }

    #[test]
    fn generated_records_have_the_published_form() {
        let ed = generate(DkimAlgorithm::Ed25519).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(b64.decode(&ed.public_key_b64).unwrap().len(), 32);
        assert!(ed.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let record = rsa_key().dns_record("bank.example", "s1");
        assert!(
            record.starts_with("s1._domainkey.bank.example IN TXT \"v=DKIM1; k=rsa; p=MII"),
            "{record}"
        );
        // An RSA-2048 record is longer than one DNS string: split, each part ≤ 255.
        assert!(record.matches('"').count() >= 4, "{record}");
        for part in record.split('"').skip(1).step_by(2) {
            assert!(part.len() <= 255);
        }
        assert!(
            rsa_key()
                .private_pem
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
    }

    #[test]
    fn only_generated_kinds_are_signed() {
        for kind in MailKind::ALL {
            assert!(signs_kind(kind.as_str()), "{kind}");
        }
        assert!(!signs_kind(crate::kind::RELAY));
        assert!(!signs_kind(""));
    }

    #[test]
    fn alignment_is_relaxed_and_warned_about() {
        assert_eq!(
            alignment_warnings(None, "a@b.example", "mx.b.example").len(),
            1
        );
        assert!(
            alignment_warnings(
                Some("bank.example"),
                "noreply@bank.example",
                "mx.bank.example"
            )
            .is_empty()
        );
        assert!(
            alignment_warnings(
                Some("bank.example"),
                "Bank <noreply@mail.Bank.example>",
                "bank.example"
            )
            .is_empty()
        );
        let w = alignment_warnings(Some("bank.example"), "sealpost@localhost", "localhost");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("mail.notification_from"));
        // A look-alike suffix is not a subdomain.
        assert_eq!(
            alignment_warnings(
                Some("bank.example"),
                "x@evilbank.example",
                "mx.bank.example"
            )
            .len(),
            1
        );
    }
}
