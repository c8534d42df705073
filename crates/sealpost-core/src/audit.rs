//! The audit trail of authentication decisions and of every access to decrypted content:
//! who (account, admin, or `anonymous`), what, when and from which client address. Never
//! message content, secrets, or the address someone typed for an account that does not exist.

use sealpost_store::{Account, AuditEvent, Store};

use crate::{CoreError, unix_now};

/// The actor of events without a known principal (an unknown address or name, a throttled
/// client).
pub const ANONYMOUS: &str = "anonymous";

/// A recipient signed in.
pub const PORTAL_LOGIN: &str = "portal.login";
/// A recipient sign-in was refused (wrong address or password, locked, disabled, expired).
pub const PORTAL_LOGIN_FAILED: &str = "portal.login_failed";
/// A recipient account was locked after too many failed sign-ins.
pub const PORTAL_LOCKOUT: &str = "portal.lockout";
/// A wrong secret answer in a password reset.
pub const SECRET_ANSWER_WRONG: &str = "portal.secret_answer_wrong";
/// The secret answers of an account are used up.
pub const SECRET_ANSWER_BLOCKED: &str = "portal.secret_answer_blocked";
/// A right secret answer replaced the password.
pub const PASSWORD_RESET_BY_ANSWER: &str = "portal.password_reset_by_answer";
/// A client address used up its failures and was refused before any account was tried.
pub const SOURCE_THROTTLED: &str = "auth.source_throttled";
/// A decrypted message was shown.
pub const MESSAGE_READ: &str = "portal.message_read";
/// A part (attachment, inline image, HTML body) of a decrypted message was downloaded.
pub const PART_DOWNLOADED: &str = "portal.part_downloaded";
/// A decrypted message was downloaded as `.eml`.
pub const EML_DOWNLOADED: &str = "portal.eml_downloaded";
/// A recipient followed the link of a `link` delivery (`/m/{id}`) to its message.
pub const LINK_OPENED: &str = "portal.link_opened";
/// An admin signed in.
pub const ADMIN_LOGIN: &str = "admin.login";
/// An admin sign-in was refused.
pub const ADMIN_LOGIN_FAILED: &str = "admin.login_failed";
/// An admin was locked after too many failed sign-ins.
pub const ADMIN_LOCKOUT: &str = "admin.lockout";

/// Writes one event. Best effort: a failed audit write is logged but never undoes (or
/// refuses) what was just decided.
pub(crate) async fn write(
    store: &Store,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: Option<&str>,
    ip: Option<&str>,
) {
    if let Err(e) = store
        .audit(unix_now(), actor, action, subject, detail, ip)
        .await
    {
        tracing::warn!(error = %e, action, "audit write failed");
    }
}

/// An event of a recipient account: the actor is its address, the subject its id.
pub(crate) async fn account_event(
    store: &Store,
    account: &Account,
    action: &str,
    detail: Option<&str>,
    ip: Option<&str>,
) {
    write(
        store,
        &account.address,
        action,
        Some(&account.id),
        detail,
        ip,
    )
    .await;
}

/// The newest `limit` events, newest first, for the admin's audit page.
pub async fn recent(store: &Store, limit: i64) -> Result<Vec<AuditEvent>, CoreError> {
    Ok(store.recent_audit(limit).await?)
}
