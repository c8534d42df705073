//! MIME handling for Sealpost: policy checks on inbound mail, the mails Sealpost
//! writes (carrier, credentials, bounce), the secure.htm attachment, and
//! preparing a decrypted message for display in the portal.
//!
//! Everything here is a pure function over bytes and strings: no I/O, so the
//! SMTP and web layers can test their behaviour without a network.

pub mod display;
pub mod generate;
pub mod inbound;
pub mod securehtm;
pub mod security_mail;
mod util;

pub use display::{
    AttachmentData, AttachmentInfo, DisplayMessage, attachment, part_by_content_id,
    prepare_for_display, prepare_for_display_with, safe_filename, sanitise_html,
};
pub use generate::{
    BounceInput, Branding, CarrierInput, CredentialsInput, CredentialsKind, build_bounce,
    build_carrier, build_credentials,
};
pub use inbound::{OriginalHeaders, TriggerPolicy, is_flagged, original_headers, strip_trigger};
pub use securehtm::{extract_payload, render_secure_htm};

/// Errors of this crate. Most functions here cannot fail by design (a mail we
/// generate from our own inputs, a best-effort header summary); only reading a
/// message the portal is about to show can.
#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    /// The bytes are not a parseable RFC 5322 message.
    #[error("the message could not be parsed as MIME")]
    Unparseable,
}
