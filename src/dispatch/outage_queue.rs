//! Queue mode's waiting line: the messages the webhook could not take (`Parked`), in the
//! order they came, with the conversations told `queued_notice` in this outage, and the
//! `queued` and `oldest_queued_age_seconds` gauges kept up to date. What is done with them
//! (the probe, the drain, expiry) is `queue_mode.rs`.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use minidom::rxml::xml_ncname;
use minidom::Element;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::call::Call;
use super::conversation::Conversation;
use crate::config::QueueConfig;
use crate::metrics::ComponentMetrics;
use crate::stanza::reply::WebhookOutcome;
use crate::stanza::{Head, COMPONENT_NS};
use crate::xml::set_attr;

/// A message waiting for the webhook.
pub(super) struct Parked {
    /// The call, without its permits.
    pub(super) call: Call,
    pub(super) queued_at: Instant,
    /// Its last attempt's outcome (`None`: queued without one, behind others).
    pub(super) last: Option<WebhookOutcome>,
}

pub(super) struct OutageQueue {
    pub(super) max_age: Duration,
    pub(super) probe_interval: Duration,
    pub(super) probe_max_interval: Duration,
    pub(super) notice: Option<String>,
    pub(super) max_queued: usize,
    pub(super) state: Mutex<State>,
    /// Woken when the first message is queued.
    pub(super) wake: Notify,
    pub(super) metrics: ComponentMetrics,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) waiting: VecDeque<Parked>,
    /// A drain is delivering what it took from `waiting`: new messages still go behind.
    pub(super) draining: bool,
    /// The conversations told `queued_notice` in this outage.
    pub(super) noticed: HashSet<Conversation>,
}

impl OutageQueue {
    pub(super) fn new(config: &QueueConfig, metrics: &ComponentMetrics) -> OutageQueue {
        OutageQueue {
            max_age: config.queue_max_age,
            probe_interval: config.queue_probe_interval,
            probe_max_interval: config.queue_probe_max_interval,
            notice: config.queued_notice.clone(),
            max_queued: config.max_queued,
            state: Mutex::default(),
            wake: Notify::new(),
            metrics: metrics.clone(),
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether messages are waiting (or being drained): new ones go behind them.
    pub(super) fn is_active(&self) -> bool {
        let state = self.state();
        state.draining || !state.waiting.is_empty()
    }

    /// Adds `parked` at the end; `Err` when `max_queued` are waiting. `Ok(true)`: the first
    /// of its conversation in this outage (it gets the notice).
    pub(super) fn push(&self, parked: Parked) -> Result<bool, Box<Parked>> {
        let mut state = self.state();
        if state.waiting.len() >= self.max_queued {
            return Err(Box::new(parked));
        }
        let first = state.noticed.insert(parked.call.key);
        state.waiting.push_back(parked);
        self.show(&state);
        drop(state);
        self.wake.notify_one();
        Ok(first)
    }

    /// A call the store held as queued (or behind queued ones) at start: waits again,
    /// without a new notice.
    pub(super) fn restore(&self, call: Call) {
        let parked = Parked {
            call,
            queued_at: Instant::now(),
            last: None,
        };
        let mut state = self.state();
        state.noticed.insert(parked.call.key);
        state.waiting.push_back(parked);
        self.show(&state);
        drop(state);
        self.wake.notify_one();
    }

    pub(super) fn show(&self, state: &State) {
        self.metrics.queued.set(state.waiting.len() as i64);
        let oldest = state.waiting.iter().map(|p| p.queued_at).min();
        self.metrics
            .oldest_queued_age
            .set(oldest.map_or(0.0, |t| t.elapsed().as_secs_f64()));
    }
}

impl Parked {
    pub(super) fn copy(&self) -> Parked {
        Parked {
            call: self.call.detached(self.call.work.clone()),
            queued_at: self.queued_at,
            last: self.last.clone(),
        }
    }
}

/// `queued_notice`, from the address the message was sent to.
pub(super) fn notice(inbound: &Head, text: &str) -> Element {
    let mut message = Element::bare("message", COMPONENT_NS);
    set_attr(&mut message, xml_ncname!("from"), inbound.to());
    set_attr(&mut message, xml_ncname!("to"), inbound.from());
    set_attr(&mut message, xml_ncname!("type"), "chat");
    let mut body = Element::bare("body", COMPONENT_NS);
    body.append_text_node(text);
    message.append_child(body);
    message
}
