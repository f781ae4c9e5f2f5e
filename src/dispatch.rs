//! Where each received stanza goes: answered on the spot, dropped (from our own domains),
//! refused (rate limit, the sender's or its conversation's bound: `fairness`), or POSTed to
//! the webhook by one of `max_connections` workers, whose answer is queued for the server
//! connection. A stanza waiting for a worker is only its JSON body and its [`Head`]: the
//! element is dropped at once. With `ordered`, one conversation (sender's bare JID →
//! component JID) is with one worker at a time, which takes its stanzas in arrival order.
//! Data flows one way: xmpp → dispatch → webhook → reply → xmpp.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

mod conversation;
mod fairness;
mod occupancy;
pub mod rate_limit;
mod typing;

pub use fairness::Refusal;

use minidom::Element;
use tokio::sync::OwnedSemaphorePermit;

use self::conversation::{Conversation, Conversations, Turn};
use self::fairness::{Gate, Held};
use self::occupancy::RoomStep;
use self::typing::{chat_state, end_typing, wants_typing_notice};
use crate::shutdown::{Abandon, Watcher};

use crate::config::ComponentConfig;
use crate::deadline::{after, Deadline};
use crate::handle::ComponentHandle;
use crate::stanza::error::StanzaError;
use crate::stanza::local::{route, Route};
use crate::stanza::receipt::{asks_for_receipt, receipt};
use crate::stanza::reply::{answer_quoting, Answer};
use crate::stanza::request::request_body;
use crate::stanza::{bare, Head, Inbound, Kind};
use crate::upload::file_answer;
use crate::webhook::Webhook;
use crate::xml::outgoing::OutgoingStanza;

/// Routes the stanzas of one component. Its workers stop once every clone is dropped and
/// the calls already queued are done.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
    /// Calls ready for a worker (a multi-consumer queue: each call wakes one idle worker).
    /// Bounded by the `max_in_flight` permit each call holds; the queue itself is unbounded
    /// so that it allocates as it fills (a bounded one takes all its slots at once).
    ready: async_channel::Sender<Call>,
}

/// A stanza on its way to the webhook, holding one of the `max_in_flight` permits (and
/// counting against its sender's `max_in_flight_per_sender`) until its answer is queued.
struct Call {
    head: Head,
    /// It asked for a XEP-0184 receipt and `receipts` is on: one goes back after a 2xx.
    receipt: bool,
    work: Work,
    conversation: Option<Conversation>,
    _held: Option<Held>,
    _permit: OwnedSemaphorePermit,
}

enum Work {
    Post {
        json: Vec<u8>,
        has_body: bool,
        /// A message's body, which a reply with `fallback: true` quotes (XEP-0461).
        quoted: Option<Box<str>>,
    },
    /// Refused in its turn, so that the conversation's answers stay in order.
    TooLarge,
}

struct Inner {
    forwarded: Vec<Kind>,
    max_stanza_size: usize,
    webhook: Webhook,
    /// What a stanza for the webhook passes first: the loop guard and the fairness bounds.
    gate: Gate,
    typing_after: Option<Duration>,
    receipts: bool,
    handle: Arc<ComponentHandle>,
    /// With `ordered`: conversations with a worker at them, and their stanzas waiting behind.
    conversations: Option<Conversations<Call>>,
    /// Keys the hashes of senders and conversations.
    keys: RandomState,
    /// Raised at the shutdown deadline: calls still in flight are answered with an error.
    abandon: Arc<Abandon>,
}

impl Dispatcher {
    /// Starts the `max_connections` workers (inside the runtime).
    pub fn new(
        config: &ComponentConfig,
        webhook: Webhook,
        handle: Arc<ComponentHandle>,
    ) -> Dispatcher {
        let inner = Arc::new(Inner {
            forwarded: config.stanzas.clone(),
            max_stanza_size: config.max_stanza_size,
            webhook,
            gate: Gate::new(config, handle.metrics().clone()),
            typing_after: config.typing_after,
            receipts: config.receipts,
            handle,
            conversations: config
                .ordered
                .then(|| Conversations::new(config.max_queued_per_conversation)),
            keys: RandomState::new(),
            abandon: Arc::default(),
        });
        tokio::spawn(inner.webhook.sweep_unused());
        let (ready, calls) = async_channel::unbounded();
        for _ in 0..config.max_connections {
            tokio::spawn(Arc::clone(&inner).work(calls.clone()));
        }
        Dispatcher { inner, ready }
    }

    /// Handles one stanza. Returns what must be sent right away, written; a webhook call
    /// keeps `permit` until its answer is queued.
    pub fn dispatch(
        &self,
        mut inbound: Inbound,
        permit: OwnedSemaphorePermit,
    ) -> Vec<OutgoingStanza> {
        let inner = &self.inner;
        inner.handle.metrics().received(inbound.kind()).inc();
        tracing::debug!(
            domain = %inner.handle.domain(),
            kind = inbound.kind().as_str(),
            from = inbound.from(),
            to = inbound.to(),
            "stanza received"
        );
        let room = match self.room_step(&inbound) {
            RoomStep::Elsewhere => None,
            RoomStep::Done(stanzas) => return stanzas,
            RoomStep::Post(fields) => {
                inbound.mark_from_room();
                Some(fields)
            }
        };
        match route(&inbound, &inner.forwarded, inner.gate.guarded()) {
            Route::Webhook => {}
            Route::Local(stanzas) => return inner.handle.write_answers(stanzas, inbound.head()),
            Route::OwnDomain => {
                let refused = inner.gate.refuse(&inbound, Refusal::OwnDomain);
                return inner.handle.write_answers(refused, inbound.head());
            }
        }
        if inner.gate.drops_notice(&inbound) {
            return Vec::new();
        }
        // Every occupant of a room shares its bare JID: room traffic is keyed by occupant.
        let sender = if inbound.is_from_room() {
            inbound.from()
        } else {
            bare(inbound.from())
        };
        let held = match inner.gate.admit(&inbound, inner.keys.hash_one(sender)) {
            Ok(held) => held,
            Err(refused) => return inner.handle.write_answers(refused, inbound.head()),
        };
        let receipt = inner.receipts && asks_for_receipt(inbound.element());
        let body = request_body(&inbound, room.as_ref());
        let work = if body.stanza_len > inner.max_stanza_size {
            Work::TooLarge
        } else {
            Work::Post {
                json: body.json,
                has_body: body.has_body,
                quoted: inbound.body().map(String::into_boxed_str),
            }
        };
        // One room is one conversation; an occupant's private messages are their own.
        let party = if inbound.is_room_groupchat() {
            bare(inbound.from())
        } else {
            sender
        };
        let conversation = inner
            .conversations
            .is_some()
            .then(|| inner.keys.hash_one((party, inbound.to())));
        let call = Call {
            head: inbound.into_head(),
            receipt,
            work,
            conversation,
            _held: held,
            _permit: permit,
        };
        match inner.wait_in_turn(call) {
            Turn::Now(call) => self.hand_over(call),
            Turn::Waiting => {}
            // Dropped with its answer: its permit and its sender's count are free.
            Turn::Full(call) => {
                let refused = inner.gate.refuse(&call.head, Refusal::ConversationQueue);
                return inner.handle.write_answers(refused, &call.head);
            }
        }
        Vec::new()
    }

    /// Gives `call` to the next free worker.
    fn hand_over(&self, call: Call) {
        if let Err(refused) = self.ready.try_send(call) {
            // Cannot be full (see `ready`), nor closed while `self` lives; if it were, the
            // call is delivered on a task of its own rather than lost.
            let call = refused.into_inner();
            let inner = Arc::clone(&self.inner);
            let mut watch = inner.watch();
            tokio::spawn(async move { inner.converse(call, &mut watch).await });
        }
    }

    /// From now on, webhook calls still running are answered with `SHUTTING_DOWN`.
    pub fn abandon_in_flight(&self) {
        self.inner.abandon.raise();
    }
}

impl Inner {
    /// One worker: takes ready calls one at a time, and stays with a conversation while it
    /// has stanzas waiting. Its timers serve each of its calls in turn.
    async fn work(self: Arc<Self>, calls: async_channel::Receiver<Call>) {
        let mut watch = self.watch();
        while let Ok(call) = calls.recv().await {
            self.converse(call, &mut watch).await;
        }
    }

    /// What one task watches while it delivers calls: the shutdown deadline, its timers.
    fn watch(&self) -> Watch {
        Watch {
            abandon: self.abandon.watcher(),
            attempt: Deadline::new(),
            typing: Deadline::new(),
        }
    }

    /// Delivers `call`, then the calls waiting behind it in its conversation.
    async fn converse(&self, mut call: Call, watch: &mut Watch) {
        loop {
            self.deliver(&mut call, watch).await;
            let conversation = call.conversation.take();
            drop(call); // its answers are queued: its permit is free
            match conversation.and_then(|c| self.next_in(c)) {
                Some(next) => call = next,
                None => return,
            }
        }
    }

    /// With `ordered`, `call` waits its turn in its conversation (see [`Turn`]); without,
    /// it goes at once.
    fn wait_in_turn(&self, call: Call) -> Turn<Call> {
        match (&self.conversations, call.conversation) {
            (Some(conversations), Some(conversation)) => {
                conversations.wait_in_turn(conversation, call)
            }
            _ => Turn::Now(call),
        }
    }

    /// The conversation's next call, or `None` (and the conversation is free).
    fn next_in(&self, conversation: Conversation) -> Option<Call> {
        self.conversations.as_ref()?.next_in(conversation)
    }

    async fn deliver(&self, call: &mut Call, watch: &mut Watch) {
        let inbound = &call.head;
        let (json, has_body, quoted) = match &mut call.work {
            Work::Post {
                json,
                has_body,
                quoted,
            } => (std::mem::take(json), *has_body, quoted.take()),
            Work::TooLarge => {
                let answer = self.refuse(
                    inbound,
                    StanzaError::TOO_LARGE,
                    "is larger than max_stanza_size",
                );
                self.queue_answers(inbound, answer.stanzas);
                return;
            }
        };
        // A chat message whose answer takes long gets a "composing" notice meanwhile.
        let typing_after = self
            .typing_after
            .filter(|_| wants_typing_notice(inbound, has_body));
        // One clock read for both timers.
        let started = tokio::time::Instant::now();
        if let Some(wait) = typing_after {
            watch.typing.set(after(started, wait));
        }
        let delivery = self.webhook.post(json, started, &mut watch.attempt);
        tokio::pin!(delivery);
        let mut typed = false;
        let mut answer = loop {
            tokio::select! {
                delivery = &mut delivery => {
                    let mut answer = answer_quoting(inbound, quoted.as_deref(), &delivery.outcome, &self.handle.send_policy());
                    for trouble in delivery.failure.into_iter().chain(answer.problem.as_ref().map(ToString::to_string)) {
                        self.handle.record_webhook_error(&trouble);
                        self.warn(inbound, &trouble, &answer.stanzas);
                    }
                    // The receipt goes first: the sender sees its message taken, then the reply.
                    answer.stanzas.splice(0..0, call.receipt.then(|| receipt(inbound, &delivery.outcome, &answer)).flatten());
                    break answer;
                }
                _ = watch.typing.reached(), if typing_after.is_some() && !typed => {
                    typed = true;
                    self.queue(inbound, chat_state(inbound, "composing"));
                }
                () = watch.abandon.raised() => {
                    break self.refuse(inbound, StanzaError::SHUTTING_DOWN, "was cut off by the shutdown deadline");
                }
            }
        };
        if let Some(file) = answer.file.take() {
            // The bot's `file`: uploaded here, at the edge; its message follows the others.
            tokio::select! {
                sent = file_answer(&self.handle, inbound, file) => answer.stanzas.extend(sent),
                () = watch.abandon.raised() => answer.stanzas.extend(self.refuse(inbound, StanzaError::SHUTTING_DOWN, "was cut off by the shutdown deadline").stanzas),
            }
        }
        if typed {
            end_typing(inbound, &mut answer.stanzas);
        }
        self.queue_answers(inbound, answer.stanzas);
    }

    /// Queues the answers to `inbound` (one that cannot be written is replaced by an error).
    fn queue_answers(&self, inbound: &Head, stanzas: Vec<Element>) {
        for stanza in self.handle.write_answers(stanzas, inbound) {
            tracing::debug!(domain = %self.handle.domain(), to = inbound.from(), "reply queued");
            self.handle.queue_written(stanza, inbound.from());
        }
    }

    /// Queues one stanza for the server connection.
    fn queue(&self, inbound: &Head, stanza: Element) {
        tracing::debug!(domain = %self.handle.domain(), kind = stanza.name(), to = stanza.attr("to"), "reply queued");
        self.handle.queue_reply(&stanza, inbound.from());
    }

    fn refuse(&self, inbound: &Head, error: StanzaError, why: &str) -> Answer {
        let stanzas: Vec<Element> = error.reply_to(inbound).into_iter().collect();
        self.warn(inbound, &format!("the stanza {why}"), &stanzas);
        Answer {
            stanzas,
            ..Answer::default()
        }
    }

    fn warn(&self, inbound: &Head, trouble: &str, answered: &[Element]) {
        let withheld = if inbound.is_from_room() && answered.iter().any(is_error) {
            ", not sent: a room gets no stanza errors"
        } else {
            ""
        };
        tracing::warn!(
            "{}: {trouble} (for a {} from {}); answered with {}{withheld}",
            self.handle.domain(),
            inbound.kind().as_str(),
            inbound.from(),
            describe(answered)
        );
    }
}

/// What a worker watches while it delivers a call, made once and used for each call in
/// turn: no subscription or timer is made per call.
struct Watch {
    /// The shutdown deadline.
    abandon: Watcher,
    /// Each webhook attempt's `timeout`, and the waits between retries ([`Deadline`]).
    attempt: Deadline,
    /// When a "composing" notice is due (`typing_after`).
    typing: Deadline,
}

fn is_error(stanza: &Element) -> bool {
    stanza.attr("type") == Some("error")
}

/// "a cancel/item-not-found error", "nothing", ... for log lines.
fn describe(stanzas: &[Element]) -> String {
    let error = stanzas
        .iter()
        .find_map(|s| s.children().find(|c| c.name() == "error"));
    match error {
        Some(error) => {
            let condition = error.children().next().map_or("", |c| c.name());
            let kind = error.attr("type").unwrap_or("cancel");
            format!("a {kind}/{condition} error")
        }
        None if stanzas.is_empty() => "nothing".into(),
        None => "a reply".into(),
    }
}
