//! `sealpost user list|reset-password|reset-factors|disable|enable|unlock|delete`.

use anyhow::{Result, bail};
use clap::Subcommand;
use sealpost::config::Config;
use sealpost_core::admin::{self, Actor, AdminError};
use sealpost_store::AccountStatus;

#[derive(Subcommand)]
pub enum UserCommand {
    /// List accounts (address, status, created, last login), optionally by address substring
    List {
        #[arg(long)]
        search: Option<String>,
        /// At most this many lines
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// Reset the password: mail the recipient a one-time link, or (mail.reset_mail_to = sender)
    /// a generated password to the last sender (X-Sealpost-Kind: password-reset)
    ResetPassword { address: String },
    /// Reset the second factors (authenticator app, recovery codes, remembered devices; the
    /// account's sessions end); the holder gets a notice
    ResetFactors {
        address: String,
        /// The next sign-in must enrol a new authenticator app, whatever the domain's policy
        #[arg(long)]
        require_reenrolment: bool,
    },
    /// Deactivate an account (its portal login stops working)
    Disable { address: String },
    /// Reactivate an account
    Enable { address: String },
    /// Clear failed logins and a lockout
    Unlock { address: String },
    /// Delete an account and its keys: its secure messages become unreadable
    Delete {
        address: String,
        /// Confirms that existing secure messages of the account become unreadable
        #[arg(long)]
        yes: bool,
    },
}

fn not_found(e: AdminError, address: &str) -> anyhow::Error {
    match e {
        AdminError::NoSuchAccount => anyhow::anyhow!("no account {address}"),
        other => other.into(),
    }
}

pub async fn run(config: &Config, command: UserCommand) -> Result<()> {
    let store = super::open(config).await?;
    let result = run_on(&store, config, command).await;
    store.close().await;
    result
}

async fn run_on(
    store: &sealpost_store::Store,
    config: &Config,
    command: UserCommand,
) -> Result<()> {
    let actor = Actor::cli();
    match command {
        UserCommand::List {
            search,
            limit,
            offset,
        } => {
            let needle = search.unwrap_or_default().to_lowercase();
            let now = sealpost_store::unix_now();
            for a in store
                .search_accounts(&needle, limit.max(0), offset.max(0))
                .await?
            {
                let status = if a.status == AccountStatus::Disabled {
                    "disabled"
                } else if a.locked_until.is_some_and(|t| t > now) {
                    "locked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{status}\tcreated={}\tlast_login={}",
                    a.address,
                    a.created_at,
                    a.last_login_at
                        .map_or_else(|| "never".to_string(), |t| t.to_string())
                );
            }
            Ok(())
        }
        UserCommand::ResetPassword { address } => {
            let account = admin::find_account(store, &address)
                .await
                .map_err(|e| not_found(e, &address))?;
            let settings = super::settings(store, config).await?.get();
            let sent = admin::reset_user_password(store, &settings, &account, &actor).await?;
            println!(
                "password of {} reset: {sent} (queued in a mail to {})",
                account.address, sent.to
            );
            Ok(())
        }
        UserCommand::ResetFactors {
            address,
            require_reenrolment,
        } => {
            let account = admin::find_account(store, &address)
                .await
                .map_err(|e| not_found(e, &address))?;
            let settings = super::settings(store, config).await?.get();
            admin::reset_second_factors(store, &settings, &account, require_reenrolment, &actor)
                .await?;
            println!("second factors of {} reset", account.address);
            Ok(())
        }
        UserCommand::Disable { address } => {
            let account = admin::find_account(store, &address)
                .await
                .map_err(|e| not_found(e, &address))?;
            admin::set_account_active(store, &account, false, &actor).await?;
            println!("{} deactivated", account.address);
            Ok(())
        }
        UserCommand::Enable { address } => {
            let account = admin::find_account(store, &address)
                .await
                .map_err(|e| not_found(e, &address))?;
            admin::set_account_active(store, &account, true, &actor).await?;
            println!("{} reactivated", account.address);
            Ok(())
        }
        UserCommand::Unlock { address } => {
            let account = admin::find_account(store, &address)
                .await
                .map_err(|e| not_found(e, &address))?;
            admin::unlock_account(store, &account, &actor).await?;
            println!("{} unlocked", account.address);
            Ok(())
        }
        UserCommand::Delete { address, yes } => {
            if !yes {
                bail!(
                    "deleting {address} deletes its keys and makes its existing secure messages unreadable; repeat with --yes"
                );
            }
            let account = admin::find_account(store, &address)
                .await
                .map_err(|e| not_found(e, &address))?;
            admin::delete_account(store, &account, &actor).await?;
            println!("{} deleted with its keys", account.address);
            Ok(())
        }
    }
}
