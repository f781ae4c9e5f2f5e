//! Queue mode (`when_unreachable = "queue"`): a message the webhook could not take after
//! its retries waits here, and in the store, instead of getting an error. While anything
//! waits, new messages go behind it; the oldest is tried every `queue_probe_interval`
//! (doubling up to `queue_probe_max_interval`), and as soon as one goes through, the queue drains at once:
//! each conversation's messages in order, up to `max_connections` conversations at a time.
//! A message older than `queue_max_age` gets the error of its last outcome; past
//! `max_queued` a message gets its error at once. The queue is in memory; the store's
//! `queued` records bring it back after a restart. Neither the probe nor the drain runs while
//! the component has no stream to the server: their answers would pile up in the outbox and
//! those past `max_queued_replies` be dropped. The line itself is `outage_queue.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::call::{Call, Work};
use super::conversation::Conversation;
use super::outage_queue::{notice, OutageQueue, Parked};
use super::Inner;
use crate::deadline::Deadline;
use crate::stanza::reply::WebhookOutcome;
use crate::store::AttemptLog;
use crate::webhook::retry::is_unreachable;
use crate::webhook::Delivery;

impl Inner {
    /// Queues `call` (its permits go: a queued message holds none). Its record in the store
    /// turns `queued`; its conversation's first message in this outage gets the notice.
    pub(super) async fn park(
        &self,
        queue: &OutageQueue,
        call: &Call,
        json: Bytes,
        last: Option<WebhookOutcome>,
        log: Vec<AttemptLog>,
    ) {
        let parked = Parked {
            // Past its typing notice: `has_body` is for that alone.
            call: call.detached(Work::Post {
                json,
                has_body: false,
            }),
            queued_at: Instant::now(),
            last,
        };
        match queue.push(parked) {
            Ok(first) => {
                if let Some(store) = &self.store {
                    store.queued(&call.id, log);
                }
                if first && !call.head.is_from_room() {
                    if let Some(text) = &queue.notice {
                        self.queue(&call.head, notice(&call.head, text));
                    }
                }
            }
            Err(parked) => {
                let outcome = parked.last.unwrap_or(WebhookOutcome::ConnectionFailed);
                let delivery = Delivery {
                    outcome,
                    failure: Some(format!(
                        "max_queued ({}) messages are queued",
                        queue.max_queued
                    )),
                    attempts: 0,
                };
                let answer = self.answer(call, &delivery);
                let mut watch = self.watch();
                self.finish(call, log, answer, Some(&delivery), false, &mut watch)
                    .await;
            }
        }
    }

    /// The queue's probe, for the life of the dispatcher: see the module's text.
    pub(super) async fn probe_queue(self: Arc<Self>) {
        let Some(queue) = self.queue.as_ref() else {
            return;
        };
        let mut interval = queue.probe_interval;
        let mut timer = Deadline::new();
        loop {
            if !queue.is_active() {
                interval = queue.probe_interval;
                queue.wake.notified().await;
                continue;
            }
            tokio::time::sleep(interval).await;
            // No probe, and so no drain, while no stream could take the answers.
            self.handle.connected().await;
            self.expire(queue).await;
            let oldest = queue.state().waiting.front().map(Parked::copy);
            let Some(oldest) = oldest else {
                continue;
            };
            let mut log = Vec::new();
            let delivery = self
                .webhook
                .post(
                    &oldest.call.id,
                    oldest.call.json(),
                    Instant::now(),
                    &mut timer,
                    Some(&mut log),
                    true,
                )
                .await;
            if is_unreachable(&delivery.outcome) {
                if let Some(store) = &self.store {
                    store.queued(&oldest.call.id, log);
                }
                if let Some(first) = queue.state().waiting.front_mut() {
                    first.last = Some(delivery.outcome);
                }
                interval = (interval * 2).min(queue.probe_max_interval);
                continue;
            }
            tracing::info!(
                "{}: the webhook is back: delivering the queue",
                self.handle.domain()
            );
            {
                let mut state = queue.state();
                if state
                    .waiting
                    .front()
                    .is_some_and(|p| p.call.id == oldest.call.id)
                {
                    state.waiting.pop_front();
                }
                state.draining = true;
            }
            self.settle(oldest, &delivery, log).await;
            interval = queue.probe_interval;
            Arc::clone(&self).drain(queue).await;
        }
    }

    /// Delivers everything waiting, conversation by conversation, until the queue is empty
    /// or the webhook fails again (then what is left waits for the probe).
    async fn drain(self: Arc<Self>, queue: &OutageQueue) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        loop {
            let taken: Vec<Parked> = {
                let mut state = queue.state();
                state.draining = true;
                state.waiting.drain(..).collect()
            };
            if taken.is_empty() {
                let mut state = queue.state();
                state.draining = false;
                state.noticed.clear();
                queue.show(&state);
                return;
            }
            let mut order = Vec::new();
            let mut chains: HashMap<Conversation, VecDeque<Parked>> = HashMap::new();
            for parked in taken {
                let key = parked.call.key;
                let chain = chains.entry(key).or_insert_with(|| {
                    order.push(key);
                    VecDeque::new()
                });
                chain.push_back(parked);
            }
            let mut running = tokio::task::JoinSet::new();
            for key in order {
                let Some(chain) = chains.remove(&key) else {
                    continue;
                };
                let inner = Arc::clone(&self);
                let slots = Arc::clone(&slots);
                running.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    inner.deliver_chain(chain).await
                });
            }
            let mut left = Vec::new();
            while let Some(done) = running.join_next().await {
                if let Ok(rest) = done {
                    left.extend(rest);
                }
            }
            if !left.is_empty() {
                // Back in front of anything that came meanwhile, each conversation in order.
                let mut state = queue.state();
                for parked in left.into_iter().rev() {
                    state.waiting.push_front(parked);
                }
                state.draining = false;
                queue.show(&state);
                return;
            }
        }
    }

    /// One conversation's queued messages in order; returns those left when the webhook
    /// fails again.
    async fn deliver_chain(&self, mut chain: VecDeque<Parked>) -> Vec<Parked> {
        let mut timer = Deadline::new();
        while let Some(mut parked) = chain.pop_front() {
            // A stream lost mid-drain: the rest waits for the next one.
            self.handle.connected().await;
            let mut log = Vec::new();
            let delivery = self
                .webhook
                .post(
                    &parked.call.id,
                    parked.call.json(),
                    Instant::now(),
                    &mut timer,
                    Some(&mut log),
                    false,
                )
                .await;
            if is_unreachable(&delivery.outcome) {
                if let Some(store) = &self.store {
                    store.queued(&parked.call.id, log);
                }
                parked.last = Some(delivery.outcome);
                chain.push_front(parked);
                return chain.into();
            }
            self.settle(parked, &delivery, log).await;
        }
        Vec::new()
    }

    /// A queued message's delivery is over: its answer goes to the sender.
    async fn settle(&self, parked: Parked, delivery: &Delivery, log: Vec<AttemptLog>) {
        let call = &parked.call;
        let answer = self.answer(call, delivery);
        let mut watch = self.watch();
        self.finish(call, log, answer, Some(delivery), false, &mut watch)
            .await;
    }

    /// Messages queued longer than `queue_max_age` get the error of their last outcome.
    async fn expire(&self, queue: &OutageQueue) {
        let expired: Vec<Parked> = {
            let mut state = queue.state();
            let (old, young): (VecDeque<Parked>, VecDeque<Parked>) = state
                .waiting
                .drain(..)
                .partition(|p| p.queued_at.elapsed() >= queue.max_age);
            state.waiting = young;
            queue.show(&state);
            old.into()
        };
        for parked in expired {
            let delivery = Delivery {
                outcome: parked
                    .last
                    .clone()
                    .unwrap_or(WebhookOutcome::ConnectionFailed),
                failure: Some("queued longer than queue_max_age".into()),
                attempts: 0,
            };
            let call = &parked.call;
            let answer = self.answer(call, &delivery);
            let mut watch = self.watch();
            self.finish(call, Vec::new(), answer, Some(&delivery), false, &mut watch)
                .await;
        }
    }
}
