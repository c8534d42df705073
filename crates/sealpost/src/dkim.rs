//! `[delivery.dkim]` at boot: the signer from the configured key files, and the warnings
//! `check-config` and `serve` give about DKIM (not configured, or not aligned with the sender).

use std::sync::Arc;

use anyhow::{Context, Result};
use sealpost_core::dkim::{DkimAlgorithm, Signer, alignment_warnings};

use crate::config::Config;

/// The signer for `[delivery.dkim]`, keys loaded once (a bad or world-readable key file is a
/// boot error naming the file); `None` without that section.
pub fn load_signer(config: &Config) -> Result<Option<Arc<Signer>>> {
    let Some(dkim) = &config.delivery.dkim else {
        return Ok(None);
    };
    let mut files = Vec::new();
    if let Some(path) = &dkim.key_file {
        files.push((DkimAlgorithm::Rsa, dkim.selector.as_str(), path.as_path()));
    }
    if let Some(path) = &dkim.ed25519_key_file {
        let selector = match (&dkim.key_file, &dkim.ed25519_selector) {
            (_, Some(s)) => s.as_str(),
            (None, None) => dkim.selector.as_str(),
            // Config::validate refuses this; keep the error here too.
            (Some(_), None) => anyhow::bail!("delivery.dkim: ed25519_selector is missing"),
        };
        files.push((DkimAlgorithm::Ed25519, selector, path.as_path()));
    }
    let signer = Signer::load(&dkim.domain, &files).context("delivery.dkim")?;
    Ok(Some(Arc::new(signer)))
}

/// DKIM warnings for `check-config` (from the configuration: the sender it seeds) and `serve`
/// (with the run-time `mail.notification_from`): signing off, or a `From:` domain of generated
/// mail outside the signing domain.
pub fn warnings(config: &Config, notification_from: &str) -> Vec<String> {
    alignment_warnings(
        config.delivery.dkim.as_ref().map(|d| d.domain.as_str()),
        notification_from,
        &config.hostname,
    )
}
