//! The writer's two threads on a real file: the background writer runs under `SCHED_IDLE`
//! and the catch-up writer at normal priority, and a backlog, or a write left waiting, is
//! committed by the catch-up writer alone when the background one never gets to run; a
//! commit the file refuses (it is full) costs that batch alone.

use std::time::{Duration, Instant};

use super::*;
use crate::store::schema;

fn config(dir: &std::path::Path, max_pending_writes: usize) -> StoreConfig {
    StoreConfig {
        path: dir.join("deliveries.db"),
        retention: Duration::from_secs(3600),
        max_size: 1 << 30,
        max_pending_writes,
        batch_interval: Duration::from_millis(2),
    }
}

fn received(n: usize) -> Op {
    Op::Received(Box::new(Received {
        id: format!("msg_{n}"),
        component: "bot.example".into(),
        from: "alice@example/a".into(),
        to: "bot.example".into(),
        kind: "message".into(),
        stanza_type: None,
        stanza_id: None,
        from_room: false,
        receipt: false,
        party: "alice@example".into(),
        request: bytes::Bytes::from_static(b"{}"),
        received_at: now_ms(),
    }))
}

fn finished(n: usize) -> Op {
    let finished = Finished {
        status: crate::store::Status::Delivered,
        sent: "<message/>".into(),
        error: None,
    };
    Op::Finished(format!("msg_{n}").into(), vec![], Box::new(finished), None)
}

fn rows(path: &std::path::Path) -> i64 {
    let reader = schema::open_reader(path).expect("reader");
    reader
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .expect("count")
}

/// A writer whose catch-up thread alone runs (the background one is never started: as if
/// the machine never left it a core), committing past 32 waiting writes or `starved`.
struct CatchUpAlone {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    writes: Writes,
    thread: std::thread::JoinHandle<()>,
}

fn catch_up_alone(starved: Duration) -> CatchUpAlone {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), 64);
    let connection = schema::open(&config.path).expect("open");
    let shared: Shared = Arc::new(Mutex::new(
        Writer::new(connection, &config, Counter::default()).expect("writer"),
    ));
    let (writes, taken) = inbox(64, 32, starved);
    let thread = std::thread::spawn(move || catch_up(shared, taken));
    CatchUpAlone {
        path: config.path,
        _dir: dir,
        writes,
        thread,
    }
}

#[test]
fn a_backlog_is_committed_by_the_catch_up_writer_alone() {
    // Its temp dir lives as long as `alone`.
    let alone = catch_up_alone(Duration::from_secs(3600));
    let (path, writes, thread) = (alone.path.clone(), alone.writes, alone.thread);
    for n in 0..31 {
        assert!(writes.try_send(received(n)).is_ok());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rows(&path), 0, "below the backlog, nothing is committed");
    assert!(writes.try_send(received(31)).is_ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&path) < 32 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rows(&path), 32, "the backlog is committed");
    // A flush is answered by it too, at once, whatever waits.
    assert!(writes.try_send(received(32)).is_ok());
    let (done, wait) = std::sync::mpsc::sync_channel(1);
    assert!(writes.send(Op::Flush(done)).is_ok());
    wait.recv_timeout(Duration::from_secs(10)).expect("flushed");
    assert_eq!(rows(&path), 33);
    drop(writes);
    thread
        .join()
        .expect("the catch-up writer ends with its inbox");
}

#[test]
fn a_write_left_waiting_is_committed_by_the_catch_up_writer_alone() {
    // Its temp dir lives as long as `alone`.
    let alone = catch_up_alone(Duration::from_millis(200));
    let (path, writes, thread) = (alone.path.clone(), alone.writes, alone.thread);
    let pushed = Instant::now();
    assert!(writes.try_send(received(0)).is_ok());
    while rows(&path) == 0 && pushed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let waited = pushed.elapsed();
    assert_eq!(
        rows(&path),
        1,
        "one write, no backlog: committed once it waited"
    );
    assert!(
        waited >= Duration::from_millis(200),
        "not before: {waited:?}"
    );
    drop(writes);
    thread
        .join()
        .expect("the catch-up writer ends with its inbox");
}

/// The scheduling policy of each of this process's threads named `name`.
fn policies(name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the name in parentheses start at field 3; the policy is field 41.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(policy) = after.split_whitespace().nth(38) {
            found.push(policy.parse().expect("a policy number"));
        }
    }
    found
}

#[test]
fn the_background_writer_runs_under_sched_idle_and_the_catch_up_writer_does_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let connection = schema::open(&dir.path().join("deliveries.db")).expect("open");
    let writes = start(connection, &config(dir.path(), 64), Counter::default()).expect("start");
    let deadline = Instant::now() + Duration::from_secs(5);
    // A thread takes its name only once it runs, and other tests' stores may run beside
    // this one: the threads are looked at until both kinds are there.
    let idle = libc::SCHED_IDLE as u32;
    let (mut background, mut catch_up) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        background = policies("store-writer");
        catch_up = policies("store-catch-up");
        if background.contains(&idle) && !catch_up.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        background.contains(&idle),
        "store-writer policies: {background:?}"
    );
    assert!(
        !catch_up.is_empty() && catch_up.iter().all(|&p| p == libc::SCHED_OTHER as u32),
        "store-catch-up policies: {catch_up:?}"
    );
    drop(writes);
}

#[test]
fn a_commit_refused_by_a_full_file_is_counted_and_loses_no_delivery_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), 64);
    let errors = Counter::default();
    let connection = schema::open(&config.path).expect("open");
    let mut writer = Writer::new(connection, &config, errors.clone()).expect("writer");
    writer.commit(vec![received(0), received(1)]);
    let in_flight = |writer: &Writer| -> Vec<String> {
        let rows = super::super::query::unfinished(&writer.connection, "bot.example");
        rows.expect("read").into_iter().map(|(r, _)| r.id).collect()
    };
    assert_eq!(in_flight(&writer), ["msg_0", "msg_1"]);

    // The file may grow no more: SQLite answers the next commit as it would a full disk.
    let pages: i64 = writer
        .connection
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .expect("page count");
    writer
        .connection
        .pragma_update(None, "max_page_count", pages)
        .expect("limit");
    let mut batch = vec![finished(0)];
    for n in 2..40 {
        let Op::Received(mut r) = received(n) else {
            unreachable!()
        };
        r.request = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
        batch.push(Op::Received(r));
    }
    writer.commit(batch);
    assert_eq!(errors.get(), 1, "the refused commit is counted");
    assert_eq!(
        rows(&config.path),
        2,
        "none of the refused batch is in the file"
    );

    // The disk has room again: the writer goes on, and msg_0, whose outcome was refused,
    // is still found in flight (the writer followed it again, not what the batch said).
    writer
        .connection
        .pragma_update(None, "max_page_count", 1_000_000)
        .expect("lift the limit");
    writer.commit(vec![finished(1), received(40)]);
    assert_eq!(errors.get(), 1, "this commit went through");
    assert_eq!(in_flight(&writer), ["msg_0", "msg_40"]);
    writer.commit(vec![finished(40)]);
    assert_eq!(in_flight(&writer), ["msg_0"]);
}
