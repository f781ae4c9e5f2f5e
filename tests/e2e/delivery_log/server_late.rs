//! A daemon that starts before it can reach its XMPP server (a machine booting, the server
//! restarting with it), with more deliveries left unfinished by the last run than the
//! outbox holds (`max_queued_replies`, 1,024): they are made again once the component is
//! connected, so every reply reaches its sender, in order, instead of being dropped while no
//! stream could take it. The server is real Prosody, reached through a loopback relay that
//! the test opens late (Prosody itself stays up, so the sender stays online).

use std::time::{Duration, Instant};

use super::upgrade::version_1_file;
use super::{
    bodies_received, echo_after, prosody_with_senders, senders, store_config, DaemonProcess, Relay,
};
use crate::support::server_process::free_port;
use crate::webhook_server::WebhookServer;

/// Unfinished deliveries in the file: more than the outbox holds.
const UNFINISHED: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_deliveries_past_the_outbox_bound_all_get_replies_when_the_server_comes_late() {
    let server = prosody_with_senders(1);
    let webhook = WebhookServer::start(echo_after(Duration::ZERO)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let rows: Vec<_> = (0..UNFINISHED)
        .map(|k| (format!("msg_unfinished_{k}"), format!("n{k}"), "in_flight"))
        .collect();
    version_1_file(&dir.path().join("deliveries.db"), &rows);
    let mut clients = senders(&server, 1).await;

    let mut relay = Relay::new(server.component_port());
    let keys = "reconnect_delay = 0.2\nreconnect_max_delay = 0.5\n";
    let config = relay.config(
        &server,
        &store_config(&server, &webhook.url, dir.path(), free_port(), keys),
    );
    let daemon = DaemonProcess::start(dir.path(), &config);
    // Long enough for a daemon that delivered at once to fill the outbox and more.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) && webhook.requests().len() < 1100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_connected = webhook.requests().len();
    relay.open().await;

    let bodies = bodies_received(&mut clients[0], UNFINISHED, Duration::from_secs(120)).await;
    let log = daemon.log_text();
    let dropped = log.matches("dropped").count();
    assert_eq!(
        bodies.len(),
        UNFINISHED,
        "{before_connected} delivered before the server could be reached, {dropped} log \
         lines of dropped replies; daemon log tail:\n{}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    let expected: Vec<String> = (0..UNFINISHED).map(|k| format!("echo n{k}")).collect();
    assert!(
        bodies == expected,
        "the replies in the order of their messages"
    );
    daemon.stop().await;
}
