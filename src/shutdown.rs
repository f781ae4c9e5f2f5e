//! One shutdown, in three steps, for every task of the process. First the signal
//! ([`Shutdown`]): sessions stop reading the server and the API stops taking connections,
//! while webhook calls in flight go on for up to `shutdown_timeout`. Then the deadline
//! ([`Abandon`]): the calls still running are answered with an error, never with silence.
//! Last a short grace ([`ABANDON_GRACE`]) for those error answers to be queued and sent.
//!
//! Every dispatch worker watches the deadline on each call, so [`Abandon`] is a flag that a
//! worker registers its waker with once, rather than a `watch` channel, which would add and
//! remove a waiter on a locked list per call (bench/README.md measured what that cost).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use tokio::sync::watch;

/// After the shutdown deadline, how long abandoned calls get to queue their error answers.
pub const ABANDON_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts the shutdown: held by `run`, which owns the process's tasks.
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A task's view of the shutdown signal; clone it for each task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownTrigger(sender), Shutdown(receiver))
    }

    /// Signals every [`Shutdown`]; once is enough, again does nothing.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Whether [`ShutdownTrigger::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

impl Shutdown {
    /// Completes once the shutdown is signalled (or every trigger is gone).
    pub async fn stopped(&mut self) {
        // The guard `wait_for` returns is not `Send`: drop it here, not in the caller's select.
        let _ = self.0.wait_for(|stop| *stop).await.map(|_| ());
    }
}

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

    /// A watcher for one task (a worker keeps its own for as long as it runs).
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
