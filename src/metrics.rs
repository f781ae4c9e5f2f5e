//! Prometheus metrics (prometheus-client): one registry for the process, and per component
//! the handles its hot paths bump without a lookup or an allocation.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::stanza::reply::WebhookOutcome;
use crate::stanza::Kind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    component: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    component: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    component: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    component: String,
    condition: String,
}

type HistogramFamily = Family<ComponentLabel, Histogram, fn() -> Histogram>;

/// Every metric family of the process.
pub struct Metrics {
    registry: Registry,
    stanzas_received: Family<KindLabels, Counter>,
    webhook_requests: Family<ClassLabels, Counter>,
    webhook_duration: HistogramFamily,
    errors_sent: Family<ConditionLabels, Counter>,
    errors_suppressed: Family<ReasonLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    reconnects: Family<ComponentLabel, Counter>,
    dropped_replies: Family<ComponentLabel, Counter>,
    in_flight: Family<ComponentLabel, Gauge>,
    queued_replies: Family<ComponentLabel, Gauge>,
    connected: Family<ComponentLabel, Gauge>,
    queued: Family<ComponentLabel, Gauge>,
    oldest_queued_age: Family<ComponentLabel, Gauge<f64, AtomicU64>>,
    store_errors: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("component_http");
        let metrics = Metrics {
            stanzas_received: Family::default(),
            webhook_requests: Family::default(),
            webhook_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            errors_sent: Family::default(),
            errors_suppressed: Family::default(),
            refused: Family::default(),
            reconnects: Family::default(),
            dropped_replies: Family::default(),
            in_flight: Family::default(),
            queued_replies: Family::default(),
            connected: Family::default(),
            queued: Family::default(),
            oldest_queued_age: Family::default(),
            store_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "stanzas_received",
            "Stanzas received from the server, by kind",
            metrics.stanzas_received.clone(),
        );
        registry.register(
            "webhook_requests",
            "Webhook request attempts, by status class (2xx..5xx, or error for no response)",
            metrics.webhook_requests.clone(),
        );
        registry.register(
            "webhook_request_duration_seconds",
            "Webhook request attempt latency",
            metrics.webhook_duration.clone(),
        );
        registry.register(
            "stanza_errors_sent",
            "Stanza errors sent, by condition",
            metrics.errors_sent.clone(),
        );
        registry.register(
            "stanza_errors_suppressed",
            "Stanza errors not sent because their stanza came from a room the bot is in (a \
             room expels an occupant that sends it errors), by the error's condition",
            metrics.errors_suppressed.clone(),
        );
        registry.register(
            "stanzas_refused",
            "Stanzas not POSTed to the webhook, by reason: own_domain (dropped unanswered, \
             the loop guard; chat_state, only a chat state, receipt or marker with \
             forward_chat_states = false); rate_limit, sender_in_flight, conversation_queue \
             (refused with wait/resource-constraint)",
            metrics.refused.clone(),
        );
        registry.register(
            "reconnects",
            "Connections to the server after the first",
            metrics.reconnects.clone(),
        );
        registry.register(
            "dropped_replies",
            "Replies dropped because max_queued_replies was reached",
            metrics.dropped_replies.clone(),
        );
        registry.register(
            "in_flight",
            "Webhook calls in flight",
            metrics.in_flight.clone(),
        );
        registry.register(
            "queued_replies",
            "Replies waiting for the server connection",
            metrics.queued_replies.clone(),
        );
        registry.register(
            "connected",
            "1 while the component is connected to the server",
            metrics.connected.clone(),
        );
        registry.register(
            "queued",
            "Messages waiting in queue mode for the webhook to come back",
            metrics.queued.clone(),
        );
        registry.register(
            "oldest_queued_age_seconds",
            "How long the oldest queued message has waited (0 when none is)",
            metrics.oldest_queued_age.clone(),
        );
        registry.register(
            "store_errors",
            "Delivery-log writes or reads that failed, or were dropped because the writer was behind",
            metrics.store_errors.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// The handles of one component.
    pub fn component(&self, domain: &str) -> ComponentMetrics {
        let component = ComponentLabel {
            component: domain.to_string(),
        };
        let kind = |kind: Kind| {
            self.stanzas_received.get_or_create_owned(&KindLabels {
                component: domain.into(),
                kind: kind.as_str().into(),
            })
        };
        let class = |class: &str| {
            self.webhook_requests.get_or_create_owned(&ClassLabels {
                component: domain.into(),
                class: class.into(),
            })
        };
        ComponentMetrics {
            domain: domain.to_string(),
            received: [kind(Kind::Message), kind(Kind::Presence), kind(Kind::Iq)],
            webhook_classes: [
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
                class("error"),
            ],
            webhook_duration: self.webhook_duration.get_or_create_owned(&component),
            errors_sent: self.errors_sent.clone(),
            errors_suppressed: self.errors_suppressed.clone(),
            suppressed_total: Counter::default(),
            refused: self.refused.clone(),
            reconnects: self.reconnects.get_or_create_owned(&component),
            dropped_replies: self.dropped_replies.get_or_create_owned(&component),
            in_flight: self.in_flight.get_or_create_owned(&component),
            queued_replies: self.queued_replies.get_or_create_owned(&component),
            connected: self.connected.get_or_create_owned(&component),
            queued: self.queued.get_or_create_owned(&component),
            oldest_queued_age: self.oldest_queued_age.get_or_create_owned(&component),
        }
    }

    /// The count of the store's failed or dropped writes and reads.
    pub fn store_errors(&self) -> Counter {
        self.store_errors.clone()
    }

    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode the metrics: {error}");
        }
        text
    }
}

/// One component's metric handles (cheap clones of shared atomics).
#[derive(Clone)]
pub struct ComponentMetrics {
    domain: String,
    received: [Counter; 3],
    webhook_classes: [Counter; 5],
    webhook_duration: Histogram,
    errors_sent: Family<ConditionLabels, Counter>,
    errors_suppressed: Family<ReasonLabels, Counter>,
    /// All of this component's suppressed errors, for `/v1/status`.
    suppressed_total: Counter,
    refused: Family<ReasonLabels, Counter>,
    pub reconnects: Counter,
    pub dropped_replies: Counter,
    pub in_flight: Gauge,
    pub queued_replies: Gauge,
    pub connected: Gauge,
    /// Messages waiting in queue mode.
    pub queued: Gauge,
    pub oldest_queued_age: Gauge<f64, AtomicU64>,
}

impl ComponentMetrics {
    pub fn received(&self, kind: Kind) -> &Counter {
        &self.received[kind as usize]
    }

    /// The count of stanzas not POSTed for `reason` (its `reason` label). Each call looks
    /// the counter up: take it once and keep it (the dispatcher's fairness gate does).
    pub fn refused(&self, reason: &'static str) -> Counter {
        self.refused.get_or_create_owned(&ReasonLabels {
            component: self.domain.clone(),
            reason: reason.into(),
        })
    }

    /// One webhook attempt's outcome and duration.
    pub fn webhook_attempt(&self, outcome: &WebhookOutcome, seconds: f64) {
        let class = match outcome {
            WebhookOutcome::Response { status, .. } => match status / 100 {
                2 => 0,
                3 => 1,
                4 => 2,
                _ => 3,
            },
            WebhookOutcome::ResponseTooLarge => 0,
            WebhookOutcome::ConnectionFailed | WebhookOutcome::TimedOut => 4,
        };
        self.webhook_classes[class].inc();
        self.webhook_duration.observe(seconds);
    }

    /// Webhook attempts by class, for the status page: (2xx, 3xx, 4xx, 5xx, error).
    pub fn webhook_counts(&self) -> [u64; 5] {
        self.webhook_classes.clone().map(|counter| counter.get())
    }

    pub fn received_counts(&self) -> [u64; 3] {
        self.received.clone().map(|counter| counter.get())
    }

    /// A stanza error written to the server, by its condition.
    pub fn error_sent(&self, condition: &str) {
        let labels = ConditionLabels {
            component: self.domain.clone(),
            condition: condition.to_string(),
        };
        self.errors_sent.get_or_create(&labels).inc();
    }

    /// A stanza error not sent to a room, by its condition (the `reason` label).
    pub fn error_suppressed(&self, condition: &str) {
        let labels = ReasonLabels {
            component: self.domain.clone(),
            reason: condition.to_string(),
        };
        self.errors_suppressed.get_or_create(&labels).inc();
        self.suppressed_total.inc();
    }

    pub fn errors_suppressed(&self) -> u64 {
        self.suppressed_total.get()
    }
}
