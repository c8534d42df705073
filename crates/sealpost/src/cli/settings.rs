//! `sealpost settings list|get|set`: the run-time settings for scripts, validated by the same
//! registry as the admin UI, audited as `cli`, and in effect on every node within seconds.

use anyhow::Result;
use clap::Subcommand;
use sealpost::config::Config;
use sealpost_core::Settings;
use sealpost_core::admin::{Actor, update_settings};
use sealpost_core::settings::{REGISTRY, SettingDef, SettingName};

#[derive(Subcommand)]
pub enum SettingsCommand {
    /// Every setting as `key = value`, then per-domain overrides as `key@domain = value`
    List,
    /// One setting's value; KEY@DOMAIN gives the value that applies to that domain
    Get { name: String },
    /// Validate and store a value for KEY, or for KEY@DOMAIN as a per-domain override
    Set {
        name: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

pub async fn run(config: &Config, command: SettingsCommand) -> Result<()> {
    let store = super::open(config).await?;
    let result = async {
        let handle = super::settings(&store, config).await?;
        match command {
            SettingsCommand::List => {
                let settings = handle.get();
                for def in REGISTRY {
                    println!("{} = {}", def.key, shown(def, &settings));
                }
                for (name, value) in settings.override_pairs() {
                    println!("{name} = {value}");
                }
            }
            SettingsCommand::Get { name } => {
                let name = SettingName::parse(&name)?;
                let settings = handle.get();
                let applying = match &name.domain {
                    Some(domain) => settings.for_domain(domain),
                    None => &settings,
                };
                println!("{}", shown(name.def, applying));
            }
            SettingsCommand::Set { name, value } => {
                let changed =
                    update_settings(&store, &handle, &[(name.as_str(), value)], &Actor::cli())
                        .await?;
                match changed.first() {
                    Some(stored) => println!("{stored} set"),
                    None => println!("{} unchanged", SettingName::parse(&name)?.stored()),
                }
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

/// A setting's text as listed; secrets only say whether they are set.
fn shown(def: &SettingDef, settings: &Settings) -> String {
    let text = settings.text_of(def.key).unwrap_or_default();
    if def.secret && !text.is_empty() {
        "(set)".to_string()
    } else {
        text
    }
}
