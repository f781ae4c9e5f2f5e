//! component-http in this process (`run`, stopped through its shutdown future), and what the
//! test reads in its log: when it had no server connection, and a summary to print.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::client::XmppClient;
use crate::DOMAIN;

pub struct Daemon {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), component_http::RunError>>,
}

impl Daemon {
    pub fn start(config_text: &str) -> Daemon {
        let config = component_http::Config::parse(config_text, std::path::Path::new("."))
            .expect("valid config");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(component_http::run(config, async move {
            let _ = stopped.await;
        }));
        Daemon { stop, task }
    }

    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Pings the component through the server until it answers (a probe user, before the load).
pub async fn wait_component_online(c2s: u16) {
    let mut probe = XmppClient::connect("probe@localhost", "pw", c2s).await;
    for attempt in 0..60 {
        let id = format!("online-{attempt}");
        probe
            .send(&format!(
                "<iq type='get' to='{DOMAIN}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let answer = probe
            .recv_matching(Duration::from_secs(1), |s| {
                s.attr("id") == Some(id.as_str())
            })
            .await;
        if answer.as_ref().and_then(|a| a.attr("type")) == Some("result") {
            probe.close().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("component {DOMAIN} never came online");
}

/// The daemon's tracing output (info and up, or RUST_LOG), kept for the summary.
/// Its lines are stamped with the time since the returned instant.
pub fn capture_daemon_log() -> (Arc<Mutex<Vec<u8>>>, Instant) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(Arc::clone(&buffer));
    let filter =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "component_http=info,load=info".into());
    let epoch = Instant::now();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_timer(tracing_subscriber::fmt::time::Uptime::default())
        .with_writer(move || sink.clone())
        .try_init();
    (buffer, epoch)
}

/// When the daemon was without a server connection, from its log: from each "disconnected
/// from" line to the next "handshake accepted" one. A reply that became ready then waits in
/// the outbox and goes out on the next connection (README: the delivery guarantee).
pub fn disconnected_windows(log: &str, epoch: Instant) -> Vec<(Instant, Instant)> {
    let stamp = |line: &str| {
        let first = line.split_whitespace().next()?;
        let seconds: f64 = first.strip_suffix('s')?.parse().ok()?;
        Some(epoch + Duration::from_secs_f64(seconds))
    };
    let mut windows = Vec::new();
    let mut since = None;
    for line in log.lines() {
        if line.contains("disconnected from") && !line.contains("(shutdown)") {
            since = since.or(stamp(line));
        } else if line.contains("handshake accepted") {
            if let (Some(start), Some(end)) = (since.take(), stamp(line)) {
                windows.push((start, end));
            }
        }
    }
    if let Some(start) = since {
        windows.push((start, start + Duration::from_secs(3600)));
    }
    windows
}

pub fn print_daemon_log_summary(log: &str) {
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    println!(
        "daemon log: {} handshakes, {} disconnections, {} webhook retries, {} webhook failures \
         answered with an error, {} replies dropped, {} warnings in all",
        count("handshake accepted"),
        count("disconnected from"),
        count("retrying msg_"),
        count("answered with a "),
        count("dropped"),
        count(" WARN ")
    );
    for line in log
        .lines()
        .filter(|l| l.contains("disconnected from") || l.contains("dropped"))
        .take(10)
    {
        println!("  | {line}");
    }
}
