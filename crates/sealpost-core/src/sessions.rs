//! The lifecycle of sign-in sessions for both kinds (portal readers and administrators): how
//! long a session lives, starting one (which ends the browser's previous one), resuming it on
//! every request, and ending it. The HTTP layer only carries the token in a cookie.
//!
//! A session is valid while all of these hold: it was used within the idle timeout, it is
//! younger than the absolute lifetime, and its principal still exists and may sign in (for a
//! reader: active and within the account's validity). Each is checked on every request, so a
//! deactivated or expired account loses its session at once.

use sealpost_store::{Account, AccountStatus, Admin, NewSession, SessionKind, Store};

use crate::{CoreError, Settings, second_factor, unix_now};

/// How long sessions of one kind live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// The idle expiry is written forward at most this often, to spare the database.
    pub slide_secs: i64,
    /// A session unused for this long ends.
    pub idle_secs: i64,
    /// A session ends this long after it started, even while in use.
    pub absolute_secs: i64,
}

impl SessionPolicy {
    pub fn for_kind(kind: SessionKind, settings: &Settings) -> Self {
        match kind {
            SessionKind::Portal => SessionPolicy {
                slide_secs: 60,
                idle_secs: settings.session_idle_secs,
                absolute_secs: settings.session_absolute_secs,
            },
            SessionKind::Admin => SessionPolicy {
                slide_secs: 30,
                idle_secs: settings.admin_session_idle_secs,
                absolute_secs: settings.admin_session_absolute_secs,
            },
        }
    }

    /// The idle expiry after a use at `now`, never past the absolute end.
    fn expiry(&self, created_at: i64, now: i64) -> i64 {
        (now + self.idle_secs).min(created_at + self.absolute_secs)
    }
}

/// A session just started: the token goes into the cookie, only its hash was stored.
pub struct Started {
    pub token: String,
    pub csrf: String,
    /// The cookie's Max-Age: the absolute lifetime (the server ends it earlier when idle).
    pub max_age: i64,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").finish_non_exhaustive()
    }
}

/// Who a session belongs to, as far as starting it is concerned.
pub struct Principal<'a> {
    pub kind: SessionKind,
    pub id: &'a str,
    /// The name written to the audit log as the actor (an address, or `admin:NAME`).
    pub audit_actor: &'a str,
}

/// Starts a session after a successful sign-in. A token this browser still carried
/// (`previous_token`) is ended first, so a planted cookie never becomes an authenticated one.
pub async fn start(
    store: &Store,
    settings: &Settings,
    principal: &Principal<'_>,
    previous_token: Option<&str>,
    ip: &str,
) -> Result<Started, CoreError> {
    // A portal session through this door followed a password; admin sign-ins record theirs
    // in their own events.
    let method = (principal.kind == SessionKind::Portal).then_some(PASSWORD);
    start_by(store, settings, principal, method, previous_token, ip).await
}

/// The sign-in method a session records when it followed a password.
pub const PASSWORD: &str = "password";

/// [`start`] for a sign-in by `method` (e.g. [`PASSWORD`] or
/// [`crate::mailbox_code::METHOD`]), which the audit event of the sign-in records as its
/// detail.
pub async fn start_by(
    store: &Store,
    settings: &Settings,
    principal: &Principal<'_>,
    method: Option<&str>,
    previous_token: Option<&str>,
    ip: &str,
) -> Result<Started, CoreError> {
    if let Some(previous) = previous_token {
        store
            .delete_session(&sealpost_crypto::hash_token(previous))
            .await?;
    }
    let policy = SessionPolicy::for_kind(principal.kind, settings);
    let (token, token_hash) = sealpost_crypto::new_token();
    let (csrf, _) = sealpost_crypto::new_token();
    let now = unix_now();
    store
        .create_session(&NewSession {
            token_hash: &token_hash,
            kind: principal.kind,
            principal_id: principal.id,
            csrf_token: &csrf,
            ip,
            now,
            expires_at: policy.expiry(now, now),
        })
        .await?;
    let (action, account_id) = match principal.kind {
        SessionKind::Portal => (crate::audit::PORTAL_LOGIN, Some(principal.id)),
        SessionKind::Admin => (crate::audit::ADMIN_LOGIN, None),
    };
    if let Err(e) = store
        .audit(
            now,
            principal.audit_actor,
            action,
            account_id,
            method,
            Some(ip),
        )
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
    Ok(Started {
        token,
        csrf,
        max_age: policy.absolute_secs.max(60),
    })
}

/// What a right first factor (password, mailbox code) leads to.
pub enum SignIn {
    /// A full portal session: no second factor is needed, or a remembered device stood in.
    Session(Started),
    /// The second factor is due: the pending state's cookie token (its Max-Age is
    /// [`second_factor::PENDING_SECS`]). `enrol`: none is enrolled yet but one is required,
    /// so the holder enrols one before anything else.
    Pending { token: String, enrol: bool },
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignIn::Session(_) => f.write_str("SignIn::Session(..)"),
            SignIn::Pending { enrol, .. } => write!(f, "SignIn::Pending {{ enrol: {enrol} }}"),
        }
    }
}

/// The one decision after a right first factor (`first_method`: [`PASSWORD`] or
/// [`crate::mailbox_code::METHOD`]): a full session, or the pending state of the second
/// factor, which keeps `next` (already checked as a safe local path). A remembered device of
/// this account (`device_token`, the device cookie) skips the second factor, never the first.
#[allow(clippy::too_many_arguments)]
pub async fn begin_sign_in(
    store: &Store,
    settings: &Settings,
    account: &Account,
    first_method: &str,
    device_token: Option<&str>,
    previous_token: Option<&str>,
    next: &str,
    ip: &str,
) -> Result<SignIn, CoreError> {
    let principal = Principal {
        kind: SessionKind::Portal,
        id: &account.id,
        audit_actor: &account.address,
    };
    let need = second_factor::requirement(store, settings, account).await?;
    if !need.needs_second() {
        let started = start_by(
            store,
            settings,
            &principal,
            Some(first_method),
            previous_token,
            ip,
        )
        .await?;
        return Ok(SignIn::Session(started));
    }
    // A device remembers a second factor that exists; a required but missing one is enrolled.
    if need.has_second()
        && let Some(device) = device_token
        && second_factor::device_remembered(store, settings, account, device).await?
    {
        let method = format!("{first_method}+{}", second_factor::REMEMBERED_DEVICE);
        let started = start_by(
            store,
            settings,
            &principal,
            Some(&method),
            previous_token,
            ip,
        )
        .await?;
        return Ok(SignIn::Session(started));
    }
    // A session cookie the browser still carried ends now: it must not outlive this sign-in.
    if let Some(previous) = previous_token {
        store
            .delete_session(&sealpost_crypto::hash_token(previous))
            .await?;
    }
    let token = second_factor::start_pending(store, account, first_method, next, ip).await?;
    Ok(SignIn::Pending {
        token,
        enrol: !need.has_second(),
    })
}

/// Turns a pending sign-in into a full portal session once `method` proved the second
/// factor. The pending state is taken by one conditional DELETE, so it yields at most one
/// session even when two requests (on any nodes) complete it at once: None for the loser.
/// The audit event records both factors (`password+totp`).
pub async fn complete_second_factor(
    store: &Store,
    settings: &Settings,
    pending: &second_factor::Pending,
    method: second_factor::SecondFactorMethod,
    previous_token: Option<&str>,
    ip: &str,
) -> Result<Option<Started>, CoreError> {
    if !store
        .take_pending_sign_in(&pending.token_hash, unix_now())
        .await?
    {
        return Ok(None);
    }
    let detail = format!("{}+{}", pending.sign_in.first_method, method.as_str());
    let started = start_by(
        store,
        settings,
        &Principal {
            kind: SessionKind::Portal,
            id: &pending.account.id,
            audit_actor: &pending.account.address,
        },
        Some(&detail),
        previous_token,
        ip,
    )
    .await?;
    Ok(Some(started))
}

/// A live session and what it belongs to.
pub struct Live<P> {
    pub principal: P,
    pub token_hash: String,
    pub csrf: String,
}

/// The reader of a portal session, if the session and the account are still valid.
pub async fn resume_reader(
    store: &Store,
    settings: &Settings,
    token: &str,
) -> Result<Option<Live<Account>>, CoreError> {
    resume_reader_at(store, settings, token, unix_now()).await
}

/// [`resume_reader`] at a given time (the clock seam for tests).
pub async fn resume_reader_at(
    store: &Store,
    settings: &Settings,
    token: &str,
    now: i64,
) -> Result<Option<Live<Account>>, CoreError> {
    resume_at(
        store,
        settings,
        SessionKind::Portal,
        token,
        now,
        |id| async move {
            let account = store.account_by_id(&id).await?;
            Ok(account.filter(|a| {
                a.status == AccountStatus::Active && a.valid_until.is_none_or(|t| t >= now)
            }))
        },
    )
    .await
}

/// The administrator of an admin session, if the session is still valid.
pub async fn resume_admin(
    store: &Store,
    settings: &Settings,
    token: &str,
) -> Result<Option<Live<Admin>>, CoreError> {
    resume_admin_at(store, settings, token, unix_now()).await
}

/// [`resume_admin`] at a given time (the clock seam for tests).
pub async fn resume_admin_at(
    store: &Store,
    settings: &Settings,
    token: &str,
    now: i64,
) -> Result<Option<Live<Admin>>, CoreError> {
    resume_at(
        store,
        settings,
        SessionKind::Admin,
        token,
        now,
        |id| async move { Ok(store.admin_by_id(&id).await?) },
    )
    .await
}

async fn resume_at<P, F, Fut>(
    store: &Store,
    settings: &Settings,
    kind: SessionKind,
    token: &str,
    now: i64,
    principal: F,
) -> Result<Option<Live<P>>, CoreError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<P>, CoreError>>,
{
    let token_hash = sealpost_crypto::hash_token(token);
    let Some(record) = store.session(&token_hash, kind, now).await? else {
        return Ok(None);
    };
    let policy = SessionPolicy::for_kind(kind, settings);
    if now - record.created_at >= policy.absolute_secs {
        store.delete_session(&token_hash).await?;
        return Ok(None);
    }
    let Some(found) = principal(record.principal_id).await? else {
        // Deactivated, past its validity, or deleted: the session ends now, not when idle.
        store.delete_session(&token_hash).await?;
        return Ok(None);
    };
    if now - record.last_seen_at > policy.slide_secs {
        store
            .touch_session(&token_hash, now, policy.expiry(record.created_at, now))
            .await?;
    }
    Ok(Some(Live {
        principal: found,
        token_hash,
        csrf: record.csrf_token,
    }))
}

/// Ends a session (sign-out).
pub async fn end(store: &Store, token_hash: &str) -> Result<(), CoreError> {
    store.delete_session(token_hash).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_expiry_never_passes_the_absolute_end() {
        let settings = Settings::default();
        let portal = SessionPolicy::for_kind(SessionKind::Portal, &settings);
        assert_eq!(portal.absolute_secs, 12 * 3600);
        assert_eq!(portal.expiry(0, 100), 100 + settings.session_idle_secs);
        assert_eq!(portal.expiry(0, 12 * 3600 - 10), 12 * 3600);
        let admin = SessionPolicy::for_kind(SessionKind::Admin, &settings);
        assert_eq!(admin.absolute_secs, 8 * 3600);
    }
}
