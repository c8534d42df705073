//! The key hierarchy: one master key per installation, from which a
//! key-encryption key (KEK) is derived with HKDF-SHA256; the KEK wraps the
//! random per-recipient keys that the database stores. See `docs/ENVELOPE.md`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length in bytes of every symmetric key in Sealpost (256 bit).
pub const KEY_LEN: usize = 32;

/// Length of an XChaCha20-Poly1305 nonce. 192 bits are long enough that random
/// nonces never collide in practice, so no nonce counter has to be kept.
pub(crate) const NONCE_LEN: usize = 24;

/// Length of the Poly1305 authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// Length of a wrapped recipient key: nonce || encrypted key || tag.
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// HKDF purpose of the key-encryption key. Reserved: callers of
/// [`MasterKey::derive_subkey`] must not use it for anything else.
const KEY_WRAP_PURPOSE: &str = "key-wrap";

/// Prefix of every HKDF `info`, so that a future format can derive unrelated
/// keys from the same master key by changing the version component.
const HKDF_INFO_PREFIX: &str = "sealpost/v1/";

// HKDF-Expand can only fail when more than 255 * HashLen bytes are asked for.
// We always ask for KEY_LEN bytes; this proves at compile time that the error
// branch in `hkdf_expand` is unreachable.
const _: () = assert!(KEY_LEN <= 255 * 32);

/// Errors around loading, parsing and unwrapping keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file (or directory) that was being accessed.
        path: PathBuf,
        /// The underlying operating-system error.
        #[source]
        source: io::Error,
    },
    /// A key file exists but does not hold a valid master key.
    #[error("key file {path} does not hold a valid master key: {reason}")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// Why its content was rejected.
        #[source]
        reason: Box<KeyError>,
    },
    /// The key text is not valid standard base64.
    #[error("master key is not valid base64")]
    BadEncoding,
    /// The key decoded to the wrong number of bytes.
    #[error("master key must be {KEY_LEN} bytes, got {0}")]
    BadLength(usize),
    /// A wrapped recipient key could not be decrypted: wrong master key,
    /// wrong account or key version, or the stored bytes were altered.
    #[error(
        "wrapped recipient key could not be unwrapped (wrong master key, account or version, or corrupted)"
    )]
    UnwrapFailed,
}

/// The installation's master key (256 bit). It never enters the database; it
/// is only used to derive other keys. Zeroised on drop; `Debug` hides it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(...)")
    }
}

impl MasterKey {
    /// A new random master key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// Parses standard base64 (surrounding whitespace ignored, e.g. the
    /// newline of a key file or an environment variable).
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(s.trim())
                .map_err(|_| KeyError::BadEncoding)?,
        );
        let arr: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadLength(bytes.len()))?;
        Ok(Self(arr))
    }

    /// Standard base64 of the key, in a string that is wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    /// The raw bytes, for the report key: its file has this format (base64 of 32 random
    /// bytes, created 0600 and atomically by [`MasterKey::load_or_create`]), so
    /// `report::ReportKey` reuses the routine and takes the bytes as its Ed25519 seed.
    pub(crate) fn raw(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Loads the key file, or creates it with a new random key (and its
    /// parent directories) if it does not exist. Returns `(key, created)`.
    ///
    /// The file is created mode 0600 from the start (never readable by
    /// others, not even briefly), and published atomically: the key is written
    /// and synced to a temporary file which is then hard-linked to `path`.
    /// Linking fails if `path` already exists, so when two nodes or processes
    /// race on first start, exactly one key wins and the loser loads it; no
    /// reader can ever see a half-written file.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        let io_err = |p: &Path| {
            let p = p.to_path_buf();
            move |source| KeyError::Io { path: p, source }
        };
        match fs::read_to_string(path) {
            Ok(text) => return Ok((Self::parse_file(path, Zeroizing::new(text))?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }

        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;

        let key = Self::generate();
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let tmp = dir.join(tmp_name);
        let written = Self::write_new_file(&tmp, &key);
        let linked = written.and_then(|()| fs::hard_link(&tmp, path));
        // The temporary name is never needed again, whatever happened; a
        // failure to remove it leaves only a stray 0600 file behind.
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                // Make the new directory entry durable, so that a crash right
                // after first start cannot lose the key that envelopes were
                // already sealed under.
                if let Ok(d) = fs::File::open(&dir) {
                    let _ = d.sync_all();
                }
                Ok((key, true))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Someone else created it first: use theirs.
                let text = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
                Ok((Self::parse_file(path, text)?, false))
            }
            Err(e) => Err(io_err(path)(e)),
        }
    }

    fn parse_file(path: &Path, text: Zeroizing<String>) -> Result<Self, KeyError> {
        Self::from_base64(&text).map_err(|e| KeyError::BadKeyFile {
            path: path.to_path_buf(),
            reason: Box::new(e),
        })
    }

    fn write_new_file(tmp: &Path, key: &Self) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)?;
        let mut line = key.to_base64();
        line.push('\n');
        f.write_all(line.as_bytes())?;
        f.sync_all()
    }

    /// Encrypts a recipient key for storage in the database.
    ///
    /// KEK = HKDF-SHA256(ikm = master, no salt, info = "sealpost/v1/key-wrap");
    /// output = nonce (24) || XChaCha20-Poly1305(KEK, nonce, key, AAD) where
    /// AAD = account id (16 bytes) || version (u32 big-endian). Binding the
    /// key id means a wrapped key copied to another account or version row in
    /// the database fails to unwrap instead of silently being used there.
    pub fn wrap_recipient_key(&self, key_id: &KeyId, key: &RecipientKey) -> Vec<u8> {
        let cipher = self.kek_cipher();
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = key_id.aad();
        let payload = Payload {
            msg: key.as_bytes(),
            aad: &aad,
        };
        // Encryption only fails for plaintexts beyond ~256 GiB; for 32 bytes
        // it cannot. Should it ever, an empty result fails closed: unwrapping
        // it reports UnwrapFailed rather than yielding a key.
        match cipher.encrypt(&XNonce::from(nonce), payload) {
            Ok(ct) => {
                let mut out = Vec::with_capacity(WRAPPED_LEN);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                out
            }
            Err(_) => Vec::new(),
        }
    }

    /// Reverses [`MasterKey::wrap_recipient_key`]. Fails if the master key,
    /// account id or version differ from wrapping time, or the bytes changed.
    pub fn unwrap_recipient_key(
        &self,
        key_id: &KeyId,
        wrapped: &[u8],
    ) -> Result<RecipientKey, KeyError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(KeyError::UnwrapFailed);
        }
        let (nonce, ct) = wrapped
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(KeyError::UnwrapFailed)?;
        let aad = key_id.aad();
        let plain = Zeroizing::new(
            self.kek_cipher()
                .decrypt(nonce.into(), Payload { msg: ct, aad: &aad })
                .map_err(|_| KeyError::UnwrapFailed)?,
        );
        let arr: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::UnwrapFailed)?;
        Ok(RecipientKey(arr))
    }

    /// A 32-byte key derived from the master key for a named purpose
    /// (HKDF-SHA256, no salt, info = "sealpost/v1/" + purpose), e.g. for
    /// cookie signing or encrypting short-lived server-side data. Distinct
    /// purposes give independent keys. "key-wrap" is reserved for the KEK.
    pub fn derive_subkey(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut info = Vec::with_capacity(HKDF_INFO_PREFIX.len() + purpose.len());
        info.extend_from_slice(HKDF_INFO_PREFIX.as_bytes());
        info.extend_from_slice(purpose.as_bytes());
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        // Unreachable error: see the const assertion on KEY_LEN above.
        let _ = hk.expand(&info, okm.as_mut_slice());
        okm
    }

    fn kek_cipher(&self) -> XChaCha20Poly1305 {
        let kek = self.derive_subkey(KEY_WRAP_PURPOSE);
        let kek: &[u8; KEY_LEN] = &kek;
        // The cipher keeps its own copy of the key and wipes it on drop.
        XChaCha20Poly1305::new(kek.into())
    }
}

/// A recipient's 256-bit symmetric key, which seals and opens envelopes.
/// Zeroised on drop; `Debug` hides it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecipientKey([u8; KEY_LEN]);

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecipientKey(...)")
    }
}

impl RecipientKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// Wraps raw key bytes (e.g. from a test vector).
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Self {
        Self(b)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Identifies one version of one account's key. Both parts are
/// authenticated wherever the key is used (key wrapping and envelopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId {
    /// The recipient account.
    pub account_id: uuid::Uuid,
    /// Key version within the account; rotation adds a new one.
    pub version: u32,
}

impl KeyId {
    /// account id (16 bytes) || version (u32 big-endian).
    fn aad(&self) -> [u8; 20] {
        let mut aad = [0u8; 20];
        aad[..16].copy_from_slice(self.account_id.as_bytes());
        aad[16..].copy_from_slice(&self.version.to_be_bytes());
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn id(v: u32) -> KeyId {
        KeyId {
            account_id: uuid::Uuid::from_bytes([7; 16]),
            version: v,
        }
    }

    #[test]
    fn wrap_unwrap_round_trip() {
        let m = MasterKey::generate();
        let k = RecipientKey::generate();
        let w = m.wrap_recipient_key(&id(1), &k);
        assert_eq!(w.len(), WRAPPED_LEN);
        let back = m.unwrap_recipient_key(&id(1), &w).expect("unwrap");
        assert_eq!(back.as_bytes(), k.as_bytes());
    }

    #[test]
    fn wrap_is_randomised() {
        let m = MasterKey::generate();
        let k = RecipientKey::generate();
        assert_ne!(
            m.wrap_recipient_key(&id(1), &k),
            m.wrap_recipient_key(&id(1), &k)
        );
    }

    #[test]
    fn unwrap_rejects_wrong_version_account_master_or_tamper() {
        let m = MasterKey::generate();
        let k = RecipientKey::generate();
        let w = m.wrap_recipient_key(&id(1), &k);
        assert!(matches!(
            m.unwrap_recipient_key(&id(2), &w),
            Err(KeyError::UnwrapFailed)
        ));
        let other_account = KeyId {
            account_id: uuid::Uuid::from_bytes([8; 16]),
            version: 1,
        };
        assert!(matches!(
            m.unwrap_recipient_key(&other_account, &w),
            Err(KeyError::UnwrapFailed)
        ));
        assert!(matches!(
            MasterKey::generate().unwrap_recipient_key(&id(1), &w),
            Err(KeyError::UnwrapFailed)
        ));
        for i in 0..w.len() {
            let mut bad = w.clone();
            bad[i] ^= 0x01;
            assert!(m.unwrap_recipient_key(&id(1), &bad).is_err(), "byte {i}");
        }
        for n in 0..w.len() {
            assert!(m.unwrap_recipient_key(&id(1), &w[..n]).is_err());
        }
    }

    #[test]
    fn base64_round_trip_and_length_checks() {
        let m = MasterKey::generate();
        let text = m.to_base64();
        let back = MasterKey::from_base64(&format!("  {}\n", text.as_str())).expect("parse");
        assert_eq!(back.to_base64(), text);
        assert!(matches!(
            MasterKey::from_base64(&STANDARD.encode([1u8; 31])),
            Err(KeyError::BadLength(31))
        ));
        assert!(matches!(
            MasterKey::from_base64(&STANDARD.encode([1u8; 33])),
            Err(KeyError::BadLength(33))
        ));
        assert!(matches!(
            MasterKey::from_base64("not base64!"),
            Err(KeyError::BadEncoding)
        ));
    }

    #[test]
    fn debug_prints_no_key_bytes() {
        let m = MasterKey::from_base64(&STANDARD.encode([0xAB; 32])).expect("parse");
        let r = RecipientKey::from_bytes([0xAB; 32]);
        let shown = format!("{m:?} {r:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab,"));
        assert!(shown.contains("..."));
    }

    #[test]
    fn subkeys_differ_by_purpose_and_are_deterministic() {
        let m = MasterKey::generate();
        assert_eq!(*m.derive_subkey("cookie"), *m.derive_subkey("cookie"));
        assert_ne!(*m.derive_subkey("cookie"), *m.derive_subkey("session"));
        assert_ne!(*m.derive_subkey("cookie"), [0u8; 32]);
        let other = MasterKey::generate();
        assert_ne!(*m.derive_subkey("cookie"), *other.derive_subkey("cookie"));
    }

    #[test]
    fn load_or_create_creates_0600_then_loads_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/deeper/master.key");
        let (k1, created) = MasterKey::load_or_create(&path).expect("create");
        assert!(created);
        let meta = fs::metadata(&path).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n'));
        assert_eq!(text.trim_end(), k1.to_base64().as_str());

        let (k2, created2) = MasterKey::load_or_create(&path).expect("load");
        assert!(!created2);
        assert_eq!(k1.to_base64(), k2.to_base64());
        // The same key also means wrapped keys survive a restart.
        let r = RecipientKey::generate();
        let w = k1.wrap_recipient_key(&id(3), &r);
        let back = k2.unwrap_recipient_key(&id(3), &w).expect("unwrap");
        assert_eq!(back.as_bytes(), r.as_bytes());

        // No temporary files are left behind.
        let entries = fs::read_dir(path.parent().expect("parent"))
            .expect("read_dir")
            .count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn load_or_create_rejects_bad_file_with_path_in_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        fs::write(&path, "AAAA\n").expect("write");
        let err = MasterKey::load_or_create(&path).expect_err("must fail");
        assert!(matches!(err, KeyError::BadKeyFile { .. }));
        assert!(err.to_string().contains("master.key"));
    }

    #[test]
    fn io_error_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the key file should be: reading it fails.
        let path = dir.path().join("iamadir");
        fs::create_dir(&path).expect("mkdir");
        let err = MasterKey::load_or_create(&path).expect_err("must fail");
        assert!(matches!(err, KeyError::Io { .. }));
        assert!(err.to_string().contains("iamadir"), "{err}");
    }
}
