//! Administration: admin accounts (password + optional TOTP), and the operations on recipient
//! accounts and settings that the admin web UI and the CLI share. Every change is audited with
//! its actor; secrets (passwords, keys, TOTP secrets, tokens) never go into the audit log.

use std::time::Duration;

use sealpost_mime::generate::{Branding, CredentialsInput, CredentialsKind, build_credentials};
use sealpost_smtp::next_hop::NextHop;
use sealpost_store::{Account, AccountStatus, Admin, NewQueuedMail, Store, StoreError};
use tokio::io::AsyncReadExt;
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::pipeline::hash_off_executor;
use crate::{CoreError, KeyRing, Settings, SettingsHandle, kind, normalise_address, unix_now};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin names are 1-64 characters: letters, digits, '.', '_', '-'")]
    InvalidName,
    #[error("an admin with this name already exists")]
    Exists,
    #[error("no such admin")]
    NoSuchAdmin,
    #[error("no such account")]
    NoSuchAccount,
    #[error("the password is too short (at least {0} characters)")]
    WeakPassword(usize),
    #[error("invalid value for {0}")]
    InvalidSetting(String),
    #[error("no address to send the new password to")]
    NoResetAddress,
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Core(CoreError::Store(e))
    }
}

/// Who made a change, for the audit log: `admin:NAME` from the web UI, `cli` from the CLI.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn admin(name: &str, ip: &str) -> Self {
        Actor {
            name: format!("admin:{name}"),
            ip: Some(ip.to_string()),
        }
    }

    pub fn cli() -> Self {
        Actor {
            name: "cli".to_string(),
            ip: None,
        }
    }
}

/// Writes an audit event; a failed audit write is logged but does not undo the change.
pub async fn audit(
    store: &Store,
    actor: &Actor,
    action: &str,
    subject: Option<&str>,
    detail: Option<&str>,
) {
    if let Err(e) = store
        .audit(
            unix_now(),
            &actor.name,
            action,
            subject,
            detail,
            actor.ip.as_deref(),
        )
        .await
    {
        tracing::warn!(error = %e, action, "audit write failed");
    }
}

/// Minimum length of an admin's own password.
pub const ADMIN_PASSWORD_MIN: usize = 12;

pub fn valid_admin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Creates an admin with a generated one-time password, which is returned (to print once);
/// it must be changed at the first login.
pub async fn create_admin(
    store: &Store,
    name: &str,
    actor: &Actor,
) -> Result<Zeroizing<String>, AdminError> {
    if !valid_admin_name(name) {
        return Err(AdminError::InvalidName);
    }
    let password = sealpost_crypto::generate_password();
    let hash = hash_off_executor(password.clone()).await?;
    let id = Uuid::new_v4().to_string();
    match store.insert_admin(&id, name, &hash, true, unix_now()).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(AdminError::Exists),
        Err(e) => return Err(e.into()),
    }
    audit(store, actor, "admin.created", Some(name), None).await;
    Ok(password)
}

/// Gives an admin a new generated one-time password (and clears a lockout).
pub async fn reset_admin_password(
    store: &Store,
    name: &str,
    actor: &Actor,
) -> Result<Zeroizing<String>, AdminError> {
    let admin = store
        .admin_by_name(name)
        .await?
        .ok_or(AdminError::NoSuchAdmin)?;
    let password = sealpost_crypto::generate_password();
    let hash = hash_off_executor(password.clone()).await?;
    store.set_admin_password(&admin.id, &hash, true).await?;
    store.delete_sessions_of(&admin.id, None).await?;
    audit(store, actor, "admin.password_reset", Some(name), None).await;
    Ok(password)
}

/// An admin sets their own password (e.g. replacing the one-time password).
pub async fn change_own_password(
    store: &Store,
    admin: &Admin,
    new_password: &str,
    keep_session: &str,
    actor: &Actor,
) -> Result<(), AdminError> {
    if new_password.chars().count() < ADMIN_PASSWORD_MIN {
        return Err(AdminError::WeakPassword(ADMIN_PASSWORD_MIN));
    }
    let hash = hash_off_executor(Zeroizing::new(new_password.to_string())).await?;
    store.set_admin_password(&admin.id, &hash, false).await?;
    store
        .delete_sessions_of(&admin.id, Some(keep_session))
        .await?;
    audit(
        store,
        actor,
        "admin.password_changed",
        Some(&admin.name),
        None,
    )
    .await;
    Ok(())
}

#[derive(Debug)]
pub enum AdminLoginOutcome {
    Success(Box<Admin>),
    /// Wrong name, password or code, or locked: one answer for all.
    Refused,
}

/// Checks an admin login: password, then the TOTP code when the admin enrolled one. Costs one
/// Argon2 verification whether or not the name exists.
pub async fn admin_login(
    store: &Store,
    settings: &Settings,
    name: &str,
    password: &str,
    code: &str,
) -> Result<AdminLoginOutcome, AdminError> {
    let admin = store.admin_by_name(name.trim()).await?;
    let password = Zeroizing::new(password.to_string());
    let Some(admin) = admin else {
        crate::hashing::run(move || sealpost_crypto::dummy_verify(&password)).await?;
        return Ok(AdminLoginOutcome::Refused);
    };
    let hash = admin.password_hash.clone();
    let ok = crate::hashing::run(move || sealpost_crypto::verify_secret(&password, &hash)).await?;
    let now = unix_now();
    if admin.locked_until.is_some_and(|t| t > now) {
        return Ok(AdminLoginOutcome::Refused);
    }
    // A code counts once: its time step must be newer than the last one this admin used, so
    // a code seen over a shoulder or in a log cannot sign in again within its window.
    let code_ok = match &admin.totp_secret {
        Some(secret) => match totp_step(secret, code, now) {
            Some(step) if ok => store.claim_admin_totp_step(&admin.id, step).await?,
            _ => false,
        },
        None => true,
    };
    if !ok || !code_ok {
        store
            .record_admin_login_failure(
                &admin.id,
                settings.lockout_threshold,
                now + settings.lockout_secs,
            )
            .await?;
        return Ok(AdminLoginOutcome::Refused);
    }
    store.record_admin_login_success(&admin.id, now).await?;
    Ok(AdminLoginOutcome::Success(Box::new(admin)))
}

/// A new random TOTP secret (160 bit, base32 as authenticator apps expect).
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

/// Codes of one step before and after the current one are accepted (clock drift of up to
/// 30 s either way).
const TOTP_SKEW_STEPS: i64 = 1;
const TOTP_STEP_SECS: i64 = 30;

fn totp(secret: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().ok()?;
    // Skew is handled by `totp_step`, which needs to know which step matched.
    TOTP::new(Algorithm::SHA1, 6, 0, TOTP_STEP_SECS as u64, bytes).ok()
}

/// The time step whose code `code` is (within the allowed skew around `now`), if any. The
/// comparison is constant-time; every candidate step is compared.
pub fn totp_step(secret: &str, code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 {
        return None;
    }
    let totp = totp(secret)?;
    let current = now.div_euclid(TOTP_STEP_SECS);
    let mut matched = None;
    for step in current - TOTP_SKEW_STEPS..=current + TOTP_SKEW_STEPS {
        let Ok(time) = u64::try_from(step * TOTP_STEP_SECS) else {
            continue;
        };
        if sealpost_crypto::ct_eq(totp.generate(time).as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched
}

/// Checks a 6-digit code against a base32 secret at the current time.
pub fn totp_check(secret: &str, code: &str) -> bool {
    totp_step(secret, code, unix_now()).is_some()
}

/// The otpauth:// URI an authenticator app imports.
pub fn totp_uri(secret: &str, admin_name: &str, issuer: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(admin_name),
        enc(issuer)
    )
}

/// The factors an admin who already has a TOTP secret must present to replace it.
pub struct CurrentFactors<'a> {
    pub password: &'a str,
    pub code: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TotpEnrolment {
    Enrolled,
    /// The code for the new secret did not match.
    WrongCode,
    /// A TOTP secret exists and the current password or current code was wrong.
    WrongCurrentFactor,
}

/// Enrols (or replaces) an admin's second factor after they proved to have the new secret.
/// Replacing an enrolled one also needs the current password and a current code (a hijacked
/// session alone must not be able to move the second factor to an attacker's phone).
pub async fn enrol_totp(
    store: &Store,
    admin: &Admin,
    secret: &str,
    code: &str,
    current: &CurrentFactors<'_>,
    actor: &Actor,
) -> Result<TotpEnrolment, AdminError> {
    if let Some(enrolled) = &admin.totp_secret {
        let password = Zeroizing::new(current.password.to_string());
        let hash = admin.password_hash.clone();
        let password_ok =
            crate::hashing::run(move || sealpost_crypto::verify_secret(&password, &hash)).await?;
        let code_ok = match totp_step(enrolled, current.code, unix_now()) {
            Some(step) if password_ok => store.claim_admin_totp_step(&admin.id, step).await?,
            _ => false,
        };
        if !code_ok {
            audit(
                store,
                actor,
                "admin.totp_change_refused",
                Some(&admin.name),
                None,
            )
            .await;
            return Ok(TotpEnrolment::WrongCurrentFactor);
        }
    }
    if !totp_check(secret, code) {
        return Ok(TotpEnrolment::WrongCode);
    }
    store.set_admin_totp(&admin.id, Some(secret)).await?;
    audit(store, actor, "admin.totp_enrolled", Some(&admin.name), None).await;
    Ok(TotpEnrolment::Enrolled)
}

// ---------------------------------------------------------------------------------------------
// Recipient accounts

/// Finds an account by address (normalised) or id.
pub async fn find_account(store: &Store, address_or_id: &str) -> Result<Account, AdminError> {
    if let Some(a) = store
        .account_by_address(&normalise_address(address_or_id))
        .await?
    {
        return Ok(a);
    }
    store
        .account_by_id(address_or_id.trim())
        .await?
        .ok_or(AdminError::NoSuchAccount)
}

/// Host name for Message-IDs of mails the admin side generates: the portal's host.
fn mail_hostname(settings: &Settings) -> String {
    let rest = settings
        .public_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(&settings.public_url);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        "localhost".to_string()
    } else {
        host.to_string()
    }
}

/// Resets a recipient's password to a new generated one and queues the password-reset mail to
/// the recipient (or, by setting, to the last sender). Returns the address it goes to.
pub async fn reset_user_password(
    store: &Store,
    settings: &Settings,
    account: &Account,
    actor: &Actor,
) -> Result<String, AdminError> {
    let to = if settings.reset_mail_to == "sender" {
        match store.last_sender(&account.id).await? {
            Some(s) => s,
            None => account
                .created_by
                .clone()
                .ok_or(AdminError::NoResetAddress)?,
        }
    } else {
        account.address.clone()
    };
    if to.is_empty() {
        return Err(AdminError::NoResetAddress);
    }
    let password = sealpost_crypto::generate_password();
    let hash = hash_off_executor(password.clone()).await?;
    let lang = account
        .language
        .clone()
        .unwrap_or_else(|| settings.default_language.clone());
    let branding = Branding {
        org_name: settings.org_name.clone(),
        accent_color: settings.accent_color.clone(),
        footer: String::new(),
    };
    let mail = build_credentials(&CredentialsInput {
        kind: CredentialsKind::PasswordReset,
        from: &settings.notification_from,
        to: &to,
        recipient: &account.address,
        password: &password,
        public_url: &settings.public_url,
        lang: &lang,
        branding: &branding,
        hostname: &mail_hostname(settings),
    });
    // The password first: should queueing fail, the admin sees the error and retries; the
    // other order could mail a password that never took effect.
    store
        .set_password(&account.id, &hash, settings.force_password_change)
        .await?;
    let now = unix_now();
    let mut tx = store.begin().await?;
    store
        .enqueue(
            &mut tx,
            &NewQueuedMail {
                id: &Uuid::new_v4().simple().to_string(),
                kind: kind::PASSWORD_RESET,
                mail_from: &settings.notification_from,
                rcpt_to: std::slice::from_ref(&to),
                data: &mail,
                now,
                give_up_at: now + settings.retry_give_up_secs,
            },
        )
        .await?;
    sealpost_store::commit(tx).await?;
    store.delete_sessions_of(&account.id, None).await?;
    audit(
        store,
        actor,
        "account.password_reset",
        Some(&account.address),
        Some(&format!("mailed to {to}")),
    )
    .await;
    Ok(to)
}

pub async fn set_account_active(
    store: &Store,
    account: &Account,
    active: bool,
    actor: &Actor,
) -> Result<(), AdminError> {
    let (status, action) = if active {
        (AccountStatus::Active, "account.enabled")
    } else {
        (AccountStatus::Disabled, "account.disabled")
    };
    store.set_status(&account.id, status).await?;
    if !active {
        store.delete_sessions_of(&account.id, None).await?;
    }
    audit(store, actor, action, Some(&account.address), None).await;
    Ok(())
}

pub async fn unlock_account(
    store: &Store,
    account: &Account,
    actor: &Actor,
) -> Result<(), AdminError> {
    store.unlock_account(&account.id).await?;
    audit(
        store,
        actor,
        "account.unlocked",
        Some(&account.address),
        None,
    )
    .await;
    Ok(())
}

/// Sets the account's validity (Unix time, None = unlimited).
pub async fn set_validity(
    store: &Store,
    account: &Account,
    valid_until: Option<i64>,
    actor: &Actor,
) -> Result<(), AdminError> {
    store.set_valid_until(&account.id, valid_until).await?;
    let detail = valid_until.map_or_else(|| "unlimited".to_string(), |t| format!("until {t}"));
    audit(
        store,
        actor,
        "account.validity",
        Some(&account.address),
        Some(&detail),
    )
    .await;
    Ok(())
}

/// Deletes the account and its keys: its existing secure messages become unreadable.
pub async fn delete_account(
    store: &Store,
    account: &Account,
    actor: &Actor,
) -> Result<(), AdminError> {
    store.delete_account(&account.id).await?;
    audit(
        store,
        actor,
        "account.deleted",
        Some(&account.address),
        None,
    )
    .await;
    Ok(())
}

/// Adds a key version; new mail is sealed with it, old envelopes stay readable.
pub async fn rotate_key(
    store: &Store,
    keys: &KeyRing,
    account: &Account,
    actor: &Actor,
) -> Result<u32, AdminError> {
    let version = keys.rotate(store, &account.id).await?;
    audit(
        store,
        actor,
        "account.key_rotated",
        Some(&account.address),
        Some(&format!("version {version}")),
    )
    .await;
    Ok(version)
}

// ---------------------------------------------------------------------------------------------
// Settings

/// Stores changed settings, audits their names (never their values: some are secrets), and
/// reloads this node at once; the other nodes follow within seconds through `watch`.
pub async fn update_settings(
    store: &Store,
    handle: &SettingsHandle,
    changes: &[(&str, String)],
    actor: &Actor,
) -> Result<Vec<String>, AdminError> {
    let current: std::collections::HashMap<String, String> =
        store.all_settings().await?.into_iter().collect();
    let changed: Vec<&(&str, String)> = changes
        .iter()
        .filter(|(name, value)| current.get(*name) != Some(value))
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    // Strictly newer than anything stored: nodes reload when the newest change time moves,
    // and two saves within one second must both be seen.
    let now = unix_now().max(store.settings_version().await? + 1);
    for (name, value) in &changed {
        store.set_setting(name, value, now).await?;
    }
    let names: Vec<String> = changed.iter().map(|(n, _)| n.to_string()).collect();
    audit(
        store,
        actor,
        "settings.changed",
        None,
        Some(&names.join(", ")),
    )
    .await;
    handle.reload(store).await?;
    Ok(names)
}

/// Checks the syntax of a next hop (`smtp://host:port` or `maildir:PATH`).
pub fn check_next_hop(hop: &str) -> Result<(), String> {
    hop.parse::<NextHop>().map(drop).map_err(|e| e.to_string())
}

/// Tries the next hop: an SMTP relay must answer with a 220 greeting within 10 s; a maildir
/// must be a writable directory. The answer is a one-line text for the admin.
pub async fn test_next_hop(hop: &str) -> Result<String, String> {
    let hop: NextHop = hop
        .parse()
        .map_err(|e: sealpost_smtp::next_hop::NextHopError| e.to_string())?;
    match hop {
        NextHop::Smtp { host, port } => {
            let connect = tokio::net::TcpStream::connect((host.as_str(), port));
            let mut stream = tokio::time::timeout(Duration::from_secs(10), connect)
                .await
                .map_err(|_| format!("{host}:{port}: connection timed out"))?
                .map_err(|e| format!("{host}:{port}: {e}"))?;
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .map_err(|_| format!("{host}:{port}: no greeting"))?
                .map_err(|e| format!("{host}:{port}: {e}"))?;
            let greeting = String::from_utf8_lossy(&buf[..n]);
            let line = greeting
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            if line.starts_with("220") {
                Ok(format!("{host}:{port} answered: {line}"))
            } else {
                Err(format!("{host}:{port} answered: {line}"))
            }
        }
        NextHop::Maildir(path) => {
            let meta = tokio::fs::metadata(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_dir() && !meta.permissions().readonly() {
                Ok(format!("{} is a writable directory", path.display()))
            } else {
                Err(format!("{} is not a writable directory", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_names() {
        assert!(valid_admin_name("admin"));
        assert!(valid_admin_name("a.b-c_d"));
        assert!(!valid_admin_name(""));
        assert!(!valid_admin_name("a b"));
        assert!(!valid_admin_name(&"a".repeat(65)));
    }

    #[test]
    fn totp_codes_verify() {
        let secret = new_totp_secret();
        let t = totp(&secret).expect("valid secret");
        let code = t.generate_current().expect("clock");
        assert!(totp_check(&secret, &code));
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert!(!totp_check(&secret, wrong));
        assert!(!totp_check(&secret, ""));
        assert!(!totp_check("not base32!", &code));
        assert!(totp_uri(&secret, "root", "Bank AG").contains("issuer=Bank%20AG"));
    }

    #[test]
    fn totp_steps_name_the_matching_window() {
        let secret = new_totp_secret();
        let t = totp(&secret).expect("valid secret");
        let now = 1_700_000_015;
        let code = t.generate(now as u64);
        assert_eq!(totp_step(&secret, &code, now), Some(now / 30));
        // One step of drift either way, not two.
        assert_eq!(totp_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now - 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now + 60), None);
    }

    #[test]
    fn hostname_from_public_url() {
        let s = Settings {
            public_url: "https://secure.bank.example:8443/x".into(),
            ..Settings::default()
        };
        assert_eq!(mail_hostname(&s), "secure.bank.example");
    }
}
