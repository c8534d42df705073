//! `sealpost keys rotate|backup|restore`: per-account key rotation and the master key file.

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
use sealpost_crypto::MasterKey;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new key version for an account; older messages stay readable
    Rotate { address: String },
    /// Copy the master key to FILE (mode 0600). Keep it offline: it opens every message
    Backup {
        file: PathBuf,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Install the master key from FILE as the configured master key file (mode 0600)
    Restore {
        file: PathBuf,
        /// Overwrite an existing master key file
        #[arg(long)]
        force: bool,
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
            let key = current_master(config)?;
            write_key_file(&file, &key, force)?;
            println!("master key written to {} (mode 0600)", file.display());
            Ok(())
        }
        KeysCommand::Restore { file, force } => {
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
