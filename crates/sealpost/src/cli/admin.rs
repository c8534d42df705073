//! `sealpost admin create|reset-password|list`.

use anyhow::Result;
use clap::Subcommand;
use sealpost::config::Config;
use sealpost_core::admin::{Actor, AdminError, create_admin, reset_admin_password};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an administrator; prints a one-time password (changed at first sign-in)
    Create { name: String },
    /// Give an administrator a new one-time password (also lifts a lockout)
    ResetPassword { name: String },
    /// List administrators
    List,
}

pub async fn run(config: &Config, command: AdminCommand) -> Result<()> {
    let store = super::open(config).await?;
    let result = match command {
        AdminCommand::Create { name } => match create_admin(&store, &name, &Actor::cli()).await {
            Ok(password) => {
                println!("admin {name} created");
                println!("one-time password: {}", password.as_str());
                println!("sign in at {}/admin", admin_base(&store, config).await);
                Ok(())
            }
            Err(AdminError::Exists) => Err(anyhow::anyhow!("admin {name} already exists")),
            Err(e) => Err(e.into()),
        },
        AdminCommand::ResetPassword { name } => {
            match reset_admin_password(&store, &name, &Actor::cli()).await {
                Ok(password) => {
                    println!("one-time password for {name}: {}", password.as_str());
                    Ok(())
                }
                Err(AdminError::NoSuchAdmin) => Err(anyhow::anyhow!("no admin named {name}")),
                Err(e) => Err(e.into()),
            }
        }
        AdminCommand::List => {
            for a in store.list_admins().await? {
                println!(
                    "{}\ttotp={}\tlast_login={}",
                    a.name,
                    if a.totp_secret.is_some() { "yes" } else { "no" },
                    a.last_login_at
                        .map_or_else(|| "never".to_string(), |t| t.to_string())
                );
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

/// The portal URL as the nodes see it (the setting wins over the file).
pub async fn admin_base(store: &sealpost_store::Store, config: &Config) -> String {
    match store.setting_value("web.public_url").await {
        Ok(Some(url)) if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => config.web.public_url.trim_end_matches('/').to_string(),
    }
}
