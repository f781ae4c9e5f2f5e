//! A batch's writes as SQL: each delivery's outcomes folded into its insert when both are in
//! the batch (`coalesce`), so that most deliveries cost one insert, then each write run
//! by the batch's statements, prepared once for its transaction (`Statements`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::mpsc::SyncSender;

use rusqlite::{params, OptionalExtension};

use super::floor::InFlight;
use super::writer::Op;
use super::{now_ms, AttemptLog, Finished, Received, Status};

/// One write of a batch, once the batch's own writes to a delivery received in it are
/// folded into its insert.
pub(super) enum Write {
    Insert(Box<Received>, Option<Outcome>),
    Update(Box<str>, Outcome),
    Replayed(Box<str>),
    Flush(SyncSender<()>),
}

/// What became of a delivery: its new attempts and state.
pub(super) struct Outcome {
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
pub(super) fn coalesce(ops: impl Iterator<Item = Op>) -> Vec<Write> {
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

/// The statements a batch's writes run, prepared once per batch: looked up in the
/// connection's cache for every write, they cost a hash of their text each time.
pub(super) struct Statements<'t> {
    transaction: &'t rusqlite::Transaction<'t>,
    insert: rusqlite::CachedStatement<'t>,
    body: rusqlite::CachedStatement<'t>,
    update: rusqlite::CachedStatement<'t>,
    /// Rare (a replay): prepared when one comes.
    replayed: Option<rusqlite::CachedStatement<'t>>,
}

impl<'t> Statements<'t> {
    pub(super) fn prepare(transaction: &'t rusqlite::Transaction<'t>) -> rusqlite::Result<Self> {
        Ok(Statements {
            transaction,
            insert: transaction.prepare_cached(
                "INSERT OR IGNORE INTO deliveries (id, component, sender, recipient, kind, \
                 stanza_type, stanza_id, from_room, receipt, party, received_at, status, attempts, \
                 attempt_log, finished_at, sent, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?,
            body: transaction.prepare_cached("INSERT INTO requests (seq, request) VALUES (?1, ?2)")?,
            update: transaction.prepare_cached(
                "UPDATE deliveries SET status = ?2, attempts = attempts + ?3, \
                 attempt_log = attempt_log || ?4, finished_at = ?5, sent = ?6, error = ?7 \
                 WHERE id = ?1",
            )?,
            replayed: None,
        })
    }

    /// Runs one write of the batch (a flush writes nothing), and tells `in_flight` what it
    /// leaves in flight.
    pub(super) fn apply(&mut self, write: Write, in_flight: &mut InFlight) -> rusqlite::Result<()> {
        match write {
            Write::Insert(r, outcome) => {
                let status = outcome.as_ref().map_or(Status::InFlight, Outcome::status);
                let finished = outcome.as_ref().and_then(|o| o.finished.as_deref());
                let inserted = self.insert.execute(params![
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
                    r.received_at,
                    status.as_str(),
                    outcome.as_ref().map_or(0, |o| o.attempts.len() as i64),
                    outcome.as_ref().map(Outcome::log_lines).unwrap_or_default(),
                    finished.map(|_| now_ms()),
                    finished.map(|f| f.sent.as_str()),
                    finished.and_then(|f| f.error.as_deref()),
                ])?;
                // An id written before (a replay's record) keeps its first body.
                if inserted == 1 {
                    let seq = self.transaction.last_insert_rowid();
                    self.body.execute(params![seq, &r.request[..]])?;
                    match status {
                        Status::InFlight => in_flight.started(r.id.into_boxed_str(), seq),
                        _ => in_flight.passed(seq),
                    }
                }
            }
            Write::Update(id, outcome) => {
                let finished = outcome.finished.as_deref();
                self.update.execute(params![
                    &*id,
                    outcome.status().as_str(),
                    outcome.attempts.len() as i64,
                    outcome.log_lines(),
                    finished.map(|_| now_ms()),
                    finished.map(|f| f.sent.as_str()),
                    finished.and_then(|f| f.error.as_deref()),
                ])?;
                in_flight.ended(&id);
            }
            Write::Replayed(id) => {
                let replayed = match &mut self.replayed {
                    Some(statement) => statement,
                    slot @ None => slot.insert(self.transaction.prepare_cached(
                        "UPDATE deliveries SET status = ?2, finished_at = NULL, sent = NULL, \
                         error = NULL WHERE id = ?1 RETURNING seq",
                    )?),
                };
                let seq: Option<i64> = replayed
                    .query_row(params![&*id, Status::InFlight.as_str()], |row| row.get(0))
                    .optional()?;
                if let Some(seq) = seq {
                    in_flight.started(id, seq);
                }
            }
            Write::Flush(_) => {}
        }
        Ok(())
    }
}
