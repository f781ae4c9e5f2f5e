//! Per-sender token buckets (`rate_limit`): a sender over its rate gets
//! `wait/resource-constraint` and the webhook is not called. The table of senders is
//! bounded by `rate_limit.max_senders`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimit;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of one component, keyed by the sender's bare JID.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `sender`'s bucket; false when it is empty.
    pub fn allow(&self, sender: &str, now: Instant) -> bool {
        let burst = f64::from(self.limit.burst);
        let Ok(mut buckets) = self.buckets.lock() else {
            return true; // a panic elsewhere poisoned the table: do not block traffic over it
        };
        if buckets.len() >= self.limit.max_senders && !buckets.contains_key(sender) {
            // Forget the senders whose buckets have filled up again: they lose nothing.
            let rate = self.limit.per_second;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
            if buckets.len() >= self.limit.max_senders {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(sender.to_string()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let refill =
            now.saturating_duration_since(bucket.updated).as_secs_f64() * self.limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(per_second: f64, burst: u32, max_senders: usize) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second,
            burst,
            max_senders,
        })
    }

    #[test]
    fn burst_then_rate() {
        let limiter = limiter(2.0, 3, 100);
        let start = Instant::now();
        let allowed: Vec<bool> = (0..5).map(|_| limiter.allow("a@b", start)).collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        assert!(
            limiter.allow("a@b", start + Duration::from_millis(500)),
            "one token after 0.5 s"
        );
        assert!(!limiter.allow("a@b", start + Duration::from_millis(600)));
        assert!(
            limiter.allow("other@b", start),
            "senders have their own buckets"
        );
    }

    #[test]
    fn sender_table_is_bounded() {
        let limiter = limiter(1.0, 1, 10);
        let start = Instant::now();
        for n in 0..1000 {
            assert!(limiter.allow(&format!("user{n}@b"), start));
        }
        assert!(limiter.buckets.lock().expect("lock").len() <= 10);
    }
}
