//! The delivery log (issue 19) against real Prosody, real clients and the real SQLite file,
//! with component-http as its own process (killed with SIGKILL, stopped with SIGTERM):
//! nothing in flight is lost when the daemon is killed (here), queue mode through a long
//! webhook outage and a restart (`queue.rs`), replays (`replay.rs`), a file written by an
//! earlier build moved at start (`upgrade.rs`), and what a start left unfinished, or a
//! queue, made only once the server can take the replies (`server_late.rs`,
//! `queue_server_away.rs`, through a `Relay` the test opens and closes).

mod queue;
mod queue_server_away;
mod replay;
mod server_late;
mod upgrade;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fixture::{is_chat_state_notice, wait_component_online, DOMAIN, SECRET};
use crate::support::client::XmppClient;
use crate::support::server_process::free_port;
use crate::support::xmpp_server::{Server, XmppServer};
use crate::webhook_server::{Canned, WebhookServer};

pub use crate::http_api::TOKEN;
const BINARY: &str = env!("CARGO_BIN_EXE_component-http");

/// component-http as a process of its own, on a config file in a temp dir.
pub struct DaemonProcess {
    child: tokio::process::Child,
    log: PathBuf,
}

impl DaemonProcess {
    pub fn start(dir: &Path, config: &str) -> DaemonProcess {
        let config_path = dir.join("component-http.toml");
        std::fs::write(&config_path, config).expect("write config");
        let runs = std::fs::read_dir(dir).map_or(0, Iterator::count);
        let log = dir.join(format!("daemon-{runs}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(BINARY)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "component_http=info")
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .expect("start component-http");
        DaemonProcess { child, log }
    }

    /// SIGKILL, as a crash or the OOM killer would: nothing is flushed, nothing answered.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("killed daemon reaped");
    }

    /// SIGTERM and the graceful shutdown.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: kill(2) on our own child's pid.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let status = exited.expect("the daemon stops within 30 s").expect("wait");
        assert!(
            status.success(),
            "graceful exit: {status}; log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A loopback relay to a server's port, opened and closed by the test: closed, it drops
/// every connection through it, as a lost network would, and refuses new ones.
pub struct Relay {
    pub port: u16,
    to: u16,
    accepting: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    pub fn new(to: u16) -> Relay {
        Relay {
            port: free_port(),
            to,
            accepting: None,
        }
    }

    /// Forwards every connection to `port` to the server's port, from now on.
    pub async fn open(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the relay");
        let to = self.to;
        self.accepting = Some(tokio::spawn(async move {
            // Dropped with this task, the set aborts every connection's task.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    pub fn close(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
    }

    /// `config` (from `store_config`) with the component reaching the server through here.
    pub fn config(&self, server: &XmppServer, config: &str) -> String {
        config.replace(
            &format!("port = {}\n", server.component_port()),
            &format!("port = {}\n", self.port),
        )
    }
}

/// The config of one component with a store in `dir` and the API on `api_port`.
pub fn store_config(
    server: &XmppServer,
    post_url: &str,
    dir: &Path,
    api_port: u16,
    component_keys: &str,
) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {}\n\n[api]\nlisten = \"127.0.0.1:{api_port}\"\ntoken = \"{TOKEN}\"\n\n\
         [store]\npath = \"{}\"\n\n[[component]]\ndomain = \"{DOMAIN}\"\nsecret = \"{SECRET}\"\npost_url = \"{post_url}\"\n\
         rate_limit = false\n{component_keys}\n",
        server.component_port(),
        dir.join("deliveries.db").display()
    )
}

pub use crate::http_api::api_call as api;

/// How many deliveries the API lists with `query` (at most 1000).
pub async fn count_listed(base: &str, query: &str) -> usize {
    let (status, page) = api(
        reqwest::Method::GET,
        format!("{base}/v1/deliveries?limit=1000&{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["deliveries"].as_array().map_or(0, Vec::len)
}

/// Polls `done` every 100 ms until it holds; panics with `what` after `within`.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The senders `u0`… `u{n-1}`, logged in (the component need not be online).
pub async fn senders(server: &XmppServer, n: usize) -> Vec<XmppClient> {
    let mut clients = Vec::new();
    for i in 0..n {
        clients
            .push(XmppClient::connect(&format!("u{i}@localhost"), "pw", server.c2s_port()).await);
    }
    clients
}

/// Sends `each` chat messages from every client to the component, the k-th of client i
/// with the body `u{i}-{k}`.
pub async fn send_numbered(clients: &mut [XmppClient], each: usize) {
    for (i, client) in clients.iter_mut().enumerate() {
        for k in 0..each {
            client
                .send(&format!(
                    "<message type='chat' to='{DOMAIN}' id='m{k}'><body>u{i}-{k}</body></message>"
                ))
                .await;
        }
    }
}

/// Prosody with the component and the accounts `u0`… `u{n-1}` (password `pw`).
pub fn prosody_with_senders(n: usize) -> XmppServer {
    let names: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
    let accounts: Vec<(&str, &str)> = names.iter().map(|u| (u.as_str(), "pw")).collect();
    Server::Prosody.start(&[(DOMAIN, SECRET)], &accounts)
}

/// The bodies of the messages with a body `client` receives within `within`, until it has
/// `wanted` of them (chat-state notices left out).
pub async fn bodies_received(
    client: &mut XmppClient,
    wanted: usize,
    within: Duration,
) -> Vec<String> {
    let start = Instant::now();
    let mut bodies = Vec::new();
    while bodies.len() < wanted {
        let left = within.saturating_sub(start.elapsed());
        let Some(stanza) = client
            .recv_matching(left, |s| s.name() == "message" && !is_chat_state_notice(s))
            .await
        else {
            break;
        };
        if let Some(body) = stanza.get_child("body", "jabber:client") {
            bodies.push(body.text());
        }
    }
    bodies
}

/// The webhook answering each message with `echo <body>` after `delay`.
pub fn echo_after(delay: Duration) -> impl Fn(&Value) -> Canned + Send + Sync + 'static {
    move |request: &Value| {
        let body = request["body"].as_str().unwrap_or_default();
        Canned::json(json!({ "body": format!("echo {body}") })).after(delay)
    }
}

/// The `webhook-id` of a recorded request.
pub fn webhook_id(recorded: &crate::webhook_server::Recorded) -> String {
    recorded
        .headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// 500 messages in flight to a webhook that takes 1 s; the daemon is killed with SIGKILL
/// once 150 calls have reached the webhook, and started again: every message reaches the
/// webhook with the webhook-id it first had, a message is POSTed twice only when its first
/// call had reached the webhook before the kill, and every sender gets every reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_in_flight_is_lost_when_the_daemon_is_killed() {
    const SENDERS: usize = 10;
    const EACH: usize = 50;
    let server = prosody_with_senders(SENDERS);
    let webhook = WebhookServer::start(echo_after(Duration::from_secs(1))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let keys = "ordered = false\nmax_in_flight = 1000\nmax_in_flight_per_sender = 100\n";
    let config = store_config(&server, &webhook.url, dir.path(), api_port, keys);
    let daemon = DaemonProcess::start(dir.path(), &config);
    let mut clients = senders(&server, SENDERS).await;
    wait_component_online(&mut clients[0]).await;
    send_numbered(&mut clients, EACH).await;
    eventually(
        Duration::from_secs(30),
        "all 500 written to the store",
        || async { count_listed(&base, "").await == SENDERS * EACH },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "150 calls reached the webhook",
        || async { webhook.requests().len() >= 150 },
    )
    .await;
    daemon.kill().await;
    let seen_before_kill: HashSet<String> = webhook.requests().iter().map(webhook_id).collect();
    let daemon = DaemonProcess::start(dir.path(), &config);

    // One deadline for every sender's replies: they come in at once, not one after another.
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, client) in clients.iter_mut().enumerate() {
        // A call the webhook had answered before the kill is answered again: a reply may
        // come twice, so the count of messages says nothing; the distinct replies do.
        let mut bodies = Vec::new();
        let mut got: HashSet<String> = HashSet::new();
        while got.len() < EACH {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(body) = bodies_received(client, 1, left).await.pop() else {
                break;
            };
            got.insert(body.clone());
            bodies.push(body);
        }
        let log = daemon.log_text();
        let missing: Vec<String> = (0..EACH)
            .map(|k| format!("echo u{i}-{k}"))
            .filter(|b| !got.contains(b.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "u{i} never got {missing:?}; it got {bodies:?}; daemon log:\n{log}"
        );
    }
    let requests = webhook.requests();
    let mut bodies_by_id: HashMap<String, HashSet<String>> = HashMap::new();
    let mut calls_by_id: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        let id = webhook_id(request);
        let body = request.json["body"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        bodies_by_id.entry(id.clone()).or_default().insert(body);
        *calls_by_id.entry(id).or_default() += 1;
    }
    assert_eq!(
        bodies_by_id.len(),
        SENDERS * EACH,
        "one webhook-id per message"
    );
    assert!(
        bodies_by_id.values().all(|b| b.len() == 1),
        "an id always carries the same message"
    );
    let twice: Vec<&String> = calls_by_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        twice.iter().all(|id| seen_before_kill.contains(*id)),
        "POSTed again only what had reached the webhook before the kill"
    );
    let log = daemon.log_text();
    assert!(log.contains("delivering again"), "{log}");
    println!(
        "{} calls for {} messages: {} POSTed twice (reached the webhook before the kill), {} first POSTed after the restart",
        requests.len(),
        SENDERS * EACH,
        twice.len(),
        SENDERS * EACH - seen_before_kill.len()
    );
    daemon.stop().await;
}
