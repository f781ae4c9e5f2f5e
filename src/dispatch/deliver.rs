//! One call delivered by a worker: the POST (with its typing notice and the shutdown
//! deadline watched), the outcome turned into answers, the bot's file uploaded, the
//! answers queued for the server, and the delivery's outcome written to the store. In
//! queue mode a message the webhook could not take is handed to the queue instead.

use minidom::Element;
use tokio::time::Instant;

use super::call::{Call, Work};
use super::typing::{chat_state, end_typing, wants_typing_notice};
use super::{Inner, Watch};
use crate::deadline::after;
use crate::stanza::error::StanzaError;
use crate::stanza::receipt::receipt;
use crate::stanza::reply::{answer_quoting, Answer, WebhookOutcome};
use crate::stanza::Head;
use crate::store::{AttemptLog, Finished, Status};
use crate::upload::file_answer;
use crate::webhook::Delivery;
use crate::xml::outgoing::Written;

impl Inner {
    pub(super) async fn deliver(&self, call: &mut Call, watch: &mut Watch) {
        let (json, has_body) = match &call.work {
            Work::Post { json, has_body } => (json.clone(), *has_body),
            Work::TooLarge => {
                let inbound = &call.head;
                let answer = self.refuse(
                    inbound,
                    StanzaError::TOO_LARGE,
                    "is larger than max_stanza_size",
                );
                self.queue_answers(inbound, answer.stanzas);
                return;
            }
        };
        // While messages are queued, the webhook is known to be down: a new one goes behind
        // them at once, which keeps each conversation in order.
        if let Some(queue) = self.queue.as_ref().filter(|q| q.is_active()) {
            if call.may_be_queued() {
                self.park(queue, call, json, None, Vec::new()).await;
                return;
            }
        }
        let inbound = &call.head;
        // A chat message whose answer takes long gets a "composing" notice meanwhile.
        let typing_after = self
            .typing_after
            .filter(|_| wants_typing_notice(inbound, has_body));
        // One clock read for both timers.
        let started = Instant::now();
        if let Some(wait) = typing_after {
            watch.typing.set(after(started, wait));
        }
        let mut log = self.store.is_some().then(Vec::new);
        let mut typed = false;
        let delivered = {
            let delivery = self.webhook.post(
                &call.id,
                json.clone(),
                started,
                &mut watch.attempt,
                log.as_mut(),
                false,
            );
            tokio::pin!(delivery);
            loop {
                tokio::select! {
                    delivery = &mut delivery => break Some(delivery),
                    _ = watch.typing.reached(), if typing_after.is_some() && !typed => {
                        typed = true;
                        self.queue(inbound, chat_state(inbound, "composing"));
                    }
                    () = watch.abandon.raised() => break None,
                }
            }
        };
        let log = log.unwrap_or_default();
        let Some(delivery) = delivered else {
            if self.store.is_some() && call.may_be_queued() {
                // Left in flight in the store: the next start delivers it again.
                if typed {
                    self.queue(inbound, chat_state(inbound, "active"));
                }
                return;
            }
            let answer = self.refuse(
                inbound,
                StanzaError::SHUTTING_DOWN,
                "was cut off by the shutdown deadline",
            );
            self.finish(call, log, answer, None, typed, watch).await;
            return;
        };
        if let Some(queue) = &self.queue {
            if call.may_be_queued() && crate::webhook::retry::is_unreachable(&delivery.outcome) {
                if typed {
                    self.queue(inbound, chat_state(inbound, "active"));
                }
                self.park(queue, call, json, Some(delivery.outcome), log)
                    .await;
                return;
            }
        }
        let answer = self.answer(call, &delivery);
        self.finish(call, log, answer, Some(&delivery), typed, watch)
            .await;
    }

    /// The answer to `delivery`, with its receipt first; its troubles logged and counted.
    pub(super) fn answer(&self, call: &Call, delivery: &Delivery) -> Answer {
        let inbound = &call.head;
        let policy = self.handle.send_policy();
        let mut answer = answer_quoting(inbound, call.quoted(), &delivery.outcome, &policy);
        let problem = answer.problem.as_ref().map(ToString::to_string);
        for trouble in delivery.failure.iter().cloned().chain(problem) {
            self.handle.record_webhook_error(&trouble);
            self.warn(inbound, &trouble, &answer.stanzas);
        }
        // The receipt goes first: the sender sees its message taken, then the reply.
        let receipt = call
            .receipt
            .then(|| receipt(inbound, &delivery.outcome, &answer))
            .flatten();
        answer.stanzas.splice(0..0, receipt);
        answer
    }

    /// Uploads the answer's file, ends the typing notice, queues the answers and writes
    /// the delivery's outcome to the store.
    pub(super) async fn finish(
        &self,
        call: &Call,
        log: Vec<AttemptLog>,
        mut answer: Answer,
        delivery: Option<&Delivery>,
        typed: bool,
        watch: &mut Watch,
    ) {
        let inbound = &call.head;
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
        let (sent, written) = self.queue_answers(inbound, answer.stanzas);
        if let Some(store) = &self.store {
            let taken = delivery.is_some_and(|d| {
                matches!(d.outcome, WebhookOutcome::Response { status, .. } if (200..300).contains(&status))
            });
            let error = match delivery {
                Some(delivery) => delivery.failure.clone(),
                None => Some("cut off by the shutdown deadline".into()),
            };
            let finished = Finished {
                status: if taken && error.is_none() {
                    Status::Delivered
                } else {
                    Status::Failed
                },
                sent,
                error: error.or_else(|| answer.problem.as_ref().map(ToString::to_string)),
            };
            match written {
                Some(written) => store.finished_when_written(&call.id, log, finished, written),
                None => store.finished(&call.id, log, finished),
            }
        }
    }

    /// Queues the answers to `inbound` (one that cannot be written is replaced by an
    /// error). When there is a store to keep it, returns what was queued, as text, and the
    /// signal raised once the last of it is written to the server (the outbox keeps their
    /// order: the others are out by then).
    pub(super) fn queue_answers(
        &self,
        inbound: &Head,
        stanzas: Vec<Element>,
    ) -> (String, Option<Written>) {
        let mut sent = String::new();
        let mut signal = None;
        let mut written = self.handle.write_answers(stanzas, inbound);
        if self.store.is_some() {
            if let Some(last) = written.last_mut() {
                let written = Written::default();
                last.signal_when_written(written.clone());
                signal = Some(written);
            }
        }
        for stanza in written {
            tracing::debug!(domain = %self.handle.domain(), to = inbound.from(), "reply queued");
            if self.store.is_some() {
                sent.push_str(stanza.text());
            }
            self.handle.queue_written(stanza, inbound.from());
        }
        (sent, signal)
    }

    /// Queues one stanza for the server connection.
    pub(super) fn queue(&self, inbound: &Head, stanza: Element) {
        tracing::debug!(domain = %self.handle.domain(), kind = stanza.name(), to = stanza.attr("to"), "reply queued");
        self.handle.queue_reply(&stanza, inbound.from());
    }

    pub(super) fn refuse(&self, inbound: &Head, error: StanzaError, why: &str) -> Answer {
        let stanzas: Vec<Element> = error.reply_to(inbound).into_iter().collect();
        self.warn(inbound, &format!("the stanza {why}"), &stanzas);
        Answer {
            stanzas,
            ..Answer::default()
        }
    }

    pub(super) fn warn(&self, inbound: &Head, trouble: &str, answered: &[Element]) {
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
