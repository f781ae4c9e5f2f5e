//! Load test of the delivery guarantee (README, "The delivery guarantee"): 10,000 messages
//! from 8 real XMPP clients (slixmpp) through a real Prosody to component-http (`run`,
//! in-process) and an in-process HTTP webhook, while Prosody is restarted 3 times (kill -9,
//! graceful stop, kill -9) and the webhook refuses connections for 5 s (listener and every
//! connection closed, then a new listener on the same port). For every message the test
//! counts a reply or an error stanza, prints the counts, and asserts that none is missing.
//! Run it with `cargo test --test load -- --nocapture` to see the counts (about 1–2 min).
//!
//! What is counted, and why it is a fair test of the daemon (and one that can fail):
//!
//! - Each client is its own user (`load{c}@localhost`, so its own `ordered` conversation)
//!   and sends `<message type='chat' to='echo@bot.localhost' id='L{c}-{n}'><body>L{c}-{n}`
//!   at an even pace. The webhook answers `{"body": "Did you say L{c}-{n}?", "id": ...}`,
//!   so a reply names its message by its body; an error stanza keeps the message's `id`.
//!   Each id counts once, whatever comes first; later outcomes are counted as duplicates.
//! - A server restart ends every client's session too, and what the server loses then is
//!   not the daemon's doing (README: "the exceptions are what the server itself loses"):
//!   messages inside Prosody (or its socket buffers) when it dies, replies written to the
//!   dying connection, and answers routed after the restart to a client's *old* full JID:
//!   Prosody hands a `chat` reply to the bare JID (the new session if it is online, else it
//!   bounces it back to the component, which POSTs the bounce: the webhook counts those),
//!   but it drops an error stanza to a resource that is gone (RFC 6121 8.5.3.2.1). So, as a
//!   client with XEP-0198 would, each client re-sends after every reconnection every message
//!   it has no outcome for yet (same id); the test prints how many, and why they had none.
//! - Re-sending could hide a daemon that loses messages, so three checks do not depend on
//!   it, and each of them fails against a daemon that breaks the guarantee:
//!   * `skipped`: within one client session (one Prosody run) the path is first-in
//!     first-out end to end, so a message without an outcome, sent before one that got its
//!     outcome in that session, was lost with no restart to explain it. (A daemon that
//!     answers a failed webhook call with silence fails here, although re-sending would
//!     have made `missing` 0.)
//!   * `stalled`: a session that ends with messages waiting and no outcome at all for
//!     `STALL` (a daemon that stops answering until the restart skips nothing). The outage
//!     ends at least `OUTAGE_CLEARANCE` before the next restart.
//!   * held replies: an answer the webhook gave while the daemon had no server connection
//!     (from its log) must come back as a reply or as a bounce, as the daemon keeps it in
//!     its outbox for the next connection. (A daemon that drops that outbox fails here.)
//! - After the last restart's reconnection nothing triggers a re-send, so everything sent or
//!   re-sent from then on must get its outcome before the deadline, or it is `missing`.
//! - Errors from Prosody itself (`Component unavailable`, bounced while the daemon is not yet
//!   connected again after a restart) are outcomes for the sender as well; they are printed
//!   apart from the daemon's errors.
//! - Each restart and the outage wait until every client has been back online for `SETTLE`
//!   (logging 8 clients in can take 10 s on a busy machine), so each ends live sessions and
//!   the outage meets traffic. Just before each restart, the bytes waiting in the component
//!   and c2s sockets are printed (`ss`): what dies with the connection.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use minidom::Element;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use support::client::{to_xml, XmppClient};
use support::server::{Server, XmppServer};

const DOMAIN: &str = "bot.localhost";
const SECRET: &str = "load-secret";
const BOT: &str = "echo@bot.localhost";
const CLIENT_NS: &str = "jabber:client";
const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const CHAT_STATES_NS: &str = "http://jabber.org/protocol/chatstates";

const CLIENTS: usize = 8;
const MESSAGES: usize = 10_000;
/// The messages are sent at an even pace over this long (from the load's start, t = 0).
const SEND_FOR: Duration = Duration::from_secs(50);
/// Prosody restarts, at these times after t = 0.
const RESTARTS: [(u64, Restart); 3] = [
    (8, Restart::Kill9),
    (33, Restart::Graceful),
    (43, Restart::Kill9),
];
/// The webhook refuses connections from this time after t = 0, for `WEBHOOK_DOWN_FOR`.
const WEBHOOK_DOWN_AT: Duration = Duration::from_secs(16);
const WEBHOOK_DOWN_FOR: Duration = Duration::from_secs(5);
/// The first restart after the webhook outage comes at least this long after its end, so
/// that a session gone silent since the outage would show as `STALL`ed.
const OUTAGE_CLEARANCE: Duration = Duration::from_secs(12);
/// A restart or the outage comes no sooner than this after the last client logged in again.
const SETTLE: Duration = Duration::from_secs(3);
/// Informational: messages still waiting this long after they were sent, at a disconnection.
const OVERDUE: Duration = Duration::from_secs(10);
/// A session that ends with messages waiting and no outcome at all for this long stalled.
const STALL: Duration = Duration::from_secs(10);
/// The load (sending, then waiting for the last outcomes) ends at this time after t = 0 at
/// the latest; with setup and teardown the test stays well under 5 minutes.
const LOAD_DEADLINE: Duration = Duration::from_secs(170);
/// Attempts to log a client in again after a restart (each bounded by the client's 20 s).
const LOGIN_ATTEMPTS: usize = 10;

#[derive(Clone, Copy, Debug)]
struct ServerState {
    /// false from just before a kill/stop until the server is back.
    up: bool,
    /// When the last kill/stop began.
    down_since: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
enum Restart {
    /// SIGKILL: no stream errors, sockets closed by the kernel.
    Kill9,
    /// SIGTERM: Prosody 0.12 ends client streams with `system-shutdown` and just closes the
    /// component's connection (no stream error, no closing tag).
    Graceful,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_through_restarts_and_a_webhook_outage() {
    let test_started = Instant::now();
    quiet_expected_panics();
    let (daemon_log, log_epoch) = capture_daemon_log();

    let mut users: Vec<(String, &str)> = (0..CLIENTS).map(|c| (user(c), "pw")).collect();
    users.push(("probe".into(), "pw"));
    let users: Vec<(&str, &str)> = users.iter().map(|(u, p)| (u.as_str(), *p)).collect();
    let mut server =
        tokio::task::block_in_place(|| Server::Prosody.start(&[(DOMAIN, SECRET)], &users));
    let c2s = server.c2s_port();

    let mut hook = Webhook::start().await;
    let daemon = Daemon::start(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {}\n\n[[component]]\ndomain = \"{DOMAIN}\"\n\
         secret = \"{SECRET}\"\npost_url = \"http://127.0.0.1:{}/hook\"\n\
         reconnect_delay = 0.2\nreconnect_max_delay = 1\nordered = true\n",
        server.component_port(),
        hook.port
    ));
    wait_component_online(c2s).await;

    // Log every client in before the clock starts.
    let online = Arc::new(Online {
        count: AtomicUsize::new(CLIENTS),
        changed: Mutex::new(Instant::now()),
    });
    let (state_tx, state_rx) = watch::channel(ServerState {
        up: true,
        down_since: None,
    });
    let mut first_sessions = Vec::new();
    for c in 0..CLIENTS {
        first_sessions
            .push(XmppClient::connect(&format!("{}@localhost", user(c)), "pw", c2s).await);
    }
    let t0 = Instant::now() + Duration::from_millis(200);
    let per_client = MESSAGES / CLIENTS;
    let mut clients: Vec<JoinHandle<ClientReport>> = Vec::new();
    for (c, session) in first_sessions.into_iter().enumerate() {
        let load = ClientLoad {
            c,
            count: per_client,
            c2s,
            t0,
            server: state_rx.clone(),
            online: Arc::clone(&online),
            hook: Arc::clone(&hook.record),
        };
        clients.push(tokio::spawn(load.run(session)));
    }

    // The timeline: restarts and the webhook outage. Each waits for its time and until every
    // client has been back online for `SETTLE`, so that each restart ends sessions that carry
    // traffic and the outage meets traffic: on a busy machine, logging 8 clients in again can
    // take 10 s.
    let mut events: Vec<String> = Vec::new();
    let mut restarted_at: Vec<Instant> = Vec::new();
    let mut outage_end: Option<Instant> = None;
    let step = |at: Instant| {
        let online = Arc::clone(&online);
        async move {
            tokio::time::sleep_until(at.into()).await;
            let Some(since) = all_online(&online, t0 + LOAD_DEADLINE).await else {
                return false;
            };
            tokio::time::sleep_until((since + SETTLE).into()).await;
            true
        }
    };
    for (at, how) in RESTARTS {
        let mut at = t0 + Duration::from_secs(at);
        if outage_end.is_none() && t0 + WEBHOOK_DOWN_AT < at {
            if !step(t0 + WEBHOOK_DOWN_AT).await {
                break;
            }
            let down = Instant::now();
            tracing::info!(target: "load", "webhook down");
            hook.stop();
            tokio::time::sleep(WEBHOOK_DOWN_FOR).await;
            hook.restart().await;
            tracing::info!(target: "load", "webhook up");
            events.push(format!(
                "webhook refused connections at t={:.1}s for {:.1}s",
                secs(down - t0),
                secs(down.elapsed())
            ));
            outage_end = Some(Instant::now());
        }
        if let Some(end) = outage_end {
            at = at.max(end + OUTAGE_CLEARANCE);
        }
        if !step(at).await {
            break;
        }
        let sockets = socket_backlog(server.component_port(), c2s);
        let started = Instant::now();
        tracing::info!(target: "load", "Prosody {how:?}: {sockets}");
        restarted_at.push(started);
        state_tx.send_replace(ServerState {
            up: false,
            down_since: Some(started),
        });
        tokio::task::block_in_place(|| restart(&mut server, how));
        state_tx.send_modify(|state| state.up = true);
        tracing::info!(target: "load", "Prosody back");
        events.push(format!(
            "Prosody {how:?} + restart at t={:.1}s, back after {:.1}s; just before, {sockets}",
            secs(started - t0),
            secs(started.elapsed())
        ));
    }

    let mut reports = Vec::new();
    for client in clients {
        reports.push(client.await.expect("a client task does not panic"));
    }
    let load_time = t0.elapsed();
    let stopped = tokio::time::timeout(Duration::from_secs(30), daemon.stop()).await;

    let log = String::from_utf8_lossy(&daemon_log.lock().expect("log")).into_owned();
    let totals = Totals::of(
        &reports,
        &hook.record.lock().expect("hook record"),
        t0,
        &restarted_at,
        &disconnected_windows(&log, log_epoch),
    );
    println!("\n===== load test: {CLIENTS} clients x {per_client} messages, Prosody =====");
    for event in &events {
        println!("  {event}");
    }
    totals.print();
    print_daemon_log_summary(&log);
    println!("client sessions:");
    for report in &reports {
        println!("  L{}: {}", report.c, report.events.join("; "));
    }
    println!(
        "wall time: load {:.1}s (sending {:.0}s), whole test {:.1}s",
        secs(load_time),
        secs(SEND_FOR),
        secs(test_started.elapsed())
    );
    let failed = totals.missing > 0
        || !totals.stalled.is_empty()
        || !totals.skipped.is_empty()
        || !totals.replies_held_lost.is_empty();
    if failed || std::env::var_os("RUST_LOG").is_some() {
        // The whole daemon log (with the test's own marks, target "load"), for a closer look.
        let log_path =
            std::env::temp_dir().join(format!("component-http-load-{}.log", std::process::id()));
        if std::fs::write(&log_path, &log).is_ok() {
            println!("daemon log: {}", log_path.display());
        }
    }
    if failed {
        println!("\n----- last daemon log lines -----");
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(60)..] {
            println!("{line}");
        }
        println!("----- Prosody -----\n{}", server.log_tail());
    }

    assert!(
        matches!(stopped, Ok(Ok(()))),
        "the daemon stops cleanly: {stopped:?}"
    );
    assert!(outage_end.is_some(), "the webhook outage took place");
    assert_eq!(
        restarted_at.len(),
        RESTARTS.len(),
        "every restart took place"
    );
    assert_eq!(totals.sent, MESSAGES, "every message was sent");
    assert!(
        totals.unexpected.is_empty(),
        "unexpected stanzas: {:?}",
        totals.unexpected
    );
    assert!(
        totals.stalled.is_empty(),
        "sessions that stalled before their restart: {:?}",
        totals.stalled
    );
    assert!(
        totals.skipped.is_empty(),
        "messages skipped within a session: {:?}",
        totals.skipped
    );
    assert!(
        totals.replies_held_lost.is_empty(),
        "replies held while disconnected, then neither received nor bounced: {:?}",
        totals.replies_held_lost
    );
    assert_eq!(
        totals.missing, 0,
        "messages without a reply or an error: {:?}",
        totals.missing_examples
    );
}

fn user(c: usize) -> String {
    format!("load{c}")
}

fn id(c: usize, n: usize) -> String {
    format!("L{c}-{n}")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Bytes waiting in the kernel's socket queues of the component and c2s connections (from
/// `ss`): what the server loses at once if it dies now, besides its own buffers.
fn socket_backlog(component_port: u16, c2s_port: u16) -> String {
    let Ok(output) = std::process::Command::new("ss")
        .args(["-tnH", "state", "established"])
        .output()
    else {
        return "no `ss` to look at the sockets".into();
    };
    let port = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
    };
    // [component→server unread by the server, server→component unread by component-http,
    //  clients→server unread by the server, server→clients unread by the clients]
    let mut unread = [0u64; 4];
    let mut unsent_to_component = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [recv_q, send_q, local, peer, ..] = fields[..] else {
            continue;
        };
        let recv_q: u64 = recv_q.parse().unwrap_or(0);
        let slot = match (port(local), port(peer)) {
            (Some(p), _) if p == component_port => 0,
            (_, Some(p)) if p == component_port => 1,
            (Some(p), _) if p == c2s_port => 2,
            (_, Some(p)) if p == c2s_port => 3,
            _ => continue,
        };
        unread[slot] += recv_q;
        if slot == 0 {
            unsent_to_component += send_q.parse::<u64>().unwrap_or(0);
        }
    }
    format!(
        "unread in socket buffers: {} B from component-http in Prosody's, {} B from Prosody in \
         component-http's (+{unsent_to_component} B unacknowledged in Prosody's send queue), {} \
         B from the clients in Prosody's, {} B from Prosody in the clients'",
        unread[0], unread[1], unread[2], unread[3]
    )
}

/// How many clients have a live session, and since when that number last changed.
struct Online {
    count: AtomicUsize,
    changed: Mutex<Instant>,
}

impl Online {
    fn change(&self, up: bool) {
        if up {
            self.count.fetch_add(1, Ordering::SeqCst);
        } else {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
        *self.changed.lock().expect("online") = Instant::now();
    }
}

/// Waits (polling, until `deadline`) for every client to have a live session; returns since
/// when they all have.
async fn all_online(online: &Online, deadline: Instant) -> Option<Instant> {
    while online.count.load(Ordering::SeqCst) < CLIENTS {
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(*online.changed.lock().expect("online"))
}

fn restart(server: &mut XmppServer, how: Restart) {
    match how {
        Restart::Kill9 => server.kill9(),
        Restart::Graceful => server.stop(),
    }
    server.restart();
}

// ---- one client's load --------------------------------------------------------------------

/// What one client knows about one of its messages.
#[derive(Clone, Debug, Default)]
struct Message {
    first_sent: Option<Instant>,
    last_sent: Option<Instant>,
    sends: u32,
    outcome: Option<Outcome>,
    later_outcomes: u32,
    /// Replies received for it (first outcome or later), for the reply accounting.
    replies: u32,
}

#[derive(Clone, Debug)]
struct Outcome {
    /// None: a reply; Some("type/condition \"text\""): an error stanza.
    error: Option<String>,
    at: Instant,
}

/// Where a message re-sent after a reconnection had been lost, per the webhook's record.
#[derive(Debug, Default)]
struct Resent {
    /// Written by the client after the server had been killed/stopped: it cannot have
    /// arrived anywhere.
    into_dead_server: usize,
    /// Sent before, and the webhook had answered it 200 before the disconnection: its reply
    /// was lost on the way back (dying connection, or the client's session was gone).
    answered_before: usize,
    /// Sent before, and the webhook had not answered it at the disconnection: lost on the
    /// way in (inside the server or the component's connection when it died), or still
    /// queued in the daemon (then its reply comes later: a duplicate, or a bounce).
    unanswered: usize,
    /// How long the oldest of them had been waiting at the disconnection.
    max_age: Duration,
}

struct ClientReport {
    c: usize,
    messages: Vec<Message>,
    reconnections: usize,
    resent: Resent,
    overdue: Vec<(String, Duration)>,
    /// Messages without an outcome although a later message of the same session got one.
    skipped: Vec<String>,
    unexpected: Vec<String>,
    /// Stanzas other than replies and errors (presences, iqs): not outcomes, just counted.
    other_stanzas: usize,
    /// Chat state notices without a body (`typing_after`): not outcomes, just counted.
    chat_states: usize,
    /// The current session: what it sent, in order (message, and whether that was its first
    /// send ever), what got an outcome during it, and when it last got one (or began).
    session_sent: Vec<(usize, bool)>,
    session_answered: HashSet<usize>,
    session_progress: Instant,
    /// Sessions that ended with messages waiting and no outcome for longer than `STALL`.
    stalled: Vec<String>,
    /// What happened to this client's sessions, with times (printed at the end).
    events: Vec<String>,
}

impl ClientReport {
    /// At the end of a session: within one session (one Prosody run: a restart ends every
    /// client session), the path is first-in first-out end to end — one c2s stream, one
    /// component stream, one `ordered` conversation, the outbox — so a message sent before
    /// one that got its outcome during the session must have got its own outcome first.
    /// One that did not was skipped: lost without a restart to explain it. This holds
    /// however slow the machine is.
    ///
    /// A daemon that stops answering altogether until the restart skips nothing: that
    /// shows as a session that ends with messages waiting and no outcome for `STALL`.
    fn end_session(&mut self, c: usize, t0: Instant) {
        let now = Instant::now();
        let sent = std::mem::take(&mut self.session_sent);
        let answered = std::mem::take(&mut self.session_answered);
        let waiting = sent
            .iter()
            .filter(|&&(n, _)| self.messages[n].outcome.is_none())
            .count();
        let quiet = now - self.session_progress;
        self.events.push(format!(
            "t={:.1} session ends ({} sent, {} answered in it, {waiting} waiting, last outcome \
             {:.1}s ago)",
            secs(now - t0),
            sent.len(),
            answered.len(),
            secs(quiet)
        ));
        if waiting > 0 && quiet > STALL {
            self.stalled.push(format!(
                "L{c}: session ending at t={:.1}s: {waiting} waiting, no outcome for {:.1}s",
                secs(now - t0),
                secs(quiet)
            ));
        }
        // The latest message sent for the first time in this session that got its outcome
        // in it (a re-sent one may have been answered by its earlier copy, out of order).
        let Some(last) = sent
            .iter()
            .rposition(|(n, first)| *first && answered.contains(n))
        else {
            return;
        };
        for &(n, _) in &sent[..last] {
            if !answered.contains(&n) && self.messages[n].outcome.is_none() {
                self.skipped.push(id(c, n));
            }
        }
    }
}

struct ClientLoad {
    c: usize,
    count: usize,
    c2s: u16,
    t0: Instant,
    server: watch::Receiver<ServerState>,
    hook: Arc<Mutex<HookRecord>>,
    /// Clients with a live session.
    online: Arc<Online>,
}

impl ClientLoad {
    async fn run(mut self, first: XmppClient) -> ClientReport {
        let deadline = self.t0 + LOAD_DEADLINE;
        let interval = SEND_FOR.as_secs_f64() / self.count as f64;
        let mut report = ClientReport {
            c: self.c,
            messages: vec![Message::default(); self.count],
            reconnections: 0,
            resent: Resent::default(),
            overdue: Vec::new(),
            skipped: Vec::new(),
            unexpected: Vec::new(),
            other_stanzas: 0,
            chat_states: 0,
            session_sent: Vec::new(),
            session_answered: HashSet::new(),
            session_progress: self.t0,
            stalled: Vec::new(),
            events: Vec::new(),
        };
        let mut session = Some(first);
        let mut next = 0; // the next message never sent yet
        tokio::time::sleep_until(self.t0.into()).await;
        // Bounded by `deadline` (every branch below waits at most until it).
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if next == self.count && report.messages.iter().all(|m| m.outcome.is_some()) {
                break;
            }
            let Some(client) = session.as_mut() else {
                match self.reconnect(&mut report, next, deadline).await {
                    Some(client) => session = Some(client),
                    None => break,
                }
                continue;
            };
            let due = ((secs(now - self.t0) / interval) as usize + 1).min(self.count);
            let mut alive = true;
            while next < due && alive {
                alive = send(client, self.c, next, &mut report).await;
                if alive {
                    next += 1;
                }
            }
            let next_due = self.t0 + Duration::from_secs_f64(next as f64 * interval);
            let wait = next_due
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            if alive {
                if let Some(stanza) = client.recv(wait).await {
                    self.take(&stanza, &mut report);
                }
            }
            if !alive || client.is_disconnected() {
                session = None;
                self.online.change(false);
                report.end_session(self.c, self.t0);
            }
        }
        report.end_session(self.c, self.t0);
        report
    }

    /// The session ended: note what is still waiting (and why, per the webhook's record), log
    /// in again once the server is up, and re-send what has no outcome yet.
    async fn reconnect(
        &mut self,
        report: &mut ClientReport,
        sent: usize,
        deadline: Instant,
    ) -> Option<XmppClient> {
        let lost_at = Instant::now();
        let waiting: Vec<usize> = (0..sent)
            .filter(|&n| report.messages[n].outcome.is_none() && report.messages[n].sends > 0)
            .collect();
        {
            let down_since = self.server.borrow().down_since;
            let hook = self.hook.lock().expect("hook record");
            for &n in &waiting {
                let message = &report.messages[n];
                let age = lost_at - message.last_sent.expect("sent");
                if age > OVERDUE {
                    report.overdue.push((id(self.c, n), age));
                }
                report.resent.max_age = report.resent.max_age.max(age);
                let answered = hook
                    .bodies
                    .get(&id(self.c, n))
                    .is_some_and(|seen| seen.answered.iter().any(|&at| at < lost_at));
                let into_dead_server =
                    down_since.is_some_and(|down| message.last_sent >= Some(down));
                if into_dead_server {
                    report.resent.into_dead_server += 1;
                } else if answered {
                    report.resent.answered_before += 1;
                } else {
                    report.resent.unanswered += 1;
                }
            }
        }
        // Wait for the server to be back (bounded by the deadline).
        while !self.server.borrow().up {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero()
                || tokio::time::timeout(remaining, self.server.changed())
                    .await
                    .is_err()
            {
                return None;
            }
        }
        let jid = format!("{}@localhost", user(self.c));
        let login_from = Instant::now();
        let mut client = None;
        for _ in 0..LOGIN_ATTEMPTS {
            if Instant::now() >= deadline {
                return None;
            }
            let (jid, port) = (jid.clone(), self.c2s);
            let trying = Instant::now();
            // XmppClient::connect panics when it cannot log in: try again.
            match tokio::spawn(async move { XmppClient::connect(&jid, "pw", port).await }).await {
                Ok(connected) => {
                    client = Some(connected);
                    break;
                }
                Err(_) => {
                    report.events.push(format!(
                        "t={:.1} login attempt from t={:.1} failed (server up: {})",
                        secs(Instant::now() - self.t0),
                        secs(trying - self.t0),
                        self.server.borrow().up
                    ));
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
            }
        }
        let mut client = client?;
        self.online.change(true);
        report.reconnections += 1;
        report.session_progress = Instant::now();
        report.events.push(format!(
            "t={:.1} online again (logging in from t={:.1}); re-sending {} waiting",
            secs(Instant::now() - self.t0),
            secs(login_from - self.t0),
            waiting.len()
        ));
        for n in waiting {
            if report.messages[n].outcome.is_none() && !send(&mut client, self.c, n, report).await {
                break;
            }
        }
        Some(client)
    }

    /// One stanza received: a reply (by its body) or an error (by its id).
    fn take(&self, stanza: &Element, report: &mut ClientReport) {
        if stanza.name() != "message" {
            report.other_stanzas += 1;
            return;
        }
        // XEP-0085 notices (`typing_after`): "composing" while the webhook takes long, and a
        // standalone "active" after an error. Not outcomes.
        let chat_state = stanza.children().any(|c| c.has_ns(CHAT_STATES_NS));
        if chat_state && stanza.get_child("body", CLIENT_NS).is_none() {
            report.chat_states += 1;
            return;
        }
        let outcome = if stanza.attr("type") == Some("error") {
            let n = stanza.attr("id").and_then(|i| self.number(i));
            n.map(|n| (n, Some(describe_error(stanza))))
        } else {
            let body = stanza.get_child("body", CLIENT_NS).map(Element::text);
            let n = body
                .as_deref()
                .and_then(|b| self.number(b.strip_prefix("Did you say ")?.strip_suffix('?')?));
            n.map(|n| (n, None))
        };
        let Some((n, error)) = outcome else {
            report.unexpected.push(to_xml(stanza));
            return;
        };
        report.session_answered.insert(n);
        report.session_progress = Instant::now();
        let message = &mut report.messages[n];
        message.replies += u32::from(error.is_none());
        if message.sends == 0 {
            report
                .unexpected
                .push(format!("never sent: {}", to_xml(stanza)));
        } else if message.outcome.is_some() {
            message.later_outcomes += 1;
        } else {
            message.outcome = Some(Outcome {
                error,
                at: Instant::now(),
            });
        }
    }

    /// `n` of this client's `L{c}-{n}`.
    fn number(&self, text: &str) -> Option<usize> {
        let (c, n) = text.strip_prefix('L')?.split_once('-')?;
        let n: usize = n.parse().ok()?;
        (c.parse() == Ok(self.c) && n < self.count).then_some(n)
    }
}

/// Sends message `n`; false if the client process is gone (its session ended).
async fn send(client: &mut XmppClient, c: usize, n: usize, report: &mut ClientReport) -> bool {
    let xml = format!(
        "<message type='chat' to='{BOT}' id='{0}'><body>{0}</body></message>",
        id(c, n)
    );
    // XmppClient::send panics when the client process has exited (its stream ended):
    // that is a disconnection here (see quiet_expected_panics).
    let sent = AssertUnwindSafe(client.send(&xml)).catch_unwind().await;
    if sent.is_err() {
        return false;
    }
    let now = Instant::now();
    report.session_sent.push((n, report.messages[n].sends == 0));
    let message = &mut report.messages[n];
    message.first_sent.get_or_insert(now);
    message.last_sent = Some(now);
    message.sends += 1;
    true
}

/// `type/condition "text"` of an error stanza.
fn describe_error(stanza: &Element) -> String {
    let Some(error) = stanza.get_child("error", CLIENT_NS) else {
        return "no <error/>".into();
    };
    let condition = error
        .children()
        .find(|c| c.has_ns(STANZAS_NS) && c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    let text = error
        .get_child("text", STANZAS_NS)
        .map(|t| format!(" \"{}\"", t.text()))
        .unwrap_or_default();
    format!(
        "{}/{condition}{text}",
        error.attr("type").unwrap_or_default()
    )
}

/// Pings the component through the server until it answers (a probe user, before the load).
async fn wait_component_online(c2s: u16) {
    let mut probe = XmppClient::connect("probe@localhost", "pw", c2s).await;
    for attempt in 0..60 {
        let id = format!("online-{attempt}");
        probe
            .send(&format!(
                "<iq type='get' to='{DOMAIN}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let answer = probe
            .recv_matching(Duration::from_secs(1), |s| {
                s.attr("id") == Some(id.as_str())
            })
            .await;
        if answer.as_ref().and_then(|a| a.attr("type")) == Some("result") {
            probe.close().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("component {DOMAIN} never came online");
}

/// XmppClient::send panics when its process has exited after a disconnection; the load
/// treats that as the disconnection it is, so those panics are not printed.
fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if !text.contains("cannot send (client gone?)") {
            default(info);
        }
    }));
}

// ---- the totals -------------------------------------------------------------------------

struct Totals {
    sent: usize,
    sends: usize,
    resent_ids: usize,
    replies: usize,
    errors: BTreeMap<String, usize>,
    missing: usize,
    missing_examples: Vec<String>,
    overdue: usize,
    overdue_examples: Vec<(String, Duration)>,
    skipped: Vec<String>,
    stalled: Vec<String>,
    /// Re-sent ids the webhook answered more than once: the first copy was not lost on the
    /// way in after all (it was still queued); its reply was then bounced or a duplicate.
    resent_posted_twice: usize,
    duplicates: usize,
    unexpected: Vec<String>,
    other_stanzas: usize,
    /// Chat state notices without a body (`typing_after`): not outcomes, just counted.
    chat_states: usize,
    reconnections: usize,
    resent: Resent,
    latencies: Vec<Duration>,
    hook_posts: usize,
    hook_bodies: usize,
    hook_answered: usize,
    hook_bounces: usize,
    /// Bounces of the echo replies (they carry the message's id), not of chat states.
    hook_bounced_replies: usize,
    /// 200 answers of the webhook (every POST answered), replies received by the clients,
    /// and answers neither received nor bounced back by the server.
    hook_answers: usize,
    replies_received: usize,
    replies_unaccounted: usize,
    /// Answers given while the daemon was disconnected, and the ids of those lost.
    replies_held: usize,
    replies_held_lost: Vec<String>,
    /// Each id with an unaccounted answer: ms from the nearest kill/stop to the nearest of
    /// its webhook answers (negative: answered before it), and a description.
    unaccounted: Vec<(i64, String)>,
    errors_per_client: Vec<usize>,
}

impl Totals {
    fn of(
        reports: &[ClientReport],
        hook: &HookRecord,
        t0: Instant,
        restarts: &[Instant],
        held: &[(Instant, Instant)],
    ) -> Totals {
        let mut t = Totals {
            sent: 0,
            sends: 0,
            resent_ids: 0,
            replies: 0,
            errors: BTreeMap::new(),
            missing: 0,
            missing_examples: Vec::new(),
            overdue: 0,
            overdue_examples: Vec::new(),
            skipped: Vec::new(),
            stalled: Vec::new(),
            resent_posted_twice: 0,
            duplicates: 0,
            unexpected: Vec::new(),
            other_stanzas: 0,
            chat_states: 0,
            reconnections: 0,
            resent: Resent::default(),
            latencies: Vec::new(),
            hook_posts: hook.posts,
            hook_bodies: hook.bodies.len(),
            hook_answered: hook
                .bodies
                .values()
                .filter(|b| !b.answered.is_empty())
                .count(),
            hook_bounces: hook.bounces,
            hook_bounced_replies: hook
                .bounced_ids
                .iter()
                .filter(|(id, _)| id.starts_with('L'))
                .map(|(_, count)| count)
                .sum(),
            hook_answers: hook.bodies.values().map(|b| b.answered.len()).sum(),
            replies_received: 0,
            replies_unaccounted: 0,
            replies_held: 0,
            replies_held_lost: Vec::new(),
            unaccounted: Vec::new(),
            errors_per_client: vec![0; reports.len()],
        };
        for report in reports {
            t.reconnections += report.reconnections;
            t.resent.into_dead_server += report.resent.into_dead_server;
            t.resent.answered_before += report.resent.answered_before;
            t.resent.unanswered += report.resent.unanswered;
            t.resent.max_age = t.resent.max_age.max(report.resent.max_age);
            t.overdue += report.overdue.len();
            t.overdue_examples
                .extend(report.overdue.iter().take(5).cloned());
            t.unexpected.extend(report.unexpected.iter().cloned());
            t.skipped.extend(report.skipped.iter().cloned());
            t.stalled.extend(report.stalled.iter().cloned());
            t.other_stanzas += report.other_stanzas;
            t.chat_states += report.chat_states;
            for (n, message) in report.messages.iter().enumerate() {
                if message.sends == 0 {
                    continue;
                }
                t.sent += 1;
                t.sends += message.sends as usize;
                t.resent_ids += usize::from(message.sends > 1);
                if message.sends > 1 {
                    let answers = hook
                        .bodies
                        .get(&id(report.c, n))
                        .map_or(0, |b| b.answered.len());
                    t.resent_posted_twice += usize::from(answers > 1);
                }
                t.duplicates += message.later_outcomes as usize;
                t.replies_received += message.replies as usize;
                let answers = hook
                    .bodies
                    .get(&id(report.c, n))
                    .map_or(0, |b| b.answered.len());
                let bounced = hook.bounced_ids.get(&id(report.c, n)).copied().unwrap_or(0);
                let unaccounted = answers.saturating_sub(message.replies as usize + bounced);
                t.replies_unaccounted += unaccounted;
                // Answers given while the daemon had no connection: their replies waited
                // and went out on the next one, so each must have been received or bounced.
                let held_answers = hook.bodies.get(&id(report.c, n)).map_or(0, |b| {
                    b.answered
                        .iter()
                        .filter(|&&a| held.iter().any(|&(from, to)| from < a && a < to))
                        .count()
                });
                t.replies_held += held_answers;
                let held_lost = held_answers.saturating_sub(message.replies as usize + bounced);
                if held_lost > 0 {
                    t.replies_held_lost.push(id(report.c, n));
                }
                if unaccounted > 0 {
                    let answered = &hook.bodies[&id(report.c, n)].answered;
                    let at = |i: Instant| secs(i.saturating_duration_since(t0));
                    // Signed ms from the nearest kill/stop to the nearest of its answers.
                    let nearest = answered
                        .iter()
                        .flat_map(|&a| restarts.iter().map(move |&r| signed_ms(a, r)))
                        .min_by_key(|ms| ms.abs())
                        .unwrap_or(i64::MAX);
                    let answers: Vec<String> =
                        answered.iter().map(|&a| format!("{:.2}", at(a))).collect();
                    let outcome = match &message.outcome {
                        Some(Outcome { error: None, .. }) => "a reply".to_string(),
                        Some(Outcome { error: Some(e), .. }) => format!("error {e}"),
                        None => "none".to_string(),
                    };
                    t.unaccounted.push((
                        nearest,
                        format!(
                            "{}: sent {}x from t={:.2}s, answered 200 at t={}s, outcome {outcome}",
                            id(report.c, n),
                            message.sends,
                            at(message.first_sent.expect("sent")),
                            answers.join("/")
                        ),
                    ));
                }
                match &message.outcome {
                    None => {
                        t.missing += 1;
                        if t.missing_examples.len() < 20 {
                            let seen = hook.bodies.get(&id(report.c, n));
                            t.missing_examples.push(format!(
                                "{} (sent {}x; webhook: {})",
                                id(report.c, n),
                                message.sends,
                                seen.map_or("never seen".into(), |s| format!(
                                    "{} POSTs, {} answered",
                                    s.posts,
                                    s.answered.len()
                                ))
                            ));
                        }
                    }
                    Some(outcome) => {
                        let first = message.first_sent.expect("sent");
                        t.latencies
                            .push(outcome.at.saturating_duration_since(first));
                        match &outcome.error {
                            None => t.replies += 1,
                            Some(error) => {
                                *t.errors.entry(error.clone()).or_default() += 1;
                                t.errors_per_client[report.c] += 1;
                            }
                        }
                    }
                }
            }
        }
        t.latencies.sort();
        t
    }

    fn print(&self) {
        let errors: usize = self.errors.values().sum();
        println!("sent:      {:>6} messages (distinct ids)", self.sent);
        println!(
            "re-sent:   {:>6} sends of {} ids, after {} client reconnections \
             (re-sends add up to {} sends in all)",
            self.sends - self.sent,
            self.resent_ids,
            self.reconnections,
            self.sends
        );
        println!(
            "           why they had no outcome at the disconnection: {} written after the \
             server was killed/stopped; {} answered 200 by the webhook before it (reply lost on \
             the way back); {} not answered by then (lost on the way in, or still queued); the \
             oldest had been sent {:.2}s before the client saw the disconnection",
            self.resent.into_dead_server,
            self.resent.answered_before,
            self.resent.unanswered,
            secs(self.resent.max_age)
        );
        println!(
            "           {} of the re-sent ids were answered 200 twice by the webhook (the first \
             copy had not been lost but was still queued; its reply bounced or came twice)",
            self.resent_posted_twice
        );
        println!("replies:   {:>6}", self.replies);
        println!(
            "errors:    {errors:>6}   (per client: {:?})",
            self.errors_per_client
        );
        for (error, count) in &self.errors {
            let who = if error.contains("Component unavailable") {
                "Prosody: component not connected"
            } else {
                "component-http"
            };
            println!("           {count:>6}  {error}  ({who})");
        }
        println!(
            "missing:   {:>6}   (no reply and no error by the end)",
            self.missing
        );
        println!(
            "overdue:   {:>6}   (informational: still waiting > {}s after being sent, at a \
             disconnection; high when the machine is slow)",
            self.overdue,
            OVERDUE.as_secs()
        );
        println!(
            "skipped:   {:>6}   (no outcome, though a later message of the same session got one)",
            self.skipped.len()
        );
        println!(
            "stalled:   {:>6}   (sessions ending with messages waiting and no outcome for > {}s)",
            self.stalled.len(),
            STALL.as_secs()
        );
        println!(
            "duplicates: {:>5}   (a second outcome for an id, after a re-send)",
            self.duplicates
        );
        println!(
            "unexpected: {:>5}   other stanzas (not outcomes): {} chat state notices \
             (typing_after), {} others",
            self.unexpected.len(),
            self.chat_states,
            self.other_stanzas
        );
        if !self.latencies.is_empty() {
            let at = |q: f64| {
                let i = ((self.latencies.len() - 1) as f64 * q) as usize;
                secs(self.latencies[i])
            };
            println!(
                "latency (first send -> outcome): p50 {:.3}s  p90 {:.3}s  p99 {:.3}s  max {:.3}s",
                at(0.5),
                at(0.9),
                at(0.99),
                at(1.0)
            );
        }
        println!(
            "webhook:   {} POSTs for {} distinct messages ({} answered 200); {} bounces \
             (type=error messages from the server, e.g. a reply to a client that had gone), {} \
             of them of echo replies",
            self.hook_posts,
            self.hook_bodies,
            self.hook_answered,
            self.hook_bounces,
            self.hook_bounced_replies
        );
        println!(
            "replies:   the webhook answered 200 {} times; the clients received {} replies; the \
             server bounced {}; unaccounted {} (answered, then neither received nor bounced: \
             lost with a dying connection, or by the daemon)",
            self.hook_answers,
            self.replies_received,
            self.hook_bounced_replies,
            self.replies_unaccounted
        );
        println!(
            "           {} answers were given while component-http had no server connection \
             (held in its outbox for the next one); lost of those: {}",
            self.replies_held,
            self.replies_held_lost.len()
        );
        if !self.unaccounted.is_empty() {
            let mut ms: Vec<i64> = self.unaccounted.iter().map(|(ms, _)| *ms).collect();
            ms.sort();
            println!(
                "           ms from the nearest kill/stop to their nearest webhook answer \
                 (negative: before it): {ms:?}"
            );
            let mut far: Vec<&(i64, String)> = self.unaccounted.iter().collect();
            far.sort_by_key(|(ms, _)| std::cmp::Reverse(ms.abs()));
            for (_, example) in far.iter().take(8) {
                println!("             {example}");
            }
        }
    }
}

fn signed_ms(at: Instant, reference: Instant) -> i64 {
    if at >= reference {
        (at - reference).as_millis() as i64
    } else {
        -((reference - at).as_millis() as i64)
    }
}

fn print_daemon_log_summary(log: &str) {
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    println!(
        "daemon log: {} handshakes, {} disconnections, {} webhook retries, {} webhook failures \
         answered with an error, {} replies dropped, {} warnings in all",
        count("handshake accepted"),
        count("disconnected from"),
        count("retrying msg_"),
        count("answered with a "),
        count("dropped"),
        count(" WARN ")
    );
    for line in log
        .lines()
        .filter(|l| l.contains("disconnected from") || l.contains("dropped"))
        .take(10)
    {
        println!("  | {line}");
    }
}

// ---- component-http in this process --------------------------------------------------------

struct Daemon {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), component_http::RunError>>,
}

impl Daemon {
    fn start(config_text: &str) -> Daemon {
        let config = component_http::Config::parse(config_text, std::path::Path::new("."))
            .expect("valid config");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(component_http::run(config, async move {
            let _ = stopped.await;
        }));
        Daemon { stop, task }
    }

    async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The daemon's tracing output (info and up, or RUST_LOG), kept for the summary.
/// Its lines are stamped with the time since the returned instant.
fn capture_daemon_log() -> (Arc<Mutex<Vec<u8>>>, Instant) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(Arc::clone(&buffer));
    let filter =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "component_http=info,load=info".into());
    let epoch = Instant::now();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_timer(tracing_subscriber::fmt::time::Uptime::default())
        .with_writer(move || sink.clone())
        .try_init();
    (buffer, epoch)
}

/// When the daemon was without a server connection, from its log: from each "disconnected
/// from" line to the next "handshake accepted" one. A reply that became ready then waits in
/// the outbox and goes out on the next connection (README: the delivery guarantee).
fn disconnected_windows(log: &str, epoch: Instant) -> Vec<(Instant, Instant)> {
    let stamp = |line: &str| {
        let first = line.split_whitespace().next()?;
        let seconds: f64 = first.strip_suffix('s')?.parse().ok()?;
        Some(epoch + Duration::from_secs_f64(seconds))
    };
    let mut windows = Vec::new();
    let mut since = None;
    for line in log.lines() {
        if line.contains("disconnected from") && !line.contains("(shutdown)") {
            since = since.or(stamp(line));
        } else if line.contains("handshake accepted") {
            if let (Some(start), Some(end)) = (since.take(), stamp(line)) {
                windows.push((start, end));
            }
        }
    }
    if let Some(start) = since {
        windows.push((start, start + Duration::from_secs(3600)));
    }
    windows
}

// ---- the webhook ---------------------------------------------------------------------------

/// What the webhook saw of one message body.
#[derive(Debug, Default)]
struct Seen {
    posts: usize,
    /// When it answered 200 (once per POST answered).
    answered: Vec<Instant>,
}

#[derive(Debug, Default)]
struct HookRecord {
    posts: usize,
    bodies: HashMap<String, Seen>,
    /// type='error' messages POSTed (the server bouncing a reply back to the component),
    /// by id (the echo reply carries the message's id).
    bounces: usize,
    bounced_ids: HashMap<String, usize>,
}

/// An echo bot on a fixed loopback port that can go down (listener and every connection
/// closed: connection refused) and come back on the same port.
struct Webhook {
    port: u16,
    record: Arc<Mutex<HookRecord>>,
    serving: Option<JoinHandle<()>>,
}

impl Webhook {
    async fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let port = listener.local_addr().expect("webhook address").port();
        let record = Arc::new(Mutex::new(HookRecord::default()));
        let serving = Some(tokio::spawn(serve(listener, Arc::clone(&record))));
        Webhook {
            port,
            record,
            serving,
        }
    }

    /// Closes the listener and every connection (requests in progress are cut off).
    fn stop(&mut self) {
        if let Some(task) = self.serving.take() {
            task.abort(); // drops the listener and the JoinSet of connections
        }
    }

    async fn restart(&mut self) {
        self.stop();
        // The port was just released; give it a few tries (bounded).
        for _ in 0..50 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serving = Some(tokio::spawn(serve(listener, Arc::clone(&self.record))));
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the webhook could not bind port {} again", self.port);
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts until aborted; aborting drops the listener and (with the JoinSet) every connection.
async fn serve(listener: TcpListener, record: Arc<Mutex<HookRecord>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(connection(tcp, Arc::clone(&record)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(tcp: TcpStream, record: Arc<Mutex<HookRecord>>) {
    let _ = tcp.set_nodelay(true);
    let service = hyper::service::service_fn(move |request| answer(request, Arc::clone(&record)));
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

/// The echo bot: `{"body": "Did you say <body>?", "id": <id>}` to a message with a body,
/// 204 to anything else.
async fn answer(
    request: Request<Incoming>,
    record: Arc<Mutex<HookRecord>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let bytes = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let body = json["body"].as_str();
    let mut record = record.lock().expect("hook record");
    record.posts += 1;
    if json["type"] == "error" {
        record.bounces += 1;
        let id = json["id"].as_str().unwrap_or_default().to_string();
        *record.bounced_ids.entry(id).or_default() += 1;
    }
    let is_message = json["kind"] == "message" && json["type"] != "error";
    let Some(body) = body.filter(|_| is_message) else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        return Ok(response);
    };
    let seen = record.bodies.entry(body.to_string()).or_default();
    seen.posts += 1;
    seen.answered.push(Instant::now());
    let reply = serde_json::json!({ "body": format!("Did you say {body}?"), "id": json["id"] });
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
