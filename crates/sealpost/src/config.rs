//! Boot configuration: a TOML file plus `SEALPOST_…` environment overrides (`__` nests).
//! Only what a node needs to start lives here; everything an administrator changes at run
//! time lives in the database (the `[policy]` and similar values here only seed it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Name of this node in heartbeats and queue leases (default: the host name).
    pub node_name: Option<String>,
    /// Name used in SMTP greetings, Message-IDs and bounces.
    pub hostname: String,
    pub roles: Vec<Role>,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub smtp: SmtpConfig,
    pub delivery: DeliveryConfig,
    pub web: WebConfig,
    pub policy: PolicyConfig,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Smtp,
    Delivery,
    Web,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// sqlite://…, postgres://… or mysql://…; default: SQLite in the data directory.
    pub url: Option<String>,
}

#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub master_key_file: Option<PathBuf>,
    /// Base64 master key, normally from SEALPOST_KEYS__MASTER_KEY; wins over the file.
    pub master_key: Option<String>,
    /// During a master-key rotation: the old master key, accepted for unwrapping only (never
    /// used to wrap). Remove it once `sealpost keys rotate-master` has re-wrapped every key.
    pub previous_master_key_file: Option<PathBuf>,
    /// Base64 of the previous master key (SEALPOST_KEYS__PREVIOUS_MASTER_KEY); wins over the file.
    pub previous_master_key: Option<String>,
    /// The node's Ed25519 key that signs proof-of-delivery reports (default
    /// `<data_dir>/report.key`, created 0600 on first use like the master key).
    pub report_key_file: Option<PathBuf>,
    /// Base64 of the report key's 32-byte seed (SEALPOST_KEYS__REPORT_KEY); wins over the file.
    pub report_key: Option<String>,
}

impl std::fmt::Debug for KeysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysConfig")
            .field("master_key_file", &self.master_key_file)
            .field("master_key", &self.master_key.as_ref().map(|_| "<set>"))
            .field("previous_master_key_file", &self.previous_master_key_file)
            .field(
                "previous_master_key",
                &self.previous_master_key.as_ref().map(|_| "<set>"),
            )
            .field("report_key_file", &self.report_key_file)
            .field("report_key", &self.report_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub listen: String,
    /// Clients allowed to hand mail to Sealpost (the organisation's MTA).
    pub allowed_networks: Vec<String>,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
    /// Seeds the run-time settings on first start (then the admin's value wins).
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// A bare CR or LF inside message data: "refuse" (550 5.6.0, the default) or "keep" (as
    /// data). Never a line end: only CRLF.CRLF ends DATA.
    #[serde(deserialize_with = "from_text")]
    pub bare_lf: sealpost_smtp::inbound::BareLineEnds,
}

/// Reads a value through its `FromStr`, so the config file and the code share one spelling.
fn from_text<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: "127.0.0.1:10025".into(),
            allowed_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            max_connections: 1000,
            max_connections_per_ip: 200,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            bare_lf: sealpost_smtp::inbound::BareLineEnds::Refuse,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// "smtp://host:port" or "maildir:PATH".
    pub relay: String,
    pub concurrency: usize,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// How long a node holds a queue item it is delivering; after a crash another node takes
    /// the item over once this has passed.
    pub lease_secs: u64,
    /// Longest wait for the next hop's reply to a command and, separately, for each write of
    /// message data and the reply after it; a hop that hangs is given up and retried.
    pub timeout_secs: u64,
    /// `[delivery.dkim]`: sign every mail Sealpost writes (not mail relayed unchanged).
    pub dkim: Option<DkimConfig>,
}

/// DKIM signing keys: `key_file` an RSA key (2048 to 4096 bits), `ed25519_key_file` an Ed25519
/// key, PEM (PKCS#1 or PKCS#8), mode 0600; with both, every mail gets two signatures. A
/// selector names one DNS record, so two keys need two: `selector` for the RSA key (or for an
/// Ed25519 key alone), `ed25519_selector` for the Ed25519 key when both are given.
/// `sealpost dkim generate` makes such files and prints their DNS records.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// The `d=` domain: the notification sender's domain or a parent of it (DMARC alignment).
    pub domain: String,
    /// The `s=` selector of the RSA key, or of the Ed25519 key when it is the only one.
    pub selector: String,
    pub key_file: Option<PathBuf>,
    pub ed25519_key_file: Option<PathBuf>,
    /// Selector of the Ed25519 key; required when both keys are given.
    pub ed25519_selector: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            relay: "smtp://127.0.0.1:10026".into(),
            concurrency: 16,
            retry_base_secs: 60,
            retry_max_secs: 3600,
            lease_secs: 300,
            timeout_secs: 300,
            dkim: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub listen: String,
    pub public_url: String,
    pub tls: TlsSetting,
    /// A client must send its first byte and its request headers within this time (slowloris
    /// protection).
    pub header_timeout_secs: u64,
    /// When set, the admin UI and /metrics are served only on this address (e.g. an internal
    /// interface) and no longer on `listen`.
    pub admin_listen: Option<String>,
    /// A whole request, body included, must be handled within this time (long enough for a
    /// large upload on a slow line, short enough that trickled bodies do not pile up).
    pub request_timeout_secs: u64,
    /// Open connections per web listener, in all and from one client address.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// `POST /open` uploads handled at once on this node (each holds an envelope in memory).
    pub max_concurrent_uploads: usize,
    /// Envelopes parked for opening (until they expire), from one client address and in all
    /// on this node, in MiB.
    pub max_parked_mib_per_client: u64,
    pub max_parked_mib: u64,
    /// `listen` is reachable only from an internal network (like `admin_listen`): the admin UI
    /// on it answers without `admin.allowed_networks`. Off by default: on a public `listen` the
    /// admin UI answers only the admin networks, and nobody while none are set.
    pub listen_is_internal: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8443".into(),
            public_url: "https://localhost:8443".into(),
            tls: TlsSetting::Mode("self-signed".into()),
            header_timeout_secs: 20,
            admin_listen: None,
            request_timeout_secs: 900,
            max_connections: 2048,
            max_connections_per_client: 64,
            max_concurrent_uploads: 16,
            max_parked_mib_per_client: 512,
            max_parked_mib: 8192,
            listen_is_internal: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TlsSetting {
    /// "self-signed" or "off"
    Mode(String),
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub trigger_keywords: Vec<String>,
    pub internal_domains: Vec<String>,
    pub notification_from: Option<String>,
    pub default_language: String,
    pub org_name: String,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            trigger_keywords: vec!["[secure]".into()],
            internal_domains: Vec::new(),
            notification_from: None,
            default_language: "en".into(),
            org_name: "Sealpost".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./sealpost-data"),
            node_name: None,
            hostname: "localhost".into(),
            roles: vec![Role::Smtp, Role::Delivery, Role::Web],
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            smtp: SmtpConfig::default(),
            delivery: DeliveryConfig::default(),
            web: WebConfig::default(),
            policy: PolicyConfig::default(),
        }
    }
}

/// Top-level keys the environment may set; other SEALPOST_* variables (SEALPOST_CONFIG, test
/// settings) are not configuration.
const ENV_SECTIONS: &[&str] = &[
    "data_dir",
    "node_name",
    "hostname",
    "roles",
    "database",
    "keys",
    "smtp",
    "delivery",
    "web",
    "policy",
];

impl Config {
    /// Loads `file` (or ./sealpost.toml when present, else built-in defaults) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Load(format!(
                        "configuration file {} not found",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => {
                let default = Path::new("sealpost.toml");
                if default.exists() {
                    figment = figment.merge(Toml::file(default));
                }
            }
        }
        figment = figment.merge(
            Env::prefixed("SEALPOST_")
                .filter(|key| {
                    let first = key.as_str().split("__").next().unwrap_or_default();
                    ENV_SECTIONS.contains(&first.to_ascii_lowercase().as_str())
                })
                .split("__"),
        );
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("sealpost.db").display()))
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.keys
            .master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    pub fn report_key_file(&self) -> PathBuf {
        self.keys
            .report_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("report.key"))
    }

    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "sealpost".into())
        })
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The sender of generated mail: `policy.notification_from`, else `noreply@` the first
    /// internal domain (the organisation's mail domain, which DKIM signs and DMARC aligns
    /// with), else `noreply@` the hostname.
    pub fn notification_from(&self) -> String {
        if let Some(from) = &self.policy.notification_from {
            return from.clone();
        }
        let domain = self
            .policy
            .internal_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@'))
            .find(|d| !d.is_empty())
            .unwrap_or(&self.hostname);
        format!("noreply@{}", domain.to_ascii_lowercase())
    }

    /// Checks everything that can be checked without touching the network or database.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.smtp.listen.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "smtp.listen {:?} is not an address:port",
                self.smtp.listen
            ));
        }
        if let Some(admin) = self
            .web
            .admin_listen
            .as_ref()
            .filter(|a| a.parse::<SocketAddr>().is_err())
        {
            return invalid(format!("web.admin_listen {admin:?} is not an address:port"));
        }
        if self.web.listen.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "web.listen {:?} is not an address:port",
                self.web.listen
            ));
        }
        for net in &self.smtp.allowed_networks {
            if parse_network(net).is_none() {
                return invalid(format!("smtp.allowed_networks: {net:?} is not a network"));
            }
        }
        if let Err(e) = self
            .delivery
            .relay
            .parse::<sealpost_smtp::next_hop::NextHop>()
        {
            return invalid(format!("delivery.relay: {e}"));
        }
        if let Some(dkim) = &self.delivery.dkim {
            if dkim.domain.trim().is_empty() || dkim.selector.trim().is_empty() {
                return invalid("delivery.dkim needs domain and selector".into());
            }
            if dkim.key_file.is_none() && dkim.ed25519_key_file.is_none() {
                return invalid(
                    "delivery.dkim needs key_file (RSA) and/or ed25519_key_file".into(),
                );
            }
            if dkim.key_file.is_some()
                && dkim.ed25519_key_file.is_some()
                && dkim
                    .ed25519_selector
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty() || s.trim() == dkim.selector.trim())
            {
                return invalid(
                    "delivery.dkim: with both key_file and ed25519_key_file, give the Ed25519 key \
                     its own ed25519_selector (one DNS record per selector)"
                        .into(),
                );
            }
        }
        if !sealpost_core::url::is_web_url(&self.web.public_url) {
            return invalid(format!(
                "web.public_url {:?} must be an https:// URL with a host name",
                self.web.public_url
            ));
        }
        if let Err(e) = sealpost_store::Backend::from_url(&self.database_url()) {
            return invalid(format!("database.url: {e}"));
        }
        let web = &self.web;
        for (key, value) in [
            ("web.header_timeout_secs", web.header_timeout_secs),
            ("web.request_timeout_secs", web.request_timeout_secs),
            ("web.max_connections", web.max_connections as u64),
            (
                "web.max_connections_per_client",
                web.max_connections_per_client as u64,
            ),
            (
                "web.max_concurrent_uploads",
                web.max_concurrent_uploads as u64,
            ),
            (
                "web.max_parked_mib_per_client",
                web.max_parked_mib_per_client,
            ),
            ("web.max_parked_mib", web.max_parked_mib),
        ] {
            if value == 0 {
                return invalid(format!("{key} must be at least 1"));
            }
        }
        if web.max_connections_per_client > web.max_connections {
            return invalid(
                "web.max_connections_per_client is larger than web.max_connections".into(),
            );
        }
        if web.max_parked_mib_per_client > web.max_parked_mib {
            return invalid(
                "web.max_parked_mib_per_client is larger than web.max_parked_mib".into(),
            );
        }
        if web.request_timeout_secs < web.header_timeout_secs {
            return invalid(
                "web.request_timeout_secs is shorter than web.header_timeout_secs".into(),
            );
        }
        match &self.web.tls {
            TlsSetting::Mode(m) if m == "self-signed" || m == "off" => {}
            TlsSetting::Mode(m) => {
                return invalid(format!(
                    "web.tls {m:?}: use \"self-signed\", \"off\" or {{ cert = \"…\", key = \"…\" }}"
                ));
            }
            TlsSetting::Files { cert, key } => {
                for f in [cert, key] {
                    if !f.exists() {
                        return invalid(format!("web.tls: {} not found", f.display()));
                    }
                }
            }
        }
        if self.roles.is_empty() {
            return invalid("roles is empty: give at least one of smtp, delivery, web".into());
        }
        if self
            .policy
            .trigger_keywords
            .iter()
            .all(|k| k.trim().is_empty())
        {
            return invalid("policy.trigger_keywords needs at least one keyword".into());
        }
        if sealpost_i18n::resolve(&self.policy.default_language).is_none() {
            return invalid(format!(
                "policy.default_language {:?} is not one of {:?}",
                self.policy.default_language,
                sealpost_i18n::available()
            ));
        }
        Ok(())
    }
}

/// The one network parser, shared with the run-time settings.
pub use sealpost_core::settings::parse_network;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("sealpost.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn file_values_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "data_dir = \"/tmp/x\"\n[smtp]\nlisten = \"127.0.0.1:2525\"\n[policy]\ninternal_domains = [\"bank.example\"]\n",
        );
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.smtp.listen, "127.0.0.1:2525");
        assert_eq!(c.policy.internal_domains, vec!["bank.example"]);
        assert_eq!(c.database_url(), "sqlite:///tmp/x/sealpost.db");
        assert_eq!(c.smtp.bare_lf, sealpost_smtp::inbound::BareLineEnds::Refuse);
        let p = write(&dir, "[smtp]\nbare_lf = \"keep\"\n");
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.smtp.bare_lf, sealpost_smtp::inbound::BareLineEnds::Keep);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "[smtp]\nlisen = \"x\"\n");
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let p = write(&dir, "[delivery]\nrelay = \"ftp://x\"\n");
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("delivery.relay"), "{e}");
        let p = write(&dir, "[web]\ntls = \"maybe\"\n");
        assert!(Config::load(Some(&p)).is_err());
        let p = write(&dir, "[smtp]\nbare_lf = \"normalize\"\n");
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("bare_lf") && e.contains("refuse"), "{e}");
        for bad in [
            "max_connections = 0",
            "max_connections = 10\nmax_connections_per_client = 11",
            "request_timeout_secs = 0",
            "request_timeout_secs = 5\nheader_timeout_secs = 10",
            "max_concurrent_uploads = 0",
            "max_parked_mib = 100\nmax_parked_mib_per_client = 200",
        ] {
            let p = write(&dir, &format!("[web]\n{bad}\n"));
            let e = Config::load(Some(&p)).unwrap_err().to_string();
            assert!(e.contains("web."), "{bad}: {e}");
        }
        let p = write(
            &dir,
            "[web]\nrequest_timeout_secs = 60\nmax_connections_per_client = 8\n",
        );
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.web.request_timeout_secs, 60);
        assert_eq!(c.web.max_connections_per_client, 8);
        assert!(!e.contains('\n'));
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/sealpost.toml"))).unwrap_err();
        assert!(e.to_string().contains("not found"));
    }
}
