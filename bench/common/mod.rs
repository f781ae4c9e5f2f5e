//! Shared by both benchmarks: the command line, the closed-loop round driver (a fixed number
//! of exchanges outstanding, each slot re-issued as soon as its answer is back), latency
//! statistics, and memory figures read from /proc.
// Each benchmark uses only part of this module.
#![allow(dead_code)]

pub mod daemon_process;
pub mod peer_xml;
pub mod sink;
pub mod wire;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Whether `cargo bench` started this binary (it passes `--bench`). Without it (`cargo test
/// --all-targets` runs benchmark targets too) a benchmark only says it was skipped, so the
/// test suite never runs a minutes-long measurement.
pub fn bench_mode() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The command line: `--key value` pairs, after the `--bench` flag that `cargo bench` adds.
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses the process arguments; panics with the list of `known` keys on anything else.
    pub fn parse(known: &[&str]) -> Args {
        let mut values = HashMap::new();
        let mut raw = std::env::args().skip(1);
        while let Some(arg) = raw.next() {
            if arg == "--bench" {
                continue;
            }
            let key = arg.strip_prefix("--").unwrap_or(&arg).to_string();
            assert!(
                known.contains(&key.as_str()),
                "unknown argument {arg:?}; known: --{}",
                known.join(" --")
            );
            let value = raw
                .next()
                .unwrap_or_else(|| panic!("--{key} needs a value"));
            values.insert(key, value);
        }
        Args { values }
    }

    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `--key`, if given.
    pub fn optional<T: FromStr>(&self, key: &str) -> Option<T> {
        let text = self.values.get(key)?;
        let value = text.parse();
        Some(value.unwrap_or_else(|_| panic!("--{key} {text:?}: not a valid value")))
    }

    /// The value of `--key`, or `default`.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> T {
        match self.values.get(key) {
            None => default,
            Some(text) => text
                .parse()
                .unwrap_or_else(|_| panic!("--{key} {text:?}: not a valid value")),
        }
    }

    /// A comma-separated list of sizes or counts (`10k` = 10,000 and `200kB` = 200,000 allowed).
    pub fn list(&self, key: &str, default: &[usize]) -> Vec<usize> {
        match self.values.get(key) {
            None => default.to_vec(),
            Some(text) => text.split(',').map(|item| parse_count(item, key)).collect(),
        }
    }
}

fn parse_count(item: &str, key: &str) -> usize {
    let lower = item.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (number, factor) = match digits.strip_suffix('k') {
        Some(number) => (number, 1000),
        None => (digits, 1),
    };
    number
        .parse::<usize>()
        .map(|n| n * factor)
        .unwrap_or_else(|_| panic!("--{key}: {item:?} is not a count"))
}

/// One answer back: which slot, its latency, and whether it was a stanza error.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub slot: u32,
    pub latency_us: u32,
    pub error: bool,
}

/// What one measured round gave.
#[derive(Debug, Default, Clone)]
pub struct RoundResult {
    /// Answers received within the measured window.
    pub completed: u64,
    /// Error answers (within the window and in the drain after it).
    pub errors: u64,
    /// Exchanges still unanswered when the drain deadline passed.
    pub lost: u64,
    pub secs: f64,
    pub latencies_us: Vec<u32>,
}

impl RoundResult {
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.secs
    }

    /// The `p`-th percentile latency in milliseconds (`latencies_us` must be sorted).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) as f64 / 1000.0
    }

    pub fn sort(&mut self) {
        self.latencies_us.sort_unstable();
    }

    /// One line for the per-round log.
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<14} {:>9.0}/s  p50 {:>8.3} ms  p99 {:>8.3} ms  errors {}  lost {}",
            self.rate(),
            self.percentile_ms(50.0),
            self.percentile_ms(99.0),
            self.errors,
            self.lost
        )
    }
}

pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs one closed-loop round: issues slots `0..slots`, re-issues each slot as soon as its
/// answer is back until `duration` has passed, then waits (at most `drain`) for the answers
/// still outstanding. Throughput and latencies count only answers inside the window.
pub async fn closed_loop(
    slots: u32,
    duration: Duration,
    drain: Duration,
    done: &mut mpsc::UnboundedReceiver<Done>,
    issue: &mut dyn FnMut(u32),
) -> RoundResult {
    while done.try_recv().is_ok() {} // late answers of an earlier round
    let start = Instant::now();
    let end = start + duration;
    let hard_stop = tokio::time::Instant::from_std(end + drain);
    let mut result = RoundResult {
        secs: duration.as_secs_f64(),
        ..RoundResult::default()
    };
    for slot in 0..slots {
        issue(slot);
    }
    let mut outstanding = u64::from(slots);
    while outstanding > 0 {
        let Ok(Some(answer)) = tokio::time::timeout_at(hard_stop, done.recv()).await else {
            break; // drain deadline passed (or every reader is gone)
        };
        result.errors += u64::from(answer.error);
        if Instant::now() < end {
            result.completed += 1;
            result.latencies_us.push(answer.latency_us);
            issue(answer.slot);
        } else {
            outstanding -= 1;
        }
    }
    result.lost = outstanding;
    result.sort();
    result
}

/// A field of /proc/PID/status in kB (`VmRSS`: resident now, `VmHWM`: peak resident).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// kB → MB (10^6 bytes would be MB; these are MiB, as /proc counts them).
pub fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// "100 B", "10 kB", "200 kB".
pub fn size_label(bytes: usize) -> String {
    if bytes >= 1000 && bytes % 1000 == 0 {
        format!("{} kB", bytes / 1000)
    } else {
        format!("{bytes} B")
    }
}

/// The machine's load average (1, 5, 15 min), to show how busy the shared cores were.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU time a process has used so far (user + system, all its threads), in microseconds;
/// 0 once it is gone. /proc counts in USER_HZ ticks, 100 a second on x86 and ARM Linux,
/// so the figure moves in steps of 10 ms: a round of a few seconds at thousands of
/// exchanges a second still resolves it well below a microsecond each.
pub fn cpu_us(pid: u32) -> u64 {
    stat_cpu_us(&format!("/proc/{pid}/stat"))
}

/// CPU time used so far by the threads of `pid` named `name` (`store-writer`, ...), in µs.
#[allow(dead_code)] // daemon_alone's, not through_prosody's
pub fn thread_cpu_us(pid: u32, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|task| stat_cpu_us(&task.path().join("stat").to_string_lossy()))
        .sum()
}

/// utime + stime of a `/proc/…/stat` file, in µs.
fn stat_cpu_us(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // The command name (field 2) may hold spaces; count fields after its closing ')'.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after_name.split_whitespace().skip(11); // field 14 is utime
    let mut ticks = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks() + ticks()) * 10_000
}
