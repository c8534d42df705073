//! Administration from the command line: the same core functions as the admin web UI
//! (`sealpost_core::admin`, `sealpost_core::settings`), for scripts. Output is plain text, one record per line.

pub mod admin;
pub mod check_config;
pub mod dkim;
pub mod keys;
pub mod message;
pub mod message_report;
pub mod settings;
pub mod user;

use anyhow::{Context, Result};
use sealpost::config::Config;
use sealpost::node;
use sealpost_core::SettingsHandle;
use sealpost_store::Store;

/// Opens (and migrates) the configured database.
pub async fn open(config: &Config) -> Result<Store> {
    node::ensure_data_dir(&config.data_dir)?;
    node::open_store(config).await
}

/// The run-time settings as the nodes see them.
pub async fn settings(store: &Store, config: &Config) -> Result<SettingsHandle> {
    SettingsHandle::seed_and_load(store, &node::seed_settings(config))
        .await
        .context("cannot load settings")
}
