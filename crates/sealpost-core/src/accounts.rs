//! Recipient login and account lifecycle rules shared by the portal, the admin UI and the CLI.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sealpost_store::{Account, AccountStatus, Store};
use zeroize::Zeroizing;

use sealpost_mime::security_mail::NoticeEvent;
use sealpost_store::{Principal, Reservation};

use crate::recovery::{self, check_code, consume_code};
use crate::settings::RecoveryPolicy;
use crate::{CoreError, KeyRing, Settings, audit, lockout, normalise_address, unix_now};

#[derive(Debug)]
pub enum LoginOutcome {
    Success(Box<Account>),
    /// Wrong address or password, or a locked account: one answer for all, so nobody can
    /// learn which addresses have accounts.
    Refused,
    Disabled,
    Expired,
    /// The client address used up its failures for this lockout window; nothing was checked
    /// (the same answer whether or not the address has an account).
    Throttled,
}

/// Checks a login. Costs one Argon2 verification whether or not the address exists or is
/// locked. The attempt is reserved on the client address and then on the account *before*
/// the password is verified, so parallel guesses cannot exceed either limit. Every decision
/// is audited and counted.
pub async fn login(
    store: &Store,
    settings: &Settings,
    address: &str,
    password: &str,
    ip: &str,
) -> Result<LoginOutcome, CoreError> {
    let address = normalise_address(address);
    let password = Zeroizing::new(password.to_string());
    let now = unix_now();
    if !lockout::reserve_source(store, settings, ip, now).await? {
        return Ok(LoginOutcome::Throttled);
    }
    let Some(account) = store.account_by_address(&address).await? else {
        dummy_verify(password).await?;
        anonymous_login_failed(store, None, ip).await;
        return Ok(LoginOutcome::Refused);
    };
    let reservation = store
        .reserve_login_attempt(
            Principal::Account,
            &account.id,
            lockout::lock_policy(settings),
            now,
        )
        .await?;
    let Reservation::Proceed { locks } = reservation else {
        dummy_verify(password).await?;
        login_failed(store, &account, Some("locked"), ip).await;
        return Ok(LoginOutcome::Refused);
    };
    let ok = verify_against(password, account.password_hash.clone()).await?;
    if !ok {
        login_failed(store, &account, None, ip).await;
        if locks {
            crate::metrics::record(store, crate::metrics::LOCKOUTS, 1);
            audit::account_event(store, &account, audit::PORTAL_LOCKOUT, None, Some(ip)).await;
        }
        return Ok(LoginOutcome::Refused);
    }
    store
        .release_login_attempt(Principal::Account, &account.id)
        .await?;
    lockout::release_source(store, ip).await?;
    if account.status == AccountStatus::Disabled {
        login_failed(store, &account, Some("disabled"), ip).await;
        return Ok(LoginOutcome::Disabled);
    }
    if account.valid_until.is_some_and(|t| t < now) {
        login_failed(store, &account, Some("expired"), ip).await;
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
    crate::metrics::record(store, crate::metrics::LOGINS, 1);
    // The sign-in itself is audited when its session starts (`sessions::start`).
    Ok(LoginOutcome::Success(Box::new(account)))
}

/// A refused sign-in of `account` by any method (password, code, second factor, passkey):
/// counted for the dashboard and audited with why (`why` names the method or the reason,
/// never a submitted secret).
pub(crate) async fn login_failed(store: &Store, account: &Account, why: Option<&str>, ip: &str) {
    crate::metrics::record(store, crate::metrics::LOGIN_FAILED, 1);
    audit::account_event(store, account, audit::PORTAL_LOGIN_FAILED, why, Some(ip)).await;
}

/// A refused sign-in that named no account (unknown address or credential): counted and
/// audited anonymously, so it looks like any other failure.
pub(crate) async fn anonymous_login_failed(store: &Store, method: Option<&str>, ip: &str) {
    crate::metrics::record(store, crate::metrics::LOGIN_FAILED, 1);
    audit::write(
        store,
        audit::ANONYMOUS,
        audit::PORTAL_LOGIN_FAILED,
        None,
        method,
        Some(ip),
    )
    .await;
}

/// Whether the holder of `account` may still recover it through a one-time code mailed to
/// the account's own address. A sign-in lock, however long it has grown, never closes that
/// way in (whoever locked the account cannot read the mailbox); only a disabled account is
/// closed. The recovery flow asks this instead of looking at the lock.
pub fn may_recover_while_locked(account: &Account) -> bool {
    account.status == AccountStatus::Active
}

/// Re-authentication before a sign-in or recovery factor changes: the current password of a
/// signed-in account. The attempt is reserved like a sign-in (so a borrowed session cannot
/// guess it without locking the account), a locked account is refused like at sign-in, and a
/// wrong password is audited and counted as a failed sign-in.
pub async fn reauthenticate(
    store: &Store,
    settings: &Settings,
    account: &Account,
    password: &str,
    ip: &str,
) -> Result<bool, CoreError> {
    let password = Zeroizing::new(password.to_string());
    let reservation = store
        .reserve_login_attempt(
            Principal::Account,
            &account.id,
            lockout::lock_policy(settings),
            unix_now(),
        )
        .await?;
    let Reservation::Proceed { locks } = reservation else {
        dummy_verify(password).await?;
        login_failed(store, account, Some("locked"), ip).await;
        return Ok(false);
    };
    // The hash as it is now, not as the session saw it at sign-in.
    let current = store
        .account_by_id(&account.id)
        .await?
        .unwrap_or_else(|| account.clone());
    let ok = verify_against(password, current.password_hash.clone()).await?;
    if ok {
        store
            .release_login_attempt(Principal::Account, &account.id)
            .await?;
    } else {
        login_failed(store, &current, Some("reauthentication"), ip).await;
        if locks {
            crate::metrics::record(store, crate::metrics::LOCKOUTS, 1);
            audit::account_event(store, &current, audit::PORTAL_LOCKOUT, None, Some(ip)).await;
        }
    }
    Ok(ok)
}

/// Verifies a password of a known account (e.g. the current one before a change).
pub async fn verify_password(account: &Account, password: &str) -> Result<bool, CoreError> {
    verify_against(
        Zeroizing::new(password.to_string()),
        account.password_hash.clone(),
    )
    .await
}

/// One Argon2 verification of `password` against `hash`. An account created under
/// `mailbox-code` has no password yet (an empty hash): it matches nothing, after the same
/// work, so a sign-in attempt cannot tell such accounts apart.
async fn verify_against(password: Zeroizing<String>, hash: String) -> Result<bool, CoreError> {
    if hash.is_empty() {
        dummy_verify(password).await?;
        return Ok(false);
    }
    crate::hashing::run(move || sealpost_crypto::verify_secret(&password, &hash)).await
}

/// Sets a password the recipient chose (already checked against the policy) and ends every
/// other session of the account, so whoever knew the old password is signed out everywhere.
pub async fn change_password(
    store: &Store,
    account: &Account,
    new_password: &str,
    keep_session: Option<&str>,
) -> Result<(), CoreError> {
    let hash = crate::pipeline::hash_off_executor(Zeroizing::new(new_password.to_string())).await?;
    store.set_password(&account.id, &hash, false).await?;
    store.delete_sessions_of(&account.id, keep_session).await?;
    audit::account_event(store, account, "portal.password_changed", None, None).await;
    Ok(())
}

/// The standard secret questions (message keys `portal-q-<id>`). A chosen standard question
/// is stored as `std:<id>` so it shows in the reader's language.
pub const STANDARD_QUESTIONS: &[&str] = &[
    "pet", "city", "school", "street", "teacher", "book", "friend", "parents",
];

const STD_PREFIX: &str = "std:";
/// A recipient's own question is at most this long (characters).
pub const MAX_QUESTION_CHARS: usize = 200;
/// Answers are hashed, so length is only bounded to spare the hasher.
pub const MAX_ANSWER_CHARS: usize = 200;

/// A question as stored, from either a standard id or the recipient's own text (used only
/// when `allow_own`, see [`Settings::allow_own_questions`]).
pub fn stored_question(
    standard: Option<&str>,
    own: Option<&str>,
    allow_own: bool,
) -> Option<String> {
    let own = own.map(str::trim).filter(|q| allow_own && !q.is_empty());
    if let Some(own) = own {
        let own: String = own
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_QUESTION_CHARS)
            .collect();
        // A typed "std:…" would otherwise be shown as a standard question.
        return Some(
            own.strip_prefix(STD_PREFIX)
                .unwrap_or(&own)
                .trim()
                .to_string(),
        )
        .filter(|q| !q.is_empty());
    }
    let id = standard?.trim();
    STANDARD_QUESTIONS
        .contains(&id)
        .then(|| format!("{STD_PREFIX}{id}"))
}

/// Whether a stored question is one of the standard list.
pub fn is_standard_question(stored: &str) -> bool {
    stored
        .strip_prefix(STD_PREFIX)
        .is_some_and(|id| STANDARD_QUESTIONS.contains(&id))
}

/// The account's question if it may be used for a reset: own questions only while an
/// administrator allows them, since showing one on the forgotten-password page proves the
/// account exists. Without one the account is asked a decoy and cannot reset.
fn recovery_question<'a>(account: &'a Account, settings: &Settings) -> Option<&'a str> {
    let q = account.secret_question.as_deref()?;
    account.secret_answer_hash.as_ref()?;
    (settings.allow_own_questions || is_standard_question(q)).then_some(q)
}

/// Whether the account must (again) choose a secret question: it has none, or an own one
/// that no longer counts because own questions were switched off.
pub fn needs_new_question(account: &Account, settings: &Settings) -> bool {
    recovery_question(account, settings).is_none()
}

/// The text of a stored question in `lang`.
pub fn question_text(stored: &str, lang: &str) -> String {
    match stored.strip_prefix(STD_PREFIX) {
        Some(id) if STANDARD_QUESTIONS.contains(&id) => {
            sealpost_i18n::t(lang, &format!("portal-q-{id}"))
        }
        _ => stored.to_string(),
    }
}

/// Sets the secret question and the (normalised, hashed) answer. A change from the profile
/// also mails the holder a notice; the first choice at the first sign-in does not.
pub async fn set_secret_question(
    store: &Store,
    account: &Account,
    question: &str,
    answer: &str,
) -> Result<(), CoreError> {
    let normalised = Zeroizing::new(sealpost_crypto::normalise_answer(answer));
    let hash = crate::pipeline::hash_off_executor(normalised).await?;
    store
        .set_secret_question(&account.id, question, &hash)
        .await?;
    audit::account_event(store, account, "portal.secret_question_set", None, None).await;
    Ok(())
}

/// The question an unknown address (or an account without a question) is asked: always the
/// same for one address, unpredictable without the master key, so the question page cannot
/// tell who has an account.
pub fn decoy_question(keys: &KeyRing, address: &str) -> String {
    let id = STANDARD_QUESTIONS[decoy_index(keys, address) % STANDARD_QUESTIONS.len()];
    format!("{STD_PREFIX}{id}")
}

fn decoy_index(keys: &KeyRing, address: &str) -> usize {
    let subkey = keys.master().derive_subkey("decoy-question");
    let mut keyed = Zeroizing::new(sealpost_crypto::hash_token(&hex::encode(&subkey[..])));
    keyed.push('\n');
    keyed.push_str(&normalise_address(address));
    // SHA-256 over (secret || address): a keyed hash is all we need to pick an index.
    let digest = sealpost_crypto::hash_token(&keyed);
    usize::from_str_radix(&digest[..8], 16).unwrap_or(0)
}

/// In-process attempt counts for addresses without an account. Known accounts count in the
/// database; unknown ones must look the same (blocked after as many wrong answers), but get
/// no row, so this node remembers them. Bounded: when full it forgets everything, which only
/// ever errs towards letting a non-account try again.
fn unknown_attempts() -> &'static Mutex<HashMap<String, i64>> {
    static MAP: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

const UNKNOWN_ATTEMPTS_CAP: usize = 50_000;

fn unknown_count(key: &str, increment: bool) -> i64 {
    let mut map = match unknown_attempts().lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if increment {
        if map.len() >= UNKNOWN_ATTEMPTS_CAP && !map.contains_key(key) {
            map.clear();
        }
        let n = map.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    } else {
        map.get(key).copied().unwrap_or(0)
    }
}

/// The first step of a forgotten-password reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetStart {
    /// Ask this (stored-form) question; see [`question_text`].
    Ask(String),
    /// Too many wrong answers: only an administrator can help.
    Blocked,
}

/// The question of a forgotten-password reset, to show again (after a wrong answer).
pub async fn reset_question(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    address: &str,
) -> Result<ResetStart, CoreError> {
    question_for(store, keys, settings, address, false).await
}

/// The first question step of a forgotten-password reset. Under `answer+code` it also mails a
/// code to an account that can be reset, in the background, so the page takes the same time
/// for every address.
pub async fn begin_reset(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    address: &str,
) -> Result<ResetStart, CoreError> {
    let mail_code = settings.recovery_policy == RecoveryPolicy::AnswerAndCode;
    question_for(store, keys, settings, address, mail_code).await
}

async fn question_for(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    address: &str,
    mail_code: bool,
) -> Result<ResetStart, CoreError> {
    let address = normalise_address(address);
    let max = settings.secret_answer_max_attempts.max(1);
    let account = store.account_by_address(&address).await?;
    let decoy_key = sealpost_crypto::hash_token(&address);
    Ok(match account {
        Some(a) if a.failed_answers >= max => ResetStart::Blocked,
        Some(a) => match recovery_question(&a, settings) {
            Some(q) if a.status == AccountStatus::Active => {
                let q = q.to_string();
                if mail_code {
                    recovery::send_code_detached(store, keys, settings, a);
                }
                ResetStart::Ask(q)
            }
            _ => ResetStart::Ask(decoy_question(keys, &address)),
        },
        None if unknown_count(&decoy_key, false) >= max => ResetStart::Blocked,
        None => ResetStart::Ask(decoy_question(keys, &address)),
    })
}

/// The second step of a forgotten-password reset.
pub enum ResetOutcome {
    /// The answer was right: this new password replaces the old one (change forced at the next
    /// login) and every session of the account has ended.
    NewPassword(Zeroizing<String>),
    Wrong,
    Blocked,
    /// The client address used up its failures for this lockout window; nothing was checked.
    Throttled,
}

/// Checks an answer (and, under `answer+code`, the mailed code: both must be right). Every
/// address costs one Argon2 verification, whether it has an account, a question, or neither.
/// An answer attempt is counted *before* checking, so parallel guesses cannot exceed the
/// limit; under `answer+code` only an answer that comes with the right code is counted (a
/// wrong code uses up one of that code's own tries), so a stranger cannot block the reset.
pub async fn reset_with_answer(
    store: &Store,
    keys: &KeyRing,
    settings: &Settings,
    address: &str,
    code: &str,
    answer: &str,
    ip: &str,
) -> Result<ResetOutcome, CoreError> {
    let address = normalise_address(address);
    let max = settings.secret_answer_max_attempts.max(1);
    let answer = Zeroizing::new(sealpost_crypto::normalise_answer(answer));
    if !lockout::reserve_source(store, settings, ip, unix_now()).await? {
        return Ok(ResetOutcome::Throttled);
    }
    let account = store.account_by_address(&address).await?;
    let with_code = settings.recovery_policy == RecoveryPolicy::AnswerAndCode;
    let Some(account) = account else {
        // Under answer+code an unknown address answers like a known one whose code is wrong:
        // "wrong", never "blocked" (see below), so the answers tell nobody which exists.
        let count = if with_code {
            0
        } else {
            unknown_count(&sealpost_crypto::hash_token(&address), true)
        };
        dummy_verify(answer).await?;
        crate::metrics::record(store, crate::metrics::ANSWER_FAILED, 1);
        audit::write(
            store,
            audit::ANONYMOUS,
            audit::SECRET_ANSWER_WRONG,
            None,
            None,
            Some(ip),
        )
        .await;
        return Ok(if count >= max {
            ResetOutcome::Blocked
        } else {
            ResetOutcome::Wrong
        });
    };
    // Under answer+code the mailed code is checked first, and only a right one lets the
    // answer spend one of the account's attempts: whoever cannot read the mailbox can neither
    // guess the answer nor use up the holder's attempts and so block the self-service reset
    // (each code has its own few tries and few codes are sent per hour).
    let code = if with_code {
        match check_code(store, keys, &account, code).await? {
            Some(matched) => Some(matched),
            None => {
                dummy_verify(answer).await?;
                crate::metrics::record(store, crate::metrics::ANSWER_FAILED, 1);
                audit::account_event(
                    store,
                    &account,
                    audit::SECRET_ANSWER_WRONG,
                    Some("code"),
                    Some(ip),
                )
                .await;
                return Ok(ResetOutcome::Wrong);
            }
        }
    } else {
        None
    };
    // One conditional update reserves the attempt, so parallel answers cannot exceed `max`.
    let Some(count) = store.reserve_answer_attempt(&account.id, max).await? else {
        dummy_verify(answer).await?;
        return Ok(ResetOutcome::Blocked);
    };
    let hash = match (
        recovery_question(&account, settings),
        &account.secret_answer_hash,
    ) {
        (Some(_), Some(h)) if account.status == AccountStatus::Active => Some(h.clone()),
        _ => None,
    };
    let ok = match hash {
        Some(hash) => {
            crate::hashing::run(move || sealpost_crypto::verify_secret(&answer, &hash)).await?
        }
        None => {
            dummy_verify(answer).await?;
            false
        }
    };
    let ok = ok
        && match code {
            None => true,
            // Both factors are right; the code counts only for whoever uses it up first.
            Some(matched) => consume_code(store, &account, matched).await?,
        };
    if !ok {
        crate::metrics::record(store, crate::metrics::ANSWER_FAILED, 1);
        audit::account_event(store, &account, audit::SECRET_ANSWER_WRONG, None, Some(ip)).await;
        if count >= max {
            audit::account_event(
                store,
                &account,
                audit::SECRET_ANSWER_BLOCKED,
                None,
                Some(ip),
            )
            .await;
            return Ok(ResetOutcome::Blocked);
        }
        return Ok(ResetOutcome::Wrong);
    }
    store.clear_answer_failures(&account.id).await?;
    lockout::release_source(store, ip).await?;
    let password = sealpost_crypto::generate_password();
    let hash = crate::pipeline::hash_off_executor(password.clone()).await?;
    store.set_password(&account.id, &hash, true).await?;
    store.delete_sessions_of(&account.id, None).await?;
    crate::metrics::record(store, crate::metrics::PASSWORD_RESETS, 1);
    audit::account_event(
        store,
        &account,
        audit::PASSWORD_RESET_BY_ANSWER,
        None,
        Some(ip),
    )
    .await;
    recovery::notify(
        store,
        settings,
        &account,
        NoticeEvent::ResetByAnswer,
        Some(ip),
    )
    .await;
    Ok(ResetOutcome::NewPassword(password))
}

async fn dummy_verify(secret: Zeroizing<String>) -> Result<(), CoreError> {
    crate::hashing::run(move || sealpost_crypto::dummy_verify(&secret)).await
}

/// Sets the account's language (mails and portal); only languages with a catalogue.
pub async fn set_language(
    store: &Store,
    account: &Account,
    language: &str,
) -> Result<bool, CoreError> {
    let Some(lang) = sealpost_i18n::resolve(language) else {
        return Ok(false);
    };
    store.set_language(&account.id, lang).await?;
    Ok(true)
}

/// Whether this account must replace its (generated) password, or choose its first one (an
/// account created under `mailbox-code`, signed in with a code), before doing anything else.
pub fn must_change_password(account: &Account, settings: &Settings) -> bool {
    account.password_hash.is_empty()
        || (settings.force_password_change && account.must_change_password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_account() -> Account {
        Account {
            id: "acc".into(),
            address: "a@example.com".into(),
            password_hash: String::new(),
            status: AccountStatus::Active,
            must_change_password: false,
            language: None,
            secret_question: None,
            secret_answer_hash: None,
            failed_logins: 0,
            failed_answers: 0,
            locked_until: None,
            created_at: 0,
            created_by: None,
            last_login_at: None,
            last_login_ip: None,
            prev_login_at: None,
            prev_login_ip: None,
            valid_until: None,
        }
    }

    #[test]
    fn an_account_without_a_password_must_choose_one_whatever_the_policy() {
        let settings = Settings {
            force_password_change: false,
            ..Settings::default()
        };
        let mut account = Account {
            password_hash: "$argon2id$x".into(),
            must_change_password: true,
            ..test_account()
        };
        assert!(!must_change_password(&account, &settings));
        account.password_hash.clear();
        assert!(must_change_password(&account, &settings));
    }

    #[tokio::test]
    async fn an_empty_hash_matches_no_password() {
        let account = test_account();
        assert!(!verify_password(&account, "").await.unwrap());
        assert!(!verify_password(&account, "anything").await.unwrap());
    }

    #[test]
    fn questions_are_stored_by_id_or_text() {
        assert_eq!(
            stored_question(Some("pet"), None, true).as_deref(),
            Some("std:pet")
        );
        assert_eq!(stored_question(Some("nope"), None, true), None);
        assert_eq!(
            stored_question(Some("pet"), Some("  My own?  "), true).as_deref(),
            Some("My own?")
        );
        assert_eq!(
            stored_question(None, Some("std:pet"), true).as_deref(),
            Some("pet")
        );
        assert_eq!(stored_question(None, Some("   "), true), None);
        assert!(is_standard_question("std:pet"));
        assert!(!is_standard_question("My own?"));
        assert_eq!(
            question_text("std:pet", "de"),
            "Wie hieß Ihr erstes Haustier?"
        );
        assert_eq!(question_text("My own?", "de"), "My own?");
    }

    #[test]
    fn own_questions_only_when_allowed() {
        assert_eq!(
            stored_question(Some("pet"), Some("My own?"), false).as_deref(),
            Some("std:pet"),
            "the own text is ignored"
        );
        assert_eq!(stored_question(None, Some("My own?"), false), None);
        let mut account = Account {
            secret_question: Some("My own?".into()),
            secret_answer_hash: Some("$argon2id$x".into()),
            ..test_account()
        };
        let mut settings = Settings::default();
        assert!(
            needs_new_question(&account, &settings),
            "own questions are off by default"
        );
        settings.allow_own_questions = true;
        assert!(!needs_new_question(&account, &settings));
        account.secret_question = Some("std:pet".into());
        settings.allow_own_questions = false;
        assert!(!needs_new_question(&account, &settings));
    }

    #[test]
    fn decoys_are_stable_per_address_and_keyed() {
        let keys = KeyRing::new(sealpost_crypto::MasterKey::generate());
        let a = decoy_question(&keys, "Someone@Example.com");
        assert_eq!(a, decoy_question(&keys, "someone@example.com"));
        assert!(a.starts_with("std:"));
        let distinct: std::collections::HashSet<String> = (0..64)
            .map(|i| decoy_question(&keys, &format!("user{i}@example.com")))
            .collect();
        assert!(distinct.len() > 3, "decoys spread over the list");
    }
}
