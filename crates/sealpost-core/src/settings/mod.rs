//! Run-time settings. They live in the database so that every node agrees; the configuration
//! file only seeds them. Each setting is declared once in `registry.rs`; the struct, the
//! stored text, validation and the admin form derive from that declaration, so the admin UI,
//! the CLI and any other caller validate alike (`check`).
//!
//! A setting declared `per_domain` may be overridden for one recipient domain, stored under
//! `KEY@DOMAIN`; `Settings::for_domain` gives the settings that apply to a domain.

pub mod checks;
mod choices;
mod declare;
mod handle;
mod logo;
mod registry;
mod value;

use std::collections::BTreeMap;

pub use choices::{
    ClientAddress, CredentialsTo, DeliveryProfile, FirstContact, RecoveryPolicy, ReportSubject,
    ResetDelivery, SecondFactorPolicy,
};
pub use handle::SettingsHandle;
pub use logo::{BrandLogo, LogoImage, MAX_LOGO_BYTES};
pub use registry::{REGISTRY, Settings};
pub use value::{SettingValue, Widget, parse_network};

/// The admin form a setting is shown on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Mail,
    Security,
    Network,
    Branding,
    /// On no form: set by its own action (e.g. the metrics token).
    Unlisted,
}

impl Group {
    /// The groups that have a form, in menu order.
    pub const FORMS: [Group; 4] = [
        Group::Mail,
        Group::Security,
        Group::Network,
        Group::Branding,
    ];

    /// The name in the form's URL (`/admin/settings/{slug}`).
    pub fn slug(self) -> &'static str {
        match self {
            Group::Mail => "mail",
            Group::Security => "security",
            Group::Network => "network",
            Group::Branding => "branding",
            Group::Unlisted => "unlisted",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Group::Mail => "Mail settings",
            Group::Security => "Security settings",
            Group::Network => "Network settings",
            Group::Branding => "Branding",
            Group::Unlisted => "Other settings",
        }
    }

    /// The form group of a URL name; `Unlisted` has no form.
    pub fn from_slug(slug: &str) -> Option<Group> {
        Group::FORMS.into_iter().find(|g| g.slug() == slug)
    }

    /// The settings on this group's form, in order.
    pub fn settings(self) -> impl Iterator<Item = &'static SettingDef> {
        REGISTRY.iter().filter(move |d| d.group == self)
    }
}

/// One setting's declaration, as the form, the CLI and validation need it.
#[derive(Debug)]
pub struct SettingDef {
    /// The stored key, a contract (e.g. `mail.keep_subject`).
    pub key: &'static str,
    pub group: Group,
    /// Admin-form label (English, like the rest of the admin UI).
    pub label: &'static str,
    /// One line under the field; may be empty.
    pub help: &'static str,
    pub widget: Widget,
    /// May be overridden per recipient domain (`KEY@DOMAIN`).
    pub per_domain: bool,
    /// Never shown: listings say `(set)` instead of the value.
    pub secret: bool,
    /// Reads text as this setting's type, checks it, and gives the canonical stored text.
    normalise: fn(&str) -> Result<String, String>,
}

impl SettingDef {
    /// Validates `text` for this setting; Ok is the canonical text to store.
    pub fn check(&'static self, text: &str) -> Result<String, SettingError> {
        (self.normalise)(text).map_err(|reason| SettingError::InvalidValue {
            key: self.key,
            reason,
        })
    }
}

/// The definition of a key.
pub fn definition(key: &str) -> Option<&'static SettingDef> {
    REGISTRY.iter().find(|d| d.key == key)
}

/// Why a setting name or value was refused; one line for the admin or the script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown setting {0:?}")]
    UnknownKey(String),
    #[error("{0} cannot be set per domain")]
    NotPerDomain(&'static str),
    #[error("{0}")]
    BadDomain(String),
    #[error("{key}: {reason}")]
    InvalidValue { key: &'static str, reason: String },
}

/// A setting name as given: `KEY` or `KEY@DOMAIN` (domain lower-cased).
#[derive(Debug, Clone)]
pub struct SettingName {
    pub def: &'static SettingDef,
    pub domain: Option<String>,
}

impl SettingName {
    /// Reads `KEY` or `KEY@DOMAIN`; refuses unknown keys, overrides of settings that have
    /// none, and malformed domains.
    pub fn parse(name: &str) -> Result<Self, SettingError> {
        let name = name.trim();
        let (key, domain) = match name.split_once('@') {
            Some((key, domain)) => (key, Some(domain)),
            None => (name, None),
        };
        let def = definition(key).ok_or_else(|| SettingError::UnknownKey(key.to_string()))?;
        let domain = match domain {
            None => None,
            Some(_) if !def.per_domain => return Err(SettingError::NotPerDomain(def.key)),
            Some(d) => Some(checks::domain(d).map_err(SettingError::BadDomain)?),
        };
        Ok(SettingName { def, domain })
    }

    /// The name as stored: `KEY` or `KEY@domain`.
    pub fn stored(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}@{d}", self.def.key),
            None => self.def.key.to_string(),
        }
    }
}

/// Validates a name (`KEY` or `KEY@DOMAIN`) and a value; Ok is (stored name, canonical text).
pub fn check(name: &str, value: &str) -> Result<(String, String), SettingError> {
    let name = SettingName::parse(name)?;
    let value = name.def.check(value)?;
    Ok((name.stored(), value))
}

/// Parses text as `T` and runs a setting's check on it.
pub(crate) fn read<T: SettingValue>(
    text: &str,
    check: impl FnOnce(T) -> checks::Checked<T>,
) -> Result<T, String> {
    check(T::parse_setting(text)?)
}

/// The settings that apply to one recipient domain: the global ones with that domain's
/// overrides on top.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSettings {
    /// The keys this domain overrides, as stored.
    pub keys: Vec<&'static str>,
    pub settings: Settings,
}

impl Settings {
    /// The organisation's look of generated mails, secure.htm and the portal.
    pub fn branding(&self) -> sealpost_mime::Branding {
        sealpost_mime::Branding {
            org_name: self.org_name.clone(),
            accent_color: self.accent_color.clone(),
            support_contact: self.support_contact.clone(),
            imprint_url: self.imprint_url.clone(),
            privacy_url: self.privacy_url.clone(),
            ..sealpost_mime::Branding::default()
        }
    }

    /// Applies stored pairs over the defaults. Unknown names are ignored and invalid values
    /// keep the default, so one bad row cannot stop a node.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut settings = Settings::default();
        let mut overrides: BTreeMap<String, Vec<(&'static SettingDef, &str)>> = BTreeMap::new();
        for (name, value) in pairs {
            match name.split_once('@') {
                None => {
                    if definition(name).is_some() {
                        settings.apply_stored(name, value);
                    }
                }
                Some(_) => {
                    if let Ok(SettingName {
                        def,
                        domain: Some(domain),
                    }) = SettingName::parse(name)
                    {
                        overrides.entry(domain).or_default().push((def, value));
                    }
                }
            }
        }
        for (domain, values) in overrides {
            let mut own = settings.clone();
            let keys: Vec<&'static str> = values
                .iter()
                .filter(|(def, value)| own.apply_stored(def.key, value))
                .map(|(def, _)| def.key)
                .collect();
            if keys.is_empty() {
                continue;
            }
            settings.domain_overrides.insert(
                domain,
                DomainSettings {
                    keys,
                    settings: own,
                },
            );
        }
        settings
    }

    /// Applies one stored value; false (and a warning) when it is invalid.
    fn apply_stored(&mut self, key: &str, value: &str) -> bool {
        let applied = self.apply(key, value).is_ok();
        if !applied {
            // The value may be a secret: name the key only.
            tracing::warn!(setting = key, "stored setting is invalid and ignored");
        }
        applied
    }

    /// The per-domain overrides as stored (`KEY@domain`, text).
    pub fn override_pairs(&self) -> Vec<(String, String)> {
        self.domain_overrides
            .iter()
            .flat_map(|(domain, own)| {
                own.keys.iter().map(move |key| {
                    (
                        format!("{key}@{domain}"),
                        own.settings.text_of(key).unwrap_or_default(),
                    )
                })
            })
            .collect()
    }

    /// The settings for mail to `domain`: its overrides if it has any, else these.
    pub fn for_domain(&self, domain: &str) -> &Settings {
        self.domain_overrides
            .get(&crate::normalise_domain(domain.trim_end_matches('.')))
            .map_or(self, |own| &own.settings)
    }

    /// The settings for the domain of `address` (these settings when it has no domain).
    pub fn for_address(&self, address: &str) -> &Settings {
        crate::address_domain(address).map_or(self, |domain| self.for_domain(domain))
    }

    pub fn is_internal(&self, address: &str) -> bool {
        crate::address_domain(address)
            .map(|d| self.internal_domains.iter().any(|i| i == d))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod branding_tests;
