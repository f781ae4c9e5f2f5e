//! Per-sender token buckets (`rate_limit`): a sender over its rate gets
//! `wait/resource-constraint` and the webhook is not called. The table of senders is
//! bounded by `rate_limit.max_senders`; when it is full, a new sender takes the place of the
//! one seen least recently (a list threaded through the table: O(1) per stanza). An
//! exhausted sender that keeps sending is never the least recent, so it stays exhausted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimit;

/// A sender, as a keyed hash of its bare JID (the dispatcher's, keyed at random: no sender
/// can choose to share another's bucket).
pub type SenderKey = u64;

/// No entry: the end of the list.
const END: usize = usize::MAX;

struct Entry {
    sender: SenderKey,
    tokens: f64,
    updated: Instant,
    /// The entries seen just after and just before this one ([`END`] at either end).
    newer: usize,
    older: usize,
}

/// The senders and their buckets, from the one seen last (`newest`) to the one seen least
/// recently (`oldest`), whose entry a new sender takes once `max_senders` are known.
struct Table {
    index: HashMap<SenderKey, usize>,
    entries: Vec<Entry>,
    newest: usize,
    oldest: usize,
}

/// The buckets of one component, keyed by the sender's bare JID.
pub struct RateLimiter {
    limit: RateLimit,
    table: Mutex<Table>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            table: Mutex::new(Table {
                index: HashMap::new(),
                entries: Vec::new(),
                newest: END,
                oldest: END,
            }),
        }
    }

    /// Takes one token from `sender`'s bucket; false when it is empty.
    pub fn allow(&self, sender: SenderKey, now: Instant) -> bool {
        let burst = f64::from(self.limit.burst);
        let Ok(mut table) = self.table.lock() else {
            return true; // a panic elsewhere poisoned the table: do not block traffic over it
        };
        let entry = table.seen(sender, now, burst, self.limit.max_senders);
        let refill =
            now.saturating_duration_since(entry.updated).as_secs_f64() * self.limit.per_second;
        entry.tokens = (entry.tokens + refill).min(burst);
        entry.updated = now;
        if entry.tokens >= 1.0 {
            entry.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Table {
    /// `sender`'s entry, now the newest: a full bucket for a sender not known, in the place
    /// of the least recently seen one when `max_senders` are known already.
    fn seen(
        &mut self,
        sender: SenderKey,
        now: Instant,
        burst: f64,
        max_senders: usize,
    ) -> &mut Entry {
        let at = match self.index.get(&sender) {
            Some(&at) => {
                self.unlink(at);
                at
            }
            None => {
                let fresh = Entry {
                    sender,
                    tokens: burst,
                    updated: now,
                    newer: END,
                    older: END,
                };
                let at = if self.entries.len() < max_senders.max(1) {
                    self.entries.push(fresh);
                    self.entries.len() - 1
                } else {
                    let at = self.oldest;
                    self.unlink(at);
                    self.index.remove(&self.entries[at].sender);
                    self.entries[at] = fresh;
                    at
                };
                self.index.insert(sender, at);
                at
            }
        };
        self.push_newest(at);
        &mut self.entries[at]
    }

    /// Takes the entry at `at` out of the list (it stays in the table).
    fn unlink(&mut self, at: usize) {
        let (newer, older) = (self.entries[at].newer, self.entries[at].older);
        match newer {
            END => self.newest = older,
            newer => self.entries[newer].older = older,
        }
        match older {
            END => self.oldest = newer,
            older => self.entries[older].newer = newer,
        }
    }

    fn push_newest(&mut self, at: usize) {
        let previous = self.newest;
        self.entries[at].newer = END;
        self.entries[at].older = previous;
        match previous {
            END => self.oldest = at,
            previous => self.entries[previous].newer = at,
        }
        self.newest = at;
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

    /// The senders from the newest to the oldest, following the list both ways.
    fn order(limiter: &RateLimiter) -> Vec<SenderKey> {
        let table = limiter.table.lock().expect("lock");
        let mut forward = Vec::new();
        let mut at = table.newest;
        while at != END {
            forward.push(table.entries[at].sender);
            at = table.entries[at].older;
        }
        let mut backward = Vec::new();
        let mut at = table.oldest;
        while at != END {
            backward.push(table.entries[at].sender);
            at = table.entries[at].newer;
        }
        backward.reverse();
        assert_eq!(forward, backward, "the list is linked both ways alike");
        assert_eq!(forward.len(), table.index.len());
        forward
    }

    #[test]
    fn burst_then_rate() {
        let limiter = limiter(2.0, 3, 100);
        let start = Instant::now();
        let allowed: Vec<bool> = (0..5).map(|_| limiter.allow(1, start)).collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        assert!(
            limiter.allow(1, start + Duration::from_millis(500)),
            "one token after 0.5 s"
        );
        assert!(!limiter.allow(1, start + Duration::from_millis(600)));
        assert!(limiter.allow(2, start), "senders have their own buckets");
    }

    #[test]
    fn sender_table_is_bounded() {
        let limiter = limiter(1.0, 1, 10);
        let start = Instant::now();
        for sender in 0..1000 {
            assert!(limiter.allow(sender, start));
        }
        assert_eq!(limiter.table.lock().expect("lock").entries.len(), 10);
        assert_eq!(order(&limiter), (990..1000).rev().collect::<Vec<_>>());
    }

    #[test]
    fn an_exhausted_sender_stays_exhausted_while_the_table_is_full_of_others() {
        // No bucket refills meanwhile (the clock does not move): the table is full of
        // senders with tokens left, and the flooder keeps trying between newcomers.
        let limiter = limiter(0.001, 3, 10);
        let now = Instant::now();
        let flooder = 0;
        for _ in 0..3 {
            assert!(limiter.allow(flooder, now));
        }
        for newcomer in 1..10_000 {
            assert!(
                limiter.allow(newcomer, now),
                "newcomer {newcomer} has its burst"
            );
            assert!(
                !limiter.allow(flooder, now),
                "the flooder got a fresh burst after newcomer {newcomer}"
            );
        }
        assert_eq!(limiter.table.lock().expect("lock").entries.len(), 10);
    }

    #[test]
    fn the_sender_seen_least_recently_is_forgotten_first() {
        let limiter = limiter(0.001, 1, 3);
        let now = Instant::now();
        for sender in [1, 2, 3] {
            assert!(limiter.allow(sender, now));
        }
        assert!(!limiter.allow(1, now), "1 is exhausted, and now the newest");
        assert_eq!(order(&limiter), [1, 3, 2]);
        assert!(limiter.allow(4, now), "4 takes the place of 2");
        assert_eq!(order(&limiter), [4, 1, 3]);
        assert!(!limiter.allow(3, now), "3 was kept, exhausted");
        assert!(!limiter.allow(1, now), "1 was kept, exhausted");
        assert!(
            limiter.allow(2, now),
            "2 was forgotten: a full bucket again"
        );
        assert_eq!(order(&limiter), [2, 1, 3]);
    }

    #[test]
    fn a_table_of_one_keeps_the_last_sender() {
        let limiter = limiter(0.001, 1, 1);
        let now = Instant::now();
        assert!(limiter.allow(1, now));
        assert!(!limiter.allow(1, now));
        assert!(limiter.allow(2, now));
        assert!(!limiter.allow(2, now));
        assert_eq!(order(&limiter), [2]);
    }
}
