//! Where each received stanza goes: answered on the spot, refused (rate limit), or POSTed to
//! the webhook on a task, whose answer is queued for the server connection. With `ordered`,
//! one conversation (sender's bare JID → component JID) has one task at a time, which takes
//! its stanzas in arrival order. Data flows one way: xmpp → dispatch → webhook → reply → xmpp.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use minidom::Element;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use crate::config::ComponentConfig;
use crate::rate_limit::RateLimiter;
use crate::stanza::error::StanzaError;
use crate::stanza::local::{route, Route};
use crate::stanza::reply::{answer, Answer};
use crate::stanza::request::WebhookRequest;
use crate::stanza::{bare, Inbound, Kind};
use crate::webhook::Webhook;

/// Routes the stanzas of one component.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// A stanza on its way to the webhook, holding one of the `max_in_flight` permits.
struct Job {
    inbound: Inbound,
    _permit: OwnedSemaphorePermit,
}

/// (sender's bare JID, component JID): the unit of ordering.
type Conversation = (String, String);

struct Inner {
    domain: String,
    forwarded: Vec<Kind>,
    ordered: bool,
    max_stanza_size: usize,
    webhook: Webhook,
    rate_limiter: Option<RateLimiter>,
    outbox: mpsc::Sender<Element>,
    /// Conversations with a task at work, and the stanzas waiting behind it.
    conversations: Mutex<HashMap<Conversation, VecDeque<Job>>>,
    /// Set at the shutdown deadline: calls still in flight are answered with an error.
    abandon: watch::Sender<bool>,
    dropped_replies: AtomicU64,
}

impl Dispatcher {
    pub fn new(
        config: &ComponentConfig,
        webhook: Webhook,
        outbox: mpsc::Sender<Element>,
    ) -> Dispatcher {
        let inner = Inner {
            domain: config.domain.clone(),
            forwarded: config.stanzas.clone(),
            ordered: config.ordered,
            max_stanza_size: config.max_stanza_size,
            webhook,
            rate_limiter: config.rate_limit.map(RateLimiter::new),
            outbox,
            conversations: Mutex::new(HashMap::new()),
            abandon: watch::channel(false).0,
            dropped_replies: AtomicU64::new(0),
        };
        Dispatcher {
            inner: Arc::new(inner),
        }
    }

    /// Handles one stanza. Returns what must be sent right away; a webhook call runs on a
    /// task that keeps `permit` until its answer is queued.
    pub fn dispatch(&self, inbound: Inbound, permit: OwnedSemaphorePermit) -> Vec<Element> {
        let inner = &self.inner;
        tracing::debug!(
            domain = %inner.domain,
            kind = inbound.kind().as_str(),
            from = inbound.from(),
            to = inbound.to(),
            "stanza received"
        );
        match route(&inbound, &inner.forwarded) {
            Route::Local(stanzas) => stanzas,
            Route::Webhook => {
                let sender = bare(inbound.from());
                if let Some(limiter) = &inner.rate_limiter {
                    if !limiter.allow(&sender, Instant::now()) {
                        tracing::debug!("{}: {sender} is over its rate limit", inner.domain);
                        return StanzaError::RATE_LIMITED
                            .reply_to(&inbound)
                            .into_iter()
                            .collect();
                    }
                }
                let job = Job {
                    inbound,
                    _permit: permit,
                };
                if inner.ordered {
                    let conversation = (sender, job.inbound.to().to_string());
                    self.enqueue(conversation, job);
                } else {
                    let inner = Arc::clone(inner);
                    tokio::spawn(async move { inner.deliver(job).await });
                }
                Vec::new()
            }
        }
    }

    /// Queues `job` behind its conversation's task, or starts that task.
    fn enqueue(&self, conversation: Conversation, job: Job) {
        let Ok(mut conversations) = self.inner.conversations.lock() else {
            // Poisoned by a panicking task: deliver without ordering rather than not at all.
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move { inner.deliver(job).await });
            return;
        };
        if let Some(waiting) = conversations.get_mut(&conversation) {
            waiting.push_back(job);
            return;
        }
        conversations.insert(conversation.clone(), VecDeque::new());
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.converse(conversation, job).await });
    }

    /// From now on, webhook calls still running are answered with `SHUTTING_DOWN`.
    pub fn abandon_in_flight(&self) {
        self.inner.abandon.send_replace(true);
    }

    /// Replies dropped because the outbox (`max_queued_replies`) was full.
    pub fn dropped_replies(&self) -> u64 {
        self.inner.dropped_replies.load(Ordering::Relaxed)
    }
}

impl Inner {
    /// One conversation's task: its stanzas one at a time, in arrival order.
    async fn converse(&self, conversation: Conversation, first: Job) {
        let mut job = first;
        loop {
            self.deliver(job).await;
            let next = match self.conversations.lock() {
                Ok(mut conversations) => match conversations
                    .get_mut(&conversation)
                    .and_then(VecDeque::pop_front)
                {
                    Some(next) => Some(next),
                    None => {
                        conversations.remove(&conversation);
                        None
                    }
                },
                Err(_) => None,
            };
            match next {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    async fn deliver(&self, job: Job) {
        let inbound = &job.inbound;
        let request = WebhookRequest::new(inbound);
        let answer = if request.stanza.len() > self.max_stanza_size {
            self.refuse(
                inbound,
                StanzaError::TOO_LARGE,
                "is larger than max_stanza_size",
            )
        } else {
            let mut abandon = self.abandon.subscribe();
            tokio::select! {
                delivery = self.webhook.post(request.to_json()) => {
                    let answer = answer(inbound, &delivery.outcome, &self.domain);
                    for trouble in delivery.failure.into_iter().chain(answer.problem.as_ref().map(ToString::to_string)) {
                        self.warn(inbound, &trouble, &answer.stanzas);
                    }
                    answer
                }
                _ = crate::stopped(&mut abandon) => {
                    self.refuse(inbound, StanzaError::SHUTTING_DOWN, "was cut off by the shutdown deadline")
                }
            }
        };
        for stanza in answer.stanzas {
            tracing::debug!(domain = %self.domain, kind = stanza.name(), to = stanza.attr("to"), "reply queued");
            if let Err(error) = self.outbox.try_send(stanza) {
                self.dropped_replies.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "{}: reply to {} dropped: {}",
                    self.domain,
                    inbound.from(),
                    match error {
                        mpsc::error::TrySendError::Full(_) => "max_queued_replies reached",
                        mpsc::error::TrySendError::Closed(_) => "the component has stopped",
                    }
                );
            }
        }
    }

    fn refuse(&self, inbound: &Inbound, error: StanzaError, why: &str) -> Answer {
        let stanzas: Vec<Element> = error.reply_to(inbound).into_iter().collect();
        self.warn(inbound, &format!("the stanza {why}"), &stanzas);
        Answer {
            stanzas,
            problem: None,
        }
    }

    fn warn(&self, inbound: &Inbound, trouble: &str, answered: &[Element]) {
        tracing::warn!(
            "{}: {trouble} (for a {} from {}); answered with {}",
            self.domain,
            inbound.kind().as_str(),
            inbound.from(),
            describe(answered)
        );
    }
}

/// "a cancel/item-not-found error", "nothing", ... for log lines.
fn describe(stanzas: &[Element]) -> String {
    let Some(error) = stanzas
        .iter()
        .find_map(|s| s.children().find(|c| c.name() == "error"))
    else {
        return if stanzas.is_empty() {
            "nothing".into()
        } else {
            "a reply".into()
        };
    };
    let condition = error
        .children()
        .next()
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    format!(
        "a {}/{condition} error",
        error.attr("type").unwrap_or("cancel")
    )
}
