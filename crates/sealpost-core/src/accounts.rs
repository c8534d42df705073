//! Recipient login and account lifecycle rules shared by the portal, the admin UI and the CLI.

use sealpost_store::{Account, AccountStatus, Store};
use zeroize::Zeroizing;

use crate::{CoreError, Settings, normalise_address, unix_now};

#[derive(Debug)]
pub enum LoginOutcome {
    Success(Box<Account>),
    /// Wrong address or password, or a locked account: one answer for all, so nobody can
    /// learn which addresses have accounts.
    Refused,
    Disabled,
    Expired,
}

/// Checks a login. Costs one Argon2 verification whether or not the address exists.
pub async fn login(
    store: &Store,
    settings: &Settings,
    address: &str,
    password: &str,
    ip: &str,
) -> Result<LoginOutcome, CoreError> {
    let address = normalise_address(address);
    let account = store.account_by_address(&address).await?;
    let password = Zeroizing::new(password.to_string());
    let Some(account) = account else {
        tokio::task::spawn_blocking(move || sealpost_crypto::dummy_verify(&password))
            .await
            .map_err(|_| CoreError::Join)?;
        return Ok(LoginOutcome::Refused);
    };
    let hash = account.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || sealpost_crypto::verify_secret(&password, &hash))
        .await
        .map_err(|_| CoreError::Join)?;
    let now = unix_now();
    if account.locked_until.is_some_and(|t| t > now) {
        return Ok(LoginOutcome::Refused);
    }
    if !ok {
        store
            .record_login_failure(
                &account.id,
                settings.lockout_threshold,
                now + settings.lockout_secs,
            )
            .await?;
        return Ok(LoginOutcome::Refused);
    }
    if account.status == AccountStatus::Disabled {
        return Ok(LoginOutcome::Disabled);
    }
    if account.valid_until.is_some_and(|t| t < now) {
        return Ok(LoginOutcome::Expired);
    }
    store.record_login_success(&account.id, ip, now).await?;
    // Validity runs from the last login.
    store
        .set_valid_until(
            &account.id,
            Some(now + settings.account_validity_days * 86_400),
        )
        .await?;
    Ok(LoginOutcome::Success(Box::new(account)))
}
