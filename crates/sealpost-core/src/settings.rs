//! Run-time settings. They live in the database so that every node agrees; the configuration
//! file only seeds them. Each node keeps a snapshot and reloads it when the database's newest
//! change time moves, so an admin's change reaches all nodes within seconds.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sealpost_store::{Store, StoreError, unix_now};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub trigger_keywords: Vec<String>,
    pub trigger_header: String,
    pub internal_domains: Vec<String>,
    pub public_url: String,
    pub notification_from: String,
    pub org_name: String,
    pub accent_color: String,
    pub default_language: String,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub retry_give_up_secs: i64,
    pub temp_open_ttl_secs: i64,
    pub session_idle_secs: i64,
    pub lockout_threshold: i64,
    pub lockout_secs: i64,
    pub account_validity_days: i64,
    /// "sender" (default) or a fixed address that receives all credentials mails.
    pub credentials_to: String,
    pub max_open_size: usize,
    /// Portal: minimum length of a recipient's chosen password.
    pub password_min_length: usize,
    /// Portal: a generated password must be replaced at the first login.
    pub force_password_change: bool,
    /// Portal: wrong secret answers before the reset is blocked (until an admin helps).
    pub secret_answer_max_attempts: i64,
    /// Portal replies: reply-all to internal addresses of the original allowed.
    pub reply_allow_internal_all: bool,
    /// Portal replies: total attachment size, bytes (0 = attachments off).
    pub reply_max_attachment_bytes: usize,
    /// Portal replies: the recipient also gets an encrypted copy of their reply.
    pub reply_encrypted_copy: bool,
    /// Carrier mail keeps the original subject (else a neutral one from the locale).
    pub keep_subject: bool,
    /// Admin: idle timeout of admin sessions.
    pub admin_session_idle_secs: i64,
    /// Admin: TOTP second factor mandatory for all admins.
    pub admin_totp_required: bool,
    /// Network: old public host names that redirect to `public_url`.
    pub legacy_hosts: Vec<String>,
    /// Network: peers whose X-Forwarded-For / X-Forwarded-Proto are trusted.
    pub trusted_proxies: Vec<String>,
    /// Where password-reset mails go: "recipient" (default) or "sender" (the last sender).
    pub reset_mail_to: String,
    /// Next hop override ("" = the node's configured `delivery.relay`).
    pub next_hop: String,
    // --- added by web ---
    /// Portal: a reader's session ends this long after sign-in, even while in use.
    pub session_absolute_secs: i64,
    /// Admin: an admin session ends this long after sign-in, even while in use.
    pub admin_session_absolute_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            trigger_keywords: vec!["[secure]".to_string()],
            trigger_header: "X-Sealpost-Encrypt".to_string(),
            internal_domains: Vec::new(),
            public_url: "https://localhost:8443".to_string(),
            notification_from: "sealpost@localhost".to_string(),
            org_name: "Sealpost".to_string(),
            accent_color: "#1f5fa8".to_string(),
            default_language: "en".to_string(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            retry_give_up_secs: 5 * 24 * 3600,
            temp_open_ttl_secs: 30 * 60,
            session_idle_secs: 30 * 60,
            lockout_threshold: 5,
            lockout_secs: 15 * 60,
            account_validity_days: 365,
            credentials_to: "sender".to_string(),
            max_open_size: 200 * 1024 * 1024,
            password_min_length: 10,
            force_password_change: true,
            secret_answer_max_attempts: 5,
            reply_allow_internal_all: true,
            reply_max_attachment_bytes: 10 * 1024 * 1024,
            reply_encrypted_copy: false,
            keep_subject: true,
            admin_session_idle_secs: 15 * 60,
            admin_totp_required: true,
            legacy_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            reset_mail_to: "recipient".to_string(),
            next_hop: String::new(),
            session_absolute_secs: 12 * 3600,
            admin_session_absolute_secs: 8 * 3600,
        }
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split([',', '\n'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Settings {
    /// Setting names and their text form, as stored in the database.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("policy.trigger_keywords", self.trigger_keywords.join("\n")),
            ("policy.trigger_header", self.trigger_header.clone()),
            ("policy.internal_domains", self.internal_domains.join("\n")),
            ("web.public_url", self.public_url.clone()),
            ("mail.notification_from", self.notification_from.clone()),
            ("branding.org_name", self.org_name.clone()),
            ("branding.accent_color", self.accent_color.clone()),
            ("i18n.default_language", self.default_language.clone()),
            ("limits.max_message_size", self.max_message_size.to_string()),
            ("limits.max_recipients", self.max_recipients.to_string()),
            ("delivery.give_up_secs", self.retry_give_up_secs.to_string()),
            (
                "portal.temp_open_ttl_secs",
                self.temp_open_ttl_secs.to_string(),
            ),
            (
                "security.session_idle_secs",
                self.session_idle_secs.to_string(),
            ),
            (
                "security.lockout_threshold",
                self.lockout_threshold.to_string(),
            ),
            ("security.lockout_secs", self.lockout_secs.to_string()),
            (
                "security.account_validity_days",
                self.account_validity_days.to_string(),
            ),
            ("mail.credentials_to", self.credentials_to.clone()),
            ("limits.max_open_size", self.max_open_size.to_string()),
            (
                "security.password_min_length",
                self.password_min_length.to_string(),
            ),
            (
                "security.force_password_change",
                self.force_password_change.to_string(),
            ),
            (
                "security.secret_answer_max_attempts",
                self.secret_answer_max_attempts.to_string(),
            ),
            (
                "reply.allow_internal_all",
                self.reply_allow_internal_all.to_string(),
            ),
            (
                "reply.max_attachment_bytes",
                self.reply_max_attachment_bytes.to_string(),
            ),
            (
                "reply.encrypted_copy",
                self.reply_encrypted_copy.to_string(),
            ),
            ("mail.keep_subject", self.keep_subject.to_string()),
            (
                "security.admin_session_idle_secs",
                self.admin_session_idle_secs.to_string(),
            ),
            (
                "security.admin_totp_required",
                self.admin_totp_required.to_string(),
            ),
            ("network.legacy_hosts", self.legacy_hosts.join("\n")),
            ("network.trusted_proxies", self.trusted_proxies.join("\n")),
            ("mail.reset_mail_to", self.reset_mail_to.clone()),
            ("delivery.next_hop", self.next_hop.clone()),
            (
                "security.session_absolute_secs",
                self.session_absolute_secs.to_string(),
            ),
            (
                "security.admin_session_absolute_secs",
                self.admin_session_absolute_secs.to_string(),
            ),
        ]
    }

    /// Applies stored pairs over the defaults; unknown names and unparsable numbers are
    /// ignored so one bad value cannot stop a node.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut s = Settings::default();
        for (name, value) in pairs {
            let v = value.as_str();
            match name.as_str() {
                "policy.trigger_keywords" => s.trigger_keywords = list(v),
                "policy.trigger_header" => s.trigger_header = v.trim().to_string(),
                "policy.internal_domains" => {
                    s.internal_domains = list(v).into_iter().map(|d| d.to_lowercase()).collect()
                }
                "web.public_url" => s.public_url = v.trim().trim_end_matches('/').to_string(),
                "mail.notification_from" => s.notification_from = v.trim().to_string(),
                "branding.org_name" => s.org_name = v.to_string(),
                "branding.accent_color" => s.accent_color = v.trim().to_string(),
                "i18n.default_language" => s.default_language = v.trim().to_string(),
                "limits.max_message_size" => parse_into(v, &mut s.max_message_size),
                "limits.max_recipients" => parse_into(v, &mut s.max_recipients),
                "delivery.give_up_secs" => parse_into(v, &mut s.retry_give_up_secs),
                "portal.temp_open_ttl_secs" => parse_into(v, &mut s.temp_open_ttl_secs),
                "security.session_idle_secs" => parse_into(v, &mut s.session_idle_secs),
                "security.lockout_threshold" => parse_into(v, &mut s.lockout_threshold),
                "security.lockout_secs" => parse_into(v, &mut s.lockout_secs),
                "security.account_validity_days" => parse_into(v, &mut s.account_validity_days),
                "mail.credentials_to" => s.credentials_to = v.trim().to_string(),
                "limits.max_open_size" => parse_into(v, &mut s.max_open_size),
                "security.password_min_length" => parse_into(v, &mut s.password_min_length),
                "security.force_password_change" => parse_into(v, &mut s.force_password_change),
                "security.secret_answer_max_attempts" => {
                    parse_into(v, &mut s.secret_answer_max_attempts)
                }
                "reply.allow_internal_all" => parse_into(v, &mut s.reply_allow_internal_all),
                "reply.max_attachment_bytes" => parse_into(v, &mut s.reply_max_attachment_bytes),
                "reply.encrypted_copy" => parse_into(v, &mut s.reply_encrypted_copy),
                "mail.keep_subject" => parse_into(v, &mut s.keep_subject),
                "security.admin_session_idle_secs" => parse_into(v, &mut s.admin_session_idle_secs),
                "security.admin_totp_required" => parse_into(v, &mut s.admin_totp_required),
                "network.legacy_hosts" => s.legacy_hosts = list(v),
                "network.trusted_proxies" => s.trusted_proxies = list(v),
                "mail.reset_mail_to" => s.reset_mail_to = v.trim().to_string(),
                "delivery.next_hop" => s.next_hop = v.trim().to_string(),
                "security.session_absolute_secs" => parse_into(v, &mut s.session_absolute_secs),
                "security.admin_session_absolute_secs" => {
                    parse_into(v, &mut s.admin_session_absolute_secs)
                }
                _ => {}
            }
        }
        s
    }

    pub fn is_internal(&self, address: &str) -> bool {
        crate::address_domain(address)
            .map(|d| self.internal_domains.iter().any(|i| i == d))
            .unwrap_or(false)
    }
}

fn parse_into<T: std::str::FromStr>(value: &str, target: &mut T) {
    if let Ok(v) = value.trim().parse() {
        *target = v;
    }
}

/// The current settings of this node, shared by all its tasks.
#[derive(Clone)]
pub struct SettingsHandle {
    current: Arc<RwLock<Arc<Settings>>>,
    version: Arc<RwLock<i64>>,
}

impl SettingsHandle {
    pub fn new(settings: Settings) -> Self {
        SettingsHandle {
            current: Arc::new(RwLock::new(Arc::new(settings))),
            version: Arc::new(RwLock::new(0)),
        }
    }

    /// A consistent snapshot; cheap (one Arc clone), so callers take one per request or mail.
    pub fn get(&self) -> Arc<Settings> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, settings: Settings, version: i64) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(settings),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(settings),
        }
        match self.version.write() {
            Ok(mut g) => *g = version,
            Err(poisoned) => *poisoned.into_inner() = version,
        }
    }

    fn version(&self) -> i64 {
        match self.version.read() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Seeds the database with `defaults` where no value exists yet, then loads.
    pub async fn seed_and_load(store: &Store, defaults: &Settings) -> Result<Self, StoreError> {
        let now = unix_now();
        for (name, value) in defaults.to_pairs() {
            store.seed_setting(name, &value, now).await?;
        }
        let handle = SettingsHandle::new(defaults.clone());
        handle.reload(store).await?;
        Ok(handle)
    }

    /// Reloads from the database if anything changed since the last load.
    pub async fn reload_if_changed(&self, store: &Store) -> Result<bool, StoreError> {
        let v = store.settings_version().await?;
        if v == self.version() {
            return Ok(false);
        }
        self.reload(store).await?;
        Ok(true)
    }

    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let v = store.settings_version().await?;
        let pairs = store.all_settings().await?;
        self.replace(Settings::from_pairs(&pairs), v);
        Ok(())
    }

    /// Polls for changes until the task is dropped.
    pub async fn watch(self, store: Store, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.reload_if_changed(&store).await {
                tracing::warn!(error = %e, "settings reload failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let s = Settings {
            trigger_keywords: vec!["[secure]".into(), "[vertraulich]".into()],
            internal_domains: vec!["bank.example".into()],
            max_recipients: 7,
            ..Settings::default()
        };
        let pairs: Vec<(String, String)> = s
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(Settings::from_pairs(&pairs), s);
    }

    #[test]
    fn bad_numbers_keep_defaults() {
        let s = Settings::from_pairs(&[("limits.max_recipients".into(), "many".into())]);
        assert_eq!(s.max_recipients, Settings::default().max_recipients);
    }

    #[test]
    fn internal_domains_match_exactly() {
        let s = Settings {
            internal_domains: vec!["bank.example".into()],
            ..Settings::default()
        };
        assert!(s.is_internal("a@bank.example"));
        assert!(!s.is_internal("a@notbank.example"));
        assert!(!s.is_internal("a@sub.bank.example"));
    }
}
