//! `sealpost check-config [--strict]`: the configuration as `Config::load` validates it, plus
//! the checks that a node on the internet needs and a trial on one machine does not (the
//! names generated mail carries, [`sealpost::identity`]): warnings by default, failures with
//! `--strict`, one line each.

use sealpost::config::Config;

/// The run has printed its reasons already; `main` only sets the exit code.
#[derive(Debug, thiserror::Error)]
#[error("check-config --strict found problems")]
pub struct Reported;

pub fn run(config: &Config, strict: bool) -> anyhow::Result<()> {
    // A configured DKIM key that does not load is an error in either mode.
    sealpost::dkim::load_signer(config)?;
    for warning in sealpost::dkim::warnings(config, &config.notification_from()) {
        eprintln!("warning: {warning}");
    }
    let problems = sealpost::identity::config_problems(config);
    if strict && !problems.is_empty() {
        for problem in &problems {
            eprintln!("sealpost: {problem}");
        }
        return Err(Reported.into());
    }
    for problem in &problems {
        eprintln!("warning: {problem}");
    }
    println!(
        "configuration OK: database {}, SMTP {}, web {}, next hop {}",
        sealpost_store::redact_url(&config.database_url()),
        config.smtp.listen,
        config.web.listen,
        config.delivery.relay
    );
    Ok(())
}
