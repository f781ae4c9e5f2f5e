//! Where each received stanza goes: answered on the spot, dropped (from our own domains),
//! refused (rate limit, the sender's or its conversation's bound: `fairness`), or POSTed to
//! the webhook by one of `max_connections` workers, whose answer is queued for the server
//! connection. A stanza waiting for a worker is only its JSON body and its
//! [`Head`](crate::stanza::Head): the element is dropped at once. With `ordered`, one
//! conversation (sender's bare JID → component JID) is with one worker at a time, which
//! takes its stanzas in arrival order. With a store, each call is written to the delivery
//! log before its first attempt; what the last run left unfinished, and the API's replays,
//! come back here as calls. Data flows one way: xmpp → dispatch → webhook → reply → xmpp.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

mod call;
mod conversation;
mod deliver;
mod fairness;
mod occupancy;
mod outage_queue;
mod queue_mode;
pub mod rate_limit;
mod typing;

pub use fairness::Refusal;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use self::call::{Call, Work};
use self::conversation::{Conversations, Turn};
use self::fairness::Gate;
use self::occupancy::RoomStep;
use self::outage_queue::OutageQueue;
use crate::shutdown::{Abandon, Watcher};

use crate::config::{ComponentConfig, WhenUnreachable};
use crate::deadline::Deadline;
use crate::handle::ComponentHandle;
use crate::stanza::local::{route, Route};
use crate::stanza::receipt::asks_for_receipt;
use crate::stanza::request::request_body;
use crate::stanza::{bare, Inbound, Kind};
use crate::store::{Received, Status, Store};
use crate::webhook::signature::new_message_id;
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
    /// Raised at the shutdown deadline: calls still in flight are answered with an error
    /// (with a store, a message is left in flight instead, for the next start).
    abandon: Arc<Abandon>,
    /// The delivery log, when there is one.
    store: Option<Store>,
    /// With `when_unreachable = "queue"`: the messages waiting for the webhook.
    queue: Option<OutageQueue>,
    max_connections: usize,
}

impl Dispatcher {
    /// Starts the `max_connections` workers (inside the runtime), and the tasks that take
    /// the API's replays and probe the queue, which hold the dispatcher: they stop when the
    /// returned [`Background`] is dropped.
    ///
    /// `replays` brings the API's replays (`POST /v1/deliveries/{id}/replay`).
    pub fn new(
        config: &ComponentConfig,
        webhook: Webhook,
        handle: Arc<ComponentHandle>,
        store: Option<Store>,
        replays: mpsc::Receiver<Received>,
    ) -> (Dispatcher, Background) {
        let queue = (config.queue.when_unreachable == WhenUnreachable::Queue && store.is_some())
            .then(|| OutageQueue::new(&config.queue, handle.metrics()));
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
            store,
            queue,
            max_connections: config.max_connections,
        });
        tokio::spawn(inner.webhook.sweep_unused());
        let (ready, calls) = async_channel::unbounded();
        for _ in 0..config.max_connections {
            tokio::spawn(Arc::clone(&inner).work(calls.clone()));
        }
        let probe = inner
            .queue
            .is_some()
            .then(|| tokio::spawn(Arc::clone(&inner).probe_queue()));
        let dispatcher = Dispatcher { inner, ready };
        let replays = tokio::spawn(dispatcher.clone().take_replays(replays));
        let background = Background(probe.into_iter().chain([replays]).collect());
        (dispatcher, background)
    }

    /// Delivers again what the store holds without an outcome for this component (the
    /// daemon stopped mid-call, or before the first attempt, or while it was queued), in the
    /// order received: called once, after the first handshake (so that the answers have a
    /// stream to go to) and before the first stanza is read (so that each conversation's old
    /// messages go before its new ones).
    pub async fn redeliver_unfinished(&self) {
        let Some(store) = self.inner.store.clone() else {
            return;
        };
        let domain = self.inner.handle.domain().to_string();
        let read = tokio::task::spawn_blocking(move || store.unfinished(&domain)).await;
        let records = match read {
            Ok(Ok(records)) => records,
            Ok(Err(error)) => {
                tracing::warn!(
                    "{error}: the deliveries cut off by the last stop are not made again"
                );
                return;
            }
            Err(error) => {
                tracing::warn!("reading the store failed: {error}");
                return;
            }
        };
        if records.is_empty() {
            return;
        }
        tracing::info!(
            "{}: delivering again {} message(s) the last run did not finish",
            self.inner.handle.domain(),
            records.len()
        );
        // With queued ones among them, the webhook was down: they all wait for the probe.
        let queued = records.iter().any(|(_, status)| *status == Status::Queued);
        for (record, _) in records {
            match (&self.inner.queue, self.inner.call_from(record)) {
                (Some(queue), Some(call)) if queued => queue.restore(call),
                (_, Some(call)) => self.go_in_turn(call),
                (_, None) => {}
            }
        }
    }

    /// The API's replays, one at a time, as they come.
    async fn take_replays(self, mut replays: mpsc::Receiver<Received>) {
        while let Some(record) = replays.recv().await {
            if let Some(call) = self.inner.call_from(record) {
                self.go_in_turn(call);
            }
        }
    }

    /// A call made again from the store waits its turn in its conversation, whatever the
    /// conversation's bound (it was accepted once already).
    fn go_in_turn(&self, call: Call) {
        let call = match (&self.inner.conversations, call.conversation) {
            (Some(conversations), Some(conversation)) => {
                conversations.queue_behind(conversation, call)
            }
            _ => Some(call),
        };
        if let Some(call) = call {
            self.hand_over(call);
        }
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
                json: Bytes::from(body.json),
                has_body: body.has_body,
            }
        };
        // One room is one conversation; an occupant's private messages are their own.
        let party = if inbound.is_room_groupchat() {
            bare(inbound.from())
        } else {
            sender
        };
        // Hashed only where a conversation is tracked: with `ordered`, or for queue mode.
        let key = if inner.conversations.is_some() || inner.queue.is_some() {
            inner.keys.hash_one((party, inbound.to()))
        } else {
            0
        };
        let party = inner.store.is_some().then(|| party.to_string());
        let call = Call {
            receipt,
            id: new_message_id().into_boxed_str(),
            work,
            key,
            conversation: inner.conversations.is_some().then_some(key),
            _held: held,
            _permit: Some(permit),
            head: inbound.into_head(),
        };
        if let (Some(store), Some(party)) = (&inner.store, party) {
            if let Some(record) = call.record(inner.handle.domain(), party) {
                store.received(record);
            }
        }
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
    fn next_in(&self, conversation: conversation::Conversation) -> Option<Call> {
        self.conversations.as_ref()?.next_in(conversation)
    }

    /// The call a stored record stands for, its conversation keyed as a new one's would be.
    fn call_from(&self, record: Received) -> Option<Call> {
        let key = self
            .keys
            .hash_one((record.party.as_str(), record.to.as_str()));
        let id = record.id.clone();
        let call = Call::from_record(record, key, self.conversations.is_some());
        if call.is_none() {
            tracing::warn!("delivery {id} in the store is of an unknown kind: not made again");
        }
        call
    }
}

/// The dispatcher's own tasks (the replays' and the queue's probe): aborted when dropped,
/// since each holds the dispatcher and would keep it alive.
pub struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
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
