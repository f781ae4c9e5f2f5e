//! What every part of a running component shares (its session, its dispatch workers, the
//! HTTP API): the in-flight slots, the outbox, its live state for `/v1/status` and
//! `/healthz`, the iq answers being awaited, its metrics. The fields are private: each use is
//! a method, so that a reply that cannot be queued is always counted and a slot is taken
//! only where the bound on in-flight calls says.

pub mod pending_iqs;
mod status;
pub mod upload_target;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use minidom::Element;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use self::pending_iqs::{AwaitedIq, PendingIqs};
pub use self::status::{ClassCounts, KindCounts, QueueCounts, RoomCounts, Status, WebhookError};
use self::upload_target::UploadTarget;
use crate::config::ComponentConfig;
use crate::metrics::ComponentMetrics;
use crate::room::directory::Rooms;
use crate::stanza::fields::SendPolicy;
use crate::stanza::reply::{keep_errors_from_rooms, write_answers};
use crate::stanza::Head;
use crate::store::Received;
use crate::xml::outgoing::OutgoingStanza;
use crate::xml::XmlError;

/// A running component, as its tasks share it.
pub struct ComponentHandle {
    domain: String,
    outbox: mpsc::Sender<OutgoingStanza>,
    metrics: ComponentMetrics,
    /// One permit per stanza read from the server and not yet answered (`max_in_flight`).
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    /// How deeply a stanza sent through the API may nest.
    max_depth: usize,
    /// The largest stanza written to the server.
    max_outgoing_size: usize,
    max_queued_replies: usize,
    live: Mutex<Live>,
    /// Whether a stream to the server is up, for the tasks whose answers need one.
    connected: watch::Sender<bool>,
    pending_iqs: PendingIqs,
    rooms: Rooms,
    uploads: UploadTarget,
    /// The API's replays, for the dispatcher.
    replays: mpsc::Sender<Received>,
}

#[derive(Default)]
struct Live {
    connected_since: Option<SystemTime>,
    disconnected_because: Option<String>,
    last_webhook_error: Option<(SystemTime, String)>,
}

/// Why a stanza was not queued for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("max_queued_replies reached")]
    Full,
    #[error("the component has stopped")]
    Stopped,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl ComponentHandle {
    pub fn new(
        config: &ComponentConfig,
        outbox: mpsc::Sender<OutgoingStanza>,
        metrics: ComponentMetrics,
        replays: mpsc::Sender<Received>,
    ) -> ComponentHandle {
        let max_in_flight =
            u32::try_from(config.max_in_flight).unwrap_or(Semaphore::MAX_PERMITS as u32);
        ComponentHandle {
            domain: config.domain.clone(),
            outbox,
            metrics,
            in_flight: Arc::new(Semaphore::new(max_in_flight as usize)),
            max_in_flight,
            max_depth: config.max_depth,
            max_outgoing_size: config.max_outgoing_size,
            max_queued_replies: config.max_queued_replies,
            live: Mutex::new(Live {
                disconnected_because: Some("not connected yet".into()),
                ..Live::default()
            }),
            connected: watch::Sender::new(false),
            pending_iqs: PendingIqs::default(),
            rooms: Rooms::new(config),
            uploads: UploadTarget::new(config),
            replays,
        }
    }

    /// Hands a stored delivery to the dispatcher to be POSTed again; `Err` when too many
    /// replays are waiting already.
    pub fn replay(&self, record: Received) -> Result<(), QueueError> {
        self.replays.try_send(record).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Stopped,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn metrics(&self) -> &ComponentMetrics {
        &self.metrics
    }

    /// What every stanza this component sends must satisfy, whoever described it (a
    /// webhook's reply, an API request).
    pub fn send_policy(&self) -> SendPolicy<'_> {
        SendPolicy {
            domain: &self.domain,
            max_depth: self.max_depth,
            rooms: &self.rooms,
        }
    }

    /// Where the component uploads files, and its limits.
    pub fn uploads(&self) -> &UploadTarget {
        &self.uploads
    }

    /// The rooms the component sits in.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// The joins of every room, written, for the start of a connection.
    pub fn room_joins(&self) -> Vec<OutgoingStanza> {
        let joins = self.rooms.joins();
        joins.iter().filter_map(|join| self.write(join)).collect()
    }

    /// Whether an in-flight slot is free now.
    pub fn has_free_slot(&self) -> bool {
        self.in_flight.available_permits() > 0
    }

    /// Completes once an in-flight slot is free, without taking it.
    pub async fn slot_freed(&self) {
        let _ = self.in_flight.acquire().await;
    }

    /// Takes an in-flight slot for one stanza read from the server, waiting for one when all
    /// `max_in_flight` are taken; `None` once the component is closing its slots. Only the
    /// session takes slots, so reading the server is what waits, never the API.
    pub async fn take_slot(&self) -> Option<OwnedSemaphorePermit> {
        match Arc::clone(&self.in_flight).try_acquire_owned() {
            Ok(held) => Some(held),
            Err(_) => Arc::clone(&self.in_flight).acquire_owned().await.ok(),
        }
    }

    /// Completes once every in-flight slot is back: no webhook call is running.
    pub fn all_calls_done(&self) -> impl Future<Output = ()> + Send + 'static {
        let slots = Arc::clone(&self.in_flight);
        let all = self.max_in_flight;
        async move {
            let _ = slots.acquire_many_owned(all).await;
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_connected(&self) {
        let mut live = self.live();
        live.connected_since = Some(SystemTime::now());
        live.disconnected_because = None;
        self.metrics.connected.set(1);
        self.connected.send_replace(true);
    }

    /// Returns once a stream to the server is up (at once when one is). What is delivered
    /// after it has a stream for its answers; made while there is none, the answers past
    /// `max_queued_replies` would be dropped.
    pub async fn connected(&self) {
        let mut connected = self.connected.subscribe();
        // The sender lives as long as `self`: the wait ends only when connected.
        let _ = connected.wait_for(|up| *up).await;
    }

    pub fn set_disconnected(&self, because: String) {
        let mut live = self.live();
        live.connected_since = None;
        live.disconnected_because = Some(because);
        self.metrics.connected.set(0);
        self.connected.send_replace(false);
        self.rooms.disconnected();
    }

    /// `None` when connected, else why not.
    pub fn not_connected_because(&self) -> Option<String> {
        self.live().disconnected_because.clone()
    }

    pub fn record_webhook_error(&self, message: &str) {
        self.live().last_webhook_error = Some((SystemTime::now(), message.to_string()));
    }

    pub fn calls_in_flight(&self) -> usize {
        self.max_in_flight as usize - self.in_flight.available_permits()
    }

    pub fn queued_replies(&self) -> usize {
        self.max_queued_replies - self.outbox.capacity()
    }

    pub fn status(&self) -> Status {
        let live = self.live();
        let [message, presence, iq] = self.metrics.received_counts();
        let [ok, redirect, client_error, server_error, error] = self.metrics.webhook_counts();
        Status {
            domain: self.domain.clone(),
            connected: live.connected_since.is_some(),
            connected_since: live.connected_since.map(unix),
            disconnected_because: live.disconnected_because.clone(),
            reconnects: self.metrics.reconnects.get(),
            in_flight: self.calls_in_flight(),
            queued_replies: self.queued_replies(),
            dropped_replies: self.metrics.dropped_replies.get(),
            last_webhook_error: live.last_webhook_error.as_ref().map(|(at, message)| {
                WebhookError {
                    at: unix(*at),
                    message: message.clone(),
                }
            }),
            stanzas_received: KindCounts {
                message,
                presence,
                iq,
            },
            webhook_requests: ClassCounts {
                ok,
                redirect,
                client_error,
                server_error,
                error,
            },
            stanza_errors_suppressed: self.metrics.errors_suppressed(),
            rooms: {
                let (joined, total) = self.rooms.counts();
                RoomCounts { joined, total }
            },
            queue: QueueCounts {
                queued: self.metrics.queued.get(),
                oldest_queued_age_seconds: self.metrics.oldest_queued_age.get(),
            },
        }
    }

    /// Writes a reply and queues it for the server connection; when the outbox
    /// (`max_queued_replies`) is full or gone, the reply is dropped, counted and logged,
    /// naming `for_whom`.
    pub fn queue_reply(&self, stanza: &Element, for_whom: &str) {
        if let Some(stanza) = self.write(stanza) {
            self.queue_written(stanza, for_whom);
        }
    }

    /// Queues a reply already written, as [`ComponentHandle::queue_reply`] does.
    pub fn queue_written(&self, stanza: OutgoingStanza, for_whom: &str) {
        if let Err(error) = self.try_queue(stanza) {
            self.metrics.dropped_replies.inc();
            tracing::warn!("{}: reply to {for_whom} dropped: {error}", self.domain);
        }
    }

    /// Queues a stanza already written for whoever can be told it was not (the API): an
    /// error back, nothing counted.
    pub fn try_queue(&self, stanza: OutgoingStanza) -> Result<(), QueueError> {
        self.outbox.try_send(stanza).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Stopped,
        })
    }

    /// `stanza` written for the stream, within `max_outgoing_size`, or why it cannot be.
    pub fn write_checked(&self, stanza: &Element) -> Result<OutgoingStanza, XmlError> {
        OutgoingStanza::write(stanza, self.max_outgoing_size)
    }

    /// `stanza` written for the stream; one holding a character XML does not allow, or
    /// larger than `max_outgoing_size`, is dropped, counted and logged (`None`), so that the
    /// rest still goes.
    pub fn write(&self, stanza: &Element) -> Option<OutgoingStanza> {
        match self.write_checked(stanza) {
            Ok(written) => Some(written),
            Err(error) => {
                self.unwritable(&error, stanza.attr("to").unwrap_or_default());
                None
            }
        }
    }

    /// The answers to `inbound`, written ([`write_answers`]: one that cannot be is replaced
    /// by an error to the sender); each that could not be is counted and logged.
    /// To a stanza from one of the rooms no error goes: each is counted and logged instead.
    pub fn write_answers(&self, mut stanzas: Vec<Element>, inbound: &Head) -> Vec<OutgoingStanza> {
        for condition in keep_errors_from_rooms(&mut stanzas, inbound) {
            self.metrics.error_suppressed(&condition);
            tracing::warn!(
                "{}: no {condition} error sent to {} (a room expels an occupant that sends it errors)",
                self.domain,
                inbound.from()
            );
        }
        if stanzas.is_empty() {
            return Vec::new();
        }
        let written = write_answers(stanzas, inbound, self.max_outgoing_size);
        for error in &written.problems {
            self.unwritable(error, inbound.from());
        }
        written.stanzas
    }

    fn unwritable(&self, error: &XmlError, for_whom: &str) {
        tracing::error!(
            "{}: dropped a stanza to {for_whom} that cannot be written: {error}",
            self.domain
        );
        self.metrics.dropped_replies.inc();
    }

    /// Registers an iq sent through the API with id `id` to `to`; its answer comes back
    /// through the [`AwaitedIq`], which forgets the iq when dropped.
    pub fn await_iq(&self, id: &str, to: &str) -> AwaitedIq<'_> {
        self.pending_iqs.expect(id, to)
    }

    /// How many iqs sent through the API await their answers.
    pub fn pending_iqs(&self) -> usize {
        self.pending_iqs.len()
    }

    /// Hands an iq `result`/`error` to the API request awaiting it, if its id and its `from`
    /// (the address the iq was sent to) both match; gives it back otherwise.
    pub fn answer_iq(&self, element: Element) -> Result<(), Element> {
        self.pending_iqs.answer(element, &self.domain)
    }
}
