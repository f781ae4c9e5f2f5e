//! The store against a real SQLite file in a temp dir: what is written is read back, what
//! retention and `max_size` no longer allow is pruned oldest first, and a file that is
//! not a delivery log is refused with its name. Its helpers serve the store's other tests too.

use std::time::Duration;

use super::*;

pub(super) fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        path: dir.join("deliveries.db"),
        retention: Duration::from_secs(3600),
        max_size: 1 << 30,
        max_pending_writes: 10_000,
        batch_interval: Duration::from_millis(2),
    }
}

pub(super) fn received(id: &str, from: &str, request: Vec<u8>) -> Received {
    Received {
        id: id.into(),
        component: "bot.example".into(),
        from: from.into(),
        to: "bot.example".into(),
        kind: "message".into(),
        stanza_type: Some("chat".into()),
        stanza_id: Some(format!("s-{id}")),
        from_room: false,
        receipt: true,
        party: "alice@example".into(),
        request: request.into(),
        received_at: now_ms(),
    }
}

pub(super) fn delivered() -> Finished {
    Finished {
        status: Status::Delivered,
        sent: "<message/>".into(),
        error: None,
    }
}

#[test]
fn what_is_written_is_read_back_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&config(dir.path()), Counter::default()).expect("open");
    store.received(received("a", "alice@example/phone", b"{\"n\":1}".to_vec()));
    store.received(received("b", "bob@example/pc", b"{\"n\":2}".to_vec()));
    store.received(received("c", "alice@example/pc", b"{\"n\":3}".to_vec()));
    let attempt = AttemptLog {
        at: now_ms(),
        status: Some(200),
        duration_ms: 12,
        error: None,
    };
    // `a` and `c` are written in one batch, `b`'s outcome in the next: an update.
    store.flush();
    store.finished("b", vec![attempt.clone()], delivered());
    store.queued("c", vec![]);
    store.flush();
    drop(store);

    let store = Store::open(&config(dir.path()), Counter::default()).expect("reopen");
    let unfinished = store.unfinished("bot.example").expect("read");
    let ids: Vec<_> = unfinished
        .iter()
        .map(|(r, s)| (r.id.as_str(), *s))
        .collect();
    assert_eq!(ids, [("a", Status::InFlight), ("c", Status::Queued)]);
    let mut expected = received("a", "alice@example/phone", b"{\"n\":1}".to_vec());
    expected.received_at = unfinished[0].0.received_at;
    assert_eq!(unfinished[0].0, expected);
    assert_eq!(&unfinished[0].0.request[..], b"{\"n\":1}");
    assert!(store.unfinished("other.example").expect("read").is_empty());

    let detail = store.detail("b").expect("read").expect("found");
    assert_eq!(detail.summary.status, Status::Delivered);
    assert_eq!(detail.attempts, std::slice::from_ref(&attempt));
    assert_eq!(detail.sent.as_deref(), Some("<message/>"));
    assert!(store.detail("nope").expect("read").is_none());

    // Newest first; a bare `from` matches every resource; the cursor goes on below.
    let all = |filter: Filter| -> Vec<String> {
        let page = store.list(&filter).expect("list");
        page.into_iter().map(|s| s.id).collect()
    };
    let filter = Filter {
        limit: 10,
        ..Filter::default()
    };
    assert_eq!(all(filter.clone()), ["c", "b", "a"]);
    let alice = Filter {
        from: Some("alice@example".into()),
        ..filter.clone()
    };
    assert_eq!(all(alice), ["c", "a"]);
    let queued = Filter {
        status: Some(Status::Queued),
        ..filter.clone()
    };
    assert_eq!(all(queued), ["c"]);
    let first = store
        .list(&Filter {
            limit: 1,
            ..Filter::default()
        })
        .expect("list");
    let next = Filter {
        before: Some(first[0].seq),
        ..filter.clone()
    };
    assert_eq!(all(next), ["b", "a"]);
    // A `%` in the address is a character, not a pattern.
    let pattern = Filter {
        from: Some("%".into()),
        ..filter
    };
    assert!(all(pattern).is_empty());

    // A replay puts it back in flight; its old attempts stay.
    store.replayed("b");
    store.flush();
    let detail = store.detail("b").expect("read").expect("found");
    assert_eq!(detail.summary.status, Status::InFlight);
    assert_eq!(detail.attempts.len(), 1);
    // Its new attempts follow the old ones.
    store.finished("b", vec![attempt.clone()], delivered());
    store.flush();
    let detail = store.detail("b").expect("read").expect("found");
    assert_eq!(
        (detail.summary.status, detail.attempts.len()),
        (Status::Delivered, 2)
    );
    assert_eq!(detail.summary.attempts, 2);
}

#[test]
fn an_outcome_waits_for_its_answer_to_be_written() {
    use crate::xml::outgoing::{OutgoingStanza, Written};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&config(dir.path()), Counter::default()).expect("open");
    let answer = |signal: Written| {
        let element = crate::xml::document::parse_stanza("<message to='a@b'/>", 16).expect("xml");
        let mut stanza = OutgoingStanza::write(&element, 10_000).expect("writable");
        stanza.signal_when_written(signal);
        stanza
    };
    let (sent, dropped) = (Written::default(), Written::default());
    let sent_answer = answer(sent.clone());
    let dropped_answer = answer(dropped.clone());
    store.received(received("sent", "alice@example/a", b"{}".to_vec()));
    store.received(received("dropped", "bob@example/b", b"{}".to_vec()));
    store.finished_when_written("sent", vec![], delivered(), sent);
    store.finished_when_written("dropped", vec![], delivered(), dropped);
    let status = |id: &str| {
        store
            .detail(id)
            .expect("read")
            .expect("found")
            .summary
            .status
    };
    store.flush();
    assert_eq!(
        status("sent"),
        Status::InFlight,
        "its answer is not out yet"
    );
    assert_eq!(status("dropped"), Status::InFlight);

    sent_answer.mark_written();
    drop(dropped_answer);
    store.flush();
    assert_eq!(status("sent"), Status::Delivered);
    // Its answer never left: it stays in flight, for the next start to deliver again.
    assert_eq!(status("dropped"), Status::InFlight);
    drop(store);
    let store = Store::open(&config(dir.path()), Counter::default()).expect("reopen");
    let unfinished = store.unfinished("bot.example").expect("read");
    let ids: Vec<_> = unfinished.iter().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(ids, ["dropped"]);
}

#[test]
fn a_delivery_received_and_finished_in_one_batch_is_one_row_with_its_outcome() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&config(dir.path()), Counter::default()).expect("open");
    let attempt = |status| AttemptLog {
        at: now_ms(),
        status: Some(status),
        duration_ms: 1,
        error: None,
    };
    // Received, queued after a 503, then delivered: all before the writer looks.
    store.received(received("x", "alice@example/a", b"{}".to_vec()));
    store.queued("x", vec![attempt(503)]);
    store.finished("x", vec![attempt(200)], delivered());
    store.flush();
    let detail = store.detail("x").expect("read").expect("found");
    assert_eq!(detail.summary.status, Status::Delivered);
    let statuses: Vec<_> = detail.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
    assert!(detail.summary.finished_at.is_some());
    assert!(store.unfinished("bot.example").expect("read").is_empty());
}

#[test]
fn finished_deliveries_past_retention_are_pruned_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut short = config(dir.path());
    short.retention = Duration::from_millis(200);
    let store = Store::open(&short, Counter::default()).expect("open");
    store.received(received("old", "alice@example/a", b"{}".to_vec()));
    store.received(received("open", "alice@example/a", b"{}".to_vec()));
    store.finished("old", vec![], delivered());
    store.flush();
    drop(store);
    std::thread::sleep(Duration::from_millis(400));
    let store = Store::open(&short, Counter::default()).expect("reopen");
    assert!(store.detail("old").expect("read").is_none(), "pruned");
    // Unfinished records are kept whatever their age: they are still to be delivered.
    assert!(store.detail("open").expect("read").is_some());
}

#[test]
fn past_max_size_the_oldest_finished_go_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut small = config(dir.path());
    small.max_size = 256 * 1024;
    let store = Store::open(&small, Counter::default()).expect("open");
    store.received(received("pending", "alice@example/a", vec![b'x'; 1024]));
    for n in 0..1000 {
        let id = format!("d{n}");
        store.received(received(&id, "alice@example/a", vec![b'x'; 1024]));
        store.finished(&id, vec![], delivered());
        if n % 50 == 0 {
            store.flush();
        }
    }
    store.flush();
    let kept = store
        .list(&Filter {
            limit: query::MAX_PAGE,
            ..Filter::default()
        })
        .expect("list");
    assert!(kept.len() < 500, "{} of 1001 kept", kept.len());
    assert_eq!(kept[0].id, "d999", "the newest is kept");
    assert!(
        store.detail("d0").expect("read").is_none(),
        "the oldest went"
    );
    assert!(store.detail("pending").expect("read").is_some());
    let used = store
        .read(|c| {
            let pages: i64 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
            let size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok((pages - free) * size)
        })
        .expect("size");
    // At most one batch (50 records of about 1 KiB) over the limit between two prunes.
    assert!(used <= 256 * 1024 + 80 * 1024, "{used} bytes used");
}

#[test]
fn a_file_that_is_not_a_delivery_log_is_refused_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path());
    std::fs::write(&config.path, vec![0x5a; 8192]).expect("write garbage");
    let error = Store::open(&config, Counter::default())
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(text.contains("deliveries.db"), "{text}");
    assert!(text.contains("not a database"), "{text}");

    let other = dir.path().join("other.db");
    let connection = rusqlite::Connection::open(&other).expect("sqlite");
    connection
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .expect("table");
    drop(connection);
    let error = Store::open(
        &StoreConfig {
            path: other,
            ..config.clone()
        },
        Counter::default(),
    )
    .err()
    .expect("refused");
    assert!(error.to_string().contains("not a delivery log"), "{error}");

    let missing = StoreConfig {
        path: dir.path().join("no/such/dir/d.db"),
        ..config
    };
    let error = Store::open(&missing, Counter::default())
        .err()
        .expect("refused");
    assert!(error.to_string().contains("no/such/dir"), "{error}");
}
