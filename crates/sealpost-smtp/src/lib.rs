//! SMTP for Sealpost: the inbound server session the organisation's MTA talks
//! to, the address syntax and spelling every account key uses, outbound delivery
//! to the next hop (SMTP or maildir) and the probe of that hop, and a small sink
//! server for tests, demos and benchmarks.

pub mod address;
pub mod inbound;
pub mod next_hop;
pub mod outbound;
pub mod server;
pub mod sink;

mod lineio;
