//! The `sealpost` binary's library part: configuration, node wiring and the demo, so that
//! integration tests can boot a whole node in-process.

pub mod config;
pub mod demo;
pub mod dkim;
pub mod identity;
pub mod node;
pub mod selfsigned;
pub mod web_listener;
