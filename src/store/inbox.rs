//! The writes waiting for the store's writer: one queue that the daemon's threads push to
//! without ever blocking on the disk, and that both writer threads take from (see
//! `writer.rs`): the background one, woken by the first write of a batch, and the catch-up
//! one, which commits only when a write has waited `starved`, when the writes pile up past
//! `catch_up`, or when a flush waits. Its bound
//! (`max_pending_writes`) is a count of what waits, so that its memory grows with what
//! waits, not with the bound.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::writer::Op;

/// The daemon's side: pushes writes, never waits for the writer.
pub(super) struct Writes {
    shared: std::sync::Arc<Shared>,
}

/// The writer threads' side.
#[derive(Clone)]
pub(super) struct Inbox {
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The background writer waits on it for the first write of a batch.
    arrived: Condvar,
    /// The catch-up writer waits on it for a first write, a backlog or a flush.
    behind: Condvar,
    max: usize,
    catch_up: usize,
    starved: Duration,
}

#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    /// Flushes among `ops`: each waits for a caller, so none waits for a batch interval.
    flushes: usize,
    /// When the oldest of `ops` came (`None`: none waits).
    since: Option<Instant>,
    /// Since when outcomes held for their answer wait for a commit to look at them again.
    held_since: Option<Instant>,
    /// Every `Writes` is gone: the writers commit what is left and end.
    stopped: bool,
}

/// Why a write was not taken.
pub(super) enum NotTaken {
    Full,
    Stopped,
}

/// What a writer thread woke up to.
pub(super) enum Woken {
    /// Writes wait; `urgent` when a flush is among them.
    Work {
        urgent: bool,
    },
    Timeout,
    Stopped,
}

/// A new inbox holding at most `max` writes; past `catch_up` waiting writes, or once a
/// write has waited `starved`, the catch-up writer commits.
pub(super) fn inbox(max: usize, catch_up: usize, starved: Duration) -> (Writes, Inbox) {
    let shared = std::sync::Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        arrived: Condvar::new(),
        behind: Condvar::new(),
        max,
        catch_up: catch_up.clamp(1, max.max(1)),
        starved,
    });
    (
        Writes {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Writes {
    /// Takes `op` unless `max` writes already wait; never blocks on the writer.
    pub(super) fn try_send(&self, op: Op) -> Result<(), NotTaken> {
        let mut queue = self.shared.queue();
        if queue.ops.len() >= self.shared.max {
            return Err(NotTaken::Full);
        }
        self.push(&mut queue, op)
    }

    /// Takes `op` whatever waits (a flush: one at a time per caller).
    pub(super) fn send(&self, op: Op) -> Result<(), NotTaken> {
        let mut queue = self.shared.queue();
        self.push(&mut queue, op)
    }

    fn push(&self, queue: &mut Queue, op: Op) -> Result<(), NotTaken> {
        if queue.stopped {
            return Err(NotTaken::Stopped);
        }
        let flush = matches!(op, Op::Flush(_));
        queue.ops.push(op);
        let first = queue.ops.len() == 1;
        if first {
            queue.since = Some(Instant::now());
        }
        if flush {
            queue.flushes += 1;
        }
        // Only the first write of a batch wakes the writers: the background one gathers the
        // rest, the catch-up one watches the clock from then on.
        if first || flush || queue.ops.len() == self.shared.catch_up {
            self.shared.behind.notify_one();
        }
        if first || flush {
            self.shared.arrived.notify_one();
        }
        Ok(())
    }
}

impl Drop for Writes {
    fn drop(&mut self) {
        self.shared.queue().stopped = true;
        self.shared.arrived.notify_all();
        self.shared.behind.notify_all();
    }
}

impl Inbox {
    /// The background writer's wait: for any write, at most `timeout`.
    pub(super) fn wait(&self, timeout: Duration) -> Woken {
        let queue = self.shared.queue();
        let (queue, _) = self
            .shared
            .arrived
            .wait_timeout_while(queue, timeout, |q| q.ops.is_empty() && !q.stopped)
            .unwrap_or_else(PoisonError::into_inner);
        woken(&queue)
    }

    /// The catch-up writer's wait: for a write that has waited `starved`, a backlog of
    /// `catch_up` writes, or a flush.
    pub(super) fn wait_behind(&self) -> Woken {
        let shared = &self.shared;
        let mut queue = shared.queue();
        loop {
            let due = |at: Option<Instant>| at.is_some_and(|t| t.elapsed() >= shared.starved);
            if due(queue.held_since) {
                return Woken::Work { urgent: false };
            }
            if queue.stopped
                || queue.flushes > 0
                || queue.ops.len() >= shared.catch_up
                || due(queue.since)
            {
                return woken(&queue);
            }
            let oldest = match (queue.since, queue.held_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            queue = match oldest {
                None => shared
                    .behind
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(since) => {
                    let left = shared.starved.saturating_sub(since.elapsed());
                    match shared.behind.wait_timeout(queue, left) {
                        Ok((queue, _)) => queue,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
            };
        }
    }

    /// Outcomes are held for their answer after a commit: unless another commit looks at
    /// them first, the catch-up writer does once they have waited `starved`.
    pub(super) fn held(&self) {
        let mut queue = self.shared.queue();
        if queue.held_since.is_none() {
            queue.held_since = Some(Instant::now());
            self.shared.behind.notify_one();
        }
    }

    /// Takes the oldest writes, at most `max`, in the order they came (the commit that
    /// follows looks at the held outcomes too).
    pub(super) fn take(&self, max: usize) -> Vec<Op> {
        let mut queue = self.shared.queue();
        queue.held_since = None;
        let taken: Vec<Op> = if queue.ops.len() <= max {
            // The next batch is likely as large: the daemon's pushes need not grow it again.
            let room = Vec::with_capacity(queue.ops.len());
            std::mem::replace(&mut queue.ops, room)
        } else {
            queue.ops.drain(..max).collect()
        };
        let flushes = taken.iter().filter(|op| matches!(op, Op::Flush(_))).count();
        queue.flushes -= flushes;
        if queue.ops.is_empty() {
            queue.since = None;
        }
        // Otherwise `since` stays: those left came after it, so the catch-up writer may take
        // them a little early, never late.
        taken
    }
}

fn woken(queue: &Queue) -> Woken {
    if !queue.ops.is_empty() {
        Woken::Work {
            urgent: queue.flushes > 0,
        }
    } else if queue.stopped {
        Woken::Stopped
    } else {
        Woken::Timeout
    }
}
