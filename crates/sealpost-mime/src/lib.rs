//! MIME handling for Sealpost: policy checks on inbound mail, the mails Sealpost
//! writes (carrier, credentials and password reset, reply, bounce), the secure.htm
//! attachment, and preparing a decrypted message for display in the portal.
//!
//! Everything here is a pure function over bytes and strings: no I/O, so the
//! SMTP and web layers can test their behaviour without a network.
//!
//! One job per module, and no module imports one that imports it back: `kind`, `branding`,
//! `util` and `filename` import nothing of the crate's; `outgoing` (what every generated
//! mail shares) builds on `kind` and `util`; the builders (`carrier`, `notice`, `reply`,
//! `bounce`) build on those, `carrier` on `securehtm` and `carrier_facts` (what carrier and secure.htm both say), `reply` on `reply_source` (reading
//! the message a reply answers).

pub mod author;
pub mod bounce;
pub mod branding;
pub mod carrier;
mod carrier_facts;
pub mod carrier_notes;
pub mod display;
pub mod disposition;
pub mod filename;
mod fold;
pub mod inbound;
pub mod kind;
pub mod notice;
mod outgoing;
pub mod receipt;
pub mod reply;
pub mod reply_source;
pub mod securehtm;
pub mod security_mail;
mod util;

#[cfg(test)]
mod snapshots;

pub use author::PortalAuthor;
pub use bounce::{BounceInput, build_bounce};
pub use branding::Branding;
pub use carrier::{CarrierInput, DATAFILE_NAME, build_carrier};
pub use carrier_notes::{CarrierDelivery, CarrierNotes, FirstContact};
pub use display::{
    AttachmentData, AttachmentInfo, DisplayMessage, attachment, part_by_content_id,
    prepare_for_display, prepare_for_display_with, sanitise_html,
};
pub use disposition::attachment_disposition;
pub use filename::{is_invisible_format, safe_filename, strip_invisible_format};
pub use inbound::{
    InboundHeader, OriginalHeaders, TriggerPolicy, is_flagged, original_headers, strip_trigger,
};
pub use kind::MailKind;
pub use notice::{CredentialsInput, CredentialsKind, build_credentials};
pub use receipt::{ReceiptInput, build_receipt};
pub use reply::{ReplyAttachment, ReplyInput, build_reply};
pub use reply_source::{ReplyAddresses, ReplySource, reply_addresses, reply_source, reply_subject};
pub use securehtm::{SecureHtm, extract_payload, render_secure_htm};

/// Errors of this crate. Most functions here cannot fail by design (a mail we
/// generate from our own inputs, a best-effort header summary); only reading a
/// message the portal is about to show can.
#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    /// The bytes are not a parseable RFC 5322 message.
    #[error("the message could not be parsed as MIME")]
    Unparseable,
}
