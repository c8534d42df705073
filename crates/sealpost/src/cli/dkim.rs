//! `sealpost dkim generate`: a new DKIM signing key in a private file (0600, never over an
//! existing one) and the DNS TXT record to publish for it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use sealpost_core::dkim::{DkimAlgorithm, generate};

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Write a new key to --out (mode 0600; refuses to overwrite) and print its DNS TXT record
    Generate {
        /// The signing domain (d=), e.g. the notification sender's domain
        #[arg(long)]
        domain: String,
        /// The selector (s=): the record is published at SELECTOR._domainkey.DOMAIN
        #[arg(long)]
        selector: String,
        /// rsa (2048 bits; the key_file of [delivery.dkim]) or ed25519 (its ed25519_key_file)
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        /// The private key file to create
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: DkimCommand) -> Result<()> {
    let DkimCommand::Generate {
        domain,
        selector,
        algorithm,
        out,
    } = command;
    let algorithm: DkimAlgorithm = algorithm.parse()?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let selector = selector.trim().to_string();
    // Check the names before spending seconds on an RSA key.
    sealpost_core::dkim::check_names(&domain, &selector)?;
    let key = generate(algorithm)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out)
        .with_context(|| format!("cannot create {} (it is never overwritten)", out.display()))?;
    file.write_all(key.private_pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("{}", key.dns_record(&domain, &selector));
    eprintln!(
        "wrote the {algorithm} key to {}; publish the record above, then set in [delivery.dkim]: domain = {domain:?}, {}",
        out.display(),
        match algorithm {
            DkimAlgorithm::Rsa => format!(
                "selector = {selector:?}, key_file = {:?}",
                out.display().to_string()
            ),
            DkimAlgorithm::Ed25519 => format!(
                "ed25519_key_file = {:?} (selector, or ed25519_selector next to an RSA key, = {selector:?})",
                out.display().to_string()
            ),
        }
    );
    Ok(())
}
