//! What keeps one sender from starving everyone else, and the component from talking to
//! itself: the [`Gate`] a stanza for the webhook passes first — the loop guard's domains,
//! the rate limit, and the count of stanzas each sender has accepted and not yet answered
//! (`max_in_flight_per_sender`), and with `forward_chat_states = false` the messages that
//! are only notices — and what a stanza turned away gets: its error at once,
//! a count in `stanzas_refused_total`, and one log line per component and reason.
//!
//! Why a per-sender count besides the rate limit: every stanza accepted holds one of the
//! `max_in_flight` slots until it is answered, and when all are taken the session stops
//! reading, for everyone. The rate limit bounds how fast one sender's stanzas are accepted,
//! not how many it holds: that is the rate times how long each is held, which the webhook
//! decides (up to `timeout` per attempt, retries for `retry.max_elapsed`). At 10 a second
//! and 30 s each, one sender would hold 300 slots; across many conversations the
//! per-conversation cap does not stop it either. The count does, whatever the webhook does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use minidom::Element;
use prometheus_client::metrics::counter::Counter;

use super::rate_limit::{RateLimiter, SenderKey};
use crate::config::ComponentConfig;
use crate::metrics::ComponentMetrics;
use crate::stanza::error::StanzaError;
use crate::stanza::receipt::is_only_a_notice;
use crate::stanza::{Head, Inbound};

/// The checks before a stanza is accepted for the webhook, and its refusal.
pub struct Gate {
    domain: String,
    /// The domains whose stanzas are not POSTed (the loop guard); empty with
    /// `forward_from_own_domains`.
    guarded: Vec<String>,
    rate_limiter: Option<RateLimiter>,
    /// `None` when `max_in_flight_per_sender` is `max_in_flight`: the slots bound it.
    sender_load: Option<Arc<SenderLoad>>,
    logged: LoggedOnce,
    /// `forward_chat_states`: whether messages that are only notices are POSTed.
    forward_notices: bool,
    /// Stanzas refused, by [`Refusal`] (in the order of [`Refusal::ALL`]).
    refused: [Counter; 5],
}

impl Gate {
    pub fn new(config: &ComponentConfig, metrics: ComponentMetrics) -> Gate {
        Gate {
            domain: config.domain.clone(),
            guarded: match config.forward_from_own_domains {
                true => Vec::new(),
                false => config.own_domains.clone(),
            },
            rate_limiter: config.rate_limit.map(RateLimiter::new),
            sender_load: (config.max_in_flight_per_sender < config.max_in_flight)
                .then(|| SenderLoad::new(config.max_in_flight_per_sender)),
            logged: LoggedOnce::default(),
            forward_notices: config.forward_chat_states,
            refused: Refusal::ALL.map(|refusal| metrics.refused(refusal.label())),
        }
    }

    /// The domains the loop guard keeps from the webhook (`stanza::local::route`).
    pub fn guarded(&self) -> &[String] {
        &self.guarded
    }

    /// With `forward_chat_states = false`, whether `inbound` carries nothing but a chat
    /// state, a receipt or a marker: then it is counted and logged as [`Refusal::ChatState`]
    /// and must be dropped unanswered. Asked before [`Gate::admit`], so that such notices
    /// cost the sender none of its rate.
    pub fn drops_notice(&self, inbound: &Inbound) -> bool {
        if self.forward_notices || !is_only_a_notice(inbound.element()) {
            return false;
        }
        self.refuse(inbound.head(), Refusal::ChatState);
        true
    }

    /// Before the stanza's body is built: the sender's rate, then its count of stanzas in
    /// flight, which it holds (`Some`) until the call is dropped. `Err`: refused, with what
    /// to send back.
    pub fn admit(&self, inbound: &Head, sender: SenderKey) -> Result<Option<Held>, Vec<Element>> {
        if let Some(limiter) = &self.rate_limiter {
            if !limiter.allow(sender, Instant::now()) {
                return Err(self.refuse(inbound, Refusal::RateLimit));
            }
        }
        match &self.sender_load {
            None => Ok(None),
            Some(load) => match load.take(sender) {
                Some(held) => Ok(Some(held)),
                None => Err(self.refuse(inbound, Refusal::SenderInFlight)),
            },
        }
    }

    /// A stanza not POSTed, for `refusal`: counted, logged once per component and reason
    /// (then at debug level), and answered at once with its error, if it has one.
    pub fn refuse(&self, inbound: &Head, refusal: Refusal) -> Vec<Element> {
        self.refused[refusal as usize].inc();
        let (kind, from, to) = (inbound.kind().as_str(), inbound.from(), inbound.to());
        let why = refusal.explanation();
        if self.logged.first(refusal) {
            tracing::warn!(
                "{}: a {kind} from {from} to {to} {why}; from now on such stanzas are counted \
                 in stanzas_refused_total{{reason=\"{}\"}}, not logged",
                self.domain,
                refusal.label()
            );
        } else {
            tracing::debug!("{}: a {kind} from {from} to {to} {why}", self.domain);
        }
        match refusal.error() {
            Some(error) => error.reply_to(inbound).into_iter().collect(),
            None => Vec::new(),
        }
    }
}

/// Why a stanza for the webhook was not POSTed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its sender is on a domain this process serves (the loop guard): dropped unanswered,
    /// as an error would go back to our own domain.
    OwnDomain,
    /// Its sender is over `rate_limit`.
    RateLimit,
    /// Its sender has `max_in_flight_per_sender` stanzas accepted and not yet answered.
    SenderInFlight,
    /// Its conversation has `max_queued_per_conversation` stanzas waiting already.
    ConversationQueue,
    /// It carries nothing but a chat state, a receipt or a chat marker, and
    /// `forward_chat_states` is off: dropped unanswered, as nobody waits for an answer.
    ChatState,
}

impl Refusal {
    /// Every reason, in the order of the gate's counters.
    pub const ALL: [Refusal; 5] = [
        Refusal::OwnDomain,
        Refusal::RateLimit,
        Refusal::SenderInFlight,
        Refusal::ConversationQueue,
        Refusal::ChatState,
    ];

    /// The `reason` label of `stanzas_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::OwnDomain => "own_domain",
            Refusal::RateLimit => "rate_limit",
            Refusal::SenderInFlight => "sender_in_flight",
            Refusal::ConversationQueue => "conversation_queue",
            Refusal::ChatState => "chat_state",
        }
    }

    /// The error the sender gets; `None`: no answer at all.
    pub fn error(self) -> Option<StanzaError> {
        match self {
            Refusal::OwnDomain | Refusal::ChatState => None,
            Refusal::RateLimit => Some(StanzaError::RATE_LIMITED),
            Refusal::SenderInFlight => Some(StanzaError::SENDER_BUSY),
            Refusal::ConversationQueue => Some(StanzaError::CONVERSATION_FULL),
        }
    }

    /// What the log says the first time, after "a `kind` from `sender` to `address`".
    pub fn explanation(self) -> &'static str {
        match self {
            Refusal::OwnDomain => {
                "was dropped unanswered, not POSTed: the sender is on a domain this daemon \
                 serves, and such a stanza is what a webhook answering its own domain sends \
                 back (loop guard; `forward_from_own_domains = true` POSTs them)"
            }
            Refusal::RateLimit => {
                "was refused with wait/resource-constraint: the sender is over `rate_limit`"
            }
            Refusal::SenderInFlight => {
                "was refused with wait/resource-constraint: the sender has \
                 `max_in_flight_per_sender` stanzas waiting for the webhook"
            }
            Refusal::ConversationQueue => {
                "was refused with wait/resource-constraint: its conversation has \
                 `max_queued_per_conversation` stanzas waiting"
            }
            Refusal::ChatState => {
                "was dropped unanswered, not POSTed: it carries nothing but a chat state, a \
                 receipt or a chat marker (`forward_chat_states = false`)"
            }
        }
    }
}

/// For each [`Refusal`], whether it was logged already: once per component, the rest is
/// counted (a flood would otherwise write a line per stanza).
#[derive(Default)]
pub struct LoggedOnce([AtomicBool; 5]);

impl LoggedOnce {
    /// True the first time only.
    pub fn first(&self, refusal: Refusal) -> bool {
        !self.0[refusal as usize].swap(true, Ordering::Relaxed)
    }
}

/// How many stanzas each sender has accepted and not yet answered. A sender is in the
/// table only while it has some, so the table holds at most `max_in_flight` senders.
#[derive(Debug)]
pub struct SenderLoad {
    cap: u32,
    held: Mutex<HashMap<SenderKey, u32>>,
}

/// One accepted stanza of a sender, counted until it is dropped (with its call).
#[derive(Debug)]
pub struct Held {
    load: Arc<SenderLoad>,
    sender: SenderKey,
}

impl SenderLoad {
    pub fn new(cap: usize) -> Arc<SenderLoad> {
        Arc::new(SenderLoad {
            cap: u32::try_from(cap).unwrap_or(u32::MAX),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one more stanza of `sender`; `None` when it holds `cap` already.
    pub fn take(self: &Arc<Self>, sender: SenderKey) -> Option<Held> {
        let mut held = self.lock();
        let count = held.entry(sender).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Held {
            load: Arc::clone(self),
            sender,
        })
    }

    /// The counts stay whole whatever a panicking holder did: take them as they are.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SenderKey, u32>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn senders(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.load.lock();
        if let Some(count) = held.get_mut(&self.sender) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.sender);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::metrics::Metrics;
    use crate::stanza::Kind;
    use crate::xml::write::write_stanza;

    fn gate(extra: &str) -> Gate {
        let text = format!(
            "[[component]]\ndomain = \"bot.b\"\nsecret = \"s\"\npost_url = \"http://127.0.0.1:1/\"\n{extra}\n"
        );
        let config = Config::parse(&text, std::path::Path::new(".")).expect("valid");
        Gate::new(&config.components[0], Metrics::default().component("bot.b"))
    }

    fn message(from: &str) -> Head {
        Head::new(Kind::Message, from, "echo@bot.b", Some("chat"), Some("m1"))
    }

    fn written(answer: &[Element]) -> Vec<String> {
        answer.iter().map(write_stanza).collect()
    }

    #[test]
    fn the_rate_limit_comes_first_then_the_senders_count() {
        let gate =
            gate("rate_limit = { per_second = 0.001, burst = 3 }\nmax_in_flight_per_sender = 2");
        let alice = message("alice@a/phone");
        let first = gate.admit(&alice, 1).expect("under both bounds");
        let second = gate.admit(&alice, 1).expect("under both bounds");
        let busy = gate.admit(&alice, 1).expect_err("two in flight already");
        assert_eq!(
            written(&busy),
            [
                "<message from='echo@bot.b' id='m1' to='alice@a/phone' type='error'>\
              <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
              <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Too many stanzas in flight from \
              this sender</text></error></message>"
            ]
        );
        drop((first, second));
        // The third token was taken by the refused stanza: the rate limit counts attempts.
        let limited = gate.admit(&alice, 1).expect_err("over the rate");
        assert_eq!(
            written(&limited),
            [
                "<message from='echo@bot.b' id='m1' to='alice@a/phone' type='error'>\
              <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
              </error></message>"
            ]
        );
        assert!(
            gate.admit(&message("bob@a"), 2).is_ok(),
            "bob has his own bucket and count"
        );
        assert_eq!(gate.refused[Refusal::SenderInFlight as usize].get(), 1);
        assert_eq!(gate.refused[Refusal::RateLimit as usize].get(), 1);
    }

    #[test]
    fn the_defaults_bound_each_sender_and_drop_our_own_domains_unanswered() {
        let gate = gate("");
        assert_eq!(gate.guarded(), ["bot.b"]);
        let held: Vec<_> = (0..50)
            .filter_map(|_| gate.admit(&message("alice@a"), 1).ok())
            .collect();
        assert_eq!(held.len(), 50, "the default burst");
        assert!(gate.admit(&message("alice@a"), 1).is_err());
        assert!(gate
            .refuse(&message("e@bot.b"), Refusal::OwnDomain)
            .is_empty());
        assert!(gate
            .refuse(&message("e@bot.b"), Refusal::OwnDomain)
            .is_empty());
        assert_eq!(gate.refused[Refusal::OwnDomain as usize].get(), 2);
        let unbounded = self::gate(
            "rate_limit = false\nmax_in_flight_per_sender = 256\nforward_from_own_domains = true",
        );
        assert!(unbounded.sender_load.is_none() && unbounded.rate_limiter.is_none());
        assert!(unbounded.guarded().is_empty());
    }

    #[test]
    fn a_sender_holds_at_most_its_cap_and_gets_slots_back_as_calls_end() {
        let load = SenderLoad::new(3);
        let mut held: Vec<Held> = (0..3)
            .map(|_| load.take(1).expect("under the cap"))
            .collect();
        assert!(load.take(1).is_none(), "the fourth is refused");
        let other = load.take(2).expect("another sender has its own count");
        held.pop();
        let again = load.take(1).expect("a slot came back");
        assert!(load.take(1).is_none());
        drop((held, again, other));
        assert_eq!(load.senders(), 0, "senders with nothing held are forgotten");
    }

    #[test]
    fn each_refusal_is_logged_once_and_maps_to_its_error() {
        let logged = LoggedOnce::default();
        for refusal in Refusal::ALL {
            assert!(logged.first(refusal));
            assert!(!logged.first(refusal));
            assert_eq!(Refusal::ALL[refusal as usize], refusal);
        }
        assert_eq!(
            Refusal::OwnDomain.error(),
            None,
            "no answer to our own domain"
        );
        assert_eq!(Refusal::ChatState.error(), None, "no answer to a notice");
        for refusal in &Refusal::ALL[1..4] {
            let error = refusal.error().expect("an answer");
            assert_eq!(
                (error.error_type, error.condition),
                ("wait", "resource-constraint")
            );
        }
    }
}
