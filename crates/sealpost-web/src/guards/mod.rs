//! Request guards: extractors whose presence in a handler's signature states what the request
//! was checked for, so handlers do not repeat those checks.
//!
//! - [`ClientIp`]: the client's address (the peer, or X-Forwarded-For from a trusted proxy).
//! - [`SignedIn`]: a signed-in portal reader, active, within validity (forced change allowed).
//! - [`Reader`]: a [`SignedIn`] reader past the forced change.
//! - [`Opened`]: a [`Reader`] plus the parked envelope of `{token}`, opened for them.
//! - [`linked::Linked`]: a [`Reader`] plus the kept copy behind `/m/{id}`, if it is theirs.
//! - [`ResetLink`]: the token of a reset link, whose derived form token [`CsrfForm`] checks.
//! - [`sender::SenderLink`], [`sender::SenderControl`]: a sender's single-use status link and
//!   the short-lived capability following it leaves (one copy, one sender).
//! - [`CsrfForm`]: a form whose `csrf` field matches the session's token (portal and admin).
//! - [`AdminUser`]: an admin session past the forced change and the mandatory TOTP.
//! - [`PendingSecond`]: a sign-in past its first factor, waiting for the second.
//! - [`PageCtx`]: what every page template shows (language, address, CSRF token).
//!
//! The same-origin check is a layer on the state-changing routes ([`csrf::require_same_origin`]).

pub(crate) mod admin;
pub mod client_ip;
pub mod cookies;
pub mod csrf;
pub mod linked;
pub mod next;
mod opened;
pub mod page;
mod pending;
mod reader;
mod reset_link;
pub mod sender;

pub use admin::{AdminListener, AdminUser, admin_network_gate, metrics_access};
pub use client_ip::ClientIp;
pub use csrf::CsrfForm;
pub use opened::Opened;
pub use page::PageCtx;
pub use pending::PendingSecond;
pub use reader::{Reader, ReaderRejection, SignedIn};
pub use reset_link::ResetLink;
