//! The store's file: opened in WAL mode with full syncs (a commit is on disk when it
//! returns), its tables made when it is new, and checked when it is not (a file that is not
//! a database, or a database of something else, is refused rather than written over).
//!
//! One row per delivery, its attempts in it as JSON lines (`attempt_log`), and the JSON body
//! POSTed in a table of its own (`requests`, same `seq`): a delivery costs two inserts and
//! at most one update, and the update, which comes when the webhook answers later than the
//! batch that wrote the insert, rewrites the small row, not the body. No index follows the
//! deliveries in flight: a start reads the rows from the in-flight floor on (`floor.rs`),
//! and an index holds only the queued ones. Lists and pruning walk the rows in `seq` order,
//! which is the order they were received. A file of version 1 (the body in `deliveries`) or
//! 2 (an index of the deliveries in flight) is moved to version 3 at start.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The schema's version, kept in `PRAGMA user_version`.
const VERSION: i64 = 3;

const TABLES: &str = "
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    component TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    stanza_type TEXT,
    stanza_id TEXT,
    from_room INTEGER NOT NULL,
    receipt INTEGER NOT NULL,
    party TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempt_log TEXT NOT NULL DEFAULT '',
    finished_at INTEGER,
    sent TEXT,
    error TEXT
);
";

/// What version 3 adds: no index of the deliveries in flight (each delivery would add itself
/// to it and remove itself), but the floor they are all at or above (see `floor.rs`), and an
/// index of the queued ones, which an outage alone makes.
const FLOOR: &str = "
CREATE TABLE in_flight_floor (seq INTEGER NOT NULL);
CREATE INDEX deliveries_queued ON deliveries (component, seq) WHERE status = 'queued';
";

/// What versions 1 and 2 share no more: the bodies' table, and its rows going with their
/// delivery's (pruning deletes from `deliveries` only).
const REQUESTS: &str = "
CREATE TABLE requests (
    seq INTEGER PRIMARY KEY,
    request BLOB NOT NULL
);
CREATE TRIGGER deliveries_delete_request AFTER DELETE ON deliveries
    BEGIN DELETE FROM requests WHERE seq = old.seq; END;
";

/// Version 1 kept the body in `deliveries`: it moves to `requests`, in one transaction.
const FROM_VERSION_1: &str = "
INSERT INTO requests (seq, request) SELECT seq, request FROM deliveries;
ALTER TABLE deliveries DROP COLUMN request;
";

/// Version 2 found its deliveries in flight by an index: the floor starts at the oldest.
const FROM_VERSION_2: &str = "
INSERT INTO in_flight_floor (seq) SELECT coalesce(
    (SELECT min(seq) FROM deliveries WHERE status = 'in_flight'),
    (SELECT coalesce(max(seq), 0) + 1 FROM deliveries));
DROP INDEX deliveries_unfinished;
";

/// Opens the writer's connection, making the tables of a new file.
pub(super) fn open(path: &Path) -> Result<Connection, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!("directory {} does not exist", dir.display()));
        }
    }
    let connection = Connection::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let failed = |e: rusqlite::Error| format!("cannot use it: {e}");
    // Freed pages go back to the file system when records are pruned (`max_size`); this
    // only takes effect on a new file, before its first table.
    connection
        .pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(failed)?;
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot use WAL mode (journal_mode is {mode})"));
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(failed)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(failed)?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed)?;
    let tables: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(failed)?;
    match (version, tables) {
        (0, 0) => {
            connection
                .execute_batch(&format!(
                    "BEGIN; {TABLES} {REQUESTS} {FLOOR} INSERT INTO in_flight_floor VALUES (1); \
                     PRAGMA user_version = {VERSION}; COMMIT;"
                ))
                .map_err(|e| format!("cannot make the tables: {e}"))?;
        }
        (1 | 2, _) => {
            check(&connection)?;
            // Version 1 first moves its bodies out, as version 2 did.
            let bodies = match version {
                1 => format!("{REQUESTS} {FROM_VERSION_1}"),
                _ => String::new(),
            };
            connection
                .execute_batch(&format!(
                    "BEGIN; {bodies} {FLOOR} {FROM_VERSION_2} PRAGMA user_version = {VERSION}; \
                     COMMIT;"
                ))
                .map_err(|e| format!("cannot move it from version {version} to {VERSION}: {e}"))?;
        }
        (VERSION, _) => check(&connection)?,
        (0, _) => return Err("this database holds other tables: not a delivery log".into()),
        (other, _) => {
            return Err(format!(
                "schema version {other}, this build knows {VERSION}: written by another version"
            ))
        }
    }
    Ok(connection)
}

/// Refuses a damaged file.
fn check(connection: &Connection) -> Result<(), String> {
    let check: String = connection
        .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
        .map_err(|e| format!("cannot use it: {e}"))?;
    if check != "ok" {
        return Err(format!("the database is damaged: {check}"));
    }
    Ok(())
}

/// Opens the connection the API and the redelivery read with (after `open`).
pub(super) fn open_reader(path: &Path) -> Result<Connection, String> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open for reading: {e}"))?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(|e| format!("cannot use it: {e}"))?;
    Ok(connection)
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
