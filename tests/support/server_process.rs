//! What the Prosody and ejabberd harnesses (prosody.rs, ejabberd.rs) do alike, written
//! once: a server process run from a temp dir of its own (config, data, logs), started on
//! free loopback ports again when one of them was taken meanwhile, waited for until it is
//! ready, asked to stop and killed when it does not, and the tail of its logs for panic
//! messages. Each harness says what is its own: the config it writes, the command it runs,
//! what "ready" means in its log, and how its processes are signalled.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The XEP-0045 group chat service both servers run, always on (tests/e2e/rooms.rs).
pub const MUC_SERVICE: &str = "conference.localhost";
/// The XEP-0363 HTTP upload service both servers run, always on (tests/e2e/files.rs): its
/// HTTP side on a free loopback port, uploads allowed to the test's component domains.
pub const UPLOAD_SERVICE: &str = "upload.localhost";
/// The upload services' own size limit, which they publish in disco#info (`max-file-size`):
/// below component-http's default `max_upload_size`, so that tests see it honoured.
pub const UPLOAD_LIMIT: usize = 1024 * 1024;

/// How often a harness looks again while it waits for a start or an exit.
const READY_POLL: Duration = Duration::from_millis(50);
const EXIT_POLL: Duration = Duration::from_millis(20);

/// A server's process, running or not, and its temp dir.
pub struct ServerProcess {
    /// Config, data and logs; removed on drop.
    dir: tempfile::TempDir,
    /// What messages call the server: "Prosody", "ejabberd".
    name: &'static str,
    /// The files `log_tail` shows (paths in `dir`), each with how many of its last lines.
    logs: &'static [(&'static str, usize)],
    /// The file in `dir` that gets the process's stdout and stderr, appended at each start.
    console: &'static str,
    child: Option<Child>,
}

/// Why a start failed, and what happened (with the log tail).
#[derive(Debug)]
pub enum StartError {
    /// A port was taken: worth another attempt, on other ports.
    PortTaken(String),
    /// Anything else: it exited, could not be spawned, or was not ready in time.
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::PortTaken(what) | StartError::Failed(what) => f.write_str(what),
        }
    }
}

/// What a harness sees in its server's log while it waits for the start.
pub enum Readiness {
    Ready,
    NotYet,
    /// The server could not bind one of its ports.
    PortTaken,
}

impl ServerProcess {
    /// A temp dir (`{prefix}XXXX`) with the sub-directories `subdirs`; no process yet.
    pub fn new(
        name: &'static str,
        prefix: &str,
        subdirs: &[&str],
        logs: &'static [(&'static str, usize)],
        console: &'static str,
    ) -> ServerProcess {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .unwrap_or_else(|e| panic!("create a temp dir for {name}: {e}"));
        for sub in subdirs {
            fs::create_dir_all(dir.path().join(sub))
                .unwrap_or_else(|e| panic!("create {name}'s {sub} dir: {e}"));
        }
        ServerProcess {
            dir,
            name,
            logs,
            console,
            child: None,
        }
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name` in the server's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The pid of the process this harness started (the server, or what runs it).
    pub fn child_id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process this harness started is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Spawns `command`, its stdin closed and its output appended to the console file.
    pub fn spawn(&mut self, mut command: Command) -> Result<(), StartError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(self.path(self.console))
            .unwrap_or_else(|e| panic!("open {}: {e}", self.console));
        let err = out.try_clone().expect("clone the console file's handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| StartError::Failed(format!("cannot spawn {command:?}: {e}")))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits up to `timeout` for `look` to see the server ready. It fails at once when the
    /// process exits or `look` sees a port taken; `wanted` says what it waits for, in the
    /// message of a timeout.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        wanted: &dyn std::fmt::Debug,
        mut look: impl FnMut(&ServerProcess) -> Readiness,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            let readiness = look(self);
            if matches!(readiness, Readiness::PortTaken) {
                return Err(StartError::PortTaken(format!(
                    "a port was taken\n{}",
                    self.log_tail()
                )));
            }
            if !self.is_running() {
                return Err(StartError::Failed(format!(
                    "it exited\n{}",
                    self.log_tail()
                )));
            }
            if matches!(readiness, Readiness::Ready) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let msg = format!("{wanted:?} not ready after {timeout:?}");
                return Err(StartError::Failed(format!("{msg}\n{}", self.log_tail())));
            }
            sleep(READY_POLL);
        }
    }

    /// Graceful stop: `ask` asks the server to stop, then it has `timeout` to exit before
    /// `kill`. No-op if it is not running.
    pub fn stop(
        &mut self,
        timeout: Duration,
        ask: impl FnOnce(&ServerProcess),
        kill: impl FnOnce(&mut ServerProcess),
    ) {
        if !self.is_running() {
            self.reap();
            return;
        }
        ask(self);
        if !self.wait_exit(timeout) {
            eprintln!(
                "[{}] still running {timeout:?} after the stop; sending SIGKILL",
                self.name
            );
            kill(self);
        }
        self.reap();
    }

    /// Kills the process this harness started, if it lingers once the server is dead.
    pub fn kill_child(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() > deadline {
                return false;
            }
            sleep(EXIT_POLL);
        }
        true
    }

    /// Waits for the exited process (no zombie left), and forgets it.
    pub fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// The size of `name` in the temp dir (0 if it does not exist yet): where this run's
    /// part of a log begins (the logs survive restarts).
    pub fn file_len(&self, name: &str) -> u64 {
        fs::metadata(self.path(name)).map_or(0, |m| m.len())
    }

    /// The part of `name` in the temp dir after `offset` bytes (the log of this run only).
    pub fn read_from(&self, name: &str, offset: u64) -> String {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => {
                let start = (offset as usize).min(bytes.len());
                String::from_utf8_lossy(&bytes[start..]).into_owned()
            }
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => panic!("read {path:?}: {e}"),
        }
    }

    /// The last lines of the server's logs, for panic messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for (name, count) in self.logs {
            let text = fs::read_to_string(self.path(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(*count)..];
            out.push_str(&format!("===== {name} (last {} lines) =====\n", tail.len()));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Gives the whole temp dir to `owner` (`user:group`), the account the server runs as.
    pub fn chown(&self, owner: &str) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(owner)
            .arg(self.dir())
            .status()
            .expect("run chown");
        assert!(status.success(), "chown -R {owner} {:?} failed", self.dir());
    }
}

/// Runs `attempt` on `N` new free ports until it succeeds, at most 3 times: a port found
/// free may be taken by someone else before the server binds it, and only that is worth
/// another attempt. Panics with the last error, naming the server `name`.
pub fn start_on_free_ports<const N: usize>(
    name: &str,
    mut attempt: impl FnMut(usize, [u16; N]) -> Result<(), StartError>,
) {
    let mut last_error = None;
    for number in 0..3 {
        match attempt(number, free_ports()) {
            Ok(()) => return,
            Err(StartError::PortTaken(e)) => last_error = Some(e),
            Err(StartError::Failed(e)) => panic!("{name} did not start: {e}"),
        }
    }
    panic!("{name} did not start: {}", last_error.unwrap_or_default());
}

/// `N` distinct free ports on 127.0.0.1 (see [`free_port`]).
fn free_ports<const N: usize>() -> [u16; N] {
    std::array::from_fn(|_| free_port())
}

/// Where this process's ports are taken from: below Linux's ephemeral range (32768 and up),
/// which the kernel hands out for every outgoing connection and every `bind(0)` (the
/// Erlang node of ejabberd listens on one). A port found free there with `bind(0)` and
/// released could be taken by any of the tests' own connections before the server or the
/// daemon binds it; a port below it is taken only by a listener that asks for it.
const PORTS: std::ops::Range<u16> = 15_000..32_000;

/// A port on 127.0.0.1 that was free a moment ago and that no other call in this process
/// returned: each call takes the next port of [`PORTS`] that can be bound, starting at a
/// place drawn from the process id, so that test binaries run one after another (or side
/// by side) start far apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORTS.end - PORTS.start);
    let start = std::process::id().wrapping_mul(7_919) % span;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = PORTS.start + offset as u16;
        if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {PORTS:?}");
}

/// Where `tool` is in PATH, if it is.
pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

/// A double-quoted string literal, as both Lua (Prosody's config) and YAML (ejabberd's)
/// read it: backslash, double quote and newline escaped.
pub fn quoted(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

pub fn running_as_root() -> bool {
    // Effective uid, from /proc (no libc dependency needed).
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}
