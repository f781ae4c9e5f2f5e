//! A timer made once and moved from deadline to deadline: each dispatch worker keeps one
//! for its webhook attempts (and the waits between retries) and one for typing notices. A
//! fresh `tokio::time::timeout` or `sleep` per call put an entry into tokio's timer wheel
//! and took it out again, each under the wheel's lock, and often woke the I/O driver to
//! re-arm its wait, a cost the profile showed (bench/README.md, step 8ac711a); moving a
//! deadline later only updates the entry that is already there.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A deadline so far away that it stands for "none": about thirty years.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// One task's timer, for one deadline at a time. Once a deadline has passed unwatched, the
/// timer wakes its task once for nothing: a worker idle that long does not mind.
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new()
    }
}

impl Deadline {
    /// A timer with no deadline yet (inside the runtime; it is registered when first used).
    pub fn new() -> Deadline {
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(after(Instant::now(), FAR))),
        }
    }

    /// `future`'s output, or `None` when `deadline` came first.
    pub async fn limit<F: Future>(&mut self, deadline: Instant, future: F) -> Option<F::Output> {
        self.set(deadline);
        tokio::select! {
            biased;
            output = future => Some(output),
            () = &mut self.sleep => None,
        }
    }

    /// Waits until `deadline`.
    pub async fn wait_until(&mut self, deadline: Instant) {
        self.set(deadline);
        (&mut self.sleep).await;
    }

    /// Moves the deadline; [`Deadline::reached`] completes once it has passed.
    pub fn set(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
    }

    /// Completes once the deadline set last has passed.
    pub fn reached(&mut self) -> &mut Pin<Box<Sleep>> {
        &mut self.sleep
    }
}

/// `start + duration`, or a deadline thirty years away when that does not fit.
pub fn after(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_attempt_gets_its_own_deadline() {
        let mut timer = Deadline::new();
        let start = Instant::now();
        let quick = timer.limit(after(start, Duration::from_secs(5)), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "answered"
        });
        assert_eq!(quick.await, Some("answered"));
        // The next deadline is later than the first: the entry moves, and does not fire
        // at the first one.
        let slow = timer.limit(after(Instant::now(), Duration::from_secs(10)), async {
            tokio::time::sleep(Duration::from_secs(8)).await;
            "answered late"
        });
        assert_eq!(slow.await, Some("answered late"));
        assert_eq!(Instant::now() - start, Duration::from_secs(9));
        // An earlier deadline than the one set holds too.
        let begun = Instant::now();
        let cut = timer.limit(
            after(begun, Duration::from_secs(2)),
            std::future::pending::<()>(),
        );
        assert_eq!(cut.await, None);
        assert_eq!(Instant::now() - begun, Duration::from_secs(2));
        // And after one has fired, the timer is used again.
        let begun = Instant::now();
        timer.wait_until(after(begun, Duration::from_secs(3))).await;
        assert_eq!(Instant::now() - begun, Duration::from_secs(3));
        let never = timer.limit(after(Instant::now(), Duration::from_secs(4)), async { 7 });
        assert_eq!(never.await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_set_then_watched_is_reached_once_passed() {
        let mut typing = Deadline::new();
        let begun = Instant::now();
        typing.set(after(begun, Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_millis(400)).await;
        typing.reached().await;
        assert_eq!(Instant::now() - begun, Duration::from_secs(1));
        typing.set(after(Instant::now(), Duration::from_secs(2)));
        typing.reached().await;
        assert_eq!(Instant::now() - begun, Duration::from_secs(3));
    }

    #[test]
    fn a_deadline_too_far_to_count_is_far_away() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let now = Instant::now();
            assert!(after(now, Duration::MAX) >= after(now, FAR));
            assert_eq!(
                after(now, Duration::from_secs(1)),
                now + Duration::from_secs(1)
            );
        });
    }
}
