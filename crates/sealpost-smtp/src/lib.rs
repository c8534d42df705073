//! SMTP for Sealpost: the inbound server session the organisation's MTA talks
//! to, the outbound client (or maildir writer) used for the next hop, and a
//! small sink server for tests, demos and benchmarks.

pub mod address;
pub mod inbound;
pub mod next_hop;
pub mod outbound;
pub mod server;
pub mod sink;

mod lineio;
