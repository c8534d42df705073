//! The key backup file: every account (all columns a restore needs, including the password
//! hash) and every wrapped recipient key, sealed as a whole.
//!
//! File = the line `SEALPOST-KEYS-BACKUP 1\n`, then a Sealpost envelope (`docs/ENVELOPE.md`:
//! XChaCha20-Poly1305, zstd, authenticated header) sealed under a key derived from the master
//! key (`derive_subkey("keys-backup/v1")`) with the header recipient `keys-backup`. The file is
//! therefore useless without the master key, which is backed up separately
//! (`keys backup-master`). The recipient keys inside stay wrapped under the master key as in
//! the database, so even a decrypted document does not reveal them.
//!
//! Plaintext document (all integers big-endian, strings and bytes length-prefixed with a u32,
//! optional values prefixed with a 0/1 byte):
//! `"SPKB" u8(version) i64(created_at) u32(n_accounts) account* u32(n_keys) key*`, and from
//! version 2 on `u32(n_messages) message*`: the ledger rows that hold a message secret (still
//! wrapped under the master key), without which a format-2 envelope never opens again. A
//! version-1 backup (made before message control) restores with no messages.

use anyhow::{Context, Result, bail, ensure};
use sealpost_crypto::{KeyId, MasterKey, RecipientKey};
use sealpost_store::{Account, AccountStatus, LedgerEntry, SealedEntry, StoredKey};
use zeroize::Zeroizing;

/// First line of a backup file, so a wrong file gets a clear message.
pub const FILE_MAGIC: &[u8] = b"SEALPOST-KEYS-BACKUP 1\n";
const DOC_MAGIC: &[u8; 4] = b"SPKB";
const DOC_VERSION: u8 = 2;
/// HKDF purpose of the backup key; the version lets a later format use a new key.
const BACKUP_PURPOSE: &str = "keys-backup/v1";
/// The envelope header's recipient field: marks the envelope as a backup, authenticated.
const BACKUP_RECIPIENT: &str = "keys-backup";

/// The content of a backup.
pub struct Document {
    pub created_at: i64,
    pub accounts: Vec<Account>,
    pub keys: Vec<StoredKey>,
    /// Ledger rows with their wrapped message secrets (format-2 envelopes).
    pub messages: Vec<SealedEntry>,
}

fn backup_key(master: &MasterKey) -> (KeyId, RecipientKey) {
    let key = RecipientKey::from_bytes(*master.derive_subkey(BACKUP_PURPOSE));
    let key_id = KeyId {
        account_id: uuid::Uuid::nil(),
        version: 1,
    };
    (key_id, key)
}

/// Encodes and seals a document under the master key; returns the whole file.
pub fn seal(master: &MasterKey, doc: &Document) -> Result<Vec<u8>> {
    let plain = encode(doc);
    let (key_id, key) = backup_key(master);
    let (_, envelope) =
        sealpost_crypto::seal(&key, key_id, BACKUP_RECIPIENT, doc.created_at, &plain)
            .context("cannot seal the backup")?;
    let mut out = Vec::with_capacity(FILE_MAGIC.len() + envelope.len());
    out.extend_from_slice(FILE_MAGIC);
    out.extend_from_slice(&envelope);
    Ok(out)
}

/// Opens a backup file with the first of `masters` that authenticates it.
pub fn open(masters: &[&MasterKey], file: &[u8]) -> Result<Document> {
    let Some(envelope) = file.strip_prefix(FILE_MAGIC) else {
        bail!("not a Sealpost key backup (version 1)");
    };
    for master in masters {
        let (_, key) = backup_key(master);
        if let Ok((header, plain)) = sealpost_crypto::open(&key, envelope, usize::MAX) {
            ensure!(
                header.recipient == BACKUP_RECIPIENT,
                "the file is an envelope, not a key backup"
            );
            let plain = Zeroizing::new(plain);
            return decode(&plain);
        }
    }
    bail!(
        "the backup does not open with the configured master key (wrong key, or the file was altered)"
    )
}

fn encode(doc: &Document) -> Zeroizing<Vec<u8>> {
    let mut w = Writer(Zeroizing::new(Vec::new()));
    w.0.extend_from_slice(DOC_MAGIC);
    w.0.push(DOC_VERSION);
    w.i64(doc.created_at);
    w.u32(doc.accounts.len() as u32);
    for a in &doc.accounts {
        w.str(&a.id);
        w.str(&a.address);
        w.str(&a.password_hash);
        w.str(a.status.as_str());
        w.0.push(u8::from(a.must_change_password));
        w.opt_str(&a.language);
        w.opt_str(&a.secret_question);
        w.opt_str(&a.secret_answer_hash);
        w.i64(a.failed_logins);
        w.i64(a.failed_answers);
        w.opt_i64(a.locked_until);
        w.i64(a.created_at);
        w.opt_str(&a.created_by);
        w.opt_i64(a.last_login_at);
        w.opt_str(&a.last_login_ip);
        w.opt_i64(a.prev_login_at);
        w.opt_str(&a.prev_login_ip);
        w.opt_i64(a.valid_until);
    }
    w.u32(doc.keys.len() as u32);
    for k in &doc.keys {
        w.str(&k.account_id);
        w.u32(k.version);
        w.bytes(&k.wrapped);
        w.i64(k.created_at);
    }
    w.u32(doc.messages.len() as u32);
    for m in &doc.messages {
        w.str(&m.entry.envelope_id);
        w.str(&m.entry.sender);
        w.str(&m.entry.recipient);
        w.str(&m.entry.account_id);
        w.i64(m.entry.created_at);
        w.opt_i64(m.entry.first_opened_at);
        w.str(&m.message_id);
        w.bytes(m.wrapped_secret.as_deref().unwrap_or_default());
        w.opt_i64(m.expires_at);
        w.opt_str(&m.subject);
        w.opt_str(&m.subject_hash);
    }
    w.0
}

fn decode(data: &[u8]) -> Result<Document> {
    let mut r = Reader { data, pos: 0 };
    ensure!(r.take(4)? == DOC_MAGIC, "backup document is malformed");
    let version = r.u8()?;
    ensure!(
        version == 1 || version == DOC_VERSION,
        "backup document version {version} is not supported"
    );
    let created_at = r.i64()?;
    let n = r.u32()?;
    let mut accounts = Vec::new();
    for _ in 0..n {
        accounts.push(Account {
            id: r.str()?,
            address: r.str()?,
            password_hash: r.str()?,
            status: match r.str()?.as_str() {
                "active" => AccountStatus::Active,
                "disabled" => AccountStatus::Disabled,
                other => bail!("backup holds an unknown account status {other:?}"),
            },
            must_change_password: r.u8()? != 0,
            language: r.opt_str()?,
            secret_question: r.opt_str()?,
            secret_answer_hash: r.opt_str()?,
            failed_logins: r.i64()?,
            failed_answers: r.i64()?,
            locked_until: r.opt_i64()?,
            created_at: r.i64()?,
            created_by: r.opt_str()?,
            last_login_at: r.opt_i64()?,
            last_login_ip: r.opt_str()?,
            prev_login_at: r.opt_i64()?,
            prev_login_ip: r.opt_str()?,
            valid_until: r.opt_i64()?,
        });
    }
    let n = r.u32()?;
    let mut keys = Vec::new();
    for _ in 0..n {
        keys.push(StoredKey {
            account_id: r.str()?,
            version: r.u32()?,
            wrapped: r.take_len()?.to_vec(),
            created_at: r.i64()?,
        });
    }
    let mut messages = Vec::new();
    if version >= 2 {
        let n = r.u32()?;
        for _ in 0..n {
            messages.push(SealedEntry {
                entry: LedgerEntry {
                    envelope_id: r.str()?,
                    sender: r.str()?,
                    recipient: r.str()?,
                    account_id: r.str()?,
                    created_at: r.i64()?,
                    first_opened_at: r.opt_i64()?,
                },
                message_id: r.str()?,
                queue_id: None,
                wrapped_secret: Some(r.take_len()?.to_vec()),
                expires_at: r.opt_i64()?,
                subject: r.opt_str()?,
                subject_hash: r.opt_str()?,
            });
        }
    }
    ensure!(r.pos == data.len(), "backup document has trailing data");
    Ok(Document {
        created_at,
        accounts,
        keys,
        messages,
    })
}

struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
            None => self.0.push(0),
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.0.push(1);
                self.i64(v);
            }
            None => self.0.push(0),
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .context("backup document is truncated")?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b: [u8; 4] = self.take(4)?.try_into()?;
        Ok(u32::from_be_bytes(b))
    }
    fn i64(&mut self) -> Result<i64> {
        let b: [u8; 8] = self.take(8)?.try_into()?;
        Ok(i64::from_be_bytes(b))
    }
    fn take_len(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String> {
        String::from_utf8(self.take_len()?.to_vec()).context("backup holds invalid UTF-8")
    }
    fn opt_str(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.str()?)),
        }
    }
    fn opt_i64(&mut self) -> Result<Option<i64>> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.i64()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            address: format!("{id}@example.com"),
            password_hash: "$argon2id$x".into(),
            status: AccountStatus::Disabled,
            must_change_password: true,
            language: Some("de".into()),
            secret_question: Some("pet\nname".into()),
            secret_answer_hash: None,
            failed_logins: 2,
            failed_answers: 0,
            locked_until: Some(-5),
            created_at: 1_700_000_000,
            created_by: None,
            last_login_at: None,
            last_login_ip: Some("::1".into()),
            prev_login_at: Some(7),
            prev_login_ip: None,
            valid_until: None,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let master = MasterKey::generate();
        let doc = Document {
            created_at: 42,
            accounts: vec![account("a"), account("b")],
            keys: vec![StoredKey {
                account_id: "a".into(),
                version: 3,
                wrapped: vec![9; 72],
                created_at: 5,
            }],
            messages: vec![SealedEntry {
                entry: LedgerEntry {
                    envelope_id: "e1".into(),
                    sender: "adv@bank.example".into(),
                    recipient: "a@example.com".into(),
                    account_id: "a".into(),
                    created_at: 7,
                    first_opened_at: None,
                },
                message_id: "m1".into(),
                queue_id: None,
                wrapped_secret: Some(vec![4; 72]),
                expires_at: Some(99),
                subject: None,
                subject_hash: Some("ab".into()),
            }],
        };
        let file = seal(&master, &doc).unwrap();
        assert!(file.starts_with(FILE_MAGIC));
        assert!(!file.windows(13).any(|w| w == b"a@example.com"));
        let other = MasterKey::generate();
        let back = open(&[&other, &master], &file).unwrap();
        assert_eq!(back.created_at, 42);
        assert_eq!(back.accounts.len(), 2);
        let b = &back.accounts[1];
        assert_eq!(b.address, "b@example.com");
        assert_eq!(b.status, AccountStatus::Disabled);
        assert_eq!(b.secret_question.as_deref(), Some("pet\nname"));
        assert_eq!(b.locked_until, Some(-5));
        assert_eq!(b.last_login_ip.as_deref(), Some("::1"));
        assert_eq!(back.keys[0].version, 3);
        assert_eq!(back.keys[0].wrapped, vec![9; 72]);
        // The message secrets travel with the keys (format-2 envelopes need them).
        assert_eq!(back.messages.len(), 1);
        assert_eq!(back.messages[0].entry.envelope_id, "e1");
        assert_eq!(
            back.messages[0].wrapped_secret.as_deref(),
            Some(&[4u8; 72][..])
        );
        assert_eq!(back.messages[0].expires_at, Some(99));

        assert!(open(&[&other], &file).is_err(), "wrong master key");
        let mut bad = file.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(open(&[&master], &bad).is_err(), "altered file");
        assert!(open(&[&master], b"hello").is_err(), "not a backup");
    }
}
