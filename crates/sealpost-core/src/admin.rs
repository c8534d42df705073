//! Administration: admin accounts (password + optional TOTP), and the operations on recipient
//! accounts and settings that the admin web UI and the CLI share. Every change is audited with
//! its actor; secrets (passwords, keys, TOTP secrets, tokens) never go into the audit log.

use sealpost_mime::security_mail::NoticeEvent;
use sealpost_mime::{CredentialsInput, CredentialsKind, build_credentials};
use sealpost_store::{Account, AccountStatus, Admin, Principal, Reservation, Store, StoreError};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::pipeline::hash_off_executor;
use crate::settings::{ResetDelivery, SettingError};
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
    #[error(transparent)]
    InvalidSetting(#[from] SettingError),
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
    crate::audit::write(
        store,
        &actor.name,
        action,
        subject,
        detail,
        actor.ip.as_deref(),
    )
    .await;
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
    /// The client address used up its failures for this lockout window; nothing was checked.
    Throttled,
}

/// Checks an admin login: password, then the TOTP code when the admin enrolled one. Costs one
/// Argon2 verification whether or not the name exists or is locked. Like the portal's login
/// (see [`crate::accounts::login`]) the attempt is reserved on the client address and on the
/// admin before anything is verified, and every decision is audited and counted.
pub async fn admin_login(
    store: &Store,
    settings: &Settings,
    name: &str,
    password: &str,
    code: &str,
    ip: &str,
) -> Result<AdminLoginOutcome, AdminError> {
    let password = Zeroizing::new(password.to_string());
    let now = unix_now();
    let actor = Actor {
        name: crate::audit::ANONYMOUS.to_string(),
        ip: Some(ip.to_string()),
    };
    if !crate::lockout::reserve_source(store, settings, ip, now).await? {
        return Ok(AdminLoginOutcome::Throttled);
    }
    let Some(admin) = store.admin_by_name(name.trim()).await? else {
        crate::hashing::run(move || sealpost_crypto::dummy_verify(&password)).await?;
        // The typed name (bounded) identifies the target of a guessing attempt for the audit.
        let typed: String = name.chars().take(64).collect();
        admin_login_failed(store, &actor, &typed, None).await;
        return Ok(AdminLoginOutcome::Refused);
    };
    let reservation = store
        .reserve_login_attempt(
            Principal::Admin,
            &admin.id,
            crate::lockout::lock_policy(settings),
            now,
        )
        .await?;
    let Reservation::Proceed { locks } = reservation else {
        crate::hashing::run(move || sealpost_crypto::dummy_verify(&password)).await?;
        admin_login_failed(store, &actor, &admin.name, Some("locked")).await;
        return Ok(AdminLoginOutcome::Refused);
    };
    let hash = admin.password_hash.clone();
    let ok = crate::hashing::run(move || sealpost_crypto::verify_secret(&password, &hash)).await?;
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
        admin_login_failed(store, &actor, &admin.name, None).await;
        if locks {
            crate::metrics::record(store, crate::metrics::ADMIN_LOCKOUTS, 1);
            audit(
                store,
                &actor,
                crate::audit::ADMIN_LOCKOUT,
                Some(&admin.name),
                None,
            )
            .await;
        }
        return Ok(AdminLoginOutcome::Refused);
    }
    crate::lockout::release_source(store, ip).await?;
    store.record_admin_login_success(&admin.id, now).await?;
    crate::metrics::record(store, crate::metrics::ADMIN_LOGINS, 1);
    // The sign-in itself is audited when its session starts (`sessions::start`).
    Ok(AdminLoginOutcome::Success(Box::new(admin)))
}

async fn admin_login_failed(store: &Store, actor: &Actor, name: &str, why: Option<&str>) {
    crate::metrics::record(store, crate::metrics::ADMIN_LOGIN_FAILED, 1);
    audit(
        store,
        actor,
        crate::audit::ADMIN_LOGIN_FAILED,
        Some(name),
        why,
    )
    .await;
}

// The TOTP helpers are shared with recipients' second factor (crate::totp).
pub use crate::totp::{new_totp_secret, totp_check, totp_step, totp_uri};

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

/// The account with this id, for the admin's account pages (None: no such account).
pub async fn account_by_id(store: &Store, id: &str) -> Result<Option<Account>, CoreError> {
    Ok(store.account_by_id(id).await?)
}

/// One page of the accounts whose address contains a search text, for the admin's list.
#[derive(Debug)]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    /// How many accounts match the search in all.
    pub total: i64,
    /// The page shown (1-based), clamped to the pages there are.
    pub page: i64,
    /// How many pages the search has (at least one, even when empty).
    pub pages: i64,
}

/// Page `page` (1-based, clamped) of `page_size` accounts whose address contains `search`,
/// ordered by address.
pub async fn account_page(
    store: &Store,
    search: &str,
    page: i64,
    page_size: i64,
) -> Result<AccountPage, CoreError> {
    let page_size = page_size.max(1);
    let total = store.count_accounts_matching(search).await?;
    let pages = ((total + page_size - 1) / page_size).max(1);
    let page = page.clamp(1, pages);
    let accounts = store
        .search_accounts(&search.to_lowercase(), page_size, (page - 1) * page_size)
        .await?;
    Ok(AccountPage {
        accounts,
        total,
        page,
        pages,
    })
}

/// The key versions of an account with the time each was created, oldest first.
pub async fn key_history(store: &Store, account_id: &str) -> Result<Vec<(u32, i64)>, CoreError> {
    Ok(store.key_versions(account_id).await?)
}

/// How an account was first reached and whether it has a password: facts for the admin page,
/// never the secrets themselves.
pub async fn account_access(
    store: &Store,
    account_id: &str,
) -> Result<Option<sealpost_store::AccountAccess>, CoreError> {
    Ok(store.account_access(account_id).await?)
}

/// What an administrator's reset sent, and to whom (for the admin page and the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetSent {
    pub delivery: ResetDelivery,
    /// The address the mail went to: the recipient's (link) or the last sender's (password).
    pub to: String,
}

impl std::fmt::Display for ResetSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.delivery {
            ResetDelivery::Link => write!(
                f,
                "a one-time link to set a new password (valid {} hours) was mailed to {}",
                crate::recovery::LINK_VALID_SECS / 3600,
                self.to
            ),
            ResetDelivery::Sender => write!(
                f,
                "a new generated password was mailed to the last sender, {}",
                self.to
            ),
        }
    }
}

/// Resets a recipient's password: the old one stops working and every session ends at once.
/// By default (`mail.reset_mail_to = link`) the recipient's mailbox gets a one-time link to
/// choose a new password; with `sender`, a generated password goes to the last sender, and the
/// holder a notice. A password never goes to the recipient's own mailbox, where whoever reads
/// it would also get the messages it protects.
pub async fn reset_user_password(
    store: &Store,
    settings: &Settings,
    account: &Account,
    actor: &Actor,
) -> Result<ResetSent, AdminError> {
    let sent = match settings.reset_mail_to {
        ResetDelivery::Link => {
            // Nobody knows this password: the old one is dead until the link sets a new one.
            let unknown = sealpost_crypto::generate_password();
            let hash = hash_off_executor(unknown).await?;
            store.set_password(&account.id, &hash, false).await?;
            crate::recovery::send_reset_link(store, settings, account).await?;
            ResetSent {
                delivery: ResetDelivery::Link,
                to: account.address.clone(),
            }
        }
        ResetDelivery::Sender => {
            let to = reset_sender(store, account).await?;
            mail_password_to_sender(store, settings, account, &to).await?;
            crate::recovery::notify(store, settings, account, NoticeEvent::ResetByAdmin, None)
                .await;
            ResetSent {
                delivery: ResetDelivery::Sender,
                to,
            }
        }
    };
    store.delete_sessions_of(&account.id, None).await?;
    audit(
        store,
        actor,
        "account.password_reset",
        Some(&account.address),
        Some(&sent.to_string()),
    )
    .await;
    Ok(sent)
}

/// The internal address a reset password goes to: the account's last sender, else whoever
/// caused the account to be created.
async fn reset_sender(store: &Store, account: &Account) -> Result<String, AdminError> {
    let to = match store.last_sender(&account.id).await? {
        Some(s) => s,
        None => account
            .created_by
            .clone()
            .ok_or(AdminError::NoResetAddress)?,
    };
    if to.is_empty() {
        return Err(AdminError::NoResetAddress);
    }
    Ok(to)
}

async fn mail_password_to_sender(
    store: &Store,
    settings: &Settings,
    account: &Account,
    to: &str,
) -> Result<(), AdminError> {
    let password = sealpost_crypto::generate_password();
    let hash = hash_off_executor(password.clone()).await?;
    let lang = account
        .language
        .clone()
        .unwrap_or_else(|| settings.default_language.clone());
    let mail = build_credentials(&CredentialsInput {
        kind: CredentialsKind::PasswordReset,
        from: &settings.notification_from,
        to,
        recipient: &account.address,
        password: &password,
        public_url: &settings.public_url,
        lang: &lang,
        branding: &settings.branding(),
        hostname: &settings.hostname,
        status_link: None,
    });
    // The password first: should queueing fail, the admin sees the error and retries; the
    // other order could mail a password that never took effect.
    store
        .set_password(&account.id, &hash, settings.force_password_change)
        .await?;
    crate::recovery::queue_mail(store, settings, kind::PASSWORD_RESET, to, &mail).await?;
    Ok(())
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

/// Resets every second factor of a recipient (authenticator, recovery codes, remembered
/// devices; sessions end); `require_reenrolment` makes the next sign-in enrol a new
/// authenticator. Audited, and the holder gets a notice.
pub async fn reset_second_factors(
    store: &Store,
    settings: &Settings,
    account: &Account,
    require_reenrolment: bool,
    actor: &Actor,
) -> Result<(), AdminError> {
    crate::second_factor::reset_factors(
        store,
        settings,
        account,
        require_reenrolment,
        &actor.name,
        actor.ip.as_deref(),
    )
    .await?;
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

/// Validates changed settings (`KEY` or `KEY@DOMAIN` with their text; all or nothing), stores
/// them, audits their names (never their values: some are secrets), and reloads this node at
/// once; the other nodes follow within seconds through `watch`.
pub async fn update_settings(
    store: &Store,
    handle: &SettingsHandle,
    changes: &[(&str, String)],
    actor: &Actor,
) -> Result<Vec<String>, AdminError> {
    let checked = changes
        .iter()
        .map(|(name, value)| crate::settings::check(name, value))
        .collect::<Result<Vec<_>, _>>()?;
    let current: std::collections::HashMap<String, String> =
        store.all_settings().await?.into_iter().collect();
    let changed: Vec<&(String, String)> = checked
        .iter()
        .filter(|(name, value)| current.get(name) != Some(value))
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

/// Makes a new /metrics bearer token and stores only its hash; the token is returned to be
/// shown once, and the previous one stops working.
pub async fn new_metrics_token(
    store: &Store,
    handle: &SettingsHandle,
    actor: &Actor,
) -> Result<Zeroizing<String>, AdminError> {
    let (token, hash) = sealpost_crypto::new_token();
    update_settings(store, handle, &[("metrics.token_sha256", hash)], actor).await?;
    Ok(Zeroizing::new(token))
}

// The next-hop checks speak SMTP, so they live in the smtp crate; the web layer reaches them
// through core, which it depends on anyway.
pub use sealpost_smtp::next_hop::test_next_hop;

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
}
