//! `sealpost demo`: everything a newcomer needs in one command, nothing to write first.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Config, TlsSetting};
use crate::node;

pub async fn run(config_file: Option<&Path>) -> Result<()> {
    // The demo runs on defaults; a config file or environment can still move ports or paths.
    let mut config = Config::load(config_file)?;
    if config.delivery.relay == crate::config::DeliveryConfig::default().relay {
        config.delivery.relay = format!("maildir:{}", config.data_dir.join("outbox").display());
    }
    if config.policy.internal_domains.is_empty() {
        config.policy.internal_domains = vec!["bank.example".into()];
    }
    if matches!(&config.web.tls, TlsSetting::Mode(m) if m == "off") {
        config.web.tls = TlsSetting::Mode("self-signed".into());
    }
    config.validate()?;
    node::ensure_data_dir(&config.data_dir)?;
    let running = node::start(&config).await?;
    // The demo serves the admin UI on its one listener, to this machine only (a production
    // node leaves `admin.allowed_networks` empty and uses `web.admin_listen`). An admin's own
    // choice is kept.
    if running
        .store
        .setting_value("admin.allowed_networks")
        .await?
        .is_none()
    {
        running
            .store
            .set_setting(
                "admin.allowed_networks",
                "127.0.0.0/8, ::1/128",
                sealpost_store::unix_now(),
            )
            .await?;
        running.settings.reload(&running.store).await?;
    }
    // The first admin of a fresh demo; later runs keep the admin (and its changed password).
    let admin_password = if running.store.count_admins().await? == 0 {
        let actor = sealpost_core::admin::Actor::cli();
        Some(sealpost_core::admin::create_admin(&running.store, "admin", &actor).await?)
    } else {
        None
    };
    let outbox: PathBuf = config.data_dir.join("outbox").join("new");
    let smtp = running.smtp_addr.map(|a| a.to_string()).unwrap_or_default();
    let (smtp_host, smtp_port) = smtp.rsplit_once(':').unwrap_or(("127.0.0.1", "10025"));
    println!();
    println!("  Sealpost demo is running.");
    println!();
    println!(
        "  Portal (self-signed certificate):  {}",
        config.web.public_url
    );
    println!(
        "  Admin UI:                          {}/admin",
        config.web.public_url.trim_end_matches('/')
    );
    match &admin_password {
        Some(p) => println!(
            "  Admin sign-in:                     admin / {} (one-time; you choose your own at first sign-in)",
            p.as_str()
        ),
        None => println!(
            "  Admin sign-in:                     your existing admin (sealpost admin reset-password admin)"
        ),
    }
    println!("  SMTP (give it mail to encrypt):    {smtp}");
    println!("  Delivered mail lands in:           {}", outbox.display());
    println!(
        "  Data (database, keys, TLS):        {}",
        config.data_dir.display()
    );
    println!();
    println!("  Send a first secure mail (subject contains [secure]):");
    println!(
        "    swaks --server {smtp_host} --port {smtp_port} --from advisor@bank.example --to customer@example.com \\"
    );
    println!(
        "          --header 'Subject: [secure] Your statement' --body 'Hello, here is your statement.'"
    );
    println!("  or with Python:");
    println!(
        "    python3 -c \"import smtplib; smtplib.SMTP('{smtp_host}', {smtp_port}).sendmail('advisor@bank.example', ['customer@example.com'], 'Subject: [secure] Hello\\r\\n\\r\\nConfidential text')\""
    );
    println!();
    println!("  Then, in {}:", outbox.display());
    println!("    - a credentials mail to advisor@bank.example with the customer's password,");
    println!("    - the carrier mail to customer@example.com: save its attachment secure.htm and");
    println!(
        "      open it in a browser, or upload it at {}.",
        config.web.public_url
    );
    println!();
    println!("  Stop with Ctrl-C.");
    println!();
    tokio::signal::ctrl_c().await.ok();
    running.shutdown().await;
    Ok(())
}
