//! The delivery log (`[store]`): every stanza for the webhook written to one SQLite file
//! before its first attempt, and its outcome after, so that a crash loses nothing and a
//! failed delivery can be seen and replayed. Writes wait in one queue (`inbox.rs`) for the
//! writer, which commits what has piled up in one transaction (`writer.rs`, the statements
//! in `rows.rs`): the stanza's path never waits on the disk. Reads (the API, the
//! redelivery at start) use a connection of their own (`query.rs`), which WAL mode lets run
//! beside the writer. The schema is `schema.rs`.

mod floor;
mod inbox;
mod query;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

use inbox::{NotTaken, Writes};
pub use query::{Detail, Filter, Summary};
use writer::Op;

use crate::config::StoreConfig;
use crate::xml::outgoing::Written;

/// Why the store cannot be used: always naming the file.
#[derive(Debug, thiserror::Error)]
#[error("store {}: {message}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Written, not finished: being delivered, or cut off by a crash (redelivered at start).
    InFlight,
    /// Waiting for the webhook to come back (queue mode).
    Queued,
    /// The webhook answered with a 2xx; what it answered was sent.
    Delivered,
    /// The sender got an error (or nothing could be sent).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InFlight => "in_flight",
            Status::Queued => "queued",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        [
            Status::InFlight,
            Status::Queued,
            Status::Delivered,
            Status::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A stanza for the webhook, as written before its first attempt: what its redelivery
/// needs to POST it again and to answer its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The `webhook-id`, the same on every attempt and every redelivery.
    pub id: String,
    pub component: String,
    pub from: String,
    pub to: String,
    pub kind: String,
    pub stanza_type: Option<String>,
    pub stanza_id: Option<String>,
    /// From a room the bot is in (never answered with an error).
    pub from_room: bool,
    /// A XEP-0184 receipt goes back after a 2xx.
    pub receipt: bool,
    /// The other end of the conversation it belongs to (the key of its order).
    pub party: String,
    /// The JSON body POSTed (shared with the call that POSTs it: not copied).
    pub request: bytes::Bytes,
    /// Milliseconds since the Unix epoch.
    pub received_at: i64,
}

/// One webhook attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttemptLog {
    /// Milliseconds since the Unix epoch, when it started.
    pub at: i64,
    /// The HTTP status; `None`: no answer (connection failure, timeout, body too large).
    pub status: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub status: Status,
    /// The stanzas sent back, as written to the server.
    pub sent: String,
    /// For a failure: why.
    pub error: Option<String>,
}

/// The store, shared by every component and the API: cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    writes: Writes,
    reader: Mutex<rusqlite::Connection>,
    errors: Counter,
}

impl Store {
    /// Opens (or creates) the file and starts its writer thread. A file that is not a
    /// database, or cannot be opened or written, is an error naming it.
    pub fn open(config: &StoreConfig, errors: Counter) -> Result<Store, StoreError> {
        let fail = |message: String| StoreError {
            path: config.path.clone(),
            message,
        };
        let connection = schema::open(&config.path).map_err(fail)?;
        let reader = schema::open_reader(&config.path).map_err(fail)?;
        let writes = writer::start(connection, config, errors.clone()).map_err(fail)?;
        Ok(Store {
            shared: Arc::new(Shared {
                path: config.path.clone(),
                writes,
                reader: Mutex::new(reader),
                errors,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Writes `received`, before its first attempt.
    pub fn received(&self, received: Received) {
        self.write(Op::Received(Box::new(received)));
    }

    /// Appends a delivery's attempts and marks it queued.
    pub fn queued(&self, id: &str, attempts: Vec<AttemptLog>) {
        self.write(Op::Queued(id.into(), attempts));
    }

    /// Appends a delivery's attempts and its outcome.
    pub fn finished(&self, id: &str, attempts: Vec<AttemptLog>, finished: Finished) {
        self.write(Op::Finished(id.into(), attempts, Box::new(finished), None));
    }

    /// As [`Store::finished`], once `written` is raised: once the answer has been written to
    /// the server. Until then the delivery stays in flight, and if the answer is dropped
    /// unwritten (the daemon stopped first), it stays so and the next start delivers it again.
    pub fn finished_when_written(
        &self,
        id: &str,
        attempts: Vec<AttemptLog>,
        finished: Finished,
        written: Written,
    ) {
        self.write(Op::Finished(
            id.into(),
            attempts,
            Box::new(finished),
            Some(written),
        ));
    }

    /// A finished delivery goes again: back in flight until its new outcome.
    pub fn replayed(&self, id: &str) {
        self.write(Op::Replayed(id.into()));
    }

    /// Waits until every write queued before this call is committed (tests, shutdown).
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.shared.writes.send(Op::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Writes never block the caller: past `max_pending_writes` one is dropped and counted.
    fn write(&self, op: Op) {
        match self.shared.writes.try_send(op) {
            Ok(()) => {}
            Err(NotTaken::Full) => {
                self.shared.errors.inc();
                tracing::warn!(
                    "store {}: the writer is behind (max_pending_writes reached): a delivery record is not written",
                    self.shared.path.display()
                );
            }
            Err(NotTaken::Stopped) => {
                self.shared.errors.inc();
            }
        }
    }

    /// Reads with the reader connection (blocking: call it from `spawn_blocking`).
    fn read<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let connection = self
            .shared
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read(&connection).map_err(|e| {
            self.shared.errors.inc();
            StoreError {
                path: self.shared.path.clone(),
                message: e.to_string(),
            }
        })
    }

    /// The deliveries of `component` without an outcome (in flight or queued), oldest
    /// first: what a restart delivers again. Blocking.
    pub fn unfinished(&self, component: &str) -> Result<Vec<(Received, Status)>, StoreError> {
        self.read(|c| query::unfinished(c, component))
    }

    /// One delivery with its attempts. Blocking.
    pub fn detail(&self, id: &str) -> Result<Option<Detail>, StoreError> {
        self.read(|c| query::detail(c, id))
    }

    /// Deliveries matching `filter`, newest first. Blocking.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Summary>, StoreError> {
        self.read(|c| query::list(c, filter))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
#[path = "store/store_tests.rs"]
mod tests;
