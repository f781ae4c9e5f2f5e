//! Where each received stanza goes: answered on the spot, or POSTed to the webhook on a task
//! of its own, whose answer is queued for the server connection. Data flows one way:
//! xmpp → dispatch → webhook → reply → xmpp.

use std::sync::Arc;

use minidom::Element;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::config::ComponentConfig;
use crate::stanza::local::{route, Route};
use crate::stanza::reply::answer;
use crate::stanza::request::WebhookRequest;
use crate::stanza::{Inbound, Kind};
use crate::webhook::Webhook;

/// Routes the stanzas of one component.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    domain: String,
    forwarded: Vec<Kind>,
    webhook: Webhook,
    outbox: mpsc::Sender<Element>,
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
            webhook,
            outbox,
        };
        Dispatcher {
            inner: Arc::new(inner),
        }
    }

    /// Handles one stanza. Returns what must be sent right away; a webhook call runs on its
    /// own task, holding `permit` (one of `max_in_flight`) until its answer is queued.
    pub fn dispatch(&self, inbound: Inbound, permit: OwnedSemaphorePermit) -> Vec<Element> {
        tracing::debug!(
            domain = %self.inner.domain,
            kind = inbound.kind().as_str(),
            from = inbound.from(),
            to = inbound.to(),
            "stanza received"
        );
        match route(&inbound, &self.inner.forwarded) {
            Route::Local(stanzas) => stanzas,
            Route::Webhook => {
                let inner = Arc::clone(&self.inner);
                tokio::spawn(async move {
                    inner.deliver(inbound).await;
                    drop(permit);
                });
                Vec::new()
            }
        }
    }
}

impl Inner {
    async fn deliver(&self, inbound: Inbound) {
        let body = WebhookRequest::new(&inbound).to_json();
        let delivery = self.webhook.post(body).await;
        let answer = answer(&inbound, &delivery.outcome, &self.domain);
        // A transport or status failure, and a reply that could not be used, are one line each.
        for trouble in delivery
            .failure
            .into_iter()
            .chain(answer.problem.as_ref().map(ToString::to_string))
        {
            tracing::warn!(
                "{}: {trouble} (for a {} from {}); answered with {}",
                self.domain,
                inbound.kind().as_str(),
                inbound.from(),
                describe(&answer.stanzas)
            );
        }
        for stanza in answer.stanzas {
            tracing::debug!(domain = %self.domain, kind = stanza.name(), to = stanza.attr("to"), "reply queued");
            if self.outbox.send(stanza).await.is_err() {
                tracing::warn!(
                    "{}: reply to {} dropped: the component has stopped",
                    self.domain,
                    inbound.from()
                );
            }
        }
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
