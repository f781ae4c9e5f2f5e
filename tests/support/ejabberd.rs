//! Starts a real ejabberd 23.01 for one integration test: its own temp dir, free loopback
//! ports, its own Erlang node, registered users, and `stop`/`kill9`/`restart` for tests
//! that take the server down. Same surface as `Prosody` (tests/support/prosody.rs).
//!
//! ejabberdctl switches to the `ejabberd` user through `su`, which starts a new session,
//! so the server is not in our process group: the process tree under the `ejabberdctl`
//! child (su → sh → beam.smp → erl_child_setup → eimp, inet_gethost) is found through
//! /proc (process_tree.rs), and exactly those processes are signalled and waited for. Distribution listens
//! on a free port of its own (`ERL_DIST_PORT`), so no epmd is started, and the Erlang
//! cookie is set per test, so the ejabberd user's `~/.erlang.cookie` is never touched.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::c2s_probe::{logs_in, offers_sasl};
use super::process_tree::{descendants, signal, wait_gone, Proc};
use super::prosody::{read_from, running_as_root};

const HOST: &str = "localhost";
/// A cold start takes 1.5–3.5 s alone; several in parallel on 2 shared cores, far longer.
const START_TIMEOUT: Duration = Duration::from_secs(45);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// For the helper processes (erl_child_setup, eimp) to follow beam.smp out.
const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(5);
const INSTALL_HINT: &str =
    "ejabberd is not installed: run scripts/test (it installs Prosody, ejabberd and \
     slixmpp), or `apt-get install -y ejabberd`";
/// Where Debian puts ejabberdctl (often not in a non-root user's PATH).
const DEBIAN_EJABBERDCTL: &str = "/usr/sbin/ejabberdctl";

static NODES_STARTED: AtomicU32 = AtomicU32::new(0);

/// A running (or stopped, after `stop`/`kill9`) ejabberd owned by one test.
pub struct Ejabberd {
    /// Config (`ejabberd.yml`, `ejabberdctl.cfg`), Mnesia data (`spool/`), logs
    /// (`logs/ejabberd.log`, `logs/error.log`, `ejabberd.out`); removed on drop.
    pub dir: tempfile::TempDir,
    /// Client-to-server port on 127.0.0.1 (users are on host "localhost").
    pub c2s_port: u16,
    /// XEP-0114 component port on 127.0.0.1 (open only if a component is configured).
    pub component_port: u16,
    /// Erlang distribution port on 127.0.0.1 (ejabberdctl talks to the node through it).
    dist_port: u16,
    /// The Erlang node name, unique per server (tests run in parallel).
    node: String,
    has_components: bool,
    ejabberdctl: PathBuf,
    /// The `ejabberdctl foreground` process.
    child: Option<Child>,
    /// The registered users and their passwords: after a restart, ready means they log in.
    users: Vec<(String, String)>,
}

impl Ejabberd {
    /// Starts ejabberd with external `components` as (domain, secret) and `users` as
    /// (user, password) on host "localhost"; returns once its ports accept connections
    /// and the users are registered. Panics (never skips) if ejabberd is missing or does
    /// not come up within 45 s.
    pub fn start(components: &[(&str, &str)], users: &[(&str, &str)]) -> Ejabberd {
        Ejabberd::start_with(components, users, "")
    }

    /// `start`, with `extra_yaml` appended to `ejabberd.yml` as top-level options (e.g.
    /// `domain_balancing:`, tests/e2e/instances/ejabberd_sharing.rs). It must not repeat a key the
    /// generated file has (`hosts`, `loglevel`, `auth_method`, `auth_password_format`,
    /// `listen`, `acl`, `access_rules`, `modules`). An option ejabberd does not accept
    /// makes the start fail (a panic, with its log).
    pub fn start_with(
        components: &[(&str, &str)],
        users: &[(&str, &str)],
        extra_yaml: &str,
    ) -> Ejabberd {
        let ejabberdctl = check_installed();
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("ejabberd-test-")
            .tempdir()
            .expect("create a temp dir for ejabberd");
        for sub in ["spool", "logs"] {
            fs::create_dir_all(dir.path().join(sub)).expect("create ejabberd spool/logs dirs");
        }
        // ejabberdctl points the VM's ERL_INETRC at `$CONFIG_DIR/inetrc`.
        File::create(dir.path().join("inetrc")).expect("create inetrc");
        let serial = NODES_STARTED.fetch_add(1, Ordering::Relaxed);
        let mut server = Ejabberd {
            dir,
            c2s_port: 0,
            component_port: 0,
            dist_port: 0,
            node: format!("ctest_{}_{serial}@{HOST}", std::process::id()),
            has_components: !components.is_empty(),
            ejabberdctl,
            child: None,
            users: users
                .iter()
                .map(|(user, password)| (user.to_string(), password.to_string()))
                .collect(),
        };
        let mut last_error = String::new();
        // A port found free may be taken by someone else before ejabberd binds it: retry.
        for _attempt in 0..3 {
            [server.c2s_port, server.component_port, server.dist_port] = free_ports();
            server.write_config(components, extra_yaml);
            server.chown();
            match server.spawn() {
                Ok(()) => {
                    let up = started.elapsed();
                    server.register(false);
                    eprintln!(
                        "[ejabberd] {} up in {up:.1?}, {} users registered in {:.1?}",
                        server.node,
                        users.len(),
                        started.elapsed() - up
                    );
                    return server;
                }
                Err((port_taken, e)) => {
                    server.kill9();
                    last_error = e;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("ejabberd did not start: {last_error}");
    }

    /// The config file this server runs with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("ejabberd.yml")
    }

    /// Whether the server (the `ejabberdctl foreground` process) is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful shutdown with `ejabberdctl stop`, waiting for the whole process tree to
    /// exit; SIGTERM if ejabberdctl fails, SIGKILL after 15 s. No-op if not running.
    ///
    /// Not SIGTERM first: on SIGTERM, ejabberd 23.01 casts `system-shutdown` to each
    /// client session and at once terminates the sessions' supervisor, so a session may
    /// be killed before it has written the stream error (seen in tests/harness.rs).
    /// `ejabberdctl stop` ends the session manager (which sends the errors), waits 1 s,
    /// then stops the node: every client gets its `system-shutdown`, as with Prosody.
    pub fn stop(&mut self) {
        if !self.is_running() {
            self.reap();
            return;
        }
        let tree = self.process_tree();
        let stopped = self
            .ctl()
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            let beam: Vec<Proc> = tree.iter().copied().filter(Proc::is_beam).collect();
            signal("TERM", &beam);
        }
        if !self.wait_exit(STOP_TIMEOUT) {
            eprintln!("[ejabberd] still running {STOP_TIMEOUT:?} after stop; sending SIGKILL");
            self.kill9();
        }
        self.reap();
        wait_gone(&tree, LEFTOVER_TIMEOUT);
    }

    /// Abrupt death (SIGKILL to the whole tree): sockets are closed by the kernel, no
    /// stream errors are sent.
    pub fn kill9(&mut self) {
        if self.is_running() {
            let tree = self.process_tree();
            // The VM first, so that nothing else notices before the server is gone.
            let (beam, rest): (Vec<Proc>, Vec<Proc>) = tree.iter().partition(|p| p.is_beam());
            signal("KILL", &beam);
            signal("KILL", &rest);
            if let Some(child) = self.child.as_mut() {
                let _ = child.kill();
            }
            self.reap();
            wait_gone(&tree, LEFTOVER_TIMEOUT);
        }
        self.reap();
    }

    /// Stops the server if it is running and starts it again: same ports, same node,
    /// same data (registered users are kept). Panics if it does not come back in 45 s.
    pub fn restart(&mut self) {
        self.stop();
        if let Err((_, e)) = self.spawn() {
            self.kill9();
            panic!("ejabberd did not restart: {e}");
        }
        self.ensure_users();
    }

    /// After a kill -9, ejabberd may come back without the users registered last (Mnesia
    /// had not written them to disk: "Invalid username or password" from then on). Waits
    /// until every user logs in, registering them all again once if one is refused.
    fn ensure_users(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut registered_again = false;
        loop {
            let answers: Vec<Option<bool>> = self
                .users
                .iter()
                .map(|(user, password)| logs_in(self.c2s_port, HOST, user, password))
                .collect();
            if answers.iter().all(|answer| *answer == Some(true)) {
                return;
            }
            if answers.contains(&Some(false)) && !registered_again {
                self.register(true);
                eprintln!(
                    "[ejabberd] {} lost users in the restart: registered them again",
                    self.node
                );
                registered_again = true;
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                self.kill9();
                panic!("ejabberd restarted but its users cannot log in ({answers:?}):\n{tail}");
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of ejabberd's logs, for panic messages. `ejabberd.out` (the console)
    /// repeats the log, plus what the VM says before logging starts: a few lines suffice.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for (name, count) in [
            ("logs/ejabberd.log", 40),
            ("logs/error.log", 20),
            ("ejabberd.out", 10),
        ] {
            let text = fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(count)..];
            out.push_str(&format!("===== {name} (last {} lines) =====\n", tail.len()));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn write_config(&self, components: &[(&str, &str)], extra_yaml: &str) {
        let mut yml = format!(
            r#"# Generated by tests/support/ejabberd.rs for one integration test.
hosts: [{host}]
loglevel: info
auth_method: internal
auth_password_format: plain
listen:
  - port: {c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
"#,
            host = yaml_str(HOST),
            c2s = self.c2s_port,
        );
        if !components.is_empty() {
            yml.push_str(&format!(
                "  - port: {}\n    ip: \"127.0.0.1\"\n    module: ejabberd_service\n    hosts:\n",
                self.component_port
            ));
            for (domain, secret) in components {
                yml.push_str(&format!(
                    "      {}:\n        password: {}\n",
                    yaml_str(domain),
                    yaml_str(secret)
                ));
            }
        }
        // Users are registered with `ejabberdctl register` (no in-band registration).
        // PLAIN is offered on the unencrypted stream as long as TLS is not required.
        // No mod_offline (as Prosody's config disables it), no stream management.
        yml.push_str(
            r#"acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
"#,
        );
        if !extra_yaml.trim().is_empty() {
            yml.push_str("# Extra top-level options from the test (Ejabberd::start_with).\n");
            yml.push_str(extra_yaml.trim_end());
            yml.push('\n');
        }
        fs::write(self.config_path(), yml).expect("write ejabberd.yml");
        // INET_DIST_INTERFACE=127.0.0.1 would make ejabberdctl start one more Erlang VM
        // on every call (to parse the address, ~0.7 s each); passing the parsed form
        // directly does the same: distribution listens on 127.0.0.1:ERL_DIST_PORT only.
        let cookie = format!(
            "c{}x{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let ctl = format!(
            "# Generated by tests/support/ejabberd.rs for one integration test.\n\
             ERLANG_NODE={node}\n\
             ERL_DIST_PORT={dist}\n\
             ERL_OPTIONS=\"-setcookie {cookie} -kernel inet_dist_use_interface {{127,0,0,1}}\"\n\
             EJABBERD_BYPASS_WARNINGS=true\n",
            node = self.node,
            dist = self.dist_port,
        );
        fs::write(self.dir.path().join("ejabberdctl.cfg"), ctl).expect("write ejabberdctl.cfg");
    }

    /// Gives the whole dir to the ejabberd user (ejabberdctl switches to it).
    fn chown(&self) {
        let status = Command::new("chown")
            .arg("-R")
            .arg("ejabberd:ejabberd")
            .arg(self.dir.path())
            .status()
            .expect("run chown");
        assert!(
            status.success(),
            "chown -R ejabberd:ejabberd {:?} failed",
            self.dir.path()
        );
    }

    /// `ejabberdctl` with this server's config, spool and logs.
    fn ctl(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.ejabberdctl);
        cmd.arg("--config-dir")
            .arg(d)
            .arg("--spool")
            .arg(d.join("spool"))
            .arg("--logs")
            .arg(d.join("logs"))
            .stdin(Stdio::null());
        cmd
    }

    /// Registers every user, all at once (each `ejabberdctl register` is an Erlang VM);
    /// with `again`, a user already there is not a failure.
    fn register(&mut self, again: bool) {
        let runs: Vec<_> = self
            .users
            .iter()
            .map(|(user, password)| {
                let child = self
                    .ctl()
                    .args(["register", user, HOST, password])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run ejabberdctl register");
                (user, child)
            })
            .collect();
        let mut failures = String::new();
        for (user, child) in runs {
            let out: Output = child.wait_with_output().expect("wait for ejabberdctl");
            let said = [&out.stdout, &out.stderr].map(|bytes| String::from_utf8_lossy(bytes));
            let already_there = again && said.iter().any(|s| s.contains("already registered"));
            if !(out.status.success() || already_there) {
                failures.push_str(&format!(
                    "ejabberdctl register {user} {HOST} failed ({}):\n{}{}\n",
                    out.status, said[0], said[1]
                ));
            }
        }
        if !failures.is_empty() {
            let tail = self.log_tail();
            self.kill9();
            panic!("{failures}{tail}");
        }
    }

    /// Starts `ejabberdctl foreground` and waits until both ports are open. The error
    /// says whether a port was taken (worth a retry on other ports) and what happened.
    fn spawn(&mut self) -> Result<(), (bool, String)> {
        // Only what this run appends to the logs counts (they survive restarts).
        let offsets = (
            self.file_len("logs/ejabberd.log"),
            self.file_len("ejabberd.out"),
        );
        let out = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("ejabberd.out"))
            .expect("open ejabberd.out");
        let err = out.try_clone().expect("clone ejabberd.out handle");
        let child = self
            .ctl()
            .arg("foreground")
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| (false, format!("cannot spawn ejabberdctl foreground: {e}")))?;
        self.child = Some(child);
        self.wait_ready(offsets)
    }

    /// Waits for the "Start accepting TCP connections" log line of each listener (logged
    /// once ejabberd is fully started) and for the port to accept. Faster than
    /// `ejabberdctl started`, which sleeps 2 s and then starts a VM for each check.
    fn wait_ready(&mut self, (log_offset, out_offset): (u64, u64)) -> Result<(), (bool, String)> {
        let mut wanted = vec![("ejabberd_c2s", self.c2s_port)];
        if self.has_components {
            wanted.push(("ejabberd_service", self.component_port));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = read_from(&self.dir.path().join("logs/ejabberd.log"), log_offset);
            let out = read_from(&self.dir.path().join("ejabberd.out"), out_offset);
            // A listener's port ("Failed to open socket at ...: address already in use",
            // reason eaddrinuse) or the distribution port ("Protocol 'inet_tcp':
            // register/listen error: eaddrinuse", then the VM exits) was taken.
            let port_taken = log.contains("eaddrinuse") || out.contains("eaddrinuse");
            if port_taken || !self.is_running() {
                let what = if port_taken {
                    "a port was taken"
                } else {
                    "it exited"
                };
                return Err((port_taken, format!("{what}\n{}", self.log_tail())));
            }
            let ready = wanted.iter().all(|(module, port)| {
                log.contains(&format!(
                    "Start accepting TCP connections at 127.0.0.1:{port} for {module}"
                )) && TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).is_ok()
            });
            // The listeners open before SASL is set up: ready means the mechanisms the
            // test client uses are offered too (after a restart, `restart` also waits for
            // a real login).
            if ready && offers_sasl(self.c2s_port, HOST) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let msg = format!("{wanted:?} not ready after {START_TIMEOUT:?}");
                return Err((false, format!("{msg}\n{}", self.log_tail())));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn file_len(&self, name: &str) -> u64 {
        fs::metadata(self.dir.path().join(name)).map_or(0, |m| m.len())
    }

    /// Every process this server runs as right now: the `ejabberdctl foreground` child
    /// and all below it (su, sh, beam.smp, erl_child_setup, eimp, ...). Stopping,
    /// killing or dropping the server ends exactly these.
    pub fn process_tree(&self) -> Vec<Proc> {
        match self.child.as_ref() {
            Some(child) => descendants(child.id()),
            None => Vec::new(),
        }
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

impl Drop for Ejabberd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The path of ejabberdctl; panics with a pointer to scripts/test when it is missing,
/// or when we are not root (ejabberdctl runs only as root or as the ejabberd user).
fn check_installed() -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ejabberdctl"))
            .find(|p| p.is_file())
    });
    let debian = Path::new(DEBIAN_EJABBERDCTL);
    let ejabberdctl = in_path
        .or_else(|| debian.is_file().then(|| debian.to_path_buf()))
        .unwrap_or_else(|| panic!("`ejabberdctl` not found in PATH. {INSTALL_HINT}"));
    assert!(
        running_as_root(),
        "ejabberd tests must run as root: ejabberdctl runs the server as the ejabberd user"
    );
    ejabberdctl
}

/// N distinct free ports on 127.0.0.1 (all held while choosing, then released).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| {
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .expect("bind 127.0.0.1:0 to find a free port")
        })
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("local_addr of a bound listener")
            .port()
    })
}

/// A YAML double-quoted string.
fn yaml_str(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}
