//! Starts a real ejabberd 23.01 for one integration test: its own temp dir, free loopback
//! ports, its own Erlang node, registered users, and `stop`/`kill9`/`restart` for tests
//! that take the server down. Same surface as `Prosody` (tests/support/prosody.rs).
//!
//! ejabberdctl switches to the `ejabberd` user through `su`, which starts a new session,
//! so the server is not in our process group: the process tree under the `ejabberdctl`
//! child (su → sh → beam.smp → erl_child_setup → eimp, inet_gethost) is found through
//! /proc (process_tree.rs), and exactly those processes are signalled and waited for.
//! Distribution listens on a free port of its own (`ERL_DIST_PORT`), so no epmd is started,
//! and the Erlang cookie is set per test, so the ejabberd user's `~/.erlang.cookie` is never
//! touched (node_config.rs). Starting, waiting and stopping as Prosody does: server_process.rs;
//! its users registered, and again after a restart that lost them: users.rs.

mod node_config;
mod users;

use std::fs::File;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::c2s_probe::offers_sasl;
use super::process_tree::{descendants, signal, wait_gone, Proc};
use super::server_process::{
    find_in_path, free_port, running_as_root, start_on_free_ports, Readiness, ServerProcess,
    StartError,
};
use node_config::ctl;

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
/// The logs `log_tail` shows. `ejabberd.out` (the console, which gets the process's stdout
/// and stderr) repeats the log, plus what the VM says before logging starts: a few lines
/// suffice.
const LOGS: &[(&str, usize)] = &[
    ("logs/ejabberd.log", 40),
    ("logs/error.log", 20),
    ("ejabberd.out", 10),
];

static NODES_STARTED: AtomicU32 = AtomicU32::new(0);

/// A running (or stopped, after `stop`/`kill9`) ejabberd owned by one test.
pub struct Ejabberd {
    /// The `ejabberdctl foreground` process and the temp dir: config (`ejabberd.yml`,
    /// `ejabberdctl.cfg`), Mnesia data (`spool/`), logs (`logs/ejabberd.log`,
    /// `logs/error.log`, `ejabberd.out`); removed on drop.
    process: ServerProcess,
    /// Client-to-server port on 127.0.0.1 (users are on host "localhost").
    pub c2s_port: u16,
    /// XEP-0114 component port on 127.0.0.1 (open only if a component is configured): the
    /// first component's; see `component_port_for` for the others.
    pub component_port: u16,
    /// HTTP port on 127.0.0.1 (mod_http_upload's PUT and GET URLs point at it).
    pub http_port: u16,
    /// Erlang distribution port on 127.0.0.1 (ejabberdctl talks to the node through it).
    dist_port: u16,
    /// The Erlang node name, unique per server (tests run in parallel).
    node: String,
    /// Each component domain and the port of its own `ejabberd_service` listener. One
    /// listener per domain: a component authenticated on a listener gets the routes of
    /// every domain that listener serves (ejabberd_service registers all its `hosts`), so
    /// with two domains on one listener each component would get the other's stanzas too.
    components: Vec<(String, u16)>,
    ejabberdctl: PathBuf,
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
    /// `domain_balancing:`, tests/e2e/instances/ejabberd_sharing.rs). It must not repeat a
    /// key the generated file has (`hosts`, `loglevel`, `auth_method`,
    /// `auth_password_format`, `listen`, `acl`, `access_rules`, `modules`). An option
    /// ejabberd does not accept makes the start fail (a panic, with its log).
    pub fn start_with(
        components: &[(&str, &str)],
        users: &[(&str, &str)],
        extra_yaml: &str,
    ) -> Ejabberd {
        let ejabberdctl = check_installed();
        let started = Instant::now();
        let process = ServerProcess::new(
            "ejabberd",
            "ejabberd-test-",
            &["spool", "logs", "upload"],
            LOGS,
            "ejabberd.out",
        );
        // ejabberdctl points the VM's ERL_INETRC at `$CONFIG_DIR/inetrc`.
        File::create(process.path("inetrc")).expect("create inetrc");
        let serial = NODES_STARTED.fetch_add(1, Ordering::Relaxed);
        let mut server = Ejabberd {
            process,
            c2s_port: 0,
            component_port: 0,
            http_port: 0,
            dist_port: 0,
            node: format!("ctest_{}_{serial}@{HOST}", std::process::id()),
            components: Vec::new(),
            ejabberdctl,
            users: users
                .iter()
                .map(|(user, password)| (user.to_string(), password.to_string()))
                .collect(),
        };
        start_on_free_ports("ejabberd", |_attempt, ports| {
            [
                server.c2s_port,
                server.component_port,
                server.dist_port,
                server.http_port,
            ] = ports;
            // The first component on `component_port`, each other on a port of its own.
            server.components = components
                .iter()
                .enumerate()
                .map(|(i, (domain, _))| {
                    let port = if i == 0 {
                        server.component_port
                    } else {
                        free_port()
                    };
                    (domain.to_string(), port)
                })
                .collect();
            server.write_config(components, extra_yaml);
            server.process.chown("ejabberd:ejabberd");
            server.spawn().inspect_err(|_| server.kill9())
        });
        let up = started.elapsed();
        server.register(false);
        eprintln!(
            "[ejabberd] {} up in {up:.1?}, {} users registered in {:.1?}",
            server.node,
            users.len(),
            started.elapsed() - up
        );
        server
    }

    /// The server's temp dir (config, data, logs).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// The config file this server runs with.
    pub fn config_path(&self) -> PathBuf {
        self.process.path("ejabberd.yml")
    }

    /// Whether the server (the `ejabberdctl foreground` process) is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
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
        let tree = self.process_tree();
        let ejabberdctl = &self.ejabberdctl;
        let ask = |process: &ServerProcess| {
            let stopped = ctl(ejabberdctl, process.dir())
                .arg("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !stopped {
                let beam: Vec<Proc> = tree.iter().copied().filter(Proc::is_beam).collect();
                signal("TERM", &beam);
            }
        };
        self.process.stop(STOP_TIMEOUT, ask, kill9);
        wait_gone(&tree, LEFTOVER_TIMEOUT);
    }

    /// Abrupt death (SIGKILL to the whole tree): sockets are closed by the kernel, no
    /// stream errors are sent.
    pub fn kill9(&mut self) {
        kill9(&mut self.process);
    }

    /// Stops the server if it is running and starts it again: same ports, same node,
    /// same data (registered users are kept). Panics if it does not come back in 45 s.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            self.kill9();
            panic!("ejabberd did not restart: {e}");
        }
        self.ensure_users();
    }

    /// The XEP-0114 port on 127.0.0.1 of component `domain`, one of those it was started
    /// with (each has a listener of its own).
    pub fn component_port_for(&self, domain: &str) -> u16 {
        self.components
            .iter()
            .find(|(known, _)| known == domain)
            .map(|(_, port)| *port)
            .unwrap_or_else(|| panic!("ejabberd was not started with component {domain}"))
    }

    /// The last lines of ejabberd's logs, for panic messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Every process this server runs as right now: the `ejabberdctl foreground` child
    /// and all below it (su, sh, beam.smp, erl_child_setup, eimp, ...). Stopping,
    /// killing or dropping the server ends exactly these.
    pub fn process_tree(&self) -> Vec<Proc> {
        process_tree(&self.process)
    }

    /// The Erlang VM (beam.smp), the server proper: a benchmark reads its CPU time from
    /// /proc.
    pub fn pid(&self) -> Option<u32> {
        self.process_tree()
            .into_iter()
            .find(|process| process.is_beam())
            .map(|process| process.pid())
    }

    /// `ejabberdctl` with this server's config, spool and logs.
    fn ctl(&self) -> Command {
        ctl(&self.ejabberdctl, self.dir())
    }

    /// Starts `ejabberdctl foreground` and waits for the "Start accepting TCP connections"
    /// log line of each listener (logged once ejabberd is fully started) and for the port
    /// to accept. Faster than `ejabberdctl started`, which sleeps 2 s and then starts a VM
    /// for each check.
    fn spawn(&mut self) -> Result<(), StartError> {
        // Only what this run appends to the logs counts (they survive restarts).
        let log_offset = self.process.file_len("logs/ejabberd.log");
        let out_offset = self.process.file_len("ejabberd.out");
        let mut command = self.ctl();
        command.arg("foreground");
        self.process.spawn(command)?;
        let mut wanted = vec![
            ("ejabberd_c2s", self.c2s_port),
            ("ejabberd_http", self.http_port),
        ];
        for (_, port) in &self.components {
            wanted.push(("ejabberd_service", *port));
        }
        let c2s_port = self.c2s_port;
        self.process.wait_ready(START_TIMEOUT, &wanted, |p| {
            let log = p.read_from("logs/ejabberd.log", log_offset);
            let out = p.read_from("ejabberd.out", out_offset);
            // A listener's port ("Failed to open socket at ...: address already in use",
            // reason eaddrinuse) or the distribution port ("Protocol 'inet_tcp':
            // register/listen error: eaddrinuse", then the VM exits) was taken.
            if log.contains("eaddrinuse") || out.contains("eaddrinuse") {
                return Readiness::PortTaken;
            }
            let listening = wanted.iter().all(|(module, port)| {
                log.contains(&format!(
                    "Start accepting TCP connections at 127.0.0.1:{port} for {module}"
                )) && TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).is_ok()
            });
            // The listeners open before SASL is set up: ready means the mechanisms the
            // test client uses are offered too (after a restart, `restart` also waits for
            // a real login).
            if listening && offers_sasl(c2s_port, HOST) {
                Readiness::Ready
            } else {
                Readiness::NotYet
            }
        })
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `ejabberdctl foreground` child of `process` and every process below it.
fn process_tree(process: &ServerProcess) -> Vec<Proc> {
    process.child_id().map_or_else(Vec::new, descendants)
}

/// SIGKILL to the whole tree, the VM first, so that nothing else notices before the
/// server is gone; waits for all of it to be gone. No-op if not running.
fn kill9(process: &mut ServerProcess) {
    if process.is_running() {
        let tree = process_tree(process);
        let (beam, rest): (Vec<Proc>, Vec<Proc>) = tree.iter().partition(|p| p.is_beam());
        signal("KILL", &beam);
        signal("KILL", &rest);
        process.kill_child();
        process.reap();
        wait_gone(&tree, LEFTOVER_TIMEOUT);
    }
    process.reap();
}

/// The path of ejabberdctl; panics with a pointer to scripts/test when it is missing,
/// or when we are not root (ejabberdctl runs only as root or as the ejabberd user).
fn check_installed() -> PathBuf {
    let debian = Path::new(DEBIAN_EJABBERDCTL);
    let ejabberdctl = find_in_path("ejabberdctl")
        .or_else(|| debian.is_file().then(|| debian.to_path_buf()))
        .unwrap_or_else(|| panic!("`ejabberdctl` not found in PATH. {INSTALL_HINT}"));
    assert!(
        running_as_root(),
        "ejabberd tests must run as root: ejabberdctl runs the server as the ejabberd user"
    );
    ejabberdctl
}
