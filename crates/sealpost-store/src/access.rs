//! How a recipient account was first reached (`recipients.first_contact`) and whether it has a
//! password yet, for the pipeline that creates accounts and the admin's account page. The
//! secrets themselves never leave [`crate::accounts`]: only whether one is set.

use crate::{Result, Store, StoreTx, text};

/// The first-contact mode of an account, and whether its holder has chosen a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAccess {
    /// `sender` or `mailbox-code`, as stored.
    pub first_contact: String,
    pub has_password: bool,
}

impl Store {
    /// Records the first-contact mode of an account just created in `tx`.
    pub async fn set_first_contact(
        &self,
        tx: &mut StoreTx,
        account_id: &str,
        mode: &str,
    ) -> Result<()> {
        sqlx::query(&self.sql("UPDATE accounts SET first_contact = ? WHERE id = ?"))
            .bind(mode)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The first-contact mode of an account and whether a password is set (an account created
    /// under `mailbox-code` has an empty hash until its holder chooses one).
    pub async fn account_access(&self, account_id: &str) -> Result<Option<AccountAccess>> {
        let row = sqlx::query(
            &self.sql("SELECT first_contact, password_hash FROM accounts WHERE id = ?"),
        )
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| -> Result<AccountAccess> {
            let hash = text(&r, "password_hash")?;
            Ok(AccountAccess {
                first_contact: text(&r, "first_contact")?,
                has_password: !hash.is_empty(),
            })
        })
        .transpose()
    }
}
