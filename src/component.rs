//! One component domain for the life of the process: connect, serve, and on any loss
//! reconnect with capped, jittered exponential backoff. Replies that become ready while
//! disconnected wait in the bounded outbox and go out after the next handshake.

use std::sync::Arc;

use tokio::sync::{mpsc, watch, Semaphore};

use crate::backoff::jittered;
use crate::config::ComponentConfig;
use crate::dispatch::Dispatcher;
use crate::webhook::Webhook;
use crate::xmpp::connection::{connect, ConnectError};
use crate::xmpp::session::{serve, SessionContext};
use crate::RunError;

/// Runs one component until `shutdown` turns true, or until an error retrying cannot fix.
pub async fn run_component(
    config: ComponentConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let domain = config.domain.as_str();
    let webhook = Webhook::new(&config)?;
    let (outbox_sender, mut outbox) = mpsc::channel(config.max_queued_replies);
    let dispatcher = Dispatcher::new(&config, webhook, outbox_sender);
    let max_in_flight = u32::try_from(config.max_in_flight).unwrap_or(u32::MAX >> 3);
    let in_flight = Arc::new(Semaphore::new(max_in_flight as usize));
    let context = SessionContext {
        domain,
        keepalive: config.keepalive,
        drain_timeout: config.shutdown_timeout,
        dispatcher: &dispatcher,
        in_flight: &in_flight,
        max_in_flight,
    };
    let server = format!("{}:{}", config.server_host, config.server_port);
    let mut delay = config.reconnect_delay;
    loop {
        let attempt = tokio::select! {
            attempt = connect(&config) => attempt,
            _ = crate::stopped(&mut shutdown) => return Ok(()),
        };
        match attempt {
            Ok(stream) => {
                tracing::info!("{domain}: connected to {server}, handshake accepted");
                delay = config.reconnect_delay;
                match serve(stream, &context, &mut outbox, &mut shutdown).await {
                    Ok(()) => {
                        tracing::info!("{domain}: disconnected from {server} (shutdown)");
                        return Ok(());
                    }
                    Err(error) => tracing::warn!("{domain}: disconnected from {server}: {error}"),
                }
            }
            Err(error) if error.is_fatal() => return Err(RunError::Connect(error)),
            Err(error @ ConnectError::Conflict { .. }) => {
                // Another instance holds the domain: stand by, trying at the slowest pace.
                delay = config.reconnect_max_delay;
                tracing::warn!("{error}; standing by");
            }
            Err(error) => tracing::warn!("{error}"),
        }
        let wait = jittered(delay);
        tracing::info!(
            "{domain}: reconnecting to {server} in {:.1} s",
            wait.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::stopped(&mut shutdown) => return Ok(()),
        }
        delay = (delay * 2).min(config.reconnect_max_delay);
    }
}
