//! `sealpost`: the e-mail encryption gateway's one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sealpost::config::Config;
use sealpost::node;

mod cli;

#[derive(Parser)]
#[command(
    name = "sealpost",
    version,
    about = "Self-hosted e-mail encryption gateway"
)]
struct Cli {
    /// Configuration file (default: ./sealpost.toml if present, else built-in defaults)
    #[arg(long, global = true, env = "SEALPOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: SMTP inbound, delivery worker and web portal (limited by `roles`)
    Serve,
    /// Zero-configuration start: SQLite, self-signed TLS and a local maildir under ./sealpost-data
    Demo,
    /// Create or update the database schema
    Migrate,
    /// Check the configuration and exit; warns about names unusable on the internet
    CheckConfig {
        /// Fail (exit 2, one line per problem) instead of warning
        #[arg(long)]
        strict: bool,
    },
    /// Administrators: create, reset-password, list
    #[command(subcommand)]
    Admin(cli::admin::AdminCommand),
    /// Recipient accounts: list, reset-password, disable, enable, unlock, delete
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Keys: rotate an account's key or the master key; back up and restore keys and master key
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// Run-time settings: list, get KEY[@DOMAIN], set KEY[@DOMAIN] VALUE (validated, audited)
    #[command(subcommand)]
    Settings(cli::settings::SettingsCommand),
    /// DKIM: generate a signing key and print its DNS record
    #[command(subcommand)]
    Dkim(cli::dkim::DkimCommand),
    /// Sent messages: show, revoke, and signed delivery reports (report, verify-report,
    /// report-key)
    #[command(subcommand)]
    Message(cli::message::MessageCommand),
}

/// glibc's allocator never gave back the 19 MiB each Argon2 hash works in (the process grew by
/// that much per new account or login, without bound); mimalloc returns it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealpost: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<cli::check_config::Reported>() => ExitCode::from(2),
        Err(e) => {
            // One line, the whole causal chain: operators read this in a service log.
            eprintln!("sealpost: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALPOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Demo => sealpost::demo::run(cli.config.as_deref()).await,
        Command::Dkim(command) => cli::dkim::run(command),
        Command::Admin(command) => {
            let config = Config::load(cli.config.as_deref())?;
            cli::admin::run(&config, command).await
        }
        Command::User(command) => {
            let config = Config::load(cli.config.as_deref())?;
            cli::user::run(&config, command).await
        }
        Command::Keys(command) => {
            let config = Config::load(cli.config.as_deref())?;
            cli::keys::run(&config, command).await
        }
        Command::Settings(command) => {
            let config = Config::load(cli.config.as_deref())?;
            cli::settings::run(&config, command).await
        }
        Command::Message(command) => {
            // verify-report is offline: it must work without (or with a broken) configuration.
            match command {
                cli::message::MessageCommand::Report(report)
                    if !cli::message_report::needs_config(&report) =>
                {
                    cli::message_report::run(None, report).await
                }
                command => {
                    let config = Config::load(cli.config.as_deref())?;
                    cli::message::run(&config, command).await
                }
            }
        }
        Command::CheckConfig { strict } => {
            let config = Config::load(cli.config.as_deref())?;
            cli::check_config::run(&config, strict)
        }
        Command::Migrate => {
            let config = Config::load(cli.config.as_deref())?;
            node::ensure_data_dir(&config.data_dir)?;
            let store = sealpost_store::Store::connect(&config.database_url()).await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("database schema is up to date");
            } else {
                println!("applied migrations: {applied:?}");
            }
            Ok(())
        }
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            node::ensure_data_dir(&config.data_dir)?;
            let running = node::start(&config).await?;
            // The names as the node uses them: the notification sender and public URL are
            // run-time settings, so an admin's values count, not the file's seed.
            let settings = running.settings.get();
            for problem in sealpost::identity::problems(
                &config.hostname,
                &settings.notification_from,
                &settings.public_url,
            ) {
                tracing::warn!("{problem}");
            }
            if let Some(a) = running.smtp_addr {
                tracing::info!(addr = %a, "SMTP listening");
            }
            if let Some(a) = running.web_addr {
                tracing::info!(addr = %a, public_url = %config.web.public_url, "web listening");
            }
            wait_for_signal().await;
            tracing::info!("shutting down");
            running.shutdown().await;
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
