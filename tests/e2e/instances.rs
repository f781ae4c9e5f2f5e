//! Several component-http instances for one domain (README, "Deployment", "Several
//! instances"): the XMPP server's own component routing is the only cluster. Each test
//! prints its counts: `cargo test --test e2e instances -- --nocapture`.
//!
//! - ejabberd takes several connections for one domain. Two in-process instances, `a` and
//!   `b` (told apart by a `post_headers = { X-Instance = … }` header that the webhook
//!   records), share 1,000 messages from 5 senders; then the same with `a` killed mid-run.
//! - Prosody takes one connection per domain: a second instance stands by (`conflict`) and
//!   takes over after the first is killed; the gap is measured.
//!
//! How ejabberd 23.01 spreads stanzas among the connections of one domain, read from its
//! router (`ejabberd_router:balancing_route/4`, `get_component_number/1` and
//! `ejabberd_router_mnesia`, decompiled from the installed beams' debug info) and checked
//! by these tests (set `INSTANCES_BALANCING` to other YAML to try it; the assertions then
//! show what breaks):
//!
//! - no `domain_balancing`: a random connection for each stanza. The load is shared and
//!   a dead connection's route is removed (the survivors get everything), but one sender's
//!   messages go to both instances, so their order is not kept.
//! - `domain_balancing` for the domain without `component_number`: every component
//!   connection for it crashes right after the handshake (`{badkey,component_number}` in
//!   `get_component_number/1`, logged as a SUPERVISOR REPORT); the domain never comes online.
//! - `type: bare_source` with `component_number: N` (`BALANCING`, what these tests use):
//!   N slots; the first connection takes slot 1, the next ones the free slots; a stanza goes
//!   to slot `phash2(sender's bare JID, N) + 1`, so a conversation stays on one instance.
//!   But when an instance dies its slot stays, empty, and ejabberd drops every stanza
//!   hashed to it, silently (`do_route(_, #route{pid = undefined}) -> ok`: no bounce), until
//!   a new connection takes the slot. So the survivor carries on with its own senders only;
//!   the dead instance's senders are served again once a replacement instance connects
//!   (a restart, as systemd's `Restart=` does). The kill test restarts it after
//!   `REPLACE_AFTER` (`INSTANCES_REPLACE_AFTER=never` to see the silence go on). A
//!   connection beyond N (a spare), or one made while every slot is still taken, gets no
//!   slot: ejabberd accepts its handshake and routes nothing to it, and it does not take a
//!   slot freed later (seen with a third instance: connected, 0 stanzas, and still 0 while
//!   the dead slot's sender got silence).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minidom::Element;
use serde_json::{json, Value};

use crate::fixture::{
    body, config_for, error_of, is_chat_state_notice, wait_component_online, Daemon, DOMAIN,
    SECRET, WAIT,
};
use crate::support::client::{to_xml, XmppClient};
use crate::support::ejabberd::Ejabberd;
use crate::support::prosody::Prosody;
use crate::support::server::XmppServer;
use crate::webhook::{Canned, WebhookServer};

const BOT: &str = "echo@bot.localhost";
const TOKEN: &str = "instances-api-token-0123456789";
/// The senders (users on ejabberd). With `bare_source`, a sender's slot is
/// `erlang:phash2({User, <<"localhost">>, <<>>}, 2) + 1`: 1 for s0 and s1, 2 for s2, s3
/// and s4 (computed with `erl`), so both instances get senders.
const SENDERS: [&str; 5] = ["s0", "s1", "s2", "s3", "s4"];
const PER_SENDER: usize = 200;
/// Each sender sends its messages at an even pace over this long (125 messages/s in all).
const SEND_FOR: Duration = Duration::from_secs(8);
/// After the last send, how long a sender waits for its missing outcomes.
const OUTCOMES_WITHIN: Duration = Duration::from_secs(30);
/// After this long without an outcome, a message is re-sent (only in the kill test).
const RESEND_AFTER: Duration = Duration::from_secs(5);
/// Sends of one message, at most (the first and the re-sends).
const MAX_SENDS: u32 = 4;
/// The kill test kills `a` this long after the first send...
const KILL_AT: Duration = Duration::from_secs(3);
/// ...and starts its replacement this long after the kill (systemd's `RestartSec=2`).
const REPLACE_AFTER: Duration = Duration::from_secs(2);

/// See the module's doc.
const BALANCING: &str =
    "domain_balancing:\n  \"bot.localhost\":\n    type: bare_source\n    component_number: 2\n";

fn balancing() -> String {
    std::env::var("INSTANCES_BALANCING").unwrap_or_else(|_| BALANCING.to_string())
}

fn replace_after() -> Option<Duration> {
    match std::env::var("INSTANCES_REPLACE_AFTER") {
        Ok(value) if value == "never" => None,
        Ok(value) => Some(Duration::from_secs_f64(
            value
                .parse()
                .expect("INSTANCES_REPLACE_AFTER: seconds or never"),
        )),
        Err(_) => Some(REPLACE_AFTER),
    }
}

/// The webhook: echoes the body and the id, after 0–4 ms (a hash of the body).
fn echo(request: &Value) -> Canned {
    let text = request["body"].as_str().unwrap_or_default();
    let id = request["id"].as_str().unwrap_or_default();
    let millis = text
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31) ^ u64::from(b))
        % 5;
    Canned::json(json!({ "body": text, "id": id })).after(Duration::from_millis(millis))
}

/// One in-process component-http, with its own `X-Instance` header and API port.
struct Instance {
    name: &'static str,
    daemon: Option<Daemon>,
    api: String,
}

impl Instance {
    fn start(server: &XmppServer, webhook_url: &str, name: &'static str) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        // How the server spreads the load is under test, not fairness: each sender sends
        // faster than the default rate limit allows, so it is off.
        let extra = format!(
            "post_headers = {{ X-Instance = \"{name}\" }}\n\
             reconnect_delay = 0.2\nreconnect_max_delay = 2\n\
             rate_limit = false\nmax_queued_per_conversation = 256\n\
             max_in_flight_per_sender = 256\n\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"
        );
        Instance {
            name,
            daemon: Some(Daemon::start(&config_for(server, webhook_url, &extra))),
            api: format!("http://127.0.0.1:{port}"),
        }
    }

    /// This instance's component in `GET /v1/status` (Null once the instance is gone).
    async fn status(&self) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/status", self.api))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let Ok(response) = response else {
            return Value::Null;
        };
        let text = response.text().await.unwrap_or_default();
        let status: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        status["components"][0].clone()
    }

    /// The daemon's own counters, from its API.
    async fn summary(&self) -> String {
        let s = self.status().await;
        if s.is_null() {
            return format!("{}: gone", self.name);
        }
        let other: u64 = ["3xx", "4xx", "5xx", "error"]
            .iter()
            .map(|class| s["webhook_requests"][class].as_u64().unwrap_or(0))
            .sum();
        format!(
            "{}: received {} messages, webhook 2xx {}, other {other}, dropped replies {}, \
             connected {}{}",
            self.name,
            s["stanzas_received"]["message"],
            s["webhook_requests"]["2xx"],
            s["dropped_replies"],
            s["connected"],
            match s["disconnected_because"].as_str() {
                Some(why) => format!(" ({why})"),
                None => String::new(),
            }
        )
    }

    /// Drops the in-process daemon: its `run` task is aborted, which drops the component
    /// task and with it the TCP stream (closed without a stream footer, as by a crash).
    /// Unlike a killed process, the conversation tasks (dispatch.rs spawns them apart from
    /// `run`) go on posting what they already hold; their replies are dropped ("the
    /// component has stopped"). The reports count webhook requests after the kill.
    fn kill(&mut self) {
        drop(self.daemon.take());
    }
}

/// TCP connections to 127.0.0.1:`port` ESTABLISHED on the connecting side (the daemons'
/// ends, whose remote port is `port`), from /proc/net/tcp.
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields
                .get(2)
                .and_then(|a| a.split(':').nth(1))
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            remote_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// Waits (at most `within`) until exactly `count` connections to `port` are established;
/// how long that took.
async fn wait_connections(port: u16, count: usize, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if connections_to(port) == count {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// Waits (at most 20 s) until the server has logged `count` component handshakes.
async fn wait_handshakes(server: &XmppServer, count: usize) {
    let line = server.kind().component_login_log_line();
    for _ in 0..400 {
        if server.log().matches(line).count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{count} component handshakes not logged within 20 s\n{}",
        server.log_tail()
    );
}

fn message(sender: usize, n: usize) -> String {
    format!(
        "<message type='chat' to='{BOT}' id='S{sender}-{n}'><body>S{sender}-{n}</body></message>"
    )
}

/// A message from the bot that is not a bare typing notice.
fn is_answer(stanza: &Element) -> bool {
    stanza.name() == "message" && !is_chat_state_notice(stanza)
}

/// What one sender saw.
#[derive(Default)]
struct SenderLog {
    /// Times each message was sent (1, or more when re-sent).
    sends: BTreeMap<usize, u32>,
    first_sent: BTreeMap<usize, Instant>,
    /// The message numbers of the replies, in arrival order (first outcome of each only).
    replies: Vec<usize>,
    /// Error stanzas: message number → "type/condition text" (first outcome of each only).
    errors: BTreeMap<usize, String>,
    /// Outcomes after the first for the same message.
    duplicates: usize,
    /// Messages from the bot that name no message of ours (should not happen).
    unknown: Vec<String>,
}

impl SenderLog {
    fn has_outcome(&self, n: usize) -> bool {
        self.errors.contains_key(&n) || self.replies.contains(&n)
    }

    fn outcomes(&self) -> usize {
        self.replies.len() + self.errors.len()
    }

    fn resent(&self) -> impl Iterator<Item = usize> + '_ {
        self.sends.iter().filter(|(_, &s)| s > 1).map(|(&n, _)| n)
    }

    /// Replies that came after the reply to a later message of the same sender, among
    /// messages sent once (a re-sent message is answered late by design).
    fn out_of_order(&self) -> usize {
        let mut highest = None;
        let mut late = 0;
        for &n in &self.replies {
            if self.sends.get(&n) != Some(&1) {
                continue;
            }
            if highest.is_some_and(|h| n < h) {
                late += 1;
            }
            highest = highest.max(Some(n));
        }
        late
    }

    fn send_one(&mut self, n: usize) {
        *self.sends.entry(n).or_default() += 1;
        self.first_sent.entry(n).or_insert_with(Instant::now);
    }

    fn record(&mut self, sender: usize, stanza: &Element) {
        let prefix = format!("S{sender}-");
        let number = stanza
            .attr("id")
            .and_then(|id| id.strip_prefix(&prefix))
            .and_then(|n| n.parse::<usize>().ok());
        let Some(n) = number else {
            self.unknown.push(to_xml(stanza));
            return;
        };
        if self.has_outcome(n) {
            self.duplicates += 1;
        } else if stanza.attr("type") == Some("error") {
            let (kind, condition, text) = error_of(stanza);
            let text = text.unwrap_or_default();
            self.errors.insert(n, format!("{kind}/{condition} {text}"));
        } else if body(stanza) == format!("S{sender}-{n}") {
            self.replies.push(n);
        } else {
            self.unknown.push(to_xml(stanza));
        }
    }
}

/// One sender: `PER_SENDER` messages at an even pace from `start`, reading outcomes all the
/// while; with `resend`, a message without an outcome `RESEND_AFTER` after it was (last)
/// sent is sent again, at most `MAX_SENDS` times in all. Returns once every message has an
/// outcome, or `OUTCOMES_WITHIN` after the last send.
async fn converse(
    mut client: XmppClient,
    sender: usize,
    start: Instant,
    resend: bool,
) -> SenderLog {
    let mut log = SenderLog::default();
    let gap = SEND_FOR / PER_SENDER as u32;
    // Senders take turns within each gap.
    let offset = gap * sender as u32 / SENDERS.len() as u32;
    let due = |n: usize| start + offset + gap * n as u32;
    let deadline = due(PER_SENDER) + OUTCOMES_WITHIN;
    let mut last_sent: HashMap<usize, Instant> = HashMap::new();
    let mut next = 0;
    // Bounded by `deadline`: every iteration sends, or waits at most 200 ms.
    while Instant::now() < deadline {
        let now = Instant::now();
        if next < PER_SENDER && now >= due(next) {
            client.send(&message(sender, next)).await;
            log.send_one(next);
            last_sent.insert(next, now);
            next += 1;
            continue;
        }
        if resend {
            let overdue: Vec<usize> = last_sent
                .iter()
                .filter(|(n, at)| {
                    now.duration_since(**at) >= RESEND_AFTER
                        && !log.has_outcome(**n)
                        && log.sends[n] < MAX_SENDS
                })
                .map(|(n, _)| *n)
                .collect();
            for n in overdue {
                client.send(&message(sender, n)).await;
                log.send_one(n);
                last_sent.insert(n, now);
            }
        }
        if next == PER_SENDER && log.outcomes() == PER_SENDER {
            break;
        }
        let wake = if next < PER_SENDER {
            due(next)
        } else {
            deadline
        };
        let wait = wake
            .min(now + Duration::from_millis(200))
            .saturating_duration_since(now);
        if let Some(stanza) = client.recv_matching(wait, is_answer).await {
            log.record(sender, &stanza);
        }
        assert!(
            !client.is_disconnected(),
            "{}: disconnected\n{}",
            client.full_jid(),
            client.stderr()
        );
    }
    // Duplicates would come now.
    while let Some(stanza) = client
        .recv_matching(Duration::from_millis(500), is_answer)
        .await
    {
        log.record(sender, &stanza);
    }
    log
}

/// One webhook request: the instance that posted it (its `X-Instance` header), the
/// message id, and when the webhook got it.
struct Posted {
    instance: String,
    id: String,
    at: Instant,
}

/// The webhook's record. The script notes, per id and in call order, when it was called;
/// the webhook records a request just before calling the script, so for one id both lists
/// are in the same order (an id's posts are seconds apart).
fn posted(webhook: &WebhookServer, called: &Mutex<HashMap<String, Vec<Instant>>>) -> Vec<Posted> {
    let called = called.lock().expect("lock").clone();
    let mut seen: HashMap<String, usize> = HashMap::new();
    webhook
        .requests()
        .into_iter()
        .map(|r| {
            let id = r.json["id"].as_str().unwrap_or_default().to_string();
            let nth = seen.entry(id.clone()).or_default();
            let at = called.get(&id).and_then(|c| c.get(*nth)).copied();
            *nth += 1;
            Posted {
                instance: r
                    .headers
                    .get("x-instance")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
                    .to_string(),
                id,
                at: at.expect("the script saw every recorded request"),
            }
        })
        .collect()
}

/// What a two-instance run on ejabberd measured.
#[derive(Default)]
struct Report {
    sent: usize,
    sends: usize,
    answered: usize,
    errors: BTreeMap<String, usize>,
    duplicates: usize,
    out_of_order: usize,
    missing: Vec<String>,
    unknown: Vec<String>,
    /// Webhook requests per instance: (all, after the kill).
    received: BTreeMap<String, (usize, usize)>,
    /// Per sender, the instances that posted its messages before the kill.
    sender_instances: BTreeMap<String, BTreeSet<String>>,
    /// Messages the webhook got more than once.
    posted_twice: usize,
    /// Re-sent messages, by where the first send was lost: it reached the killed instance
    /// (which posted it, but its reply went down with it); it was sent before the killed
    /// connection closed and never reached a webhook (in the socket or the server when it
    /// died); it was sent after that, to the dead slot (dropped by ejabberd).
    resent_reached_a: usize,
    resent_lost_at_the_kill: usize,
    resent_to_the_dead_slot: usize,
    /// Re-sent messages of the senders the survivor served before the kill.
    resent_of_survivors_senders: usize,
}

impl Report {
    fn resent(&self) -> usize {
        self.resent_reached_a + self.resent_lost_at_the_kill + self.resent_to_the_dead_slot
    }

    fn print(&self, title: &str) {
        println!("{title}");
        println!(
            "  sent {} messages ({} sends); answered {}, errors {} {:?}, duplicates {}, \
             out-of-order {}, missing {}, unidentified {}",
            self.sent,
            self.sends,
            self.answered,
            self.errors.values().sum::<usize>(),
            self.errors,
            self.duplicates,
            self.out_of_order,
            self.missing.len(),
            self.unknown.len()
        );
        println!(
            "  re-sent {}: {} had reached the killed instance, {} were lost at the kill, \
             {} went to the dead slot; {} of them from the survivor's senders",
            self.resent(),
            self.resent_reached_a,
            self.resent_lost_at_the_kill,
            self.resent_to_the_dead_slot,
            self.resent_of_survivors_senders
        );
        for (instance, (all, after)) in &self.received {
            println!("  webhook received from {instance}: {all} ({after} after the kill)");
        }
        println!(
            "  instances of each sender before the kill: {:?}; messages posted more than \
             once: {}",
            self.sender_instances, self.posted_twice
        );
        if !self.missing.is_empty() {
            let shown: Vec<_> = self.missing.iter().take(20).collect();
            println!("  missing (first 20): {shown:?}");
        }
        for stanza in self.unknown.iter().take(5) {
            println!("  unidentified: {stanza}");
        }
    }
}

/// Two instances for one domain on ejabberd (`balancing()`), 1,000 messages from 5
/// senders. With `kill`, instance `a` is killed `KILL_AT` after the first send, a
/// replacement `a2` is started `replace_after()` later, and senders re-send what gets no
/// outcome (see `converse`).
async fn two_instances_on_ejabberd(kill: bool) -> Report {
    let wall = Instant::now();
    let users: Vec<(&str, &str)> = SENDERS.iter().map(|s| (*s, "pw")).collect();
    let yaml = balancing();
    let server = XmppServer::Ejabberd(Ejabberd::start_with(&[(DOMAIN, SECRET)], &users, &yaml));
    let called: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let notes = Arc::clone(&called);
    let webhook = WebhookServer::start(move |request: &Value| {
        let id = request["id"].as_str().unwrap_or_default().to_string();
        let mut notes = notes.lock().expect("lock");
        notes.entry(id).or_default().push(Instant::now());
        echo(request)
    })
    .await;
    let port = server.component_port();
    // One after the other, so that `a` takes slot 1 (s0, s1) and `b` slot 2 (s2, s3, s4).
    let mut a = Instance::start(&server, &webhook.url, "a");
    wait_handshakes(&server, 1).await;
    let b = Instance::start(&server, &webhook.url, "b");
    wait_handshakes(&server, 2).await;
    assert!(
        wait_connections(port, 2, WAIT).await.is_some(),
        "two component connections: {}\n{}",
        connections_to(port),
        server.log_tail()
    );
    let mut clients = Vec::new();
    for (user, password) in &users {
        let jid = format!("{user}@localhost");
        let mut client = XmppClient::connect(&jid, password, server.c2s_port()).await;
        // A ping from each sender takes that sender's route: every slot is served.
        wait_component_online(&mut client).await;
        clients.push(client);
    }
    println!(
        "[instances] ejabberd with {:?}: two instances and {} senders ready after {:.1} s",
        yaml.replace('\n', " "),
        SENDERS.len(),
        wall.elapsed().as_secs_f64()
    );
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = tokio::task::JoinSet::new();
    for (sender, client) in clients.into_iter().enumerate() {
        tasks.spawn(async move { (sender, converse(client, sender, start, kill).await) });
    }
    let mut replacement = None;
    let mut killed = None;
    if kill {
        tokio::time::sleep_until((start + KILL_AT).into()).await;
        let before = connections_to(port);
        let at = Instant::now();
        a.kill();
        let closed = wait_connections(port, 1, Duration::from_secs(5)).await;
        println!(
            "[instances] killed a at t={:.2} s: component connections {before} -> 1 after {}",
            start.elapsed().as_secs_f64(),
            closed.map_or(format!("NOT within 5 s ({})", connections_to(port)), |d| {
                format!("{:.0} ms", d.as_secs_f64() * 1000.0)
            })
        );
        assert!(closed.is_some(), "the killed instance's connection closed");
        killed = Some((at, at + closed.unwrap_or_default()));
        if let Some(after) = replace_after() {
            // A connection that comes while both slots are still taken gets none, ever
            // (ejabberd accepts it, and routes nothing to it): as with a process that has
            // died, the old connection must be gone, and ejabberd must have seen it go.
            let closed = at + closed.unwrap_or_default();
            let restart_at = (at + after).max(closed + Duration::from_millis(500));
            tokio::time::sleep_until(restart_at.into()).await;
            replacement = Some(Instance::start(&server, &webhook.url, "a2"));
            wait_handshakes(&server, 3).await;
            let up = wait_connections(port, 2, WAIT).await;
            println!(
                "[instances] replacement a2 started at t={:.2} s, connected {}",
                (restart_at - start).as_secs_f64(),
                up.map_or("NOT within 10 s".to_string(), |d| format!(
                    "{:.0} ms later",
                    d.as_secs_f64() * 1000.0
                ))
            );
        }
    }
    let mut logs = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (sender, log) = joined.expect("sender task");
        logs.insert(sender, log);
    }
    let took = start.elapsed();
    for instance in [Some(&a), Some(&b), replacement.as_ref()]
        .into_iter()
        .flatten()
    {
        println!("[instances] {}", instance.summary().await);
    }
    let mut report = Report {
        sent: SENDERS.len() * PER_SENDER,
        ..Report::default()
    };
    let posts = posted(&webhook, &called);
    let kill_at = killed.map(|(at, _)| at);
    let mut posts_per_id: HashMap<&str, usize> = HashMap::new();
    for post in &posts {
        let after_kill = kill_at.is_some_and(|k| post.at >= k);
        let entry = report.received.entry(post.instance.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(after_kill);
        if !after_kill {
            let sender = post.id.split('-').next().unwrap_or_default().to_string();
            let instances = report.sender_instances.entry(sender).or_default();
            instances.insert(post.instance.clone());
        }
        *posts_per_id.entry(post.id.as_str()).or_default() += 1;
    }
    report.posted_twice = posts_per_id.values().filter(|&&n| n > 1).count();
    for (sender, log) in &logs {
        report.sends += log.sends.values().map(|&n| n as usize).sum::<usize>();
        report.answered += log.replies.len();
        for error in log.errors.values() {
            *report.errors.entry(error.clone()).or_default() += 1;
        }
        report.duplicates += log.duplicates;
        report.out_of_order += log.out_of_order();
        report.unknown.extend(log.unknown.iter().cloned());
        report.missing.extend(
            (0..PER_SENDER)
                .filter(|n| !log.has_outcome(*n))
                .map(|n| format!("S{sender}-{n}")),
        );
        let survivors = report
            .sender_instances
            .get(&format!("S{sender}"))
            .is_some_and(|i| !i.contains("a"));
        for n in log.resent() {
            let id = format!("S{sender}-{n}");
            report.resent_of_survivors_senders += usize::from(survivors);
            let reached_a = posts.iter().any(|p| p.id == id && p.instance == "a");
            let closed = killed.map_or(start, |(_, closed)| closed);
            if reached_a {
                report.resent_reached_a += 1;
            } else if log.first_sent[&n] < closed {
                report.resent_lost_at_the_kill += 1;
            } else {
                report.resent_to_the_dead_slot += 1;
            }
        }
    }
    let title = format!(
        "[instances] ejabberd, two instances{}: sending and outcomes took {:.1} s, wall {:.1} s",
        if kill { ", a killed mid-run" } else { "" },
        took.as_secs_f64(),
        wall.elapsed().as_secs_f64()
    );
    report.print(&title);
    let log = server.log();
    for needle in [
        "badkey",
        "Failed to register route",
        "Mnesia transaction failed",
    ] {
        let count = log.matches(needle).count();
        if count > 0 {
            println!("[instances] ejabberd.log mentions {needle:?} {count} times");
        }
    }
    report
}

/// ejabberd only: Prosody takes one connection per domain (see the standby test below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_two_instances_share_the_load_in_order() {
    let report = two_instances_on_ejabberd(false).await;
    for instance in ["a", "b"] {
        let got = report.received.get(instance).map_or(0, |r| r.0);
        assert!(
            got > 0,
            "{instance} received nothing: {:?}",
            report.received
        );
    }
    assert!(
        report.sender_instances.values().all(|i| i.len() == 1),
        "a sender's messages went to both instances: {:?}",
        report.sender_instances
    );
    assert_eq!(report.missing, Vec::<String>::new(), "missing outcomes");
    assert_eq!(report.answered, report.sent, "errors: {:?}", report.errors);
    assert_eq!(report.duplicates, 0, "answered more than once");
    assert_eq!(
        report.posted_twice, 0,
        "posted to the webhook more than once"
    );
    assert_eq!(report.out_of_order, 0, "replies out of order");
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
}

/// ejabberd only: `a` is killed 3 s into the 8 s of sending and replaced 2 s later. The
/// survivor `b` carries on with its senders (nothing of theirs re-sent); `a`'s senders
/// re-send what the kill and the empty slot swallowed, and the replacement answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_survivor_carries_on_after_an_instance_is_killed() {
    let report = two_instances_on_ejabberd(true).await;
    assert_eq!(
        report.missing,
        Vec::<String>::new(),
        "messages without any outcome"
    );
    assert_eq!(
        report.resent_of_survivors_senders, 0,
        "the survivor lost nothing"
    );
    assert_eq!(
        report.out_of_order, 0,
        "out of order (among messages sent once)"
    );
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
}

/// Pings the domain until the component answers `result` (as `wait_component_online`,
/// at most 60 pings, each waited for 1 s, 0.1 s apart); returns each ping's fate and when
/// it was sent, in seconds after `since`.
async fn ping_until_answered(client: &mut XmppClient, since: Instant) -> Vec<String> {
    let mut fates = Vec::new();
    for attempt in 0..60 {
        let id = format!("after-kill-{attempt}");
        let sent = since.elapsed().as_secs_f64();
        client
            .send(&format!(
                "<iq type='get' to='{DOMAIN}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let answer = client
            .recv_matching(Duration::from_secs(1), |s| {
                s.name() == "iq" && s.attr("id") == Some(id.as_str())
            })
            .await;
        let fate = match &answer {
            None => "no answer within 1 s".to_string(),
            Some(iq) if iq.attr("type") == Some("result") => "result".to_string(),
            Some(iq) => match iq.get_child("error", "jabber:client") {
                Some(_) => {
                    let (kind, condition, text) = error_of(iq);
                    format!("{kind}/{condition} {}", text.unwrap_or_default())
                }
                None => to_xml(iq),
            },
        };
        fates.push(format!("t={sent:.2} {fate}"));
        if fate == "result" {
            return fates;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{DOMAIN} never answered again: {fates:?}");
}

/// Prosody only (ejabberd takes both connections): `b` stands by on `conflict`, retrying
/// every `reconnect_max_delay` (2 s, jittered down to 1–2 s); `a` is killed (its task
/// aborted: the socket closes, no stream footer). The gap runs from the kill to the first
/// ping to the domain answered again, by `b`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_standby_takes_over_after_a_kill() {
    let wall = Instant::now();
    let server = XmppServer::Prosody(Prosody::start(&[(DOMAIN, SECRET)], &[("alice", "pw")]));
    let webhook = WebhookServer::start(echo).await;
    let mut a = Instance::start(&server, &webhook.url, "a");
    let mut alice = XmppClient::connect("alice@localhost", "pw", server.c2s_port()).await;
    wait_component_online(&mut alice).await;
    let b = Instance::start(&server, &webhook.url, "b");
    // b's first attempt is refused with `conflict` at once; then it stands by.
    let mut standby = Value::Null;
    for _ in 0..100 {
        standby = b.status().await;
        if standby["disconnected_because"]
            .as_str()
            .is_some_and(|why| why.starts_with("standby"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("[instances] Prosody: {}", b.summary().await);
    assert!(
        standby["disconnected_because"]
            .as_str()
            .is_some_and(|why| why.starts_with("standby")),
        "b stands by: {standby}"
    );
    let port = server.component_port();
    assert_eq!(connections_to(port), 1, "only a is connected");
    alice.send(&message(0, 0)).await;
    let first = alice.recv_matching(WAIT, is_answer).await;
    assert_eq!(first.as_ref().map(body).as_deref(), Some("S0-0"));
    // The kill lands at a random point of b's 1–2 s standby wait.
    let pause = Duration::from_millis(component_http::backoff::random_u64() % 2000);
    tokio::time::sleep(pause).await;
    let killed = Instant::now();
    a.kill();
    let closed = wait_connections(port, 0, Duration::from_secs(2)).await;
    let pings = ping_until_answered(&mut alice, killed).await;
    let gap = killed.elapsed();
    println!(
        "[instances] Prosody: pings after the kill: {}",
        pings.join(", ")
    );
    alice.send(&message(0, 1)).await;
    let second = alice.recv_matching(WAIT, is_answer).await;
    let instances: Vec<String> = webhook
        .requests()
        .iter()
        .map(|r| {
            let header = r.headers.get("x-instance").and_then(|v| v.to_str().ok());
            header.unwrap_or("?").to_string()
        })
        .collect();
    println!(
        "[instances] Prosody: a killed, its connection closed after {}; b answered a ping \
         {:.2} s after the kill (standby retry every 1-2 s); webhook requests by instance: \
         {instances:?}; {}; wall {:.1} s",
        closed.map_or("NOT within 2 s".to_string(), |d| format!(
            "{:.0} ms",
            d.as_secs_f64() * 1000.0
        )),
        gap.as_secs_f64(),
        b.summary().await,
        wall.elapsed().as_secs_f64()
    );
    let closed = closed.expect("the killed instance's connection closed");
    assert_eq!(second.as_ref().map(body).as_deref(), Some("S0-1"));
    assert_eq!(instances, ["a", "b"], "a answered before the kill, b after");
    // From the moment the socket is closed (Prosody drops the session on the FIN at once),
    // b's next attempt comes within the 2 s cap. An attempt between the kill and the close
    // gets one more `conflict`, so the cap counts from the close (milliseconds after the
    // kill on an idle machine, up to 2.4 s seen under a load average of 11: the abort
    // waits for a worker thread). Then the handshake (milliseconds on loopback), the next
    // ping (0.1 s apart, fixture.rs), and timers firing late on a loaded machine: 1 s.
    let bound = closed + Duration::from_secs(3);
    assert!(
        gap < bound,
        "b took over {gap:?} after the kill: over close ({closed:?}) + 2 s cap + 1 s"
    );
}
