//! component-http under test, as a separate process (the release binary, as deployed), so
//! that its own memory can be read from /proc: resident set when idle (`VmRSS` after the
//! handshake, before load) and at its peak (`VmHWM`). Its config lives in a temp dir; its
//! log (RUST_LOG=warn) goes to a file there and is shown when something goes wrong.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{proc_status_kb, Args};

/// The secret of every benchmark component.
pub const SECRET: &str = "secret";

/// What one daemon instance is configured with.
pub struct DaemonConfig<'a> {
    pub server_port: u16,
    pub domain: &'a str,
    pub sink_port: u16,
    pub max_in_flight: usize,
    /// With a delivery log (`[store]`, a file in the daemon's temp dir).
    pub store: bool,
    /// `[runtime] threads` (0: one per core, 1: one thread); None: the binary's default.
    pub threads: Option<usize>,
}

pub struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    pub pid: u32,
}

/// The binary to run: `--daemon PATH`, else the one Cargo built with this benchmark
/// (`target/release/component-http` under `cargo bench`).
pub fn binary(args: &Args) -> PathBuf {
    match args.string("daemon") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_component-http")),
    }
}

impl Daemon {
    pub fn start(binary: &Path, config: &DaemonConfig<'_>) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("component-http-bench-")
            .tempdir()
            .expect("create a temp dir for the daemon");
        let path = dir.path().join("component-http.toml");
        // keepalive: no pings during a run; timeout: generous, so that only a lost answer
        // (not a slow one under 10,000 in flight) becomes an error; max_queued_replies at
        // least max_in_flight, or a burst of 10,000 replies would overflow the outbox; the
        // fairness bounds off (rate limit) or at max_in_flight: a benchmark's senders each
        // send thousands a second, which is throughput to measure, not a flood to refuse.
        let text = format!(
            "[server]\nhost = \"127.0.0.1\"\nport = {}\n\n[[component]]\ndomain = \"{}\"\n\
             secret = \"{SECRET}\"\npost_url = \"http://127.0.0.1:{}/webhook\"\n\
             max_in_flight = {}\nmax_queued_replies = {}\nkeepalive = 3600\ntimeout = 60\n\
             rate_limit = false\nmax_queued_per_conversation = {}\nmax_in_flight_per_sender = {}\n",
            config.server_port,
            config.domain,
            config.sink_port,
            config.max_in_flight,
            config.max_in_flight.max(1024),
            config.max_in_flight,
            config.max_in_flight
        );
        let text = if config.store {
            format!("{text}\n[store]\npath = \"deliveries.db\"\n")
        } else {
            text
        };
        // Only when asked, so that an older binary (`--daemon`), which knows no
        // `[runtime]`, still starts.
        let text = match config.threads {
            None => text,
            Some(threads) => format!("{text}\n[runtime]\nthreads = {threads}\n"),
        };
        fs::write(&path, text).expect("write the daemon's config");
        let log = File::create(dir.path().join("daemon.log")).expect("create the daemon's log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let pid = child.id();
        Daemon { child, dir, pid }
    }

    /// Resident set now, in kB.
    pub fn rss_kb(&self) -> u64 {
        proc_status_kb(self.pid, "VmRSS").unwrap_or_else(|| self.died("VmRSS"))
    }

    /// Peak resident set since start, in kB.
    pub fn peak_rss_kb(&self) -> u64 {
        proc_status_kb(self.pid, "VmHWM").unwrap_or_else(|| self.died("VmHWM"))
    }

    fn died(&self, what: &str) -> u64 {
        panic!(
            "cannot read {what} of component-http (pid {}): has it exited?\n{}",
            self.pid,
            self.log()
        )
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        format!(
            "component-http log (last {} lines):\n{}",
            tail.len(),
            tail.join("\n")
        )
    }

    /// Warnings the daemon logged (one line each), for the report.
    pub fn warnings(&self) -> usize {
        let text = fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        text.lines().filter(|line| line.contains("WARN")).count()
    }

    /// Starts `perf record` (software clock, DWARF call graphs) on the daemon, writing `out`.
    pub fn start_profile(&self, out: &str) -> Child {
        Command::new("perf")
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "999",
                "--call-graph",
                "dwarf,16384",
            ])
            .args(["-o", out, "-p", &self.pid.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("start perf (apt-get install -y linux-perf)")
    }

    /// Stops a `perf record` started by [`Daemon::start_profile`] (SIGINT: it writes its file).
    pub fn stop_profile(mut perf: Child) {
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = perf.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = perf.kill();
        let _ = perf.wait();
    }

    /// SIGTERM (graceful: drain, close the stream), then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("component-http did not exit 15 s after SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
