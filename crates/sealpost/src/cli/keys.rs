//! `sealpost keys …`: per-account key rotation, the key backup (accounts and wrapped keys)
//! and its restore, the master key file's backup and restore, and master-key rotation.
//! The procedures are in docs/OPERATIONS.md.

#[path = "keys_backup.rs"]
mod backup_file;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sealpost::config::Config;
use sealpost::node;
use sealpost_core::KeyRing;
use sealpost_core::admin::{self, Actor, AdminError};
use sealpost_crypto::{KeyId, MasterKey};
use sealpost_store::{Account, Store, StoredKey};
use std::collections::HashSet;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new key version for an account; older messages stay readable
    Rotate { address: String },
    /// Write every account and its wrapped keys to FILE, sealed under the master key (0600)
    Backup {
        file: PathBuf,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Restore accounts and keys from a `keys backup` FILE into an empty database
    Restore { file: PathBuf },
    /// Copy the master key to FILE (mode 0600). Keep it offline: it opens every message
    BackupMaster {
        file: PathBuf,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Install the master key from FILE as the configured master key file (mode 0600)
    RestoreMaster {
        file: PathBuf,
        /// Overwrite an existing master key file
        #[arg(long)]
        force: bool,
    },
    /// Create a new random master key in FILE (mode 0600), for a master-key rotation
    NewMaster { file: PathBuf },
    /// Re-wrap every stored key under the configured master key (the previous master key
    /// must be configured as keys.previous_master_key_file while keys are under it)
    RotateMaster {
        /// Keys per page read from the database; each key is updated on its own
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

pub async fn run(config: &Config, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Rotate { address } => {
            let store = super::open(config).await?;
            let result = async {
                let (master, _) = node::load_master_key(config)?;
                let keys = KeyRing::new(master);
                let account = admin::find_account(&store, &address)
                    .await
                    .map_err(|e| match e {
                        AdminError::NoSuchAccount => anyhow::anyhow!("no account {address}"),
                        other => other.into(),
                    })?;
                let version = admin::rotate_key(&store, &keys, &account, &Actor::cli()).await?;
                println!("{}: key version {version} added", account.address);
                Ok(())
            }
            .await;
            store.close().await;
            result
        }
        KeysCommand::Backup { file, force } => {
            let store = super::open(config).await?;
            let result = backup(config, &store, &file, force).await;
            store.close().await;
            result
        }
        KeysCommand::Restore { file } => {
            let store = super::open(config).await?;
            let result = restore(config, &store, &file).await;
            store.close().await;
            result
        }
        KeysCommand::NewMaster { file } => {
            if file.exists() {
                bail!(
                    "{} exists; a new master key needs a new file",
                    file.display()
                );
            }
            MasterKey::load_or_create(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            println!("new master key written to {} (mode 0600)", file.display());
            Ok(())
        }
        KeysCommand::RotateMaster { batch } => {
            let store = super::open(config).await?;
            let result = rotate_master(config, &store, batch).await;
            store.close().await;
            result
        }
        KeysCommand::BackupMaster { file, force } => {
            let key = current_master(config)?;
            write_key_file(&file, &key, force)?;
            println!("master key written to {} (mode 0600)", file.display());
            Ok(())
        }
        KeysCommand::RestoreMaster { file, force } => {
            let text = Zeroizing::new(
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            );
            let key = MasterKey::from_base64(&text)
                .with_context(|| format!("{} is not a master key file", file.display()))?;
            let target = config.master_key_file();
            write_key_file(&target, &key, force)?;
            if config.keys.master_key.is_some() {
                eprintln!(
                    "note: keys.master_key is set in the environment and wins over {}",
                    target.display()
                );
            }
            println!("master key restored to {} (mode 0600)", target.display());
            Ok(())
        }
    }
}

/// Accounts are read before keys; keys of accounts created meanwhile are left out, and an
/// account whose keys were deleted meanwhile (a deleted account) too, so the file is consistent.
async fn backup(config: &Config, store: &Store, file: &Path, force: bool) -> Result<()> {
    let keys = keyring(config)?;
    if file.exists() && !force {
        bail!("{} exists; use --force to overwrite it", file.display());
    }
    let mut accounts = Vec::new();
    loop {
        let after = accounts
            .last()
            .map(|a: &Account| a.id.clone())
            .unwrap_or_default();
        let page = store.accounts_after(&after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        accounts.extend(page);
    }
    let ids: HashSet<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let mut stored = Vec::new();
    let mut after = (String::new(), 0u32);
    loop {
        let page = store.keys_after(&after.0, after.1, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = (last.account_id.clone(), last.version);
        stored.extend(page.into_iter().filter(|k| ids.contains(&k.account_id)));
    }
    // A backup that cannot be restored is worse than none: check every key opens now.
    verify_keys(&keys, &stored)?;
    let with_keys: HashSet<&str> = stored.iter().map(|k| k.account_id.as_str()).collect();
    accounts.retain(|a| with_keys.contains(a.id.as_str()));
    // The message secrets of the backed-up accounts: format-2 envelopes need them.
    let mut messages = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.sealed_entries_after(&after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.entry.envelope_id.clone();
        messages.extend(
            page.into_iter()
                .filter(|m| with_keys.contains(m.entry.account_id.as_str())),
        );
    }
    let doc = backup_file::Document {
        created_at: sealpost_store::unix_now(),
        accounts,
        keys: stored,
        messages,
    };
    let sealed = backup_file::seal(keys.master(), &doc)?;
    write_private_file(file, &sealed)?;
    admin::audit(
        store,
        &Actor::cli(),
        "keys.backup",
        None,
        Some(&format!("{} accounts", doc.accounts.len())),
    )
    .await;
    println!(
        "backup of {} accounts, {} keys and {} message secrets written to {} (mode 0600); it opens only with the master key",
        doc.accounts.len(),
        doc.keys.len(),
        doc.messages.len(),
        file.display()
    );
    Ok(())
}

async fn restore(config: &Config, store: &Store, file: &Path) -> Result<()> {
    let keys = keyring(config)?;
    let previous = node::load_previous_master_key(config)?;
    let data = Zeroizing::new(
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?,
    );
    let mut masters = vec![keys.master()];
    masters.extend(previous.as_ref());
    let doc = backup_file::open(&masters, &data)?;
    verify_keys(&keys, &doc.keys)?;
    if !store.has_no_accounts_or_keys().await? {
        bail!("the database already holds accounts or keys; restore only into an empty database");
    }
    // One transaction: a failed restore leaves the database empty, ready for another try.
    let mut tx = store.begin().await?;
    for account in &doc.accounts {
        store.insert_restored_account(&mut tx, account).await?;
    }
    for key in &doc.keys {
        store.insert_restored_key(&mut tx, key).await?;
    }
    store.insert_sealed_many(&mut tx, &doc.messages).await?;
    sealpost_store::commit(tx).await?;
    admin::audit(
        store,
        &Actor::cli(),
        "keys.restore",
        None,
        Some(&format!("{} accounts", doc.accounts.len())),
    )
    .await;
    println!(
        "restored {} accounts and {} keys ({} message secrets) from {}",
        doc.accounts.len(),
        doc.keys.len(),
        doc.messages.len(),
        file.display()
    );
    Ok(())
}

async fn rotate_master(config: &Config, store: &Store, batch: i64) -> Result<()> {
    let keys = keyring(config)?;
    let report = keys.rewrap_all(store, keys.master(), batch).await.context(
        "re-wrapping failed (is the old master key configured as keys.previous_master_key_file?)",
    )?;
    admin::audit(
        store,
        &Actor::cli(),
        "keys.rotate-master",
        None,
        Some(&format!("{} re-wrapped", report.rewrapped)),
    )
    .await;
    println!(
        "re-wrapped {} keys under the current master key; {} already were; {} changed meanwhile and were skipped",
        report.rewrapped, report.already, report.skipped
    );
    if report.skipped > 0 {
        println!("run it again to cover the skipped keys");
    } else if keys.has_previous() {
        println!(
            "every key is under the current master key: remove keys.previous_master_key[_file] from every node"
        );
    }
    Ok(())
}

const PAGE: i64 = 500;

/// The configured current (never created) and previous master keys.
fn keyring(config: &Config) -> Result<KeyRing> {
    let master = current_master(config)?;
    let previous = node::load_previous_master_key(config)?;
    Ok(KeyRing::with_previous(master, previous))
}

fn verify_keys(keys: &KeyRing, stored: &[StoredKey]) -> Result<()> {
    for k in stored {
        let key_id = KeyId {
            account_id: uuid::Uuid::parse_str(&k.account_id)
                .with_context(|| format!("account id {:?} is not a UUID", k.account_id))?,
            version: k.version,
        };
        keys.unwrap(&key_id, &k.wrapped).with_context(|| {
            format!(
                "key {} of account {} does not open with the configured master key(s)",
                k.version, k.account_id
            )
        })?;
    }
    Ok(())
}

/// Writes a new file with mode 0600 from the start, atomically (temporary file + rename).
fn write_private_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let tmp = dir.join(name);
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// The master key the nodes use; never creates one (a backup of a new key is no backup).
fn current_master(config: &Config) -> Result<MasterKey> {
    if let Some(b64) = &config.keys.master_key {
        return MasterKey::from_base64(b64).context("keys.master_key (environment) is invalid");
    }
    let path = config.master_key_file();
    let text = Zeroizing::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the master key {}", path.display()))?,
    );
    MasterKey::from_base64(&text)
        .with_context(|| format!("{} is not a master key file", path.display()))
}

/// Writes a key file with mode 0600 from the start; an existing file only with `force`.
fn write_key_file(path: &Path, key: &MasterKey, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists; use --force to overwrite it", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its old mode on open: tighten it before the key goes in.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let mut line = key.to_base64();
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
