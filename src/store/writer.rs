//! The store's writer: the thread that gathers writes for `batch_interval` after the first,
//! then commits what came (at most `BATCH`) in one transaction, so that a burst of stanzas
//! costs one sync of the disk and one wake-up. It runs under `SCHED_IDLE`: the disk's work
//! takes a core only when the daemon, the server and the webhook leave one free, so that it
//! does not delay the stanzas it logs. A second thread at normal priority, the catch-up
//! writer, commits instead whenever `CATCH_UP` writes wait or a flush does, so that a busy
//! machine cannot starve the log. The two take turns on one connection, each taking the
//! oldest writes only once it holds it, so the order holds. An outcome whose answer is not
//! yet written to the server waits for it (see `Writer::commit`). Every `PRUNE_EVERY`, and
//! after a commit that left the records over `max_size`, it prunes: finished deliveries
//! older than `retention` go, then the oldest finished ones while the records take more than
//! `max_size`. A failed commit (a full disk) is logged and counted, and the writer goes on:
//! deliveries never wait for the log.

use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection, OptionalExtension};

use super::floor::{self, InFlight};
use super::inbox::{inbox, Inbox, Woken, Writes};
use super::rows::{coalesce, Statements, Write};
use super::{now_ms, AttemptLog, Finished, Received};
use crate::config::StoreConfig;
use crate::xml::outgoing::Written;

/// Writes committed together, at most.
const BATCH: usize = 4096;
/// Writes waiting past which the catch-up writer commits them (at most
/// `max_pending_writes / 2`): a few batch intervals of the fastest traffic measured.
const CATCH_UP: usize = BATCH;
/// Batch intervals a write may wait for the background writer before the catch-up writer
/// commits it: what a power loss can cost when no core is free.
const STARVED_INTERVALS: u32 = 4;
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
    /// The deliveries in flight in the file, for its in-flight floor.
    in_flight: InFlight,
}

/// The connection both writer threads commit with, one at a time.
type Shared = Arc<Mutex<Writer>>;

/// Starts the two writer threads; they end when the returned `Writes` is dropped.
pub(super) fn start(
    connection: Connection,
    config: &StoreConfig,
    errors: Counter,
) -> Result<Writes, String> {
    let (writes, taken) = inbox(
        config.max_pending_writes,
        CATCH_UP.min(config.max_pending_writes / 2),
        config.batch_interval * STARVED_INTERVALS,
    );
    let mut writer = Writer::new(connection, config, errors)?;
    writer.prune();
    let shared: Shared = Arc::new(Mutex::new(writer));
    let spawn = |name: &str, run: fn(Shared, Inbox)| {
        let (shared, taken) = (shared.clone(), taken.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(shared, taken))
            .map_err(|e| format!("cannot start the thread {name}: {e}"))
    };
    spawn("store-writer", background)?;
    spawn("store-catch-up", catch_up)?;
    Ok(writes)
}

/// The background writer: one commit per batch interval while writes come.
fn background(shared: Shared, inbox: Inbox) {
    lower_priority();
    loop {
        // Outcomes waiting for their answer are looked at again even when nothing comes.
        let (idle, interval) = {
            let writer = lock(&shared);
            let idle = if writer.held.is_empty() {
                PRUNE_EVERY
            } else {
                writer.batch_interval
            };
            (idle, writer.batch_interval)
        };
        match inbox.wait(idle) {
            // Gathers for `batch_interval` while asleep: a write pushed meanwhile does not
            // wake this thread (one wake-up per batch, not one per stanza).
            Woken::Work { urgent: false } => std::thread::sleep(interval),
            Woken::Work { urgent: true } | Woken::Timeout => {}
            Woken::Stopped => return last_commit(&shared, &inbox),
        }
        lock(&shared).commit_from(&inbox);
    }
}

/// The catch-up writer: commits only what the background writer left waiting too long, a
/// backlog, or a flush.
fn catch_up(shared: Shared, inbox: Inbox) {
    loop {
        match inbox.wait_behind() {
            Woken::Work { .. } => lock(&shared).commit_from(&inbox),
            Woken::Timeout => {}
            Woken::Stopped => return last_commit(&shared, &inbox),
        }
    }
}

/// Every writer is gone: the last writes. An outcome whose answer is still unwritten is not
/// written: the next start delivers it again.
fn last_commit(shared: &Shared, inbox: &Inbox) {
    let mut writer = lock(shared);
    loop {
        let batch = inbox.take(BATCH);
        if batch.is_empty() {
            return;
        }
        writer.commit(batch);
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Writer> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Puts the calling thread under `SCHED_IDLE`; where that is refused it stays as it was
/// (the catch-up writer keeps the log from falling behind either way).
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` for the call; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::debug!(
            "store writer: SCHED_IDLE refused ({}); it runs at normal priority",
            std::io::Error::last_os_error()
        );
    }
}

impl Writer {
    fn new(
        connection: Connection,
        config: &StoreConfig,
        errors: Counter,
    ) -> Result<Writer, String> {
        let in_flight = InFlight::load(&connection, config.max_pending_writes)
            .map_err(|e| format!("cannot read the deliveries in flight: {e}"))?;
        Ok(Writer {
            connection,
            retention_ms: config.retention.as_millis() as i64,
            max_size: config.max_size,
            errors,
            path: config.path.display().to_string(),
            last_prune: Instant::now(),
            batch_interval: config.batch_interval,
            held: Vec::new(),
            max_held: config.max_pending_writes,
            in_flight,
        })
    }

    /// Takes the oldest waiting writes, now that this thread holds the connection, commits
    /// them, and prunes when it is time.
    fn commit_from(&mut self, inbox: &Inbox) {
        let batch = inbox.take(BATCH);
        self.commit(batch);
        if !self.held.is_empty() {
            inbox.held();
        }
        let over_size = used_bytes(&self.connection).is_ok_and(|used| used > self.max_size);
        if over_size || self.last_prune.elapsed() >= PRUNE_EVERY {
            self.prune();
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
    fn commit(&mut self, batch: Vec<Op>) {
        let mut ops = Vec::with_capacity(batch.len());
        let waiting = std::mem::take(&mut self.held);
        for op in waiting.into_iter().chain(batch) {
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
        let result = (|| -> rusqlite::Result<Option<i64>> {
            let transaction = self.connection.transaction()?;
            {
                let mut statements = Statements::prepare(&transaction)?;
                for op in coalesce(ops.into_iter()) {
                    match op {
                        Write::Flush(done) => flushed.push(done),
                        write => statements.apply(write, &mut self.in_flight)?,
                    }
                }
            }
            let moved = self.in_flight.moved();
            if let Some(floor) = moved {
                floor::write(&transaction, floor)?;
            }
            transaction.commit()?;
            Ok(moved)
        })();
        match result {
            Ok(Some(floor)) => self.in_flight.committed(floor),
            Ok(None) => {}
            Err(error) => {
                self.errors.inc();
                tracing::warn!(
                    "store {}: cannot write delivery records ({error}); deliveries go on without them",
                    self.path
                );
                // What the rolled-back batch told `in_flight` did not happen.
                if let Err(error) = self.in_flight.rescan(&self.connection) {
                    self.in_flight.distrust();
                    tracing::warn!(
                        "store {}: cannot read the deliveries in flight ({error})",
                        self.path
                    );
                }
            }
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
            if self.in_flight.overflowed() {
                self.in_flight.rescan(&self.connection)?;
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

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
