//! `sealpost message report|verify-report|report-key`: signed proof-of-delivery reports.
//! `verify-report` is offline: it reads only the file (and the expected key), no
//! configuration, database or key file, so anyone holding a report and the public key can run it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sealpost::config::Config;
use sealpost::node;
use sealpost_core::message_report::{self, ReportSigner};
use sealpost_crypto::report::{ReportPublicKey, verify_report};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Write the signed delivery report of message ID (JSON) and a readable HTML rendering
    Report {
        id: String,
        /// The signed JSON report
        #[arg(long)]
        out: PathBuf,
        /// The HTML rendering (default: the --out path with ".html" added)
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Check a report's signature offline; exit non-zero if any byte, field or the signature
    /// changed
    VerifyReport {
        file: PathBuf,
        /// The expected public key (base64 or hex, as `report-key` prints it)
        #[arg(long)]
        key: Option<String>,
    },
    /// Print this node's report public key (base64 and hex) and its fingerprint
    ReportKey,
}

/// Whether `command` needs the configuration (everything but the offline check).
pub fn needs_config(command: &ReportCommand) -> bool {
    !matches!(command, ReportCommand::VerifyReport { .. })
}

pub async fn run(config: Option<&Config>, command: ReportCommand) -> Result<()> {
    match command {
        ReportCommand::VerifyReport { file, key } => verify(&file, key.as_deref()),
        ReportCommand::ReportKey => {
            let config = config.context("configuration missing")?;
            let (key, _) = node::load_report_key(config)?;
            let public = key.public();
            println!("base64: {}", public.to_base64());
            println!("hex: {}", public.to_hex());
            println!("fingerprint: {}", public.fingerprint());
            Ok(())
        }
        ReportCommand::Report { id, out, html } => {
            let config = config.context("configuration missing")?;
            let (key, _) = node::load_report_key(config)?;
            let signer = ReportSigner::new(key, config.hostname.clone());
            let store = super::open(config).await?;
            let result = async {
                let settings = super::settings(&store, config).await?.get();
                let report = message_report::build(
                    &store,
                    &settings,
                    &signer,
                    &id,
                    sealpost_store::unix_now(),
                )
                .await?;
                let html_path = html.unwrap_or_else(|| with_html_suffix(&out));
                write(&out, report.json.as_bytes())?;
                write(
                    &html_path,
                    message_report::render_html(&report.document, &signer.public()).as_bytes(),
                )?;
                println!(
                    "report of {} written to {} and {}",
                    report.document.message_id,
                    out.display(),
                    html_path.display()
                );
                Ok(())
            }
            .await;
            store.close().await;
            result
        }
    }
}

fn with_html_suffix(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".html");
    PathBuf::from(name)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn verify(file: &Path, key: Option<&str>) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let expected = key
        .map(ReportPublicKey::parse)
        .transpose()
        .context("--key is not a report public key")?;
    match verify_report(&bytes, expected.as_ref()) {
        Ok(report) => {
            println!(
                "report OK: message {}, {} recipient(s), signed by {} ({})",
                report.document.message_id,
                report.document.recipients.len(),
                report.document.issuer,
                report.signer.fingerprint()
            );
            if expected.is_none() {
                println!(
                    "note: checked against the key inside the file; pass --key to check it is the node's"
                );
            }
            Ok(())
        }
        Err(e) => bail!("report {} does NOT verify: {e}", file.display()),
    }
}
