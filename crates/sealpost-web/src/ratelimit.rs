//! Per-client request limits, kept in memory on each node (DESIGN §5): they slow down
//! password guessing and floods from one address. Lockouts that must hold across nodes are
//! counted in the database instead (see `accounts::login`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

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
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            auth: RateLimiter::new(20, 30),
            open: RateLimiter::new(60, 120),
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
}
