//! The shutdown deadline as the dispatch workers see it: a flag, and one waker per worker.
//! Each webhook call watches it; with a `watch` channel that meant a subscription and a
//! waiter added to and taken off a locked list per call (with the session's own per-stanza
//! subscription, since made once, 1.9 % of the daemon's CPU at 64 in flight). Here a worker
//! registers its waker once and each call only checks the flag.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;

use atomic_waker::AtomicWaker;

/// Raised once, at the shutdown deadline; never lowered.
#[derive(Default)]
pub struct Abandon {
    raised: AtomicBool,
    /// The watchers' wakers; a watcher that is gone leaves a dead entry, cleared when the
    /// next one is added.
    watchers: Mutex<Vec<Weak<AtomicWaker>>>,
}

/// One task's view of [`Abandon`], to watch one call at a time.
pub struct Watcher {
    signal: Arc<Abandon>,
    waker: Arc<AtomicWaker>,
}

impl Abandon {
    /// Raises the signal and wakes every task watching it.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        for waker in self.lock().iter().filter_map(Weak::upgrade) {
            waker.wake();
        }
    }

    /// A watcher for one task (a worker keeps its own for good).
    pub fn watcher(self: &Arc<Self>) -> Watcher {
        let waker = Arc::new(AtomicWaker::new());
        let mut watchers = self.lock();
        watchers.retain(|w| w.strong_count() > 0);
        watchers.push(Arc::downgrade(&waker));
        Watcher {
            signal: Arc::clone(self),
            waker,
        }
    }

    /// The list is whole whatever a panicking holder did: take it as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<AtomicWaker>>> {
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Watcher {
    /// Completes once the signal is raised (at once if it already was).
    pub fn raised(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.signal.raised.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // Raised between the check and the registration: `raise` may have woken the
            // waker registered before, so look again.
            match self.signal.raised.load(Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn raising_wakes_every_watcher_and_stays_raised() {
        let signal = Arc::new(Abandon::default());
        let watchers: Vec<Watcher> = (0..3).map(|_| signal.watcher()).collect();
        let waiting: Vec<_> = watchers
            .into_iter()
            .map(|watcher| tokio::spawn(async move { watcher.raised().await }))
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiting.iter().all(|task| !task.is_finished()));
        signal.raise();
        for task in waiting {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("woken")
                .expect("not panicked");
        }
        // A watcher made later, and a call watched later, see it at once.
        let late = signal.watcher();
        tokio::time::timeout(Duration::from_secs(5), late.raised())
            .await
            .expect("already raised");
    }

    #[tokio::test]
    async fn watchers_that_are_gone_are_let_go_of() {
        let signal = Arc::new(Abandon::default());
        for _ in 0..10 {
            drop(signal.watcher());
        }
        let kept = signal.watcher();
        assert_eq!(signal.lock().len(), 1);
        drop(kept);
        signal.raise(); // no live watcher: nothing to wake, nothing fails
    }
}
