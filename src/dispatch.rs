//! Where each received stanza goes: answered on the spot, refused (rate limit), or POSTed to
//! the webhook on a task, whose answer is queued for the server connection. With `ordered`,
//! one conversation (sender's bare JID → component JID) has one task at a time, which takes
//! its stanzas in arrival order. Data flows one way: xmpp → dispatch → webhook → reply → xmpp.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minidom::rxml::xml_ncname;
use minidom::Element;
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::config::ComponentConfig;
use crate::handle::ComponentHandle;
use crate::rate_limit::RateLimiter;
use crate::stanza::error::StanzaError;
use crate::stanza::local::{route, Route};
use crate::stanza::reply::{answer, Answer};
use crate::stanza::request::WebhookRequest;
use crate::stanza::xml::set_attr;
use crate::stanza::{bare, Inbound, Kind, COMPONENT_NS};
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
    typing_after: Option<Duration>,
    handle: Arc<ComponentHandle>,
    /// Conversations with a task at work, and the stanzas waiting behind it.
    conversations: Mutex<HashMap<Conversation, VecDeque<Job>>>,
    /// Set at the shutdown deadline: calls still in flight are answered with an error.
    abandon: watch::Sender<bool>,
}

impl Dispatcher {
    pub fn new(
        config: &ComponentConfig,
        webhook: Webhook,
        handle: Arc<ComponentHandle>,
    ) -> Dispatcher {
        let inner = Inner {
            domain: config.domain.clone(),
            forwarded: config.stanzas.clone(),
            ordered: config.ordered,
            max_stanza_size: config.max_stanza_size,
            webhook,
            rate_limiter: config.rate_limit.map(RateLimiter::new),
            typing_after: config.typing_after,
            handle,
            conversations: Mutex::new(HashMap::new()),
            abandon: watch::channel(false).0,
        };
        Dispatcher {
            inner: Arc::new(inner),
        }
    }

    /// Handles one stanza. Returns what must be sent right away; a webhook call runs on a
    /// task that keeps `permit` until its answer is queued.
    pub fn dispatch(&self, inbound: Inbound, permit: OwnedSemaphorePermit) -> Vec<Element> {
        let inner = &self.inner;
        inner.handle.metrics.received(inbound.kind()).inc();
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
            let delivery = self.webhook.post(request.to_json());
            tokio::pin!(delivery);
            // A chat message whose answer takes long gets a "composing" notice meanwhile.
            let typing_after = self
                .typing_after
                .filter(|_| wants_typing_notice(inbound, request.body.is_some()));
            let typing = tokio::time::sleep(typing_after.unwrap_or(Duration::MAX));
            tokio::pin!(typing);
            let mut typed = false;
            let mut answer = loop {
                tokio::select! {
                    delivery = &mut delivery => {
                        let answer = answer(inbound, &delivery.outcome, &self.domain);
                        for trouble in delivery.failure.into_iter().chain(answer.problem.as_ref().map(ToString::to_string)) {
                            self.handle.record_webhook_error(&trouble);
                            self.warn(inbound, &trouble, &answer.stanzas);
                        }
                        break answer;
                    }
                    _ = &mut typing, if typing_after.is_some() && !typed => {
                        typed = true;
                        self.queue(inbound, chat_state(inbound, "composing"));
                    }
                    _ = crate::stopped(&mut abandon) => {
                        break self.refuse(inbound, StanzaError::SHUTTING_DOWN, "was cut off by the shutdown deadline");
                    }
                }
            };
            if typed {
                end_typing(inbound, &mut answer.stanzas);
            }
            answer
        };
        for stanza in answer.stanzas {
            self.queue(inbound, stanza);
        }
    }

    /// Queues one stanza for the server connection.
    fn queue(&self, inbound: &Inbound, stanza: Element) {
        tracing::debug!(domain = %self.domain, kind = stanza.name(), to = stanza.attr("to"), "reply queued");
        self.handle.queue_reply(stanza, inbound.from());
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

const CHAT_STATES_NS: &str = "http://jabber.org/protocol/chatstates";

/// Typing notices (XEP-0085) go only to chat messages with a body (`has_body`, as the
/// webhook request already found it: the body is not looked for twice).
fn wants_typing_notice(inbound: &Inbound, has_body: bool) -> bool {
    has_body && inbound.kind() == Kind::Message && inbound.stanza_type() == Some("chat")
}

/// A standalone chat state notice from the bot address to the sender.
fn chat_state(inbound: &Inbound, state: &str) -> Element {
    let mut notice = Element::bare("message", COMPONENT_NS);
    set_attr(&mut notice, xml_ncname!("from"), inbound.to());
    set_attr(&mut notice, xml_ncname!("to"), inbound.from());
    set_attr(&mut notice, xml_ncname!("type"), "chat");
    notice.append_child(Element::bare(state, CHAT_STATES_NS));
    notice
}

/// After a "composing" notice, the answer ends it: a chat reply carries `<active/>`,
/// anything else (an error, or nothing) is followed by a standalone `<active/>`.
fn end_typing(inbound: &Inbound, stanzas: &mut Vec<Element>) {
    let reply = stanzas.iter_mut().find(|s| {
        s.name() == "message"
            && s.attr("type") == Some("chat")
            && s.attr("to") == Some(inbound.from())
    });
    match reply {
        Some(reply) if !reply.children().any(|c| c.has_ns(CHAT_STATES_NS)) => {
            reply.append_child(Element::bare("active", CHAT_STATES_NS));
        }
        Some(_) => {}
        None => stanzas.push(chat_state(inbound, "active")),
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
