//! One client's load: its sessions, sending at an even pace, taking replies and errors as
//! outcomes, and after every reconnection re-sending what has no outcome yet (as a client
//! with XEP-0198 would), noting why each had none.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use minidom::Element;
use tokio::sync::watch;

use crate::client_report::{ClientReport, Message, Outcome, Resent};
use crate::echo_webhook::HookRecord;
use crate::schedule::{Online, ServerState};
use crate::support::client::{to_xml, XmppClient};
use crate::{id, secs, user, BOT, CHAT_STATES_NS, CLIENT_NS, STANZAS_NS};
use crate::{LOAD_DEADLINE, LOGIN_ATTEMPTS, OVERDUE, SEND_FOR};

pub struct ClientLoad {
    pub c: usize,
    pub count: usize,
    pub c2s: u16,
    pub t0: Instant,
    pub server: watch::Receiver<ServerState>,
    pub hook: Arc<Mutex<HookRecord>>,
    /// Clients with a live session.
    pub online: Arc<Online>,
}

impl ClientLoad {
    pub async fn run(mut self, first: XmppClient) -> ClientReport {
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

/// XmppClient::send panics when its process has exited after a disconnection; the load
/// treats that as the disconnection it is, so those panics are not printed.
pub fn quiet_expected_panics() {
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
