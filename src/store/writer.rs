//! The store's one writer: a thread that takes every write waiting (at most `BATCH` of
//! them) and commits them in one transaction, so that a burst of stanzas costs one sync of
//! the disk. Every `PRUNE_EVERY`, and after a commit that left the records over `max_size`,
//! it prunes: finished
//! deliveries older than `retention` go, then the oldest finished ones while the records
//! take more than `max_size`. A failed commit (a full disk) is logged and counted, and the
//! writer goes on: deliveries never wait for the log.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection};

use super::{now_ms, AttemptLog, Finished, Received, Status};
use crate::config::StoreConfig;

/// Writes committed together, at most.
const BATCH: usize = 4096;
/// How often the writer prunes while idle or busy.
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// Records deleted in one statement while pruning (a short lock for the readers).
const PRUNE_CHUNK: i64 = 2000;

pub(super) enum Op {
    Received(Box<Received>),
    Queued(Box<str>, Vec<AttemptLog>),
    Finished(Box<str>, Vec<AttemptLog>, Box<Finished>),
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
}

/// Starts the writer thread; it ends when every sender is dropped.
pub(super) fn start(
    connection: Connection,
    config: &StoreConfig,
    errors: Counter,
) -> Result<SyncSender<Op>, String> {
    let (sender, receiver) = sync_channel(config.max_pending_writes);
    let mut writer = Writer {
        connection,
        retention_ms: config.retention.as_millis() as i64,
        max_size: config.max_size,
        errors,
        path: config.path.display().to_string(),
        last_prune: Instant::now(),
    };
    writer.prune();
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer.run(receiver))
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    Ok(sender)
}

impl Writer {
    fn run(mut self, receiver: Receiver<Op>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match receiver.recv_timeout(PRUNE_EVERY) {
                Ok(op) => batch.push(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
            let over_size = used_bytes(&self.connection).is_ok_and(|used| used > self.max_size);
            if over_size || self.last_prune.elapsed() >= PRUNE_EVERY {
                self.prune();
            }
        }
    }

    fn commit(&mut self, batch: &mut Vec<Op>) {
        let mut flushed = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction()?;
            for op in batch.drain(..) {
                match op {
                    Op::Flush(done) => flushed.push(done),
                    op => apply(&transaction, op)?,
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
            loop {
                let deleted = delete_oldest(&self.connection, Some(cutoff))?;
                if deleted < PRUNE_CHUNK as usize {
                    break;
                }
            }
            while used_bytes(&self.connection)? > self.max_size {
                if delete_oldest(&self.connection, None)? == 0 {
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

fn apply(transaction: &rusqlite::Transaction, op: Op) -> rusqlite::Result<()> {
    match op {
        Op::Received(r) => {
            transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO deliveries (id, component, sender, recipient, kind, \
                     stanza_type, stanza_id, from_room, receipt, party, request, received_at, status) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'in_flight')",
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
                    r.request,
                    r.received_at
                ])?;
        }
        Op::Queued(id, attempts) => {
            add_attempts(transaction, &id, &attempts)?;
            transaction
                .prepare_cached("UPDATE deliveries SET status = 'queued' WHERE id = ?1")?
                .execute(params![&*id])?;
        }
        Op::Finished(id, attempts, finished) => {
            add_attempts(transaction, &id, &attempts)?;
            transaction
                .prepare_cached(
                    "UPDATE deliveries SET status = ?2, finished_at = ?3, sent = ?4, error = ?5 \
                     WHERE id = ?1",
                )?
                .execute(params![
                    &*id,
                    finished.status.as_str(),
                    now_ms(),
                    finished.sent,
                    finished.error
                ])?;
        }
        Op::Replayed(id) => {
            transaction
                .prepare_cached(
                    "UPDATE deliveries SET status = ?2, finished_at = NULL, sent = NULL, \
                     error = NULL WHERE id = ?1",
                )?
                .execute(params![&*id, Status::InFlight.as_str()])?;
        }
        Op::Flush(_) => {}
    }
    Ok(())
}

fn add_attempts(
    transaction: &rusqlite::Transaction,
    id: &str,
    attempts: &[AttemptLog],
) -> rusqlite::Result<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let mut insert = transaction.prepare_cached(
        "INSERT INTO attempts (delivery, at, status, duration_ms, error) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for attempt in attempts {
        insert.execute(params![
            id,
            attempt.at,
            attempt.status,
            attempt.duration_ms,
            attempt.error
        ])?;
    }
    transaction
        .prepare_cached("UPDATE deliveries SET attempts = attempts + ?2 WHERE id = ?1")?
        .execute(params![id, attempts.len() as i64])?;
    Ok(())
}

/// Deletes up to `PRUNE_CHUNK` of the oldest finished deliveries (finished before
/// `before`, when given) with their attempts; returns how many went.
fn delete_oldest(connection: &Connection, before: Option<i64>) -> rusqlite::Result<usize> {
    let before = before.unwrap_or(i64::MAX);
    let transaction = connection.unchecked_transaction()?;
    transaction.execute(
        "CREATE TEMP TABLE IF NOT EXISTS pruned (id TEXT PRIMARY KEY)",
        [],
    )?;
    transaction.execute("DELETE FROM pruned", [])?;
    transaction.execute(
        "INSERT INTO pruned SELECT id FROM deliveries WHERE finished_at IS NOT NULL \
         AND finished_at < ?1 ORDER BY finished_at LIMIT ?2",
        params![before, PRUNE_CHUNK],
    )?;
    transaction.execute(
        "DELETE FROM attempts WHERE delivery IN (SELECT id FROM pruned)",
        [],
    )?;
    let deleted = transaction.execute(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM pruned)",
        [],
    )?;
    transaction.commit()?;
    Ok(deleted)
}

/// The bytes the records take: the file's pages less the free ones.
fn used_bytes(connection: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = connection.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = connection.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let size: i64 = connection.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}
