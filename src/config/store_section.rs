//! The delivery log's keys: the `[store]` section (the SQLite file, how long and how much of
//! it is kept) and each component's queue-mode keys (`when_unreachable`, `queue_max_age`,
//! `queue_probe_interval`, `queue_probe_max_interval`, `queued_notice`, `max_queued`),
//! checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration, seconds};

/// 7 days.
pub const DEFAULT_RETENTION: f64 = 7.0 * 86_400.0;
/// 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024 * 1024;
/// Writes waiting for the store's writer, at most; past it a write is dropped and counted.
pub const DEFAULT_MAX_PENDING_WRITES: usize = 65_536;
/// How long the writer gathers writes before it commits them: 10 ms.
pub const DEFAULT_BATCH_INTERVAL: f64 = 0.01;
pub const DEFAULT_QUEUE_MAX_AGE: f64 = 86_400.0;
pub const DEFAULT_QUEUE_PROBE_INTERVAL: f64 = 5.0;
/// The probe of a long outage backs off to this.
pub const DEFAULT_QUEUE_PROBE_MAX_INTERVAL: f64 = 60.0;
pub const DEFAULT_MAX_QUEUED: usize = 100_000;
/// The longest `retention`: a year.
const MAX_RETENTION: f64 = 366.0 * 86_400.0;

/// The `[store]` section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    path: Option<PathBuf>,
    retention: Option<f64>,
    max_size: Option<u64>,
    max_pending_writes: Option<usize>,
    batch_interval: Option<f64>,
}

/// The delivery log (`[store]`): one SQLite file for the daemon.
#[derive(Debug, Clone, Serialize)]
pub struct StoreConfig {
    /// The file, relative paths taken from the config file's directory.
    pub path: PathBuf,
    /// How long a finished delivery is kept.
    #[serde(serialize_with = "seconds")]
    pub retention: Duration,
    /// The most the file's records may take, in bytes; the oldest finished go first.
    pub max_size: u64,
    /// Writes waiting for the writer thread, at most.
    pub max_pending_writes: usize,
    /// How long the writer gathers writes into one transaction: what a power loss can
    /// cost, at most (with the commit's own time).
    #[serde(serialize_with = "seconds")]
    pub batch_interval: Duration,
}

/// What a message gets when the webhook cannot be reached after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenUnreachable {
    /// The error, as without a store.
    Error,
    /// It waits in the queue (in the store) until the webhook is back.
    Queue,
}

/// A component's queue-mode keys, checked.
#[derive(Debug, Clone, Serialize)]
pub struct QueueConfig {
    pub when_unreachable: WhenUnreachable,
    #[serde(serialize_with = "seconds")]
    pub queue_max_age: Duration,
    #[serde(serialize_with = "seconds")]
    pub queue_probe_interval: Duration,
    /// The probe's interval doubles after each failure, up to this.
    #[serde(serialize_with = "seconds")]
    pub queue_probe_max_interval: Duration,
    /// Sent once per conversation and outage when its first message is queued.
    pub queued_notice: Option<String>,
    pub max_queued: usize,
}

/// The queue-mode keys as serde read them into the component's table.
#[derive(Default)]
pub(super) struct RawQueue {
    pub(super) when_unreachable: Option<WhenUnreachable>,
    pub(super) queue_max_age: Option<f64>,
    pub(super) queue_probe_interval: Option<f64>,
    pub(super) queue_probe_max_interval: Option<f64>,
    pub(super) queued_notice: Option<String>,
    pub(super) max_queued: Option<usize>,
}

pub(super) fn check_store(raw: RawStore, base_dir: &Path) -> Result<StoreConfig, String> {
    let path = raw.path.ok_or("missing key 'path' (the SQLite file)")?;
    if path.as_os_str().is_empty() {
        return Err("key 'path' is empty".into());
    }
    let retention = raw.retention.unwrap_or(DEFAULT_RETENTION);
    if !(retention > 0.0 && retention <= MAX_RETENTION) {
        return Err(format!(
            "key 'retention': {retention} is not a number of seconds in (0, {MAX_RETENTION}]"
        ));
    }
    let max_size = raw.max_size.unwrap_or(DEFAULT_MAX_SIZE);
    if max_size < 64 * 1024 {
        return Err("key 'max_size' must be at least 65536 (bytes)".into());
    }
    let max_pending_writes = raw.max_pending_writes.unwrap_or(DEFAULT_MAX_PENDING_WRITES);
    if max_pending_writes == 0 {
        return Err("key 'max_pending_writes' must be at least 1".into());
    }
    let batch_interval = raw.batch_interval.unwrap_or(DEFAULT_BATCH_INTERVAL);
    if !(batch_interval > 0.0 && batch_interval <= 1.0) {
        return Err(format!(
            "key 'batch_interval': {batch_interval} is not a number of seconds in (0, 1]"
        ));
    }
    Ok(StoreConfig {
        batch_interval: Duration::from_secs_f64(batch_interval),
        path: base_dir.join(path),
        retention: Duration::from_secs_f64(retention),
        max_size,
        max_pending_writes,
    })
}

/// Checks the queue keys; `has_store`: a `[store]` section is there (queue mode needs it).
pub(super) fn check_queue(raw: RawQueue, has_store: bool) -> Result<QueueConfig, String> {
    let when_unreachable = raw.when_unreachable.unwrap_or(WhenUnreachable::Error);
    if when_unreachable == WhenUnreachable::Queue && !has_store {
        return Err("key 'when_unreachable': \"queue\" needs a [store] section".into());
    }
    let max_queued = raw.max_queued.unwrap_or(DEFAULT_MAX_QUEUED);
    if max_queued == 0 {
        return Err("key 'max_queued' must be at least 1".into());
    }
    if raw.queued_notice.as_deref().is_some_and(str::is_empty) {
        return Err("key 'queued_notice' is empty (leave it out for no notice)".into());
    }
    let queue_probe_interval = duration(
        "queue_probe_interval",
        raw.queue_probe_interval,
        DEFAULT_QUEUE_PROBE_INTERVAL,
    )?;
    let queue_probe_max_interval = duration(
        "queue_probe_max_interval",
        raw.queue_probe_max_interval,
        DEFAULT_QUEUE_PROBE_MAX_INTERVAL,
    )?;
    if queue_probe_max_interval < queue_probe_interval {
        return Err("key 'queue_probe_max_interval' is smaller than 'queue_probe_interval'".into());
    }
    Ok(QueueConfig {
        when_unreachable,
        queue_max_age: duration("queue_max_age", raw.queue_max_age, DEFAULT_QUEUE_MAX_AGE)?,
        queue_probe_interval,
        queue_probe_max_interval,
        queued_notice: raw.queued_notice,
        max_queued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_store(path: Option<&str>) -> RawStore {
        RawStore {
            path: path.map(PathBuf::from),
            retention: None,
            max_size: None,
            max_pending_writes: None,
            batch_interval: None,
        }
    }

    #[test]
    fn store_defaults_and_checks() {
        let store = check_store(raw_store(Some("d.db")), Path::new("/etc/ch")).expect("valid");
        assert_eq!(store.path, PathBuf::from("/etc/ch/d.db"));
        assert_eq!(store.retention, Duration::from_secs(604_800));
        assert_eq!(store.max_size, 1 << 30);
        assert_eq!(store.batch_interval, Duration::from_millis(10));
        let absolute = check_store(raw_store(Some("/var/d.db")), Path::new("/etc")).expect("ok");
        assert_eq!(absolute.path, PathBuf::from("/var/d.db"));
        let error = check_store(raw_store(None), Path::new(".")).expect_err("no path");
        assert!(error.contains("'path'"), "{error}");
        let mut raw = raw_store(Some("d.db"));
        raw.max_size = Some(1000);
        let error = check_store(raw, Path::new(".")).expect_err("too small");
        assert!(error.contains("max_size"), "{error}");
        let mut raw = raw_store(Some("d.db"));
        raw.retention = Some(0.0);
        let error = check_store(raw, Path::new(".")).expect_err("zero");
        assert!(error.contains("retention"), "{error}");
    }

    #[test]
    fn queue_mode_needs_a_store() {
        let raw = || RawQueue {
            when_unreachable: Some(WhenUnreachable::Queue),
            ..RawQueue::default()
        };
        let error = check_queue(raw(), false).expect_err("refused");
        assert!(error.contains("[store]"), "{error}");
        let queue = check_queue(raw(), true).expect("valid");
        assert_eq!(queue.queue_max_age, Duration::from_secs(86_400));
        assert_eq!(queue.queue_probe_interval, Duration::from_secs(5));
        assert_eq!(queue.max_queued, 100_000);
        let default = check_queue(RawQueue::default(), false).expect("error mode");
        assert_eq!(default.when_unreachable, WhenUnreachable::Error);
        let mut empty = raw();
        empty.queued_notice = Some(String::new());
        let error = check_queue(empty, true).expect_err("empty notice");
        assert!(error.contains("queued_notice"), "{error}");
    }
}
