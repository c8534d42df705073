//! The session cookies (portal reader, admin) and the sender's status capability: names, reading, setting and clearing.
//! `__Host-` cookies: Secure, no Domain, Path=/, so no other host can set or read them.

use axum::http::{HeaderMap, header};

pub const PORTAL: &str = "__Host-sealpost";
pub const ADMIN: &str = "__Host-sealpost-admin";
/// A sender's status capability (`/s/...`): short-lived, nothing outside links into it.
pub const SENDER: &str = "__Host-sealpost-sender";

/// The value of cookie `name` in the request headers.
pub fn value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The portal cookie is SameSite=Lax: the GET after `POST /open` is a cross-site top-level
/// navigation that must carry it.
pub fn set_portal(token: &str, max_age: i64) -> String {
    format!("{PORTAL}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

pub fn clear_portal() -> String {
    format!("{PORTAL}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The admin cookie is SameSite=Strict: nothing outside the admin UI links into it.
pub fn set_admin(token: &str) -> String {
    format!("{ADMIN}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

pub fn clear_admin() -> String {
    format!("{ADMIN}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub fn set_sender(capability: &str, max_age: i64) -> String {
    format!("{SENDER}={capability}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

pub fn clear_sender() -> String {
    format!("{SENDER}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The pending second-factor step after the first factor: Strict (it is only ever used by
/// this site's own forms), and it lives as long as the pending state (5 minutes).
pub const PENDING: &str = "__Host-sealpost-pending";
/// A remembered device ("remember this device" on the code step): skips the second factor
/// of the account it was set for, never the first.
pub const DEVICE: &str = "__Host-sealpost-device";

pub fn set_pending(token: &str) -> String {
    let max_age = sealpost_core::second_factor::PENDING_SECS;
    format!("{PENDING}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

pub fn clear_pending() -> String {
    format!("{PENDING}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub fn set_device(token: &str, max_age: i64) -> String {
    format!("{DEVICE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}
