//! The second channel of account recovery: one-time codes mailed to the account's own address
//! for a self-service reset, one-time links for an administrator's reset, and the notices an
//! account holder gets after every reset or change of a sign-in or recovery factor. All these
//! mails leave through the outbound queue like every generated mail.

use rand::Rng;
use sealpost_mime::security_mail::{
    NoticeEvent, SecurityMailBase, build_code_mail, build_notice, build_reset_link_mail,
    build_sign_in_code_mail,
};
use sealpost_store::{Account, AccountStatus, NewQueuedMail, Store};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{CoreError, KeyRing, Settings, kind, unix_now};

/// A mailed code is valid this long (seconds)...
pub const CODE_VALID_SECS: i64 = 15 * 60;
/// ...for this many tries.
pub const CODE_MAX_TRIES: i64 = 5;
/// At most [`CODES_PER_WINDOW`] codes per account in this many seconds, so the portal cannot
/// be used to flood a mailbox.
pub const CODE_WINDOW_SECS: i64 = 3600;
pub const CODES_PER_WINDOW: i64 = 5;
/// An administrator's reset link is valid this long (seconds).
pub const LINK_VALID_SECS: i64 = 24 * 3600;

/// "2026-11-26 10:00 UTC"; neither the portal nor the mails know the reader's time zone.
pub fn utc_text(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => String::new(),
    }
}

/// Queues one generated mail from the notification address to `to`.
pub(crate) async fn queue_mail(
    store: &Store,
    settings: &Settings,
    mail_kind: &'static str,
    to: &str,
    data: &[u8],
) -> Result<(), CoreError> {
    let now = unix_now();
    let to = [to.to_string()];
    let mut tx = store.begin().await?;
    store
        .enqueue(
            &mut tx,
            &NewQueuedMail {
                id: &Uuid::new_v4().simple().to_string(),
                kind: mail_kind,
                mail_from: &settings.notification_from,
                rcpt_to: &to,
                data,
                now,
                give_up_at: now + settings.retry_give_up_secs,
            },
        )
        .await?;
    sealpost_store::commit(tx).await?;
    Ok(())
}

/// Builds a mail to the account's own address (in its language) and queues it.
async fn mail_holder(
    store: &Store,
    settings: &Settings,
    account: &Account,
    mail_kind: &'static str,
    build: impl FnOnce(&SecurityMailBase) -> Vec<u8>,
) -> Result<(), CoreError> {
    let branding = settings.branding();
    let lang = account
        .language
        .as_deref()
        .unwrap_or(&settings.default_language);
    let mail = build(&SecurityMailBase {
        from: &settings.notification_from,
        to: &account.address,
        lang,
        branding: &branding,
        hostname: &settings.hostname,
    });
    if mail.is_empty() {
        return Err(CoreError::MailBuild);
    }
    queue_mail(store, settings, mail_kind, &account.address, &mail).await
}

/// What a mailed code is for. Both kinds share the account's one code slot (and so its send
/// window: mixing the kinds cannot flood a mailbox), but the hash is keyed per purpose, so a
/// code mailed for a reset never signs anyone in and a sign-in code never resets a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// A self-service reset: the code plus the secret answer.
    Recovery,
    /// Signing in (`mailbox-code` first contact, or "e-mail me a code").
    SignIn,
}

impl CodePurpose {
    fn subkey_label(self) -> &'static str {
        match self {
            CodePurpose::Recovery => "recovery-code",
            CodePurpose::SignIn => "sign-in-code",
        }
    }
}

/// A keyed hash of a code for `purpose`: six digits are few, so a plain hash in a stolen
/// database would be reversed at once; without the master key it cannot be. Also computed for
/// unknown addresses, so that a request for one costs the same work as for a known one.
pub(crate) fn purpose_code_hash(
    keys: &KeyRing,
    purpose: CodePurpose,
    account_id: &str,
    code: &str,
) -> String {
    let subkey = keys.master().derive_subkey(purpose.subkey_label());
    let mut input = Zeroizing::new(hex::encode(&subkey[..]));
    input.push('\n');
    input.push_str(account_id);
    input.push('\n');
    input.push_str(code.trim());
    sealpost_crypto::hash_token(&input)
}

/// Mails a new six-digit recovery code to the account, unless the rate limit says enough
/// were sent.
pub async fn send_code(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: &Account,
) -> Result<(), CoreError> {
    send_code_for(store, keys, settings, account, CodePurpose::Recovery).await
}

/// Mails a new six-digit code for `purpose` to the account (replacing any earlier code of
/// either purpose), unless the per-address rate limit says enough were sent.
pub async fn send_code_for(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: &Account,
    purpose: CodePurpose,
) -> Result<(), CoreError> {
    let code = Zeroizing::new(format!(
        "{:06}",
        rand::rngs::OsRng.gen_range(0..1_000_000u32)
    ));
    let now = unix_now();
    let issued = store
        .issue_recovery_code(
            &account.id,
            &purpose_code_hash(keys, purpose, &account.id, &code),
            now,
            now + CODE_VALID_SECS,
            CODE_WINDOW_SECS,
            CODES_PER_WINDOW,
        )
        .await?;
    if !issued {
        crate::audit::account_event(store, account, "portal.recovery_code_limited", None, None)
            .await;
        return Ok(());
    }
    mail_holder(store, settings, account, kind::CODE, |base| match purpose {
        CodePurpose::Recovery => build_code_mail(base, &code, CODE_VALID_SECS / 60),
        CodePurpose::SignIn => build_sign_in_code_mail(base, &code, CODE_VALID_SECS / 60),
    })
    .await
}

/// Sends a recovery code in the background: the page that triggers it must take the same
/// time whether or not the address has an account. Failures are logged, never shown.
pub fn send_code_detached(store: &Store, keys: &KeyRing, settings: &Settings, account: Account) {
    send_code_detached_for(store, keys, settings, account, CodePurpose::Recovery);
}

/// [`send_code_detached`] for a purpose.
pub fn send_code_detached_for(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    account: Account,
    purpose: CodePurpose,
) {
    let (store, keys, settings) = (store.clone(), keys.clone(), settings.clone());
    tokio::spawn(async move {
        if let Err(e) = send_code_for(&store, &keys, &settings, &account, purpose).await {
            // `e` is a store or mail-building error: it never holds the code (only its keyed hash
            // reaches the store), so it can be logged.
            tracing::warn!(account = %account.id, error = %e, "recovery code not sent");
        }
    });
}

/// A checked code: the stored hash it matched, to use it up once the answer is right too.
pub struct MatchedCode(String);

/// Uses up one try of the account's live recovery code; Some when `code` is it.
pub async fn check_code(
    store: &Store,
    keys: &KeyRing,
    account: &Account,
    code: &str,
) -> Result<Option<MatchedCode>, CoreError> {
    check_code_for(store, keys, account, code, CodePurpose::Recovery).await
}

/// Uses up one try of the account's live code; Some when `code` is it and was mailed for
/// `purpose`.
pub async fn check_code_for(
    store: &Store,
    keys: &KeyRing,
    account: &Account,
    code: &str,
    purpose: CodePurpose,
) -> Result<Option<MatchedCode>, CoreError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 16 {
        return Ok(None);
    }
    let Some(stored) = store
        .try_recovery_code(&account.id, unix_now(), CODE_MAX_TRIES)
        .await?
    else {
        return Ok(None);
    };
    let given = purpose_code_hash(keys, purpose, &account.id, code);
    Ok(sealpost_crypto::ct_eq(stored.as_bytes(), given.as_bytes()).then_some(MatchedCode(stored)))
}

/// Uses the code up; false when a parallel request used it first.
pub async fn consume_code(
    store: &Store,
    account: &Account,
    code: MatchedCode,
) -> Result<bool, CoreError> {
    Ok(store.consume_recovery_code(&account.id, &code.0).await?)
}

/// Mails the holder a notice of `event` (now, from `client`). Best effort: the change it
/// reports has happened, so a failure to queue is logged, not returned.
pub async fn notify(
    store: &Store,
    settings: &Settings,
    account: &Account,
    event: NoticeEvent,
    client: Option<&str>,
) {
    let when = utc_text(unix_now());
    let queued = mail_holder(store, settings, account, kind::NOTICE, |base| {
        build_notice(base, event, &when, client)
    })
    .await;
    if let Err(e) = queued {
        tracing::warn!(error = %e, "security notice not queued");
    }
}

/// Creates a one-time link for the account and mails it to the account's address.
pub async fn send_reset_link(
    store: &Store,
    settings: &Settings,
    account: &Account,
) -> Result<(), CoreError> {
    let (token, hash) = sealpost_crypto::new_token();
    let token = Zeroizing::new(token);
    let now = unix_now();
    store
        .insert_reset_link(&hash, &account.id, now, now + LINK_VALID_SECS)
        .await?;
    let link = Zeroizing::new(format!(
        "{}/reset/{}",
        settings.public_url.trim_end_matches('/'),
        token.as_str()
    ));
    mail_holder(store, settings, account, kind::PASSWORD_RESET, |base| {
        build_reset_link_mail(base, &link, LINK_VALID_SECS / 3600)
    })
    .await
}

/// The active account a live reset link belongs to (the link stays usable).
pub async fn reset_link_account(store: &Store, token: &str) -> Result<Option<Account>, CoreError> {
    let hash = sealpost_crypto::hash_token(token);
    let Some(id) = store.reset_link_account(&hash, unix_now()).await? else {
        return Ok(None);
    };
    Ok(store
        .account_by_id(&id)
        .await?
        .filter(|a| a.status == AccountStatus::Active))
}

/// Sets the password `new_password` (already checked against the policy) through a reset link,
/// using the link up. False when the link is unknown, expired or already used.
pub async fn set_password_by_link(
    store: &Store,
    settings: &Settings,
    token: &str,
    new_password: &str,
    client: &str,
) -> Result<bool, CoreError> {
    let hash = sealpost_crypto::hash_token(token);
    let Some(id) = store.consume_reset_link(&hash, unix_now()).await? else {
        return Ok(false);
    };
    let Some(account) = store
        .account_by_id(&id)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
    else {
        return Ok(false);
    };
    let password_hash =
        crate::pipeline::hash_off_executor(Zeroizing::new(new_password.to_string())).await?;
    store
        .set_password(&account.id, &password_hash, false)
        .await?;
    store.delete_sessions_of(&account.id, None).await?;
    crate::audit::account_event(
        store,
        &account,
        "portal.password_set_by_link",
        None,
        Some(client),
    )
    .await;
    notify(
        store,
        settings,
        &account,
        NoticeEvent::ResetByLink,
        Some(client),
    )
    .await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_text(1_795_687_200), "2026-11-26 10:00 UTC");
    }

    fn code_hash(keys: &KeyRing, account_id: &str, code: &str) -> String {
        purpose_code_hash(keys, CodePurpose::Recovery, account_id, code)
    }

    #[test]
    fn code_hashes_are_keyed_and_per_account() {
        let a = KeyRing::new(sealpost_crypto::MasterKey::generate());
        let b = KeyRing::new(sealpost_crypto::MasterKey::generate());
        let h = code_hash(&a, "acc", "123456");
        assert_eq!(h, code_hash(&a, "acc", " 123456 "));
        assert_ne!(h, code_hash(&b, "acc", "123456"), "needs the master key");
        assert_ne!(h, code_hash(&a, "other", "123456"));
        assert_ne!(h, sealpost_crypto::hash_token("123456"));
        assert_ne!(
            h,
            purpose_code_hash(&a, CodePurpose::SignIn, "acc", "123456"),
            "a reset code never signs in, nor the other way round"
        );
    }
}
