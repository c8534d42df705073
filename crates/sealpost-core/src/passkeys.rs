//! Passkeys (WebAuthn) for recipients: registering one for a signed-in account, signing in
//! with one alone (a discoverable credential: the browser names the account), and listing,
//! renaming and removing them.
//!
//! The relying party is the portal's public URL (`web.public_url`): its host is the RP ID,
//! the URL the only accepted origin. User verification is required in both ceremonies, so a
//! passkey is possession plus the device's PIN or biometric: both factors at once.
//!
//! Ceremony state lives in the database (`passkey_challenges`), not in a node's memory, so a
//! ceremony started on one node finishes on another; each is taken by one DELETE, so a
//! challenge is answered at most once. Registration and removal need the current password
//! (checked by the caller through [`crate::accounts::reauthenticate`]), are audited and mail
//! the holder a notice; every passkey sign-in is audited with the method `passkey`.

use sealpost_mime::security_mail::NoticeEvent;
use sealpost_store::{
    Account, AccountStatus, ChallengeKind, NewPasskey, Store, StoreError, StoredPasskey,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use crate::{CoreError, Settings, audit, lockout, recovery, unix_now};

/// The audit detail and session method of a passkey sign-in.
pub const METHOD: &str = "passkey";
/// A ceremony must be finished within this many seconds of its start.
pub const CEREMONY_SECS: i64 = 5 * 60;
/// At most this many passkeys per account.
pub const MAX_PASSKEYS: usize = 10;
/// A passkey's name is cut to this many characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A passkey was registered.
pub const PASSKEY_ADDED: &str = "portal.passkey_added";
/// A passkey was renamed.
pub const PASSKEY_RENAMED: &str = "portal.passkey_renamed";
/// A passkey was removed.
pub const PASSKEY_REMOVED: &str = "portal.passkey_removed";

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// `web.public_url` cannot be a WebAuthn relying party (no host, not a URL).
    #[error("the portal URL cannot serve passkeys: {0}")]
    Config(String),
    /// The ceremony is unknown, of another kind or account, expired or already finished.
    #[error("no such passkey ceremony")]
    Ceremony,
    /// The browser's answer did not verify (wrong challenge, origin, signature, no UV...).
    #[error("the passkey answer was refused")]
    Refused,
    /// This credential is registered already (to this or another account).
    #[error("the passkey is registered already")]
    Duplicate,
    #[error("the account has the most passkeys allowed")]
    TooMany,
    /// The account id cannot be a WebAuthn user handle.
    #[error("the account id is not a UUID")]
    AccountId,
    #[error("stored passkey data is invalid")]
    Corrupt,
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<StoreError> for PasskeyError {
    fn from(e: StoreError) -> Self {
        PasskeyError::Core(CoreError::Store(e))
    }
}

/// The relying party of this portal: RP ID = the host of `web.public_url`, origin = the URL.
pub fn relying_party(settings: &Settings) -> Result<Webauthn, PasskeyError> {
    let origin =
        Url::parse(&settings.public_url).map_err(|e| PasskeyError::Config(e.to_string()))?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| PasskeyError::Config("no host".into()))?
        .to_string();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name(&settings.org_name).build())
        .map_err(|e| PasskeyError::Config(e.to_string()))
}

/// The WebAuthn user handle of an account: the 16 bytes of its id (a UUID).
fn user_handle(account: &Account) -> Result<Uuid, PasskeyError> {
    Uuid::parse_str(&account.id).map_err(|_| PasskeyError::AccountId)
}

/// The stored key of a credential id: unique over all accounts, of fixed length.
fn credential_key(credential_id: &[u8]) -> String {
    hex::encode(Sha256::digest(credential_id))
}

/// A ceremony just started: its id (the browser sends it back) and the options for
/// `navigator.credentials.create()` / `.get()`, as JSON (this struct is the JSON the
/// portal answers with).
#[derive(Debug, serde::Serialize)]
pub struct Started {
    pub ceremony: String,
    pub options: serde_json::Value,
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|_| PasskeyError::Corrupt)
}

async fn store_ceremony(
    store: &Store,
    kind: ChallengeKind,
    account_id: Option<&str>,
    state: &str,
) -> Result<String, PasskeyError> {
    let now = unix_now();
    let id = Uuid::new_v4().simple().to_string();
    store
        .insert_passkey_challenge(&id, kind, account_id, state, now, now + CEREMONY_SECS)
        .await?;
    Ok(id)
}

/// Starts registering a passkey for `account` (already re-authenticated by the caller).
/// The account's passkeys are excluded, and the credential must be discoverable, so it can
/// sign in without the address being typed.
pub async fn start_registration(
    store: &Store,
    settings: &Settings,
    account: &Account,
) -> Result<Started, PasskeyError> {
    let existing = store.passkeys_of(&account.id).await?;
    if existing.len() >= MAX_PASSKEYS {
        return Err(PasskeyError::TooMany);
    }
    let exclude = existing
        .iter()
        .map(|p| parse_passkey(p).map(|k| k.cred_id().clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let rp = relying_party(settings)?;
    let (options, state) = rp
        .start_passkey_registration(
            user_handle(account)?,
            &account.address,
            &account.address,
            Some(exclude),
        )
        .map_err(|_| PasskeyError::Refused)?;
    let mut options = serde_json::to_value(&options).map_err(|_| PasskeyError::Corrupt)?;
    // webauthn-rs discourages a discoverable credential here; passwordless sign-in needs one,
    // so it is required (the verification of the answer does not depend on it).
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    let state = to_json(&state)?;
    let ceremony =
        store_ceremony(store, ChallengeKind::Register, Some(&account.id), &state).await?;
    Ok(Started { ceremony, options })
}

/// Cleans a passkey name: one line, at most [`MAX_NAME_CHARS`]; empty becomes "Passkey".
pub fn clean_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "Passkey".to_string()
    } else {
        name.to_string()
    }
}

/// Finishes a registration started by [`start_registration`] for the same account: stores
/// the passkey, audits it and mails the holder a notice. Returns the new passkey's id.
pub async fn finish_registration(
    store: &Store,
    settings: &Settings,
    account: &Account,
    ceremony: &str,
    credential: &str,
    name: &str,
    ip: &str,
) -> Result<String, PasskeyError> {
    let now = unix_now();
    let taken = store
        .take_passkey_challenge(ceremony, ChallengeKind::Register, now)
        .await?
        .ok_or(PasskeyError::Ceremony)?;
    if taken.account_id.as_deref() != Some(account.id.as_str()) {
        return Err(PasskeyError::Ceremony);
    }
    let state: PasskeyRegistration =
        serde_json::from_str(&taken.state).map_err(|_| PasskeyError::Corrupt)?;
    let credential: RegisterPublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| PasskeyError::Refused)?;
    let passkey = relying_party(settings)?
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            PasskeyError::Refused
        })?;
    let id = Uuid::new_v4().simple().to_string();
    let name = clean_name(name);
    let inserted = store
        .insert_passkey(&NewPasskey {
            id: &id,
            account_id: &account.id,
            credential_key: &credential_key(passkey.cred_id()),
            passkey: &to_json(&passkey)?,
            name: &name,
            now,
            counter: 0,
        })
        .await;
    match inserted {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(PasskeyError::Duplicate),
        Err(e) => return Err(e.into()),
    }
    store.delete_remembered_devices_of(&account.id).await?;
    audit::account_event(store, account, PASSKEY_ADDED, Some(&id), Some(ip)).await;
    recovery::notify(
        store,
        settings,
        account,
        NoticeEvent::PasskeyAdded,
        Some(ip),
    )
    .await;
    Ok(id)
}

fn parse_passkey(stored: &StoredPasskey) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&stored.passkey).map_err(|_| PasskeyError::Corrupt)
}

/// Starts a passwordless sign-in: the options carry no `allowCredentials`, so the browser
/// offers the discoverable passkeys it has for this site.
pub async fn start_authentication(
    store: &Store,
    settings: &Settings,
) -> Result<Started, PasskeyError> {
    let rp = relying_party(settings)?;
    let (mut options, state) = rp
        .start_discoverable_authentication()
        .map_err(|_| PasskeyError::Refused)?;
    // webauthn-rs marks the request for conditional mediation (autofill); the portal asks on
    // a button press instead, which is a plain modal request.
    options.mediation = None;
    let state = to_json(&state)?;
    let ceremony = store_ceremony(store, ChallengeKind::Auth, None, &state).await?;
    let options = serde_json::to_value(&options).map_err(|_| PasskeyError::Corrupt)?;
    Ok(Started { ceremony, options })
}

/// The outcome of a passkey sign-in, like [`crate::accounts::LoginOutcome`].
#[derive(Debug)]
pub enum PasskeySignIn {
    Success(Box<Account>),
    /// Unknown, expired or used ceremony, an answer that does not verify, an unknown
    /// passkey, or a locked account: one answer for all.
    Refused,
    /// The passkey verified, but the account is deactivated.
    Disabled,
    /// The passkey verified, but the account has expired.
    Expired,
    /// The client address used up its failures for this lockout window.
    Throttled,
}

/// Finishes a passwordless sign-in: verifies the browser's answer to the ceremony with the
/// passkey its user handle (the account id) and credential id name, with user verification,
/// and records the use (counter, time). The try is counted on the client's failure budget
/// ([`crate::lockout`]) like a password; a disabled, expired or locked account is refused.
/// Nothing else (no session): the caller starts the session, so the same check can serve
/// as a second factor.
pub async fn finish_authentication(
    store: &Store,
    settings: &Settings,
    ceremony: &str,
    credential: &str,
    ip: &str,
) -> Result<PasskeySignIn, PasskeyError> {
    let now = unix_now();
    if !lockout::reserve_source(store, settings, ip, now).await? {
        return Ok(PasskeySignIn::Throttled);
    }
    let account = match verify_assertion(store, settings, ceremony, credential, now).await? {
        Verified::Account(account) => account,
        Verified::Unknown => {
            crate::accounts::anonymous_login_failed(store, Some(METHOD), ip).await;
            return Ok(PasskeySignIn::Refused);
        }
        Verified::Failed(account) => {
            crate::accounts::login_failed(store, &account, Some(METHOD), ip).await;
            return Ok(PasskeySignIn::Refused);
        }
    };
    lockout::release_source(store, ip).await?;
    if account.status == AccountStatus::Disabled {
        crate::accounts::login_failed(store, &account, Some("passkey:disabled"), ip).await;
        return Ok(PasskeySignIn::Disabled);
    }
    if account.valid_until.is_some_and(|t| t < now) {
        crate::accounts::login_failed(store, &account, Some("passkey:expired"), ip).await;
        return Ok(PasskeySignIn::Expired);
    }
    if account.locked_until.is_some_and(|t| t > now) {
        // The lockout's lock holds for every way in.
        crate::accounts::login_failed(store, &account, Some("passkey:locked"), ip).await;
        return Ok(PasskeySignIn::Refused);
    }
    store.record_login_success(&account.id, ip, now).await?;
    store
        .set_valid_until(
            &account.id,
            Some(now + settings.account_validity_days * 86_400),
        )
        .await?;
    crate::metrics::record(store, crate::metrics::LOGINS, 1);
    // The sign-in itself is audited when its session starts (`sessions::start_by` with
    // [`METHOD`]).
    Ok(PasskeySignIn::Success(account))
}

enum Verified {
    Account(Box<Account>),
    /// Nothing named an account (or the ceremony was gone).
    Unknown,
    /// The answer named this account but did not verify.
    Failed(Box<Account>),
}

async fn verify_assertion(
    store: &Store,
    settings: &Settings,
    ceremony: &str,
    credential: &str,
    now: i64,
) -> Result<Verified, PasskeyError> {
    let Some(taken) = store
        .take_passkey_challenge(ceremony, ChallengeKind::Auth, now)
        .await?
    else {
        return Ok(Verified::Unknown);
    };
    let state: DiscoverableAuthentication =
        serde_json::from_str(&taken.state).map_err(|_| PasskeyError::Corrupt)?;
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(Verified::Unknown);
    };
    let rp = relying_party(settings)?;
    let Ok((user, credential_id)) = rp.identify_discoverable_authentication(&answer) else {
        return Ok(Verified::Unknown);
    };
    // Account ids are UUIDs, hyphenated as the pipeline writes them; the plain spelling is
    // tried too, so the user handle names the account however its id was written.
    let mut found = store.account_by_id(&user.to_string()).await?;
    if found.is_none() {
        found = store.account_by_id(&user.simple().to_string()).await?;
    }
    let Some(account) = found else {
        return Ok(Verified::Unknown);
    };
    let Some(stored) = store
        .passkey_by_credential(&account.id, &credential_key(credential_id))
        .await?
    else {
        return Ok(Verified::Failed(Box::new(account)));
    };
    let mut passkey = parse_passkey(&stored)?;
    let result = match rp.finish_discoverable_authentication_v2(&answer, state, &passkey) {
        Ok(result) if result.user_verified() => result,
        Ok(_) => return Ok(Verified::Failed(Box::new(account))),
        Err(e) => {
            tracing::info!(error = %e, "passkey sign-in refused");
            return Ok(Verified::Failed(Box::new(account)));
        }
    };
    passkey.update_credential(&result);
    // Conditional on the counter this check saw: a second answer racing with the same
    // counter value (a cloned authenticator) is refused.
    let recorded = store
        .record_passkey_use(
            &stored.id,
            &to_json(&passkey)?,
            stored.counter,
            i64::from(result.counter()),
            now,
        )
        .await?;
    if !recorded {
        return Ok(Verified::Failed(Box::new(account)));
    }
    Ok(Verified::Account(Box::new(account)))
}

/// A passkey as the profile lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The account's passkeys, oldest first.
pub async fn list(store: &Store, account: &Account) -> Result<Vec<PasskeyInfo>, PasskeyError> {
    Ok(store
        .passkeys_of(&account.id)
        .await?
        .into_iter()
        .map(|p| PasskeyInfo {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        })
        .collect())
}

/// Renames one of the account's passkeys; false when it has none with this id.
pub async fn rename(
    store: &Store,
    account: &Account,
    id: &str,
    name: &str,
    ip: &str,
) -> Result<bool, PasskeyError> {
    let renamed = store
        .rename_passkey(&account.id, id, &clean_name(name))
        .await?;
    if renamed {
        audit::account_event(store, account, PASSKEY_RENAMED, Some(id), Some(ip)).await;
    }
    Ok(renamed)
}

/// Removes one of the account's passkeys (the caller re-authenticated the holder), audits it
/// and mails the holder a notice; false when it has none with this id.
pub async fn remove(
    store: &Store,
    settings: &Settings,
    account: &Account,
    id: &str,
    ip: &str,
) -> Result<bool, PasskeyError> {
    let removed = store.delete_passkey(&account.id, id).await?;
    if removed {
        // A remembered device may have stood in for this very passkey: like every factor
        // change, removing it forgets the remembered devices.
        store.delete_remembered_devices_of(&account.id).await?;
        audit::account_event(store, account, PASSKEY_REMOVED, Some(id), Some(ip)).await;
        recovery::notify(
            store,
            settings,
            account,
            NoticeEvent::PasskeyRemoved,
            Some(ip),
        )
        .await;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_url() {
        let mut settings = Settings {
            public_url: "https://portal.bank.example".into(),
            ..Settings::default()
        };
        let rp = relying_party(&settings).unwrap();
        assert_eq!(
            rp.get_allowed_origins()
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>(),
            vec!["https://portal.bank.example/"]
        );
        settings.public_url = "not a url".into();
        assert!(matches!(
            relying_party(&settings),
            Err(PasskeyError::Config(_))
        ));
    }

    #[test]
    fn names_are_one_short_line() {
        assert_eq!(clean_name("  Laptop\r\nSet: x "), "LaptopSet: x");
        assert_eq!(clean_name(""), "Passkey");
        assert_eq!(clean_name(&"x".repeat(200)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn credential_keys_are_fixed_length_hex() {
        let key = credential_key(&[0u8; 1023]);
        assert_eq!(key.len(), 64);
        assert_ne!(key, credential_key(&[1u8; 16]));
    }
}
