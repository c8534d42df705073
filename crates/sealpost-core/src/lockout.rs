//! Lockout rules for everything that guesses a secret (recipient and admin sign-ins, secret
//! answers): the per-account lock and, in front of it, a budget of failures per client
//! address, both counted in the database so every node enforces the same numbers.
//!
//! The source budget comes first, so one address cannot lock every account it knows of: once
//! it has spent `security.source_failure_limit` failures in a lockout window it is refused
//! before it reaches any account's counter, with the same answer for known and unknown
//! addresses. Account locks double with each lock before the holder gets in again (capped at
//! [`MAX_LOCK_GROWTH`] times the first), and never close the recovery by a code mailed to the
//! account's own address (see [`crate::accounts::may_recover_while_locked`]).

use std::net::IpAddr;

use sealpost_store::{LockPolicy, Store};

use crate::{CoreError, Settings};

/// The longest lock is this many times `security.lockout_secs` (15 min → 8 h by default).
pub const MAX_LOCK_GROWTH: i64 = 32;

/// The lock rules of the current settings.
pub fn lock_policy(settings: &Settings) -> LockPolicy {
    LockPolicy {
        threshold: settings.lockout_threshold.max(1),
        lock_secs: settings.lockout_secs.max(1),
        max_lock_secs: settings.lockout_secs.max(1).saturating_mul(MAX_LOCK_GROWTH),
    }
}

/// The key a client address is counted under: an IPv4 address as it is, an IPv6 address by
/// its /64 (one subscriber usually holds a whole /64 and could otherwise rotate through it).
/// Anything that is not an address (no client address known) shares one key.
pub fn source_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => "unknown".to_string(),
    }
}

/// Reserves one attempt of the client address `ip`; false (audited and counted) when the
/// address has used up its failures in this window and must be refused before anything else.
pub(crate) async fn reserve_source(
    store: &Store,
    settings: &Settings,
    ip: &str,
    now: i64,
) -> Result<bool, CoreError> {
    let allowed = store
        .reserve_source_attempt(
            &source_key(ip),
            settings.source_failure_limit,
            settings.lockout_secs,
            now,
        )
        .await?;
    if !allowed {
        crate::metrics::record(store, crate::metrics::SOURCE_THROTTLED, 1);
        crate::audit::write(
            store,
            crate::audit::ANONYMOUS,
            crate::audit::SOURCE_THROTTLED,
            None,
            None,
            Some(ip),
        )
        .await;
    }
    Ok(allowed)
}

/// Gives the address's reservation back after a right secret: only failures count.
pub(crate) async fn release_source(store: &Store, ip: &str) -> Result<(), CoreError> {
    store.release_source_attempt(&source_key(ip)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_addresses_and_ipv6_prefixes() {
        assert_eq!(source_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(source_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            source_key("2001:db8:1:2:aaaa::1"),
            source_key("2001:db8:1:2:bbbb::2")
        );
        assert_eq!(source_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_ne!(source_key("2001:db8:1:3::1"), source_key("2001:db8:1:2::1"));
        assert_eq!(source_key(""), "unknown");
    }

    #[test]
    fn locks_grow_to_a_cap() {
        let p = lock_policy(&Settings::default());
        assert_eq!(p.lock_length(0), 900);
        assert_eq!(p.lock_length(1), 1800);
        assert_eq!(p.lock_length(100), 900 * MAX_LOCK_GROWTH);
    }
}
