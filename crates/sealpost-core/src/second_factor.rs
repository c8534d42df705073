//! Recipients' second factor: an authenticator app (TOTP, RFC 6238) with ten single-use
//! recovery codes, the pending state between the first factor (password or mailbox code) and
//! the second, and remembered devices that skip the second factor (never the first).
//!
//! - The TOTP seed is stored wrapped under the master key ([`KeyRing::wrap_factor_secret`]),
//!   never in clear; recovery codes and device tokens only as SHA-256 (each carries at least
//!   80 random bits, so the hash cannot be searched).
//! - A code's time step is claimed in the database by one conditional UPDATE, so a code works
//!   once even when two nodes receive it at the same moment.
//! - Wrong codes count like wrong passwords: the per-client failure budget and the account
//!   lock of [`crate::lockout`].
//! - Every factor change is audited and mailed to the holder as a notice.
//!
//! The pending state is its own table (`pending_sign_ins`), looked up by the hash of a
//! short-lived cookie; [`crate::sessions::complete_second_factor`] turns it into a session,
//! whichever method proved the second factor ([`SecondFactorMethod`]).

use rand::RngCore;
use sealpost_mime::security_mail::NoticeEvent;
use sealpost_store::{
    Account, AccountStatus, PendingSignIn, Principal, RememberedDevice, Reservation, Store,
};
use zeroize::Zeroizing;

use crate::settings::SecondFactorPolicy;
use crate::{CoreError, KeyRing, Settings, audit, lockout, recovery, totp, unix_now};

/// How long the pending state after the first factor lives.
pub const PENDING_SECS: i64 = 5 * 60;
/// Recovery codes given at each enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Random bytes of a recovery code (80 bits, 16 characters).
const RECOVERY_CODE_BYTES: usize = 10;
/// The recovery codes' alphabet: 32 letters and digits without the easily confused 0/o, 1/l.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// A remembered device's user-agent summary is at most this long.
const MAX_DEVICE_LABEL: usize = 80;

/// Audit actions of factor changes.
pub const TOTP_ENROLLED: &str = "portal.totp_enrolled";
pub const TOTP_REMOVED: &str = "portal.totp_removed";
pub const RECOVERY_CODES_RENEWED: &str = "portal.recovery_codes_renewed";
pub const RECOVERY_CODE_USED: &str = "portal.recovery_code_used";
pub const DEVICE_REMEMBERED: &str = "portal.device_remembered";
pub const DEVICE_REVOKED: &str = "portal.device_revoked";
pub const FACTORS_RESET: &str = "admin.second_factors_reset";
pub const REENROL_REQUIRED: &str = "admin.second_factor_reenrol_required";

/// How a pending sign-in proved its second factor. The lead adds `Passkey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorMethod {
    /// A code of the enrolled authenticator app.
    Totp,
    /// One of the single-use recovery codes.
    RecoveryCode,
    /// A registered passkey, verified with user verification.
    Passkey,
}

impl SecondFactorMethod {
    /// The name in the audit log's sign-in detail (`password+totp`).
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactorMethod::Totp => "totp",
            SecondFactorMethod::RecoveryCode => "recovery-code",
            SecondFactorMethod::Passkey => "passkey",
        }
    }
}

/// The sign-in method recorded when a remembered device stood in for the second factor.
pub const REMEMBERED_DEVICE: &str = "remembered-device";

/// What an account needs after its first factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// An authenticator is enrolled: a code is asked for.
    pub enrolled: bool,
    /// The domain requires a second factor, or an administrator asked for a new enrolment.
    pub required: bool,
    /// A passkey is registered: it can be the second factor. It does not make one required
    /// (a passkey registered for passwordless sign-in leaves the password alone as it was),
    /// but it satisfies a required one, so no authenticator app has to be enrolled.
    pub passkey: bool,
}

impl Requirement {
    /// Whether the first factor alone may not start a session.
    pub fn needs_second(self) -> bool {
        self.enrolled || self.required
    }

    /// Whether a second factor exists that the code step can ask for.
    pub fn has_second(self) -> bool {
        self.enrolled || self.passkey
    }
}

/// Whether the domain of `account` requires a second factor.
pub fn domain_requires(settings: &Settings, account: &Account) -> bool {
    settings.for_address(&account.address).second_factor == SecondFactorPolicy::Required
}

pub async fn requirement(
    store: &Store,
    settings: &Settings,
    account: &Account,
) -> Result<Requirement, CoreError> {
    let state = store.totp_state(&account.id).await?;
    let passkey = !store.passkeys_of(&account.id).await?.is_empty();
    Ok(Requirement {
        enrolled: state.enrolled(),
        required: domain_requires(settings, account) || state.must_enrol,
        passkey,
    })
}

/// A live pending sign-in and its account.
pub struct Pending {
    pub token_hash: String,
    pub sign_in: PendingSignIn,
    pub account: Account,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("account", &self.account.id)
            .finish_non_exhaustive()
    }
}

/// Starts the pending state; returns the cookie token (only its hash is stored).
pub(crate) async fn start_pending(
    store: &Store,
    account: &Account,
    first_method: &str,
    next: &str,
    ip: &str,
) -> Result<String, CoreError> {
    let (token, token_hash) = sealpost_crypto::new_token();
    let now = unix_now();
    store
        .create_pending_sign_in(&sealpost_store::NewPendingSignIn {
            token_hash: &token_hash,
            account_id: &account.id,
            first_method,
            next_path: next,
            ip,
            now,
            expires_at: now + PENDING_SECS,
        })
        .await?;
    Ok(token)
}

/// The pending sign-in of a cookie token, if it is live and its account may still sign in.
pub async fn resume_pending(store: &Store, token: &str) -> Result<Option<Pending>, CoreError> {
    let now = unix_now();
    let token_hash = sealpost_crypto::hash_token(token);
    let Some(sign_in) = store.pending_sign_in(&token_hash, now).await? else {
        return Ok(None);
    };
    let account = store
        .account_by_id(&sign_in.account_id)
        .await?
        .filter(|a| a.status == AccountStatus::Active && a.valid_until.is_none_or(|t| t >= now));
    let Some(account) = account else {
        store.take_pending_sign_in(&token_hash, now).await?;
        return Ok(None);
    };
    Ok(Some(Pending {
        token_hash,
        sign_in,
        account,
    }))
}

/// The answer to a second-factor code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right: the method that proved it.
    Accepted(SecondFactorMethod),
    /// Wrong, already used, or the account is locked (the same answer, like at sign-in).
    Refused,
    /// The client address used up its failures.
    Throttled,
}

/// A recovery code as typed (dashes, spaces and case do not matter), or None.
fn normalise_recovery_code(code: &str) -> Option<Zeroizing<String>> {
    let c: Zeroizing<String> = Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    (c.len() == RECOVERY_CODE_BYTES * 8 / 5 && c.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(c)
}

/// Checks a TOTP code against the enrolled seed and claims its time step (once only).
async fn check_totp(
    store: &Store,
    keys: &KeyRing,
    account: &Account,
    code: &str,
    now: i64,
) -> Result<bool, CoreError> {
    let state = store.totp_state(&account.id).await?;
    let Some(wrapped) = state.secret_wrapped else {
        return Ok(false);
    };
    let seed = keys.unwrap_factor_secret(&account.id, &wrapped)?;
    let Ok(seed) = std::str::from_utf8(&seed) else {
        return Ok(false);
    };
    match totp::totp_step(seed, code, now) {
        Some(step) => Ok(store.claim_totp_step(&account.id, step).await?),
        None => Ok(false),
    }
}

/// Checks the second factor of `account`: a 6-digit authenticator code, or a recovery code
/// (used up by a right answer, and the holder is told). Counted like a sign-in: reserved per
/// client address and per account; a wrong code is audited and may lock the account.
pub async fn check_code(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: &Account,
    code: &str,
    ip: &str,
) -> Result<CodeOutcome, CoreError> {
    let now = unix_now();
    if !lockout::reserve_source(store, settings, ip, now).await? {
        return Ok(CodeOutcome::Throttled);
    }
    let reservation = store
        .reserve_login_attempt(
            Principal::Account,
            &account.id,
            lockout::lock_policy(settings),
            now,
        )
        .await?;
    let Reservation::Proceed { locks } = reservation else {
        crate::accounts::login_failed(store, account, Some("second-factor-locked"), ip).await;
        return Ok(CodeOutcome::Refused);
    };
    let method = if let Some(totp_code) = totp::normalise_code(code) {
        check_totp(store, keys, account, &totp_code, now)
            .await?
            .then_some(SecondFactorMethod::Totp)
    } else if let Some(recovery) = normalise_recovery_code(code) {
        let hash = sealpost_crypto::hash_token(&recovery);
        store
            .use_factor_recovery_code(&account.id, &hash, now)
            .await?
            .then_some(SecondFactorMethod::RecoveryCode)
    } else {
        None
    };
    let Some(method) = method else {
        crate::accounts::login_failed(store, account, Some("second-factor"), ip).await;
        if locks {
            crate::metrics::record(store, crate::metrics::LOCKOUTS, 1);
            audit::account_event(store, account, audit::PORTAL_LOCKOUT, None, Some(ip)).await;
        }
        return Ok(CodeOutcome::Refused);
    };
    store
        .release_login_attempt(Principal::Account, &account.id)
        .await?;
    lockout::release_source(store, ip).await?;
    if method == SecondFactorMethod::RecoveryCode {
        audit::account_event(store, account, RECOVERY_CODE_USED, None, Some(ip)).await;
        recovery::notify(
            store,
            settings,
            account,
            NoticeEvent::RecoveryCodeUsed,
            Some(ip),
        )
        .await;
    }
    Ok(CodeOutcome::Accepted(method))
}

/// The seed of an enrolment in progress, for the enrolment page (QR code and text).
pub struct Enrolment {
    pub secret: Zeroizing<String>,
    pub uri: Zeroizing<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(...)")
    }
}

fn enrolment(secret: Zeroizing<String>, account: &Account, settings: &Settings) -> Enrolment {
    let uri = Zeroizing::new(totp::totp_uri(
        &secret,
        &account.address,
        &settings.org_name,
    ));
    Enrolment { secret, uri }
}

/// Starts (or restarts) an enrolment: a new seed, kept wrapped until its first code confirms
/// it. The caller has re-authenticated the holder (or the holder is in a pending sign-in).
pub async fn start_enrolment(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: &Account,
) -> Result<Enrolment, CoreError> {
    let secret = Zeroizing::new(totp::new_totp_secret());
    let wrapped = keys.wrap_factor_secret(&account.id, secret.as_bytes());
    store.set_totp_pending(&account.id, &wrapped).await?;
    Ok(enrolment(secret, account, settings))
}

/// The enrolment in progress, if any (to show the page again after a wrong code).
pub async fn pending_enrolment(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: &Account,
) -> Result<Option<Enrolment>, CoreError> {
    let state = store.totp_state(&account.id).await?;
    let Some(wrapped) = state.pending_wrapped else {
        return Ok(None);
    };
    let seed = keys.unwrap_factor_secret(&account.id, &wrapped)?;
    let secret = Zeroizing::new(String::from_utf8_lossy(&seed).into_owned());
    Ok(Some(enrolment(secret, account, settings)))
}

/// Ten new recovery codes, shown once; only their hashes are stored (replacing older ones).
async fn new_recovery_codes(store: &Store, account: &Account) -> Result<Vec<String>, CoreError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code = random_recovery_code();
        hashes.push(sealpost_crypto::hash_token(&code));
        codes.push(code);
    }
    store
        .replace_factor_recovery_codes(&account.id, &hashes, unix_now())
        .await?;
    Ok(codes
        .iter()
        .map(|c| format!("{}-{}-{}-{}", &c[0..4], &c[4..8], &c[8..12], &c[12..16]))
        .collect())
}

/// 16 characters of [`RECOVERY_ALPHABET`] from 80 random bits (5 bits per character).
fn random_recovery_code() -> String {
    let mut bytes = Zeroizing::new([0u8; RECOVERY_CODE_BYTES]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut_slice());
    let mut bits: u128 = 0;
    for b in bytes.iter() {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..RECOVERY_CODE_BYTES * 8 / 5)
        .map(|i| {
            let shift = (RECOVERY_CODE_BYTES * 8 / 5 - 1 - i) * 5;
            char::from(RECOVERY_ALPHABET[((bits >> shift) & 31) as usize])
        })
        .collect()
}

/// What confirming an enrolment gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Enrolled: the recovery codes to show once.
    Enrolled(Vec<String>),
    /// The code does not match the new seed (nothing counted: the holder is already signed in
    /// or past the first factor, and the seed is not yet a factor).
    WrongCode,
    /// No enrolment in progress.
    NoEnrolment,
}

/// Confirms the enrolment in progress with one code of the new seed: the seed becomes the
/// account's factor (the code's step counts as used), ten recovery codes replace older ones,
/// remembered devices end, and the holder is told. Pending sign-ins of the account stay: from
/// now on they are asked for a code of the new seed.
pub async fn confirm_enrolment(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: &Account,
    code: &str,
    ip: &str,
) -> Result<Confirmed, CoreError> {
    let state = store.totp_state(&account.id).await?;
    let Some(wrapped) = state.pending_wrapped else {
        return Ok(Confirmed::NoEnrolment);
    };
    let seed = keys.unwrap_factor_secret(&account.id, &wrapped)?;
    let seed = String::from_utf8_lossy(&seed).into_owned();
    let step = totp::normalise_code(code).and_then(|c| totp::totp_step(&seed, &c, unix_now()));
    let Some(step) = step else {
        return Ok(Confirmed::WrongCode);
    };
    if !store.confirm_totp(&account.id, step, unix_now()).await? {
        return Ok(Confirmed::NoEnrolment);
    }
    let codes = new_recovery_codes(store, account).await?;
    store.delete_remembered_devices_of(&account.id).await?;
    audit::account_event(store, account, TOTP_ENROLLED, None, Some(ip)).await;
    recovery::notify(
        store,
        settings,
        account,
        NoticeEvent::TotpEnrolled,
        Some(ip),
    )
    .await;
    Ok(Confirmed::Enrolled(codes))
}

/// Removes the authenticator and the recovery codes (after re-authentication); remembered
/// devices end. Where the domain requires a second factor the next sign-in enrols again.
pub async fn remove_totp(
    store: &Store,
    settings: &Settings,
    account: &Account,
    ip: &str,
) -> Result<(), CoreError> {
    store.clear_totp(&account.id, false).await?;
    store.delete_factor_recovery_codes(&account.id).await?;
    store.delete_remembered_devices_of(&account.id).await?;
    audit::account_event(store, account, TOTP_REMOVED, None, Some(ip)).await;
    recovery::notify(store, settings, account, NoticeEvent::TotpRemoved, Some(ip)).await;
    Ok(())
}

/// New recovery codes for an enrolled account (after re-authentication); None when no
/// authenticator is enrolled.
pub async fn renew_recovery_codes(
    store: &Store,
    settings: &Settings,
    account: &Account,
    ip: &str,
) -> Result<Option<Vec<String>>, CoreError> {
    if !store.totp_state(&account.id).await?.enrolled() {
        return Ok(None);
    }
    let codes = new_recovery_codes(store, account).await?;
    audit::account_event(store, account, RECOVERY_CODES_RENEWED, None, Some(ip)).await;
    recovery::notify(
        store,
        settings,
        account,
        NoticeEvent::RecoveryCodesRenewed,
        Some(ip),
    )
    .await;
    Ok(Some(codes))
}

/// An administrator's reset of every second factor of an account: authenticator, recovery
/// codes, remembered devices, pending sign-ins and sessions end. `require_reenrolment` makes
/// the next sign-in enrol a new authenticator even where the domain leaves it optional.
pub async fn reset_factors(
    store: &Store,
    settings: &Settings,
    account: &Account,
    require_reenrolment: bool,
    actor: &str,
    ip: Option<&str>,
) -> Result<(), CoreError> {
    store.clear_totp(&account.id, require_reenrolment).await?;
    store.delete_factor_recovery_codes(&account.id).await?;
    store.delete_remembered_devices_of(&account.id).await?;
    // Passkeys are second factors too: a reset is what a lost phone needs.
    store.delete_passkeys_of(&account.id).await?;
    store.delete_pending_sign_ins_of(&account.id).await?;
    store.delete_sessions_of(&account.id, None).await?;
    let action = if require_reenrolment {
        REENROL_REQUIRED
    } else {
        FACTORS_RESET
    };
    // Like the other administrators' account events: the subject is the address.
    audit::write(store, actor, action, Some(&account.address), None, ip).await;
    recovery::notify(
        store,
        settings,
        account,
        NoticeEvent::SecondFactorsReset,
        ip,
    )
    .await;
    Ok(())
}

/// Which factors an account has, for the profile and the admin's account page (never a
/// secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorSummary {
    pub has_password: bool,
    pub totp_enrolled_at: Option<i64>,
    pub must_enrol: bool,
    pub unused_recovery_codes: i64,
    pub devices: Vec<RememberedDevice>,
    /// Registered passkeys (names only are shown).
    pub passkeys: usize,
}

pub async fn summary(store: &Store, account: &Account) -> Result<FactorSummary, CoreError> {
    let state = store.totp_state(&account.id).await?;
    Ok(FactorSummary {
        has_password: !account.password_hash.is_empty(),
        totp_enrolled_at: state.secret_wrapped.as_ref().and(state.enrolled_at),
        must_enrol: state.must_enrol,
        unused_recovery_codes: store.unused_factor_recovery_codes(&account.id).await?,
        devices: store.remembered_devices(&account.id, unix_now()).await?,
        passkeys: store.passkeys_of(&account.id).await?.len(),
    })
}

/// A new remembered device of `account`: the cookie token and its Max-Age, or None when
/// `recipients.remember_device_days` is 0.
pub async fn remember_device(
    store: &Store,
    settings: &Settings,
    account: &Account,
    user_agent: &str,
    ip: &str,
) -> Result<Option<(String, i64)>, CoreError> {
    let days = settings.remember_device_days;
    if days <= 0 {
        return Ok(None);
    }
    let max_age = days.saturating_mul(86_400);
    let (token, token_hash) = sealpost_crypto::new_token();
    let now = unix_now();
    let label = device_label(user_agent);
    store
        .insert_remembered_device(&token_hash, &account.id, &label, now, now + max_age)
        .await?;
    audit::account_event(store, account, DEVICE_REMEMBERED, Some(&label), Some(ip)).await;
    Ok(Some((token, max_age)))
}

/// Whether the device cookie `token` is a live remembered device of `account` (recording the
/// use). Off (`remember_device_days = 0`), no device skips anything.
pub async fn device_remembered(
    store: &Store,
    settings: &Settings,
    account: &Account,
    token: &str,
) -> Result<bool, CoreError> {
    if settings.remember_device_days <= 0 {
        return Ok(false);
    }
    let hash = sealpost_crypto::hash_token(token);
    Ok(store
        .use_remembered_device(&hash, &account.id, unix_now())
        .await?)
}

/// Revokes one remembered device of the account; false when it is not the account's.
pub async fn revoke_device(
    store: &Store,
    account: &Account,
    token_hash: &str,
    ip: &str,
) -> Result<bool, CoreError> {
    let gone = store
        .delete_remembered_device(&account.id, token_hash)
        .await?;
    if gone {
        audit::account_event(store, account, DEVICE_REVOKED, None, Some(ip)).await;
    }
    Ok(gone)
}

/// A short, readable summary of a user agent ("Firefox on Linux"), for the device list.
pub fn device_label(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => o.to_string(),
        (None, None) => ua
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_DEVICE_LABEL)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_sixteen_characters_of_the_alphabet() {
        let a = random_recovery_code();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)));
        assert_ne!(a, random_recovery_code());
        let typed =
            format!(" {}-{} {}-{} ", &a[0..4], &a[4..8], &a[8..12], &a[12..16]).to_uppercase();
        assert_eq!(
            normalise_recovery_code(&typed)
                .as_deref()
                .map(String::as_str),
            Some(a.as_str())
        );
        assert!(normalise_recovery_code("123456").is_none());
        assert!(normalise_recovery_code("0000-0000-0000-0000").is_none());
    }

    #[test]
    fn devices_are_summarised() {
        assert_eq!(
            device_label("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
            "Firefox on Linux"
        );
        assert_eq!(
            device_label("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
            "Safari on iOS"
        );
        assert_eq!(device_label("curl/8\u{7}"), "curl/8");
    }

    #[test]
    fn second_factor_methods_name_themselves() {
        assert_eq!(SecondFactorMethod::Totp.as_str(), "totp");
        assert_eq!(SecondFactorMethod::RecoveryCode.as_str(), "recovery-code");
    }
}
