//! Starts a real Prosody 0.12 for one integration test: its own temp dir, free loopback
//! ports, registered users, and `stop`/`kill9`/`restart` for tests that take the server down.
//!
//! Prosody refuses to run as root, so as root it runs as the `prosody` user through
//! `runuser`. runuser forks (it stays as the parent of the real `prosody` process), so
//! signals are sent to the real server process, found as runuser's child.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const HOST: &str = "localhost";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const INSTALL_HINT: &str =
    "Prosody is not installed: run scripts/test (it installs Prosody and slixmpp), \
     or `apt-get install -y prosody`";

/// A running (or stopped, after `stop`/`kill9`) Prosody owned by one test.
pub struct Prosody {
    /// Config, data, logs (`prosody.log`, `prosody.err`, `prosody.out`); removed on drop.
    pub dir: tempfile::TempDir,
    /// Client-to-server port on 127.0.0.1 (users are on host "localhost").
    pub c2s_port: u16,
    /// XEP-0114 component port on 127.0.0.1 (open only if a component is configured).
    pub component_port: u16,
    has_components: bool,
    child: Option<Child>,
}

impl Prosody {
    /// Starts Prosody with external `components` as (domain, secret) and `users` as
    /// (user, password) on host "localhost"; returns once its ports accept connections.
    /// Panics (never skips) if Prosody is missing or does not come up within 20 s.
    pub fn start(components: &[(&str, &str)], users: &[(&str, &str)]) -> Prosody {
        check_installed();
        let dir = tempfile::Builder::new()
            .prefix("prosody-test-")
            .tempdir()
            .expect("create a temp dir for Prosody");
        for sub in ["data", "certs"] {
            fs::create_dir_all(dir.path().join(sub)).expect("create Prosody data/certs dirs");
        }
        let mut server = Prosody {
            dir,
            c2s_port: 0,
            component_port: 0,
            has_components: !components.is_empty(),
            child: None,
        };
        let mut last_error = String::new();
        // A port found free may be taken by someone else before Prosody binds it: retry.
        for attempt in 0..3 {
            (server.c2s_port, server.component_port) = free_ports();
            server.write_config(components);
            if attempt == 0 {
                server.chown();
                for (user, password) in users {
                    server.register(user, password);
                }
            }
            match server.spawn() {
                Ok(()) => return server,
                Err((port_taken, e)) => {
                    server.kill9();
                    last_error = e;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("Prosody did not start: {last_error}");
    }

    /// The config file this server runs with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful shutdown (SIGTERM; Prosody sends `system-shutdown` stream errors), waiting
    /// for the process to exit; escalates to SIGKILL after 10 s. No-op if not running.
    pub fn stop(&mut self) {
        if !self.is_running() {
            self.reap();
            return;
        }
        self.signal("TERM");
        if !self.wait_exit(STOP_TIMEOUT) {
            eprintln!("[prosody] no exit {STOP_TIMEOUT:?} after SIGTERM; sending SIGKILL");
            self.kill9();
        }
        self.reap();
    }

    /// Abrupt death (SIGKILL): sockets are closed by the kernel, no stream errors are sent.
    pub fn kill9(&mut self) {
        if self.is_running() {
            self.signal("KILL");
            if let Some(child) = self.child.as_mut() {
                // runuser exits once its child is gone; kill it too in case it lingers.
                let _ = child.kill();
            }
        }
        self.reap();
    }

    /// Stops the server if it is running and starts it again: same ports, same data
    /// (registered users are kept). Panics if it does not come back within 20 s.
    pub fn restart(&mut self) {
        self.stop();
        if let Err((_, e)) = self.spawn() {
            self.kill9();
            panic!("Prosody did not restart: {e}");
        }
    }

    /// The last lines of Prosody's logs, for panic messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["prosody.log", "prosody.err", "prosody.out"] {
            let text = fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!("===== {name} (last {} lines) =====\n", tail.len()));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn write_config(&self, components: &[(&str, &str)]) {
        let d = self.dir.path().display();
        let mut cfg = format!(
            r#"-- Generated by tests/support/prosody.rs for one integration test.
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ info = "{d}/prosody.log"; error = "{d}/prosody.err" }}
c2s_ports = {{ {c2s} }}; c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {comp} }}; component_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}; http_ports = {{ }}; https_ports = {{ }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "presence"; "message"; "iq" }}
modules_disabled = {{ "s2s"; "offline"; "tls" }}
authentication = "internal_plain"
allow_unencrypted_plain_auth = true
c2s_require_encryption = false
limits = {{ c2s = {{ rate = "100mb/s" }} }}
VirtualHost "{HOST}"
"#,
            c2s = self.c2s_port,
            comp = self.component_port,
        );
        for (domain, secret) in components {
            cfg.push_str(&format!(
                "Component {}\n  component_secret = {}\n",
                lua_str(domain),
                lua_str(secret)
            ));
        }
        fs::write(self.config_path(), cfg).expect("write prosody.cfg.lua");
    }

    /// Gives the whole dir to the prosody user (only needed when we are root).
    fn chown(&self) {
        if !running_as_root() {
            return;
        }
        let status = Command::new("chown")
            .arg("-R")
            .arg("prosody:prosody")
            .arg(self.dir.path())
            .status()
            .expect("run chown");
        assert!(
            status.success(),
            "chown -R prosody:prosody {:?} failed",
            self.dir.path()
        );
    }

    fn register(&self, user: &str, password: &str) {
        // prosodyctl switches to the prosody user by itself when run as root.
        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(self.config_path())
            .args(["register", user, HOST, password])
            .output()
            .expect("run prosodyctl register");
        assert!(
            out.status.success(),
            "prosodyctl register {user} {HOST} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the process and waits until it has bound its ports. The error says
    /// whether a port was taken (worth a retry on other ports) and what happened.
    fn spawn(&mut self) -> Result<(), (bool, String)> {
        // Only what this run appends to the logs counts (they survive restarts).
        let offsets = (self.log_len("prosody.log"), self.log_len("prosody.err"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("prosody.out"))
            .expect("open prosody.out");
        let err = out.try_clone().expect("clone prosody.out handle");
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "prosody", "--", "prosody"]);
            c
        } else {
            Command::new("prosody")
        };
        cmd.arg("-F")
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| (false, format!("cannot spawn prosody: {e}")))?;
        self.child = Some(child);
        self.wait_ready(offsets)
    }

    fn wait_ready(&mut self, (log_offset, err_offset): (u64, u64)) -> Result<(), (bool, String)> {
        let mut wanted = vec![("c2s", self.c2s_port)];
        if self.has_components {
            wanted.push(("component", self.component_port));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let port_taken = read_from(&self.dir.path().join("prosody.err"), err_offset)
                .contains("Failed to open server port");
            if port_taken || !self.is_running() {
                let what = if port_taken {
                    "a port was taken"
                } else {
                    "it exited"
                };
                return Err((port_taken, format!("{what}\n{}", self.log_tail())));
            }
            let log = read_from(&self.dir.path().join("prosody.log"), log_offset);
            let ready = wanted.iter().all(|(service, port)| {
                log.contains(&format!(
                    "Activated service '{service}' on [127.0.0.1]:{port}"
                )) && TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).is_ok()
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let msg = format!("{wanted:?} not ready after {START_TIMEOUT:?}");
                return Err((false, format!("{msg}\n{}", self.log_tail())));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn log_len(&self, name: &str) -> u64 {
        fs::metadata(self.dir.path().join(name)).map_or(0, |m| m.len())
    }

    /// Sends a signal to the real prosody process (runuser's child when run via runuser).
    fn signal(&self, sig: &str) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        let pidfile = || fs::read_to_string(self.dir.path().join("prosody.pid")).ok();
        let pid = server_pid(child.id())
            .or_else(|| pidfile()?.trim().parse().ok())
            .unwrap_or(child.id());
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }

    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() > deadline {
                return false;
            }
            sleep(Duration::from_millis(20));
        }
        true
    }

    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Panics with a pointer to scripts/test when Prosody is not installed.
fn check_installed() {
    for tool in ["prosody", "prosodyctl"] {
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(found, "`{tool}` not found in PATH. {INSTALL_HINT}");
    }
}

/// Two distinct free ports on 127.0.0.1 (both held while choosing, then released).
fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let a = bind().expect("bind 127.0.0.1:0 to find a free port");
    let b = bind().expect("bind 127.0.0.1:0 to find a free port");
    let port = |l: &TcpListener| {
        l.local_addr()
            .expect("local_addr of a bound listener")
            .port()
    };
    (port(&a), port(&b))
}

/// A Lua string literal.
fn lua_str(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

pub(super) fn running_as_root() -> bool {
    // Effective uid, from /proc (no libc dependency needed).
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// The pid of runuser's child, i.e. the real prosody process.
fn server_pid(runuser_pid: u32) -> Option<u32> {
    let path = format!("/proc/{runuser_pid}/task/{runuser_pid}/children");
    let children = fs::read_to_string(path).ok()?;
    let comm = fs::read_to_string(format!("/proc/{runuser_pid}/comm")).unwrap_or_default();
    if comm.trim() != "runuser" {
        return None; // prosody was spawned directly (not root): signal it directly
    }
    children.split_whitespace().next()?.parse().ok()
}

/// The part of a file after `offset` bytes (the log of the current run only).
pub(super) fn read_from(path: &Path, offset: u64) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let start = (offset as usize).min(bytes.len());
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => panic!("read {path:?}: {e}"),
    }
}
