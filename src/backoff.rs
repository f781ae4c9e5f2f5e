//! Waiting before trying again: exponential delays with a cap, jittered so that many
//! instances (or many failed requests) do not retry in step. Used for reconnecting to the
//! server and for webhook retries.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// `initial × 2^(attempt − 1)`, at most `cap`; `attempt` counts from 1.
pub fn exponential(initial: Duration, attempt: u32, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(cap)
}

/// `delay` scaled by a random factor in [0.5, 1.0).
pub fn jittered(delay: Duration) -> Duration {
    let factor = 0.5 + (random_u64() % 1000) as f64 / 2000.0;
    delay.mul_f64(factor)
}

/// 64 random bits from the standard library's per-process random hash keys (fresh keys for
/// each `RandomState`), enough for jitter and for unique ids; no extra crate needed.
pub fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let initial = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        let delays: Vec<_> = (1..=8)
            .map(|n| exponential(initial, n, cap).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(exponential(initial, 1000, cap), cap);
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        for _ in 0..1000 {
            let wait = jittered(Duration::from_secs(2));
            assert!(
                wait >= Duration::from_secs(1) && wait < Duration::from_secs(2),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn random_values_differ() {
        let values: std::collections::HashSet<_> = (0..100).map(|_| random_u64()).collect();
        assert_eq!(values.len(), 100);
    }
}
