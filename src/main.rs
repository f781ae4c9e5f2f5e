//! The `component-http` binary: parse the command line, load the configuration, start
//! logging, and hand over to [`component_http::run`] until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use component_http::Config;

/// jemalloc rather than glibc's malloc: with many calls in flight, glibc's per-thread arenas
/// hold on to freed memory, and the allocator is the daemon's hottest code; jemalloc with one
/// arena keeps the peak lower and serves more stanzas a second (bench/README.md, "Why the
/// code is shaped so").
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: one arena, as the daemon's few threads allocate
/// little at a time and a second arena only doubles what is kept. `_RJEM_MALLOC_CONF` in the
/// environment overrides it.
#[cfg(unix)]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_OPTIONS: &[u8; 10] = b"narenas:1\0";

/// Connects to an XMPP server as an external component (XEP-0114) and turns every stanza
/// into an HTTP POST to a webhook; the webhook's JSON answer becomes the reply.
#[derive(Parser)]
#[command(name = "component-http", version, about)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and print it as it will be used, secrets redacted.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckConfig) => check_config(cli.config),
        None => serve(cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("component-http: {error:#}");
            exit_code(&error)
        }
    }
}

/// 2: no configuration given; 78 (EX_CONFIG): a configuration that cannot work — a bad
/// file, or a secret the server rejects — which restarting will not fix; 1: anything else.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    if error.downcast_ref::<MissingConfig>().is_some() {
        return ExitCode::from(2);
    }
    let rejected = matches!(
        error.downcast_ref::<component_http::RunError>(),
        Some(component_http::RunError::Xmpp(e)) if e.is_fatal()
    );
    if rejected
        || error
            .downcast_ref::<component_http::config::ConfigError>()
            .is_some()
    {
        return ExitCode::from(78);
    }
    ExitCode::FAILURE
}

#[derive(Debug, thiserror::Error)]
#[error("no configuration file: pass --config FILE")]
struct MissingConfig;

fn load(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.ok_or(MissingConfig)?;
    Ok(Config::load(&path)?)
}

fn check_config(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(path)?;
    print!("{}", config.to_redacted_toml());
    Ok(())
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(path)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    raise_descriptor_limit();
    let runtime =
        component_http::runtime(&config.runtime).context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        component_http::run(config, shutdown).await?;
        anyhow::Ok(())
    })
}

/// Every connection costs a descriptor: take all the kernel allows (the hard limit), so that
/// the API's connections, bounded below it, leave the webhook and the server theirs.
fn raise_descriptor_limit() {
    match component_http::descriptors::raise_soft_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!("open-file limit raised from {before} to {after}");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!("cannot raise the open-file limit: {error}"),
    }
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
