//! The schedule of what goes wrong during the load: Prosody's restarts (kill -9, graceful
//! stop) and the webhook's outage, each waiting until every client has been back online
//! for `SETTLE`; and what the clients see of it (the server's state, who is online).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::echo_webhook::Webhook;
use crate::support::xmpp_server::XmppServer;
use crate::{secs, CLIENTS, LOAD_DEADLINE, OUTAGE_CLEARANCE, RESTARTS, SETTLE};
use crate::{WEBHOOK_DOWN_AT, WEBHOOK_DOWN_FOR};

#[derive(Clone, Copy, Debug)]
pub struct ServerState {
    /// false from just before a kill/stop until the server is back.
    pub up: bool,
    /// When the last kill/stop began.
    pub down_since: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
pub enum Restart {
    /// SIGKILL: no stream errors, sockets closed by the kernel.
    Kill9,
    /// SIGTERM: Prosody 0.12 ends client streams with `system-shutdown` and just closes the
    /// component's connection (no stream error, no closing tag).
    Graceful,
}

/// What the timeline did: its events (printed), when each restart began, when the outage
/// ended.
pub struct Timeline {
    pub events: Vec<String>,
    pub restarted_at: Vec<Instant>,
    pub outage_end: Option<Instant>,
}

/// Runs the restarts and the webhook outage, from `t0` (until `t0 + LOAD_DEADLINE` at the
/// latest), telling the clients through `state_tx` when the server goes down and comes back.
pub async fn run(
    t0: Instant,
    online: &Arc<Online>,
    hook: &mut Webhook,
    server: &mut XmppServer,
    c2s: u16,
    state_tx: &watch::Sender<ServerState>,
) -> Timeline {
    // The timeline: restarts and the webhook outage. Each waits for its time and until every
    // client has been back online for `SETTLE`, so that each restart ends sessions that carry
    // traffic and the outage meets traffic: on a busy machine, logging 8 clients in again can
    // take 10 s.
    let mut events: Vec<String> = Vec::new();
    let mut restarted_at: Vec<Instant> = Vec::new();
    let mut outage_end: Option<Instant> = None;
    let step = |at: Instant| {
        let online = Arc::clone(online);
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
        tokio::task::block_in_place(|| restart(server, how));
        state_tx.send_modify(|state| state.up = true);
        tracing::info!(target: "load", "Prosody back");
        events.push(format!(
            "Prosody {how:?} + restart at t={:.1}s, back after {:.1}s; just before, {sockets}",
            secs(started - t0),
            secs(started.elapsed())
        ));
    }
    Timeline {
        events,
        restarted_at,
        outage_end,
    }
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
pub struct Online {
    pub count: AtomicUsize,
    pub changed: Mutex<Instant>,
}

impl Online {
    pub fn change(&self, up: bool) {
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
