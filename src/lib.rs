//! component-http: write an XMPP bot in any language as an HTTP webhook.
//!
//! Code map (see ARCHITECTURE.md):
//! - [`config`]: the TOML file → a validated [`Config`].
//! - [`stanza`]: pure mapping, stanza ⇄ JSON; no I/O.
//! - [`xmpp`]: the server edge: XEP-0114 connection and session.
//! - [`dispatch`]: where a received stanza goes.
//! - [`room`]: group chats (XEP-0045): the rooms the bot sits in.
//! - [`webhook`]: the HTTP edge.
//! - [`component`]: one domain's connect / serve / reconnect loop.

pub mod api;
pub mod backoff;
pub mod component;
pub mod config;
pub mod deadline;
pub mod descriptors;
pub mod dispatch;
pub mod handle;
pub mod metrics;
pub mod room;
pub mod shutdown;
pub mod stanza;
pub mod store;
pub mod upload;
pub mod webhook;
pub mod xml;
pub mod xmpp;

use std::future::Future;

pub use component::RunError;
pub use config::Config;

/// The async runtime `run` is meant to be driven by, as `[runtime] threads` asks: 1 runs
/// every task on the thread that calls `block_on`, 0 one worker per core, N N workers.
pub fn runtime(config: &config::RuntimeConfig) -> std::io::Result<tokio::runtime::Runtime> {
    match config.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Runtime::new(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// Serves every configured component (and the HTTP API, when configured) until `shutdown`
/// completes (then drains and returns `Ok`), or until one of them meets an error that
/// retrying cannot fix.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let (stop, stopped) = shutdown::ShutdownTrigger::new();
    let metrics = std::sync::Arc::new(metrics::Metrics::default());
    let reserve = descriptors::reserve(&config.components);
    // The store is opened before anything connects: a file that cannot be used stops here.
    let store = match &config.store {
        Some(store) => Some(store::Store::open(store, metrics.store_errors())?),
        None => None,
    };
    let components: Vec<_> = config
        .components
        .into_iter()
        .map(|c| component::Component::new(c, &metrics, store.clone()))
        .collect();
    let handles: Vec<_> = components
        .iter()
        .map(component::Component::handle)
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for component in components {
        let domain = component.handle().domain().to_string();
        let stopped = stopped.clone();
        tasks.spawn(async move { (domain, component.run(stopped).await) });
    }
    let log = store.clone();
    if let Some(api) = config.api {
        let state = std::sync::Arc::new(api::ApiState::new(api, handles, metrics, store));
        let mut api_stopped = stopped.clone();
        tasks.spawn(async move {
            let stopped = async move { api_stopped.stopped().await };
            let served = api::serve(state, reserve, stopped).await;
            ("the HTTP API".to_string(), served.map_err(RunError::Api))
        });
    }
    tokio::pin!(shutdown);
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            _ = &mut shutdown, if !stop.is_triggered() => {
                tracing::info!("shutting down");
                stop.trigger();
            }
            joined = tasks.join_next() => match joined {
                None => {
                    // The process may end as soon as this returns, and the writer's last
                    // batch with it: committed first, or a restart would deliver it again.
                    if let Some(log) = log {
                        let _ = tokio::task::spawn_blocking(move || log.flush()).await;
                    }
                    return outcome;
                }
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((_, Err(error)))) => {
                    stop.trigger();
                    outcome = outcome.and(Err(error));
                }
                Some(Err(error)) => {
                    stop.trigger();
                    outcome = outcome.and(Err(RunError::Task("a component".into(), error.to_string())));
                }
            },
        }
    }
}
