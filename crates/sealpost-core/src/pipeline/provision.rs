//! The provisioning step: each external recipient's account and key, and for an address
//! without an account, whether one may be created at all and the rows that create it. Under
//! `recipients.first_contact = sender` the generated password has to be mailed to someone the
//! bank trusts (the credentials mail); under `mailbox-code` no password exists yet, nobody
//! receives a secret, and the holder later signs in with a code mailed to the account itself.

use std::collections::HashMap;

use sealpost_crypto::{KeyId, RecipientKey};
use sealpost_mime::{Branding, CredentialsInput, CredentialsKind, FirstContact, build_credentials};
use sealpost_store::{SealingRecipient, Store};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::committer::WriteSet;
use crate::settings::CredentialsTo;
use crate::{CoreError, KeyRing, Settings, kind, normalise_address};

use super::MessageContext;

/// A recipient's key, resolved before the write transaction so the transaction only writes.
pub(super) enum RecipientPlan {
    Existing {
        address: String,
        account_id: String,
        language: Option<String>,
        key_id: KeyId,
        key: RecipientKey,
        /// The phrase the recipient chose, shown in the carrier.
        security_phrase: Option<String>,
    },
    New(NewAccount),
}

/// An account this message creates, with its first way in.
pub(super) struct NewAccount {
    pub address: String,
    pub account_id: Uuid,
    pub access: FirstAccess,
    pub key_id: KeyId,
    pub key: RecipientKey,
    pub wrapped: Vec<u8>,
}

/// How the holder of a new account gets in the first time.
pub(super) enum FirstAccess {
    /// A generated password, mailed to `credentials_to` (`recipients.first_contact = sender`).
    Password {
        password: Zeroizing<String>,
        password_hash: String,
        credentials_to: String,
    },
    /// No password: a code to the account's own address (`mailbox-code`).
    MailboxCode,
}

impl NewAccount {
    /// What the carrier tells the recipient about getting in.
    pub fn first_contact(&self) -> FirstContact {
        match self.access {
            FirstAccess::Password { .. } => FirstContact::Sender,
            FirstAccess::MailboxCode => FirstContact::MailboxCode,
        }
    }
}

impl RecipientPlan {
    pub fn address(&self) -> &str {
        match self {
            RecipientPlan::Existing { address, .. } => address,
            RecipientPlan::New(new) => &new.address,
        }
    }

    pub fn key(&self) -> (KeyId, &RecipientKey) {
        match self {
            RecipientPlan::Existing { key_id, key, .. } => (*key_id, key),
            RecipientPlan::New(new) => (new.key_id, &new.key),
        }
    }

    /// The language the recipient reads generated mail in: the account's own choice; for an
    /// account without one (a new account, say) the language the original was written in
    /// (`original`, from its Content-Language, when Sealpost has it); else the organisation's.
    pub fn language<'s>(&'s self, settings: &'s Settings, original: Option<&'s str>) -> &'s str {
        match self {
            RecipientPlan::Existing {
                language: Some(language),
                ..
            } => language,
            _ => original.unwrap_or(&settings.default_language),
        }
    }

    /// The recipient's personal security phrase (a new account has none yet).
    pub fn security_phrase(&self) -> Option<&str> {
        match self {
            RecipientPlan::Existing {
                security_phrase, ..
            } => security_phrase.as_deref(),
            RecipientPlan::New(_) => None,
        }
    }
}

/// Why no account may be created for a recipient of this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoCredentialsRoute {
    /// The envelope sender is outside the internal domains: mailing it a password would hand
    /// the new account to whoever wrote MAIL FROM.
    ExternalSender,
    /// A null sender (a bounce) has nobody to receive the password.
    NullSender,
}

impl NoCredentialsRoute {
    /// The audit trail's short form.
    pub fn code(self) -> &'static str {
        match self {
            NoCredentialsRoute::ExternalSender => "external-sender",
            NoCredentialsRoute::NullSender => "null-sender",
        }
    }

    /// The sentence the sender reads (SMTP reply or bounce), after the status code.
    pub fn explanation(self) -> &'static str {
        match self {
            NoCredentialsRoute::ExternalSender => {
                "no secure-mail account exists for this recipient, and one is only created for mail from an internal sender"
            }
            NoCredentialsRoute::NullSender => {
                "no secure-mail account exists for this recipient, and none is created for mail with a null sender"
            }
        }
    }
}

/// Who receives the password of an account created for mail from `mail_from`: the configured
/// address, or the sender when it is internal; otherwise nobody, and no account is created.
pub(super) fn credentials_route(
    settings: &Settings,
    mail_from: &str,
) -> Result<String, NoCredentialsRoute> {
    match &settings.credentials_to {
        CredentialsTo::Address(address) => Ok(address.clone()),
        CredentialsTo::Sender => {
            let sender = normalise_address(mail_from);
            if sender.is_empty() {
                Err(NoCredentialsRoute::NullSender)
            } else if settings.is_internal(&sender) {
                Ok(sender)
            } else {
                Err(NoCredentialsRoute::ExternalSender)
            }
        }
    }
}

/// An external recipient as found in the store: with its account, or without one.
pub(super) enum Lookup {
    Found(RecipientPlan),
    Unknown(String),
}

/// Resolves every recipient's account and key with one query (a message to ten people must
/// not cost twenty round trips).
pub(super) async fn look_up_recipients(
    store: &Store,
    keys: &KeyRing,
    addresses: &[String],
) -> Result<Vec<Lookup>, CoreError> {
    let mut known: HashMap<String, SealingRecipient> = store
        .sealing_recipients(addresses)
        .await?
        .into_iter()
        .map(|r| (normalise_address(&r.address), r))
        .collect();
    addresses
        .iter()
        .map(|address| match known.remove(address) {
            Some(found) => {
                let (version, wrapped) = found
                    .key
                    .ok_or_else(|| CoreError::MissingKey(found.account_id.clone()))?;
                let (key_id, key) = keys.unwrap_stored(&found.account_id, version, &wrapped)?;
                Ok(Lookup::Found(RecipientPlan::Existing {
                    address: found.address,
                    account_id: found.account_id,
                    language: found.language,
                    key_id,
                    key,
                    security_phrase: found.security_phrase,
                }))
            }
            None => Ok(Lookup::Unknown(address.clone())),
        })
        .collect()
}

/// Generates the key of an account for `address` and, when its password goes to
/// `credentials_to`, the password; under `mailbox-code` (`None`) there is none to generate.
/// Nothing is written yet.
pub(super) async fn plan_new_account(
    keys: &KeyRing,
    address: &str,
    credentials_to: Option<String>,
) -> Result<NewAccount, CoreError> {
    let account_id = Uuid::new_v4();
    let access = match credentials_to {
        Some(credentials_to) => {
            let password = sealpost_crypto::generate_password();
            let password_hash = super::hash_off_executor(password.clone()).await?;
            FirstAccess::Password {
                password,
                password_hash,
                credentials_to,
            }
        }
        None => FirstAccess::MailboxCode,
    };
    let (key_id, key, wrapped) = keys.new_account_key(account_id);
    Ok(NewAccount {
        address: address.to_string(),
        account_id,
        access,
        key_id,
        key,
        wrapped,
    })
}

/// Adds the account row and, for a generated password, its credentials mail to the write set.
/// When the credentials go to the message's own sender, the mail carries the sender's status
/// link for the sealed copy (`envelope_id`, ending at `expires_at`), stored in the same set.
pub(super) fn write_new_account(
    writes: &mut WriteSet,
    message: &MessageContext,
    branding: &Branding,
    new: &NewAccount,
    envelope_id: &str,
    expires_at: Option<i64>,
) {
    let settings = message.settings;
    let sender = normalise_address(message.mail_from);
    let account_id = new.account_id.to_string();
    let created_by = (!sender.is_empty()).then_some(sender.as_str());
    let valid_until = Some(message.now + settings.account_validity_days * 86_400);
    let FirstAccess::Password {
        password,
        password_hash,
        credentials_to,
    } = &new.access
    else {
        // No password and no credentials mail: the empty hash matches no password.
        writes.account_mailbox_code(
            &account_id,
            &new.address,
            created_by,
            message.now,
            valid_until,
            &new.wrapped,
        );
        return;
    };
    writes.account(
        &account_id,
        &new.address,
        password_hash,
        created_by,
        message.now,
        valid_until,
        &new.wrapped,
    );
    // A configured central credentials address gets no control over the sender's message.
    let status_link = (normalise_address(credentials_to) == sender).then(|| {
        crate::sender_control::issue(settings, envelope_id, &sender, message.now, expires_at)
    });
    let until = status_link.as_ref().map(|l| l.until_text());
    let mail = build_credentials(&CredentialsInput {
        kind: CredentialsKind::FirstUse,
        from: &settings.notification_from,
        to: credentials_to,
        recipient: &new.address,
        password,
        public_url: &settings.public_url,
        lang: &settings.default_language,
        branding,
        hostname: message.hostname,
        status_link: status_link
            .as_ref()
            .zip(until.as_deref())
            .map(|(l, until)| (l.url.as_str(), until)),
    });
    if let Some(link) = status_link {
        writes.sender_link(link.row);
    }
    writes.enqueue(
        &Uuid::new_v4().simple().to_string(),
        kind::CREDENTIALS,
        &settings.notification_from,
        std::slice::from_ref(credentials_to),
        mail,
        message.now,
        message.give_up_at,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(credentials_to: &str) -> Settings {
        Settings {
            internal_domains: vec!["bank.example".into()],
            credentials_to: credentials_to.parse().unwrap(),
            ..Settings::default()
        }
    }

    #[test]
    fn credentials_go_only_to_internal_senders() {
        let s = settings("sender");
        assert_eq!(
            credentials_route(&s, "Advisor@Bank.example"),
            Ok("advisor@bank.example".to_string())
        );
        assert_eq!(
            credentials_route(&s, "attacker@evil.example"),
            Err(NoCredentialsRoute::ExternalSender)
        );
        // A look-alike domain is not internal.
        assert_eq!(
            credentials_route(&s, "advisor@bank.example.evil.example"),
            Err(NoCredentialsRoute::ExternalSender)
        );
        assert_eq!(
            credentials_route(&s, ""),
            Err(NoCredentialsRoute::NullSender)
        );
    }

    #[test]
    fn a_configured_address_receives_every_password() {
        let s = settings("helpdesk@bank.example");
        for sender in ["attacker@evil.example", "advisor@bank.example", ""] {
            assert_eq!(
                credentials_route(&s, sender),
                Ok("helpdesk@bank.example".to_string()),
                "{sender:?}"
            );
        }
    }
}
