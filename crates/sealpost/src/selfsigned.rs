//! A self-signed certificate for the demo and first runs, created once in the data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Validity of a generated certificate; it is made anew when older than [`RENEW_AFTER`].
const VALID_FOR: std::time::Duration = std::time::Duration::from_secs(397 * 86_400);
const RENEW_AFTER: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

pub fn ensure(data_dir: &Path, public_url: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let fresh = std::fs::metadata(&cert)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < RENEW_AFTER);
    if fresh && key.exists() {
        return Ok((cert, key));
    }
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Some(host) = sealpost_core::url::host(public_url)
        .map(str::to_string)
        .filter(|h| !names.contains(h))
    {
        names.push(host);
    }
    // A bounded lifetime (like public CAs' 397 days) instead of rcgen's practically endless
    // default: a leaked demo key should not be good forever.
    let mut params = rcgen::CertificateParams::new(names).context("certificate parameters")?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + VALID_FOR;
    let key_pair = rcgen::KeyPair::generate().context("key generation")?;
    let generated = params
        .self_signed(&key_pair)
        .context("certificate generation")?;
    write_private(&key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, generated.pem()).with_context(|| format!("write {}", cert.display()))?;
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    // `mode` only applies to a new file: a key written by an older version may be wider.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("restrict {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_reused_then_renewed_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ensure(dir.path(), "https://portal.example:8443").unwrap();
        let pem = std::fs::read_to_string(&cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.exists());
        let again = ensure(dir.path(), "https://portal.example:8443").unwrap();
        assert_eq!(
            std::fs::read_to_string(&again.0).unwrap(),
            pem,
            "reused while fresh"
        );
        // A year later it is made anew, before its 397 days run out.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(366 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&cert)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let renewed = ensure(dir.path(), "https://portal.example:8443").unwrap();
        assert_ne!(
            std::fs::read_to_string(&renewed.0).unwrap(),
            pem,
            "renewed when old"
        );
    }
}
