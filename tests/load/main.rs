//! Load test of the delivery guarantee (README, "The delivery guarantee"): 10,000 messages
//! from 8 real XMPP clients (slixmpp) through a real Prosody to component-http (`run`,
//! in-process) and an in-process HTTP webhook, while Prosody is restarted 3 times (kill -9,
//! graceful stop, kill -9) and the webhook refuses connections for 5 s (listener and every
//! connection closed, then a new listener on the same port). For every message the test
//! counts a reply or an error stanza, prints the counts, and asserts that none is missing.
//! Run it with `cargo test --features system-tests --test load -- --nocapture` to see the
//! counts (about 1–2 min).
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

#[path = "../support/mod.rs"]
mod support;

mod client_load;
mod client_report;
mod daemon_in_process;
mod echo_webhook;
mod schedule;
mod totals;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use client_load::{quiet_expected_panics, ClientLoad};
use client_report::ClientReport;
use daemon_in_process::{capture_daemon_log, disconnected_windows, print_daemon_log_summary};
use daemon_in_process::{wait_component_online, Daemon};
use echo_webhook::Webhook;
use schedule::{Online, Restart, ServerState, Timeline};
use support::client::XmppClient;
use support::xmpp_server::Server;
use totals::Totals;

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
    // The delivery guarantee under load is under test, not fairness: each client sends 25
    // messages a second (past the default rate limit), and during the webhook outage its
    // conversation holds more than the default bounds, so they are lifted.
    let daemon = Daemon::start(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {}\n\n[[component]]\ndomain = \"{DOMAIN}\"\n\
         secret = \"{SECRET}\"\npost_url = \"http://127.0.0.1:{}/hook\"\n\
         reconnect_delay = 0.2\nreconnect_max_delay = 1\nordered = true\n\
         rate_limit = false\nmax_queued_per_conversation = 256\nmax_in_flight_per_sender = 256\n",
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

    let Timeline {
        events,
        restarted_at,
        outage_end,
    } = schedule::run(t0, &online, &mut hook, &mut server, c2s, &state_tx).await;

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
