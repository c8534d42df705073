//! What a carrier says besides the sealed message: facts owned by other features (the ledger,
//! message control, recipient access, delivery profiles), gathered by the pipeline and only
//! rendered here. Every field has a default that renders today's carrier.

/// How the recipient gets in the first time (`recipients.first_contact`), or that they
/// already have an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstContact {
    /// The account exists and has a way in: the carrier says "sign in".
    #[default]
    Existing,
    /// A new account whose first password went to the (internal) sender.
    Sender,
    /// A new account without a password: the recipient asks for a code to their own mailbox.
    MailboxCode,
}

/// How the payload travels (`delivery.profile` for the recipient's domain, or the size guard).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CarrierDelivery {
    /// `secure.htm` attached.
    #[default]
    Attachment,
    /// `message.sealpost` (application/octet-stream) attached, and a link to the upload page.
    Datafile,
    /// The main button opens this message at `url` (`{public_url}/m/{id}`), served from an
    /// encrypted copy kept on the server; `attach` adds `secure.htm` as the durable fallback.
    Link { url: String, attach: bool },
}

/// Facts the carrier shows or carries in its headers.
#[derive(Debug, Clone, Default)]
pub struct CarrierNotes {
    /// The ledger id (hex) of this copy: `X-Sealpost-Message:` and the small print.
    pub ledger_id: Option<String>,
    /// The original's Message-ID (with angle brackets), for `References:` and
    /// `X-Sealpost-Original-Message-Id:`.
    pub original_message_id: Option<String>,
    /// When the message expires (Unix seconds); shown in the carrier and secure.htm.
    pub expires_at: Option<i64>,
    /// The recipient's personal security phrase, shown in the text and HTML parts.
    pub security_phrase: Option<String>,
    pub first_contact: FirstContact,
    pub delivery: CarrierDelivery,
    /// `carrier.auto_open`: secure.htm submits itself on load (off by default).
    pub auto_open: bool,
}
