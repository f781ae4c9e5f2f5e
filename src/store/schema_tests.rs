//! Files written by the store's earlier schemas, made here as those builds made them, are
//! moved to this one at start and keep what the next start needs: version 1's bodies, and
//! the deliveries version 2 left in flight, found now from the in-flight floor.

use prometheus_client::metrics::counter::Counter;

use crate::store::floor::tests::floor;
use crate::store::tests::{config, delivered, received};
use crate::store::{Status, Store};

/// The names of the file's indexes on `deliveries`, made by a schema (not by UNIQUE).
fn indexes(store: &Store) -> Vec<String> {
    store
        .read(|c| {
            let mut statement = c.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name = 'deliveries' AND sql IS NOT NULL ORDER BY name",
            )?;
            let names = statement.query_map([], |r| r.get(0))?;
            names.collect()
        })
        .expect("indexes")
}

#[test]
fn a_version_1_file_is_moved_to_version_3_and_keeps_its_bodies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path());
    // Version 1's table, as that build made it, with one unfinished delivery.
    let connection = rusqlite::Connection::open(&config.path).expect("sqlite");
    connection
        .execute_batch(
            "CREATE TABLE deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, \
             component TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL, \
             kind TEXT NOT NULL, stanza_type TEXT, stanza_id TEXT, from_room INTEGER NOT NULL, \
             receipt INTEGER NOT NULL, party TEXT NOT NULL, request BLOB NOT NULL, \
             received_at INTEGER NOT NULL, status TEXT NOT NULL, \
             attempts INTEGER NOT NULL DEFAULT 0, attempt_log TEXT NOT NULL DEFAULT '', \
             finished_at INTEGER, sent TEXT, error TEXT); \
             CREATE INDEX deliveries_unfinished ON deliveries (component, seq) \
             WHERE status IN ('in_flight', 'queued'); \
             INSERT INTO deliveries (id, component, sender, recipient, kind, from_room, receipt, \
             party, request, received_at, status) VALUES ('old', 'bot.example', 'alice@example/a', \
             'bot.example', 'message', 0, 0, 'alice@example', X'7B226E223A377D', 1, 'in_flight'); \
             PRAGMA user_version = 1;",
        )
        .expect("a version 1 file");
    drop(connection);

    let store = Store::open(&config, Counter::default()).expect("opened and moved");
    let unfinished = store.unfinished("bot.example").expect("read");
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].0.id, "old");
    assert_eq!(&unfinished[0].0.request[..], b"{\"n\":7}");
    let version: i64 = store
        .read(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
        .expect("version");
    assert_eq!(version, 3);
    assert_eq!(floor(&store), 1, "its one delivery is in flight");

    // A delivery's body goes with it when it is deleted.
    store.received(received("new", "bob@example/b", b"{\"n\":8}".to_vec()));
    store.flush();
    let bodies = |store: &Store| -> i64 {
        store
            .read(|c| c.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)))
            .expect("count")
    };
    assert_eq!(bodies(&store), 2);
    drop(store);
    let connection = rusqlite::Connection::open(&config.path).expect("sqlite");
    connection
        .execute("DELETE FROM deliveries WHERE id = 'old'", [])
        .expect("delete");
    drop(connection);
    let store = Store::open(&config, Counter::default()).expect("reopen");
    assert_eq!(bodies(&store), 1);
    let new = store.detail("new").expect("read").expect("found");
    assert_eq!(&new.received.request[..], b"{\"n\":8}");
}

/// Version 2's tables, as that build made them.
const VERSION_2: &str = "
CREATE TABLE deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    component TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
    kind TEXT NOT NULL, stanza_type TEXT, stanza_id TEXT, from_room INTEGER NOT NULL,
    receipt INTEGER NOT NULL, party TEXT NOT NULL, received_at INTEGER NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    attempt_log TEXT NOT NULL DEFAULT '', finished_at INTEGER, sent TEXT, error TEXT);
CREATE INDEX deliveries_unfinished ON deliveries (component, seq)
    WHERE status IN ('in_flight', 'queued');
CREATE TABLE requests (seq INTEGER PRIMARY KEY, request BLOB NOT NULL);
CREATE TRIGGER deliveries_delete_request AFTER DELETE ON deliveries
    BEGIN DELETE FROM requests WHERE seq = old.seq; END;
PRAGMA user_version = 2;
";

/// Makes a version 2 file with one delivery per status given, `seq` 1 on.
fn version_2_file(path: &std::path::Path, statuses: &[&str]) {
    let connection = rusqlite::Connection::open(path).expect("sqlite");
    connection
        .execute_batch(VERSION_2)
        .expect("a version 2 file");
    for (n, status) in statuses.iter().enumerate() {
        let seq = n as i64 + 1;
        connection
            .execute(
                "INSERT INTO deliveries (seq, id, component, sender, recipient, kind, from_room, \
                 receipt, party, received_at, status) VALUES (?1, ?2, 'bot.example', \
                 'alice@example/a', 'bot.example', 'message', 0, 0, 'alice@example', 1, ?3)",
                rusqlite::params![seq, format!("d{seq}"), status],
            )
            .expect("a delivery");
        connection
            .execute(
                "INSERT INTO requests (seq, request) VALUES (?1, ?2)",
                rusqlite::params![seq, format!("{{\"n\":{seq}}}").as_bytes()],
            )
            .expect("its body");
    }
}

#[test]
fn a_version_2_file_is_moved_to_version_3_and_its_deliveries_in_flight_are_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path());
    version_2_file(
        &config.path,
        &[
            "delivered",
            "in_flight",
            "queued",
            "failed",
            "in_flight",
            "delivered",
        ],
    );
    let store = Store::open(&config, Counter::default()).expect("opened and moved");
    let version: i64 = store
        .read(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
        .expect("version");
    assert_eq!(version, 3);
    assert_eq!(floor(&store), 2, "the oldest in flight");
    assert_eq!(indexes(&store), ["deliveries_queued"]);
    let unfinished = store.unfinished("bot.example").expect("read");
    let found: Vec<_> = unfinished
        .iter()
        .map(|(r, s)| (r.id.as_str(), *s, &r.request[..]))
        .collect();
    assert_eq!(
        found,
        [
            ("d2", Status::InFlight, &b"{\"n\":2}"[..]),
            ("d3", Status::Queued, &b"{\"n\":3}"[..]),
            ("d5", Status::InFlight, &b"{\"n\":5}"[..]),
        ]
    );

    // Once they are finished, the floor passes them: the next start reads nothing.
    store.finished("d2", vec![], delivered());
    store.finished("d5", vec![], delivered());
    store.flush();
    assert_eq!(floor(&store), 7);
    store.received(received("new", "bob@example/b", b"{}".to_vec()));
    store.flush();
    assert_eq!(floor(&store), 7, "the new one is seq 7, in flight");
    drop(store);
    let store = Store::open(&config, Counter::default()).expect("reopen");
    let ids: Vec<_> = store
        .unfinished("bot.example")
        .expect("read")
        .into_iter()
        .map(|(r, s)| (r.id, s))
        .collect();
    assert_eq!(
        ids,
        [
            ("d3".to_string(), Status::Queued),
            ("new".into(), Status::InFlight)
        ]
    );
}

#[test]
fn a_version_2_file_with_nothing_in_flight_starts_its_floor_past_its_last_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path());
    version_2_file(&config.path, &["delivered", "queued", "failed"]);
    let store = Store::open(&config, Counter::default()).expect("opened and moved");
    assert_eq!(floor(&store), 4);
    let unfinished = store.unfinished("bot.example").expect("read");
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].1, Status::Queued);
}
