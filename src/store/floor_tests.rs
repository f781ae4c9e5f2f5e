//! The in-flight floor on a real file: it passes finished deliveries and stops at the oldest
//! in flight, and whatever it follows or fails to follow (more in flight than `max`, a
//! queued delivery below it, a replay of an old one), a start finds every delivery without
//! an outcome.

use prometheus_client::metrics::counter::Counter;

use crate::store::tests::{config, delivered, received};
use crate::store::{Status, Store, StoreConfig};

/// The in-flight floor as the file has it (the schema's tests use it too).
pub(in crate::store) fn floor(store: &Store) -> i64 {
    store.read(super::read).expect("floor")
}

fn seq(store: &Store, id: &str) -> i64 {
    store.detail(id).expect("read").expect("found").summary.seq
}

fn unfinished(store: &Store) -> Vec<(String, Status)> {
    let rows = store.unfinished("bot.example").expect("read");
    rows.into_iter().map(|(r, s)| (r.id, s)).collect()
}

fn in_flight(ids: &[&str]) -> Vec<(String, Status)> {
    ids.iter()
        .map(|id| (id.to_string(), Status::InFlight))
        .collect()
}

#[test]
fn the_floor_passes_finished_deliveries_and_stops_at_the_oldest_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&config(dir.path()), Counter::default()).expect("open");
    assert_eq!(floor(&store), 1, "a new file");
    for id in ["a", "b", "c"] {
        store.received(received(id, "alice@example/a", b"{}".to_vec()));
    }
    store.flush();
    assert_eq!(floor(&store), seq(&store, "a"));
    store.finished("b", vec![], delivered());
    store.flush();
    assert_eq!(floor(&store), seq(&store, "a"), "a is still in flight");
    store.finished("a", vec![], delivered());
    store.flush();
    assert_eq!(floor(&store), seq(&store, "c"));
    store.finished("c", vec![], delivered());
    store.flush();
    assert_eq!(floor(&store), seq(&store, "c") + 1, "none in flight");
    drop(store);
    let store = Store::open(&config(dir.path()), Counter::default()).expect("reopen");
    assert!(unfinished(&store).is_empty());
}

#[test]
fn more_in_flight_than_the_writer_follows_are_all_found_after_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let small = StoreConfig {
        max_pending_writes: 4,
        ..config(dir.path())
    };
    // Writes past `max_pending_writes` are dropped: at most 4 between two flushes.
    let each = |store: &Store, ids: &[String], write: &dyn Fn(&Store, &str)| {
        for chunk in ids.chunks(4) {
            for id in chunk {
                write(store, id);
            }
            store.flush();
        }
    };
    let ids: Vec<String> = (0..10).map(|n| format!("d{n}")).collect();
    let store = Store::open(&small, Counter::default()).expect("open");
    each(&store, &ids, &|s, id| {
        s.received(received(id, "alice@example/a", b"{}".to_vec()))
    });
    let finished: Vec<String> = ["d0", "d5"].map(String::from).into();
    each(&store, &finished, &|s, id| {
        s.finished(id, vec![], delivered())
    });
    // The writer follows 4 of the 10; the floor cannot pass the fifth, which it does not.
    assert!(floor(&store) <= seq(&store, "d1"));
    drop(store);

    let store = Store::open(&small, Counter::default()).expect("reopen");
    let open = ["d1", "d2", "d3", "d4", "d6", "d7", "d8", "d9"];
    assert_eq!(unfinished(&store), in_flight(&open));
    // This start follows d1 to d4 and not d6 on: once those four are finished the floor
    // stops at d6, and stays there when the rest but d9 are finished, until a rescan.
    let rest: Vec<String> = open[..7].iter().map(|s| s.to_string()).collect();
    each(&store, &rest, &|s, id| s.finished(id, vec![], delivered()));
    assert_eq!(floor(&store), seq(&store, "d6"));
    drop(store);

    let store = Store::open(&small, Counter::default()).expect("reopen");
    assert_eq!(unfinished(&store), in_flight(&["d9"]));
    store.flush();
    assert_eq!(
        floor(&store),
        seq(&store, "d9"),
        "the start's rescan found d9"
    );
}

#[test]
fn queued_and_replayed_deliveries_below_the_floor_are_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&config(dir.path()), Counter::default()).expect("open");
    for id in ["queued", "old", "new"] {
        store.received(received(id, "alice@example/a", b"{}".to_vec()));
    }
    store.flush();
    store.queued("queued", vec![]);
    store.finished("old", vec![], delivered());
    store.finished("new", vec![], delivered());
    store.flush();
    assert_eq!(floor(&store), seq(&store, "new") + 1);
    drop(store);
    let store = Store::open(&config(dir.path()), Counter::default()).expect("reopen");
    assert_eq!(unfinished(&store), [("queued".to_string(), Status::Queued)]);

    // A replay puts an old delivery back in flight: the floor goes back down to it.
    store.replayed("old");
    store.flush();
    assert_eq!(floor(&store), seq(&store, "old"));
    drop(store);
    let store = Store::open(&config(dir.path()), Counter::default()).expect("reopen");
    assert_eq!(
        unfinished(&store),
        [
            ("queued".to_string(), Status::Queued),
            ("old".to_string(), Status::InFlight)
        ]
    );
}
