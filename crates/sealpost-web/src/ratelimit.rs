//! Per-client request limits, kept in memory on each node: they slow down
//! password guessing and floods from one address. Lockouts that must hold across nodes are
//! counted in the database instead (see `accounts::login`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A token bucket per client address.
pub struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    capacity: f64,
    per_second: f64,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Above this many tracked clients, idle full buckets are dropped so memory stays bounded.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    /// `burst` requests at once, then `per_minute` on average.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
            capacity: f64::from(burst.max(1)),
            per_second: f64::from(per_minute) / 60.0,
        }
    }

    /// Takes one token for `ip`; false when the client is over its limit.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED {
            let (capacity, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.last).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.capacity,
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The limits of one node's web listener.
pub struct RateLimits {
    /// Sign-in, forgotten password, admin sign-in: where passwords and answers are guessed.
    pub auth: RateLimiter,
    /// `POST /open`: parking payloads.
    pub open: RateLimiter,
    /// `POST /open`: how many uploads run at once and how much they park.
    pub uploads: UploadLimits,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::with_uploads(UploadLimits::default())
    }
}

impl RateLimits {
    pub fn with_uploads(uploads: UploadLimits) -> Self {
        RateLimits {
            auth: RateLimiter::new(20, 30),
            open: RateLimiter::new(60, 120),
            uploads,
        }
    }
}

/// Why an upload may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRefused {
    /// As many uploads as the node takes at once are running.
    Busy,
    /// This client address has parked as much as it may until its parked envelopes expire.
    ClientFull,
    /// The node has parked as much as it may: the disk is kept from filling up.
    NodeFull,
}

/// Bounds on what `POST /open` may hold: concurrent uploads per node (each holds up to one
/// envelope in memory) and the bytes parked per client address and in total until they
/// expire (on disk, in the temporary-open table). Counted in memory on each node: a client
/// can park at most the per-client bound on every node, and the node bound keeps the disk
/// of each node's database from filling whatever many addresses an attacker has.
pub struct UploadLimits {
    running: Arc<Semaphore>,
    per_client_bytes: usize,
    total_bytes: usize,
    parked: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    /// Per client: (until when, bytes) of each parked or still arriving envelope.
    by_client: HashMap<IpAddr, Vec<(Instant, usize)>>,
    total: usize,
}

impl Parked {
    fn expire(&mut self, now: Instant) {
        let mut freed = 0;
        self.by_client.retain(|_, entries| {
            entries.retain(|&(until, bytes)| {
                let keep = until > now;
                if !keep {
                    freed += bytes;
                }
                keep
            });
            !entries.is_empty()
        });
        self.total = self.total.saturating_sub(freed);
    }
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits::new(16, 512 * 1024 * 1024, 8 * 1024 * 1024 * 1024)
    }
}

impl UploadLimits {
    /// `concurrent` uploads at once; `per_client_bytes` and `total_bytes` parked at once.
    pub fn new(concurrent: usize, per_client_bytes: usize, total_bytes: usize) -> Self {
        UploadLimits {
            running: Arc::new(Semaphore::new(concurrent.max(1))),
            per_client_bytes,
            total_bytes,
            parked: Mutex::new(Parked::default()),
        }
    }

    /// A slot for one upload from `client`, parked until `ttl` from now; refused at once
    /// (no waiting) when the node is busy.
    pub fn start(&self, client: IpAddr, ttl: Duration) -> Result<UploadSlot<'_>, UploadRefused> {
        let permit = Arc::clone(&self.running)
            .try_acquire_owned()
            .map_err(|_| UploadRefused::Busy)?;
        Ok(UploadSlot {
            limits: self,
            client,
            until: Instant::now() + ttl,
            reserved: 0,
            kept: false,
            _permit: permit,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes parked (or being uploaded) by `client` now.
    pub fn parked_by(&self, client: IpAddr) -> usize {
        let mut parked = self.lock();
        parked.expire(Instant::now());
        parked
            .by_client
            .get(&client)
            .map_or(0, |e| e.iter().map(|&(_, b)| b).sum())
    }
}

/// One running upload: holds its place among the concurrent uploads and the bytes it has
/// reserved. Dropped without [`keep`](Self::keep) (a refused or failed upload), its bytes
/// are released again.
pub struct UploadSlot<'a> {
    limits: &'a UploadLimits,
    client: IpAddr,
    until: Instant,
    reserved: usize,
    kept: bool,
    _permit: OwnedSemaphorePermit,
}

impl UploadSlot<'_> {
    /// Reserves room for the envelope to grow to `bytes` in all, before they are stored.
    pub fn reserve_up_to(&mut self, bytes: usize) -> Result<(), UploadRefused> {
        let more = bytes.saturating_sub(self.reserved);
        if more == 0 {
            return Ok(());
        }
        let limits = self.limits;
        let mut parked = limits.lock();
        parked.expire(Instant::now());
        let client_now: usize = parked
            .by_client
            .get(&self.client)
            .map_or(0, |e| e.iter().map(|&(_, b)| b).sum());
        if client_now.saturating_add(more) > limits.per_client_bytes {
            return Err(UploadRefused::ClientFull);
        }
        if parked.total.saturating_add(more) > limits.total_bytes {
            return Err(UploadRefused::NodeFull);
        }
        parked.total += more;
        let entries = parked.by_client.entry(self.client).or_default();
        if self.reserved == 0 {
            entries.push((self.until, more));
        } else if let Some(entry) = entries.iter_mut().find(|(until, _)| *until == self.until) {
            entry.1 += more;
        } else {
            entries.push((self.until, more));
        }
        self.reserved = bytes;
        Ok(())
    }

    /// The envelope of `bytes` is parked: they stay counted until it expires (a reservation
    /// made from the announced size is trimmed to the real one).
    pub fn keep(mut self, bytes: usize) {
        self.release(self.reserved.saturating_sub(bytes));
        self.kept = true;
    }

    fn release(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut parked = self.limits.lock();
        parked.total = parked.total.saturating_sub(bytes);
        self.reserved = self.reserved.saturating_sub(bytes);
        if let Some(entries) = parked.by_client.get_mut(&self.client) {
            if let Some(i) = entries.iter().position(|&(until, _)| until == self.until) {
                let entry = &mut entries[i];
                entry.1 = entry.1.saturating_sub(bytes);
                if entry.1 == 0 {
                    entries.swap_remove(i);
                }
            }
            if entries.is_empty() {
                parked.by_client.remove(&self.client);
            }
        }
    }
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.release(self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(3, 60);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        assert!(limiter.allow_at(ip, t0));
        assert!(limiter.allow_at(ip, t0));
        assert!(limiter.allow_at(ip, t0));
        assert!(!limiter.allow_at(ip, t0), "burst used up");
        assert!(
            limiter.allow_at(other, t0),
            "other clients are not affected"
        );
        assert!(!limiter.allow_at(ip, t0 + Duration::from_millis(500)));
        assert!(
            limiter.allow_at(ip, t0 + Duration::from_millis(1100)),
            "one per second refills"
        );
    }

    #[test]
    fn uploads_are_capped_per_node_and_parked_bytes_per_client() {
        let limits = UploadLimits::new(2, 100, 150);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let ttl = Duration::from_secs(60);
        let first = limits.start(a, ttl).expect("first");
        let second = limits.start(b, ttl).expect("second");
        assert_eq!(limits.start(a, ttl).err(), Some(UploadRefused::Busy));
        drop(first);
        drop(second);

        let mut slot = limits.start(a, ttl).unwrap();
        slot.reserve_up_to(60).unwrap();
        slot.reserve_up_to(95).unwrap();
        assert_eq!(slot.reserve_up_to(101), Err(UploadRefused::ClientFull));
        slot.keep(90);
        assert_eq!(limits.parked_by(a), 90, "trimmed to the real size");
        let mut slot = limits.start(a, ttl).unwrap();
        assert_eq!(slot.reserve_up_to(11), Err(UploadRefused::ClientFull));
        drop(slot);
        // A refused or failed upload gives its bytes back; other clients have their own room
        // until the node's total is reached.
        let mut slot = limits.start(b, ttl).unwrap();
        slot.reserve_up_to(50).unwrap();
        drop(slot);
        assert_eq!(limits.parked_by(b), 0);
        let mut slot = limits.start(b, ttl).unwrap();
        assert_eq!(slot.reserve_up_to(61), Err(UploadRefused::NodeFull));
        slot.reserve_up_to(60).unwrap();
        slot.keep(60);

        // Parked envelopes stop counting when they expire.
        let short = UploadLimits::new(1, 10, 10);
        let mut slot = short.start(a, Duration::ZERO).unwrap();
        slot.reserve_up_to(10).unwrap();
        slot.keep(10);
        assert_eq!(short.parked_by(a), 0);
        let mut slot = short.start(a, ttl).unwrap();
        assert_eq!(slot.reserve_up_to(10), Ok(()));
    }
}
