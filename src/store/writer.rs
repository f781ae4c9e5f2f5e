//! The store's one writer: a thread that gathers writes for `batch_interval` after the
//! first, then commits what came (at most `BATCH`) in one transaction, so that a burst of
//! stanzas costs one sync of the disk and one wake-up of this thread. An outcome whose answer
//! is not yet written to the server waits for it (see `Writer::commit`). Every `PRUNE_EVERY`,
//! and after a commit that left the records over `max_size`, it prunes: finished deliveries
//! older than `retention` go, then the oldest finished ones while the records take more than
//! `max_size`. A failed commit (a full disk) is logged and counted, and the writer goes on:
//! deliveries never wait for the log.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, AttemptLog, Finished, Received, Status};
use crate::config::StoreConfig;
use crate::xml::outgoing::Written;

/// Writes committed together, at most.
const BATCH: usize = 4096;
/// How often the writer prunes while idle or busy.
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// Records deleted in one statement while pruning (a short lock for the readers).
const PRUNE_CHUNK: i64 = 2000;

pub(super) enum Op {
    Received(Box<Received>),
    Queued(Box<str>, Vec<AttemptLog>),
    /// With a signal: written once it is raised (the answer is out).
    Finished(Box<str>, Vec<AttemptLog>, Box<Finished>, Option<Written>),
    Replayed(Box<str>),
    /// Answered once everything before it is committed.
    Flush(SyncSender<()>),
}

struct Writer {
    connection: Connection,
    retention_ms: i64,
    max_size: u64,
    errors: Counter,
    path: String,
    last_prune: Instant,
    batch_interval: Duration,
    /// Outcomes waiting for their answer to be written (see `commit`), oldest first.
    held: Vec<Op>,
    /// How many may wait (`max_pending_writes`); past it the oldest are written anyway.
    max_held: usize,
}

/// The writer's way in: a channel whose bound (`max_pending_writes`) is a count of what
/// waits in it, so that its memory grows with what waits, not with the bound.
pub(super) struct Writes {
    sender: Sender<Op>,
    pending: Arc<AtomicUsize>,
    max: usize,
}

/// Why a write was not taken.
pub(super) enum NotTaken {
    Full,
    Stopped,
}

impl Writes {
    /// Takes `op` unless `max` writes already wait; never blocks.
    pub(super) fn try_send(&self, op: Op) -> Result<(), NotTaken> {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(NotTaken::Full);
        }
        self.sender.send(op).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            NotTaken::Stopped
        })
    }

    /// Takes `op` whatever waits (a flush: one at a time per caller).
    pub(super) fn send(&self, op: Op) -> Result<(), NotTaken> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.sender.send(op).map_err(|_| NotTaken::Stopped)
    }
}

/// Starts the writer thread; it ends when every sender is dropped.
pub(super) fn start(
    connection: Connection,
    config: &StoreConfig,
    errors: Counter,
) -> Result<Writes, String> {
    let (sender, receiver) = channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let mut writer = Writer {
        connection,
        retention_ms: config.retention.as_millis() as i64,
        max_size: config.max_size,
        errors,
        path: config.path.display().to_string(),
        last_prune: Instant::now(),
        batch_interval: config.batch_interval,
        held: Vec::new(),
        max_held: config.max_pending_writes,
    };
    writer.prune();
    let taken = pending.clone();
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer.run(receiver, &taken))
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    Ok(Writes {
        sender,
        pending,
        max: config.max_pending_writes,
    })
}

impl Writer {
    fn run(mut self, receiver: Receiver<Op>, pending: &AtomicUsize) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Outcomes waiting for their answer are looked at again even when nothing comes.
            let idle = if self.held.is_empty() {
                PRUNE_EVERY
            } else {
                self.batch_interval
            };
            match receiver.recv_timeout(idle) {
                Ok(Op::Flush(done)) => batch.push(Op::Flush(done)),
                Ok(op) => {
                    batch.push(op);
                    // Gathers for `batch_interval` while asleep: a write sent meanwhile does
                    // not wake this thread (one wake-up per batch, not one per stanza).
                    std::thread::sleep(self.batch_interval);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Every sender is gone: the last writes. An outcome whose answer is still
                    // unwritten is not written: the next start delivers it again.
                    self.commit(&mut batch);
                    return;
                }
            }
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            pending.fetch_sub(batch.len(), Ordering::Relaxed);
            self.commit(&mut batch);
            let over_size = used_bytes(&self.connection).is_ok_and(|used| used > self.max_size);
            if over_size || self.last_prune.elapsed() >= PRUNE_EVERY {
                self.prune();
            }
        }
    }

    /// Commits `batch` with the outcomes held before it whose answer is now out, and holds
    /// those of `batch` whose answer is not. An outcome is sent when its answer is queued
    /// for the server, and the session writes the answer a moment later: written at once, a
    /// `kill -9` in that moment would leave a delivery marked finished whose answer never
    /// left, and the start would not make it again. An outcome whose answer was dropped
    /// unwritten is never written: the delivery stays in flight for the next start. Most
    /// answers are out by the commit after their batch's sleep, so a delivery received and
    /// finished in one batch still costs one insert.
    fn commit(&mut self, batch: &mut Vec<Op>) {
        let mut ops = Vec::with_capacity(batch.len());
        let waiting = std::mem::take(&mut self.held);
        for op in waiting.into_iter().chain(batch.drain(..)) {
            match &op {
                Op::Finished(_, _, _, Some(written)) if !written.is_set() => {
                    if !written.abandoned() {
                        self.held.push(op);
                    }
                }
                _ => ops.push(op),
            }
        }
        if self.held.len() > self.max_held {
            let excess = self.held.len() - self.max_held;
            ops.extend(self.held.drain(..excess));
        }
        let mut flushed = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction()?;
            for op in coalesce(ops.into_iter()) {
                match op {
                    Write::Flush(done) => flushed.push(done),
                    write => apply(&transaction, write)?,
                }
            }
            transaction.commit()
        })();
        if let Err(error) = result {
            batch.clear();
            self.errors.inc();
            tracing::warn!(
                "store {}: cannot write delivery records ({error}); deliveries go on without them",
                self.path
            );
        }
        for done in flushed {
            let _ = done.send(());
        }
    }

    /// Deletes what `retention` and `max_size` no longer allow, then gives the freed pages
    /// back to the file system.
    pub(super) fn prune(&mut self) {
        self.last_prune = Instant::now();
        let cutoff = now_ms() - self.retention_ms;
        let result = (|| -> rusqlite::Result<()> {
            // Rows are in the order received: those received before the cutoff come first,
            // and only they can have finished before it.
            let last_old = last_received_before(&self.connection, cutoff)?;
            while delete_oldest(&self.connection, last_old, Some(cutoff))? == PRUNE_CHUNK as usize {
            }
            while used_bytes(&self.connection)? > self.max_size {
                if delete_oldest(&self.connection, i64::MAX, None)? == 0 {
                    break; // only unfinished records are left: they stay
                }
            }
            self.connection.execute_batch("PRAGMA incremental_vacuum")?;
            Ok(())
        })();
        if let Err(error) = result {
            self.errors.inc();
            tracing::warn!("store {}: cannot prune ({error})", self.path);
        }
    }
}

/// One write of a batch, once the batch's own writes to a delivery received in it are
/// folded into its insert.
enum Write {
    Insert(Box<Received>, Option<Outcome>),
    Update(Box<str>, Outcome),
    Replayed(Box<str>),
    Flush(SyncSender<()>),
}

/// What became of a delivery: its new attempts and state.
struct Outcome {
    attempts: Vec<AttemptLog>,
    finished: Option<Box<Finished>>,
}

impl Outcome {
    fn status(&self) -> Status {
        self.finished.as_ref().map_or(Status::Queued, |f| f.status)
    }

    /// Its attempts as JSON lines, appended to the row's `attempt_log`.
    fn log_lines(&self) -> String {
        let mut lines = String::new();
        for attempt in &self.attempts {
            if let Ok(line) = serde_json::to_string(attempt) {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        lines
    }

    /// A later outcome of the same delivery in the same batch.
    fn then(&mut self, later: Outcome) {
        self.attempts.extend(later.attempts);
        self.finished = later.finished;
    }
}

/// Folds each delivery's outcomes into its insert when both are in what is committed. A
/// replay comes only for a delivery finished in an earlier batch.
fn coalesce(ops: impl Iterator<Item = Op>) -> Vec<Write> {
    let mut writes: Vec<Write> = Vec::new();
    // Keyed by the id's hash, not a copy of it; a hash shared by two ids only makes the
    // second's outcome a separate update.
    let hasher = RandomState::new();
    let mut inserted: HashMap<u64, usize> = HashMap::new();
    for op in ops {
        let (id, outcome) = match op {
            Op::Received(received) => {
                inserted.insert(hasher.hash_one(received.id.as_str()), writes.len());
                writes.push(Write::Insert(received, None));
                continue;
            }
            Op::Replayed(id) => {
                writes.push(Write::Replayed(id));
                continue;
            }
            Op::Flush(done) => {
                writes.push(Write::Flush(done));
                continue;
            }
            Op::Queued(id, attempts) => (
                id,
                Outcome {
                    attempts,
                    finished: None,
                },
            ),
            Op::Finished(id, attempts, finished, _) => (
                id,
                Outcome {
                    attempts,
                    finished: Some(finished),
                },
            ),
        };
        let at = inserted.get(&hasher.hash_one(&*id)).copied();
        match at.and_then(|at| writes.get_mut(at)) {
            Some(Write::Insert(r, Some(earlier))) if *r.id == *id => earlier.then(outcome),
            Some(Write::Insert(r, slot @ None)) if *r.id == *id => *slot = Some(outcome),
            _ => writes.push(Write::Update(id, outcome)),
        }
    }
    writes
}

fn apply(transaction: &rusqlite::Transaction, write: Write) -> rusqlite::Result<()> {
    match write {
        Write::Insert(r, outcome) => {
            let status = outcome.as_ref().map_or(Status::InFlight, Outcome::status);
            let finished = outcome.as_ref().and_then(|o| o.finished.as_deref());
            transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO deliveries (id, component, sender, recipient, kind, \
                     stanza_type, stanza_id, from_room, receipt, party, request, received_at, status, \
                     attempts, attempt_log, finished_at, sent, error) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )?
                .execute(params![
                    r.id,
                    r.component,
                    r.from,
                    r.to,
                    r.kind,
                    r.stanza_type,
                    r.stanza_id,
                    r.from_room,
                    r.receipt,
                    r.party,
                    &r.request[..],
                    r.received_at,
                    status.as_str(),
                    outcome.as_ref().map_or(0, |o| o.attempts.len() as i64),
                    outcome.as_ref().map(Outcome::log_lines).unwrap_or_default(),
                    finished.map(|_| now_ms()),
                    finished.map(|f| f.sent.as_str()),
                    finished.and_then(|f| f.error.as_deref()),
                ])?;
        }
        Write::Update(id, outcome) => {
            let finished = outcome.finished.as_deref();
            transaction
                .prepare_cached(
                    "UPDATE deliveries SET status = ?2, attempts = attempts + ?3, \
                     attempt_log = attempt_log || ?4, finished_at = ?5, sent = ?6, error = ?7 \
                     WHERE id = ?1",
                )?
                .execute(params![
                    &*id,
                    outcome.status().as_str(),
                    outcome.attempts.len() as i64,
                    outcome.log_lines(),
                    finished.map(|_| now_ms()),
                    finished.map(|f| f.sent.as_str()),
                    finished.and_then(|f| f.error.as_deref()),
                ])?;
        }
        Write::Replayed(id) => {
            transaction
                .prepare_cached(
                    "UPDATE deliveries SET status = ?2, finished_at = NULL, sent = NULL, \
                     error = NULL WHERE id = ?1",
                )?
                .execute(params![&*id, Status::InFlight.as_str()])?;
        }
        Write::Flush(_) => {}
    }
    Ok(())
}

/// The `seq` of the last delivery received before `cutoff` (0: none), found by bisecting
/// on `seq` (rows are in the order received): a few lookups, not a scan.
fn last_received_before(connection: &Connection, cutoff: i64) -> rusqlite::Result<i64> {
    let bounds: (Option<i64>, Option<i64>) =
        connection.query_row("SELECT min(seq), max(seq) FROM deliveries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut low), Some(mut high)) = bounds else {
        return Ok(0);
    };
    let mut at_or_after = connection.prepare_cached(
        "SELECT seq, received_at FROM deliveries WHERE seq >= ?1 ORDER BY seq LIMIT 1",
    )?;
    let mut found = 0;
    while low <= high {
        let middle = low + (high - low) / 2;
        let row: Option<(i64, i64)> = at_or_after
            .query_row(params![middle], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((seq, received_at)) if received_at < cutoff => {
                found = seq;
                low = seq + 1;
            }
            _ => high = middle - 1,
        }
    }
    Ok(found)
}

/// Deletes up to `PRUNE_CHUNK` of the oldest finished deliveries with `seq` up to
/// `last_seq` (and finished before `before`, when given); returns how many went.
fn delete_oldest(
    connection: &Connection,
    last_seq: i64,
    before: Option<i64>,
) -> rusqlite::Result<usize> {
    connection.execute(
        "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries WHERE seq <= ?1 \
         AND finished_at IS NOT NULL AND finished_at < ?2 ORDER BY seq LIMIT ?3)",
        params![last_seq, before.unwrap_or(i64::MAX), PRUNE_CHUNK],
    )
}

/// The bytes the records take: the file's pages less the free ones.
fn used_bytes(connection: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = connection.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = connection.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let size: i64 = connection.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}
