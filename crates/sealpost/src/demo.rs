//! `sealpost demo`: everything a newcomer needs in one command, nothing to write first.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Config, TlsSetting, WebConfig};
use crate::node;

/// The demo's name when the machine has no usable fully qualified name of its own: `.demo` is
/// not a reserved name (so the names pass `check-config --strict`, as a real node's must),
/// and it is not a delegated top-level domain either, so nothing the demo writes can point at
/// someone else's host. A browser reaches it once `/etc/hosts` maps it to 127.0.0.1; the demo
/// says so when it does not resolve.
pub const FALLBACK_NAME: &str = "sealpost.demo";

/// The machine's own fully qualified name (`/etc/hostname` or the kernel's), when it is one
/// that `check-config --strict` accepts.
fn machine_name() -> Option<String> {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .find(|h| !h.is_empty())
        .filter(|h| {
            crate::identity::problems(h, &format!("noreply@{h}"), &format!("https://{h}"))
                .is_empty()
        })
}

/// The demo's configuration: the file's or environment's values, with the demo's choices where
/// they left the built-in defaults. The names generated mail carries (hostname, notification
/// sender, public URL) are the machine's fully qualified name, else [`FALLBACK_NAME`], so the
/// demo shows mail as a real node writes it and passes `check-config --strict`.
pub fn config(config_file: Option<&Path>) -> Result<Config> {
    // The demo runs on defaults; a config file or environment can still move ports or paths.
    let mut config = Config::load(config_file)?;
    let defaults = Config::default();
    let name = machine_name().unwrap_or_else(|| FALLBACK_NAME.to_string());
    if config.hostname == defaults.hostname {
        config.hostname = name.clone();
    }
    if config.web.public_url == WebConfig::default().public_url {
        let port = config
            .web
            .listen
            .rsplit_once(':')
            .map_or("8443", |(_, p)| p)
            .to_string();
        config.web.public_url = format!("https://{name}:{port}");
    }
    if config.policy.notification_from.is_none() {
        // The demo's internal domain (bank.example) is a documentation name; the
        // notification sender lives under the demo's own name instead.
        config.policy.notification_from = Some(format!("noreply@{}", config.hostname));
    }
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
    Ok(config)
}

/// Whether the browser on this machine reaches `public_url`'s host (it resolves to a
/// loopback address), so the demo can say what to add to /etc/hosts when it does not.
fn resolves_locally(public_url: &str) -> bool {
    use std::net::ToSocketAddrs;
    sealpost_core::url::host(public_url)
        .and_then(|h| (h, 443).to_socket_addrs().ok())
        .is_some_and(|mut addrs| addrs.any(|a| a.ip().is_loopback()))
}

pub async fn run(config_file: Option<&Path>) -> Result<()> {
    let config = config(config_file)?;
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
    if !resolves_locally(&config.web.public_url) {
        let host = sealpost_core::url::host(&config.web.public_url).unwrap_or_default();
        println!(
            "  (this name does not reach this machine yet: add \"127.0.0.1 {host}\" to /etc/hosts,"
        );
        println!("   or set web.public_url; secure.htm posts to the portal under this name)");
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn the_demo_passes_the_strict_identity_checks() {
        // No file: the demo's own choices over the built-in defaults (which fail them).
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        std::fs::write(&missing, "").unwrap();
        assert!(
            !crate::identity::config_problems(&Config::load(Some(&missing)).unwrap()).is_empty()
        );
        let demo = config(Some(&missing)).unwrap();
        assert_eq!(
            crate::identity::config_problems(&demo),
            Vec::<String>::new()
        );
        assert!(
            demo.web
                .public_url
                .starts_with(&format!("https://{}:", demo.hostname))
        );
        assert_eq!(
            demo.notification_from(),
            format!("noreply@{}", demo.hostname)
        );
        // A name the operator chose is kept.
        let own = dir.path().join("own.toml");
        std::fs::write(
            &own,
            "hostname = \"gw.musterbank.de\"\n[web]\npublic_url = \"https://secure.musterbank.de\"\n",
        )
        .unwrap();
        let demo = config(Some(&own)).unwrap();
        assert_eq!(demo.hostname, "gw.musterbank.de");
        assert_eq!(demo.web.public_url, "https://secure.musterbank.de");
        assert_eq!(demo.notification_from(), "noreply@gw.musterbank.de");
    }
}
