//! Signing in with a one-time code mailed to the account's own address: the first sign-in of
//! an account created under `recipients.first_contact = mailbox-code` (it has no password
//! yet), and "e-mail me a code" instead of the password where `recipients.code_sign_in`
//! allows it for the account's domain.
//!
//! The codes are [`crate::recovery`]'s (six digits, 15 minutes, single use, 5 tries, a keyed
//! hash in the database, at most [`recovery::CODES_PER_WINDOW`] per address per hour), keyed
//! for sign-in so a reset code never signs anyone in. Requests are budgeted per client
//! address in the database (shared by every node), and code guesses spend the same
//! per-client failure budget as password guesses ([`crate::lockout`]). An unknown address, or
//! one that may not sign in with a code, gets the same answer and the same work, and no mail.

use sealpost_store::{Account, AccountStatus, Store};

use crate::recovery::{self, CodePurpose, check_code_for, consume_code, purpose_code_hash};
use crate::{CoreError, KeyRing, Settings, audit, lockout, normalise_address, unix_now};

/// Code requests one client address may make per [`recovery::CODE_WINDOW_SECS`], over all
/// addresses it names (each address also has its own limit of codes per window).
pub const CODE_REQUESTS_PER_CLIENT: i64 = 10;

/// The audit detail and session method of a sign-in by code.
pub const METHOD: &str = "code";

/// The answer to a code request. `Accepted` says nothing about the address: a code was mailed
/// if and only if the address may sign in with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRequest {
    Accepted,
    /// The client address asked for too many codes in this window; nothing was looked up.
    Throttled,
}

/// Whether the holder of `account` may sign in with a mailed code: always while it has no
/// password (that is its only way in), else where the domain's policy allows it.
pub fn may_sign_in_with_code(account: &Account, settings: &Settings) -> bool {
    account.status == AccountStatus::Active
        && (account.password_hash.is_empty() || settings.for_address(&account.address).code_sign_in)
}

/// The source key of code requests, apart from the failure budget of guesses.
fn request_source(ip: &str) -> String {
    format!("code-request:{}", lockout::source_key(ip))
}

/// Mails a sign-in code to `address` if it may sign in with one (in the background, so the
/// answer takes the same time either way).
pub async fn request_code(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    address: &str,
    ip: &str,
) -> Result<CodeRequest, CoreError> {
    let now = unix_now();
    let allowed = store
        .reserve_source_attempt(
            &request_source(ip),
            CODE_REQUESTS_PER_CLIENT,
            recovery::CODE_WINDOW_SECS,
            now,
        )
        .await?;
    if !allowed {
        crate::metrics::record(store, crate::metrics::SOURCE_THROTTLED, 1);
        audit::write(
            store,
            audit::ANONYMOUS,
            audit::SOURCE_THROTTLED,
            None,
            Some(METHOD),
            Some(ip),
        )
        .await;
        return Ok(CodeRequest::Throttled);
    }
    let address = normalise_address(address);
    match store.account_by_address(&address).await? {
        Some(account) if may_sign_in_with_code(&account, settings) => {
            audit::account_event(store, &account, SIGN_IN_CODE_REQUESTED, None, Some(ip)).await;
            recovery::send_code_detached_for(store, keys, settings, account, CodePurpose::SignIn);
        }
        _ => {
            // The work a known address costs in this request (the keyed hash is computed in
            // the background task there), and an audit row without the typed address.
            std::hint::black_box(purpose_code_hash(keys, CodePurpose::SignIn, "", "000000"));
            audit::write(
                store,
                audit::ANONYMOUS,
                SIGN_IN_CODE_REQUESTED,
                None,
                None,
                Some(ip),
            )
            .await;
        }
    }
    Ok(CodeRequest::Accepted)
}

/// A sign-in code was asked for (the code itself is never logged).
pub const SIGN_IN_CODE_REQUESTED: &str = "portal.sign_in_code_requested";

/// The outcome of a sign-in by code, like [`crate::accounts::LoginOutcome`].
#[derive(Debug)]
pub enum CodeSignIn {
    Success(Box<Account>),
    /// Wrong, expired, used or exhausted code, or an address that has none: one answer.
    /// Disabled accounts are never mailed a code, so they end here too.
    Wrong,
    Expired,
    /// The client address used up its failures for this lockout window.
    Throttled,
}

/// Checks a sign-in code. The try is counted on the code (5 per code) and on the client
/// address's failure budget before the code is compared; a right code is used up at once.
pub async fn sign_in(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    address: &str,
    code: &str,
    ip: &str,
) -> Result<CodeSignIn, CoreError> {
    let now = unix_now();
    if !lockout::reserve_source(store, settings, ip, now).await? {
        return Ok(CodeSignIn::Throttled);
    }
    let address = normalise_address(address);
    let account = store
        .account_by_address(&address)
        .await?
        .filter(|a| may_sign_in_with_code(a, settings));
    let Some(account) = account else {
        std::hint::black_box(purpose_code_hash(keys, CodePurpose::SignIn, "", code));
        crate::accounts::anonymous_login_failed(store, Some(METHOD), ip).await;
        return Ok(CodeSignIn::Wrong);
    };
    let matched = match check_code_for(store, keys, &account, code, CodePurpose::SignIn).await? {
        Some(matched) => consume_code(store, &account, matched).await?,
        None => false,
    };
    if !matched {
        crate::accounts::login_failed(store, &account, Some(METHOD), ip).await;
        return Ok(CodeSignIn::Wrong);
    }
    lockout::release_source(store, ip).await?;
    if account.valid_until.is_some_and(|t| t < now) {
        audit::account_event(
            store,
            &account,
            audit::PORTAL_LOGIN_FAILED,
            Some("expired"),
            Some(ip),
        )
        .await;
        return Ok(CodeSignIn::Expired);
    }
    // The code proves the mailbox: a sign-in lock from password guesses is lifted like after
    // a right password.
    store
        .release_login_attempt(sealpost_store::Principal::Account, &account.id)
        .await?;
    store.record_login_success(&account.id, ip, now).await?;
    store
        .set_valid_until(
            &account.id,
            Some(now + settings.account_validity_days * 86_400),
        )
        .await?;
    crate::metrics::record(store, crate::metrics::LOGINS, 1);
    Ok(CodeSignIn::Success(Box::new(account)))
}
