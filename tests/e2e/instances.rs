//! Several component-http instances for one domain (README, "Deployment", "Several
//! instances"): the XMPP server's own component routing is the only cluster. Each test
//! prints its counts: `cargo test --features system-tests --test e2e instances -- --nocapture`.
//! Here: what both tests use (an in-process instance, its connections and handshakes);
//! `sender_log.rs`: one sender's messages and what came back; `ejabberd_sharing.rs`: two
//! instances on ejabberd sharing the load, and one killed; `prosody_standby.rs`: the
//! standby instance on Prosody.
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

mod ejabberd_sharing;
mod prosody_standby;
mod sender_log;

use std::time::{Duration, Instant};

use minidom::Element;
use serde_json::{json, Value};

use crate::fixture::{config_for, is_chat_state_notice, Daemon};
use crate::support::xmpp_server::XmppServer;
use crate::webhook_server::Canned;

const BOT: &str = "echo@bot.localhost";
const TOKEN: &str = "instances-api-token-0123456789";
/// The senders (users on ejabberd). With `bare_source`, a sender's slot is
/// `erlang:phash2({User, <<"localhost">>, <<>>}, 2) + 1`: 1 for s0 and s1, 2 for s2, s3
/// and s4 (computed with `erl`), so both instances get senders.
const SENDERS: [&str; 5] = ["s0", "s1", "s2", "s3", "s4"];
const PER_SENDER: usize = 200;

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
        let port = crate::support::server_process::free_port();
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
