//! One component domain for the life of the process: connect, serve, and on any loss
//! reconnect with capped, jittered exponential backoff. Replies that become ready while
//! disconnected wait in the bounded outbox and go out after the next handshake.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::backoff::jittered;
use crate::config::ComponentConfig;
use crate::dispatch::Dispatcher;
use crate::handle::ComponentHandle;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{Received, Store, StoreError};
use crate::upload::discover;
use crate::webhook::Webhook;
use crate::xml::outgoing::OutgoingStanza;
use crate::xmpp::handshake::connect;
use crate::xmpp::session::{serve, SessionContext};
use crate::xmpp::XmppError;

/// A configured component, ready to run: its handle is what the API sees of it.
/// Why the daemon stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Xmpp(#[from] XmppError),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::ClientError),
    #[error("cannot serve the HTTP API: {0}")]
    Api(std::io::Error),
    #[error("component task for {0} failed: {1}")]
    Task(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Component {
    config: ComponentConfig,
    handle: Arc<ComponentHandle>,
    outbox: mpsc::Receiver<OutgoingStanza>,
    store: Option<Store>,
    replays: mpsc::Receiver<Received>,
}

/// Replays from the API waiting for the dispatcher, at most (past it the API says 503).
const MAX_WAITING_REPLAYS: usize = 1024;

impl Component {
    pub fn new(config: ComponentConfig, metrics: &Metrics, store: Option<Store>) -> Component {
        let (outbox_sender, outbox) = mpsc::channel(config.max_queued_replies);
        let (replay_sender, replays) = mpsc::channel(MAX_WAITING_REPLAYS);
        let handle = ComponentHandle::new(
            &config,
            outbox_sender,
            metrics.component(&config.domain),
            replay_sender,
        );
        Component {
            config,
            handle: Arc::new(handle),
            outbox,
            store,
            replays,
        }
    }

    pub fn handle(&self) -> Arc<ComponentHandle> {
        Arc::clone(&self.handle)
    }

    /// Runs until `shutdown` turns true, or until an error retrying cannot fix.
    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), RunError> {
        let Component {
            config,
            handle,
            mut outbox,
            store,
            replays,
        } = self;
        let domain = config.domain.as_str();
        let webhook = Webhook::new(&config, handle.metrics().clone())?;
        let (dispatcher, _background) =
            Dispatcher::new(&config, webhook, Arc::clone(&handle), store, replays);
        let context = SessionContext {
            domain,
            keepalive: config.keepalive,
            drain_timeout: config.shutdown_timeout,
            dispatcher: &dispatcher,
            handle: &handle,
        };
        let server = format!("{}:{}", config.server_host, config.server_port);
        let mut delay = config.reconnect_delay;
        let mut connections = 0u64;
        // Whether what the last run left unfinished was handed to the dispatcher.
        let mut redelivered = false;
        // Stanzas whose write failed when a connection broke: first out on the next one.
        let mut unsent = Vec::new();
        loop {
            let attempt = tokio::select! {
                attempt = connect(&config) => attempt,
                _ = shutdown.stopped() => {
                    stopped_disconnected(&handle, &unsent);
                    return Ok(());
                }
            };
            match attempt {
                Ok(stream) => {
                    tracing::info!("{domain}: connected to {server}, handshake accepted");
                    connections += 1;
                    if connections > 1 {
                        handle.metrics().reconnects.inc();
                    }
                    handle.set_connected();
                    // Join the rooms again at once: while the component was away, the server
                    // bounced their traffic, and a room drops an occupant for that.
                    unsent.extend(handle.room_joins());
                    // What the last run left unfinished goes first, before the first stanza
                    // is read, and only now: made while no stream could take the answers, more
                    // of them than `max_queued_replies` would have been dropped.
                    if !redelivered {
                        redelivered = true;
                        dispatcher.redeliver_unfinished().await;
                    }
                    delay = config.reconnect_delay;
                    // The upload service (XEP-0363) is found again on each connection; its
                    // iqs go through the outbox and their answers through the session.
                    let discovery = tokio::spawn(discover(Arc::clone(&handle)));
                    let served =
                        serve(stream, &context, &mut outbox, &mut unsent, &mut shutdown).await;
                    discovery.abort();
                    match served {
                        Ok(()) => {
                            handle.set_disconnected("shut down".into());
                            tracing::info!("{domain}: disconnected from {server} (shutdown)");
                            return Ok(());
                        }
                        Err(error) => {
                            handle.set_disconnected(error.to_string());
                            tracing::warn!("{domain}: disconnected from {server}: {error}");
                        }
                    }
                }
                Err(error) if error.is_fatal() => return Err(RunError::Xmpp(error)),
                Err(error @ XmppError::Conflict { .. }) => {
                    // Another instance holds the domain: stand by, trying at the slowest pace.
                    delay = config.reconnect_max_delay;
                    handle.set_disconnected(format!("standby: {error}"));
                    tracing::warn!("{error}; standing by");
                }
                Err(error) => {
                    handle.set_disconnected(error.to_string());
                    tracing::warn!("{error}");
                }
            }
            let wait = jittered(delay);
            tracing::info!(
                "{domain}: reconnecting to {server} in {:.1} s",
                wait.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.stopped() => {
                    stopped_disconnected(&handle, &unsent);
                    return Ok(());
                }
            }
            delay = (delay * 2).min(config.reconnect_max_delay);
        }
    }
}

/// Shut down while not connected: what was waiting for the server cannot be sent. Say so.
fn stopped_disconnected(handle: &ComponentHandle, unsent: &[OutgoingStanza]) {
    let waiting = unsent.len() + handle.queued_replies();
    let running = handle.calls_in_flight();
    if waiting + running > 0 {
        tracing::warn!(
            "{}: shut down while disconnected: {waiting} stanza(s) waiting for the server and {running} webhook call(s) in flight are not sent",
            handle.domain()
        );
    }
}
