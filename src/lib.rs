//! component-http: write an XMPP bot in any language as an HTTP webhook.
//!
//! Code map (see ARCHITECTURE.md):
//! - [`config`]: the TOML file → a validated [`Config`].
//! - [`stanza`]: pure mapping, stanza ⇄ JSON; no I/O.
//! - [`xmpp`]: the server edge: XEP-0114 connection and session.
//! - [`dispatch`]: where a received stanza goes.
//! - [`webhook`]: the HTTP edge.
//! - [`component`]: one domain's connect / serve / reconnect loop.

pub mod backoff;
pub mod component;
pub mod config;
pub mod dispatch;
pub mod rate_limit;
pub mod stanza;
pub mod webhook;
pub mod xmpp;

use std::future::Future;

pub use config::Config;

/// Why the daemon stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Connect(#[from] xmpp::connection::ConnectError),
    #[error(transparent)]
    Webhook(#[from] webhook::ClientError),
    #[error("component task for {0} failed: {1}")]
    Task(String, String),
}

/// Completes once the shutdown flag is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in the caller's select.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// Serves every configured component until `shutdown` completes (then drains and returns
/// `Ok`), or until one of them meets an error that retrying cannot fix.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for component in config.components {
        let domain = component.domain.clone();
        let stopped = stopped.clone();
        tasks.spawn(async move { (domain, component::run_component(component, stopped).await) });
    }
    tokio::pin!(shutdown);
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            _ = &mut shutdown, if !*stop.borrow() => {
                tracing::info!("shutting down");
                let _ = stop.send(true);
            }
            joined = tasks.join_next() => match joined {
                None => return outcome,
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((_, Err(error)))) => {
                    let _ = stop.send(true);
                    outcome = outcome.and(Err(error));
                }
                Some(Err(error)) => {
                    let _ = stop.send(true);
                    outcome = outcome.and(Err(RunError::Task("a component".into(), error.to_string())));
                }
            },
        }
    }
}
