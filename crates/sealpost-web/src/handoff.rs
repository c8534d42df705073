//! The same-node shortcut from `POST /open` to the `GET /open/{token}` that follows it.
//!
//! The POST parks the envelope in the database (any node may serve the GET) and also hands
//! it, in memory, to this node's next GET of the same token: the browser follows the 303 at
//! once, usually to the same node, and then the envelope need not be read back from the
//! database (for a 20 MB message several copies of it inside the driver). Only ciphertext
//! waits here, keyed by the token's hash like the database row, for at most a minute and
//! within a fixed memory budget; the first GET takes it out. Everything the GET checks
//! (session, recipient, key, authentication tag) is checked the same either way.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// At most this much ciphertext waits in memory; beyond it the GET reads the database.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A GET that comes later than this reads the database.
const MAX_AGE: Duration = Duration::from_secs(60);

struct Entry {
    envelope: Vec<u8>,
    /// The database row's expiry (Unix seconds): never served past it.
    expires_at: i64,
    parked: Instant,
}

#[derive(Default)]
struct Parked {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

static PARKED: Mutex<Option<Parked>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Parked>> {
    PARKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands `envelope` (already stored under `token_hash`) to this node's next GET of it.
pub(crate) fn park(token_hash: &str, envelope: Vec<u8>, expires_at: i64) {
    let now = Instant::now();
    let mut dropped = Vec::new();
    {
        let mut guard = lock();
        let parked = guard.get_or_insert_with(Parked::default);
        if parked.bytes > 0 {
            let stale: Vec<String> = parked
                .entries
                .iter()
                .filter(|(_, e)| now.duration_since(e.parked) >= MAX_AGE)
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                if let Some(e) = parked.entries.remove(&key) {
                    parked.bytes -= e.envelope.len();
                    dropped.push(e);
                }
            }
        }
        if envelope.len() <= MAX_BYTES.saturating_sub(parked.bytes) {
            parked.bytes += envelope.len();
            parked.entries.insert(
                token_hash.to_string(),
                Entry {
                    envelope,
                    expires_at,
                    parked: now,
                },
            );
        }
    }
    // Large buffers are freed outside the lock.
    drop(dropped);
}

/// The envelope parked under `token_hash` on this node, if it is still there and valid.
pub(crate) fn take(token_hash: &str, now_unix: i64) -> Option<Vec<u8>> {
    let entry = {
        let mut guard = lock();
        let parked = guard.as_mut()?;
        let entry = parked.entries.remove(token_hash)?;
        parked.bytes -= entry.envelope.len();
        entry
    };
    (now_unix < entry.expires_at && entry.parked.elapsed() < MAX_AGE).then_some(entry.envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_once_within_budget_and_expiry() {
        park("h-once", vec![1, 2, 3], 100);
        assert_eq!(take("h-once", 50), Some(vec![1, 2, 3]));
        assert_eq!(take("h-once", 50), None, "only the first GET");
        park("h-expired", vec![4], 100);
        assert_eq!(take("h-expired", 100), None, "not past the row's expiry");
        park("h-huge", vec![0; MAX_BYTES + 1], 100);
        assert_eq!(take("h-huge", 50), None, "over the budget: not kept");
        assert_eq!(take("h-unknown", 50), None);
    }
}
