//! Queue mode when the webhook comes back while the server cannot be reached: more messages
//! are queued than the outbox holds (1,200 against `max_queued_replies`' 1,024), the stream
//! to the server is cut (the relay closed), the webhook comes back, and only once the
//! stream is back does the queue drain: every sender gets every reply, in order, none
//! dropped for want of a stream to write it to.

use std::time::Duration;

use serde_json::Value;

use super::{
    api, bodies_received, echo_after, eventually, prosody_with_senders, send_numbered, senders,
    store_config, DaemonProcess, Relay,
};
use crate::fixture::wait_component_online;
use crate::support::client::XmppClient;
use crate::support::server_process::free_port;
use crate::webhook_server::WebhookServer;

const SENDERS: usize = 4;
const EACH: usize = 300;

/// The component's entry in `GET /v1/status`.
async fn status(base: &str) -> Value {
    let (code, status) = api(reqwest::Method::GET, format!("{base}/v1/status"), None).await;
    assert_eq!(code, 200, "{status}");
    status["components"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_drains_only_once_the_server_is_back_when_the_webhook_comes_back_first() {
    let server = prosody_with_senders(SENDERS);
    // Nothing listens on the webhook's port until it comes back.
    let hook_port = free_port();
    let url = format!("http://127.0.0.1:{hook_port}/hook");
    let mut relay = Relay::new(server.component_port());
    relay.open().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let keys = "when_unreachable = \"queue\"\nqueue_probe_interval = 0.5\n\
        queue_probe_max_interval = 1\nretry = { max_attempts = 1, max_elapsed = 1 }\n\
        timeout = 2\nmax_in_flight = 2000\nmax_in_flight_per_sender = 2000\n\
        max_queued_per_conversation = 2000\nreconnect_delay = 0.2\nreconnect_max_delay = 0.5\n";
    let config = relay.config(
        &server,
        &store_config(&server, &url, dir.path(), api_port, keys),
    );
    let daemon = DaemonProcess::start(dir.path(), &config);
    let mut clients = senders(&server, SENDERS).await;
    // Pinged from a session of its own: the senders' sessions read only their replies.
    let mut probe = XmppClient::connect("u0@localhost", "pw", server.c2s_port()).await;
    wait_component_online(&mut probe).await;
    send_numbered(&mut clients, EACH).await;
    eventually(Duration::from_secs(60), "all 1,200 queued", || async {
        status(&base).await["queue"]["queued"] == SENDERS * EACH
    })
    .await;

    relay.close();
    eventually(Duration::from_secs(10), "the stream seen gone", || async {
        status(&base).await["connected"] == false
    })
    .await;
    let webhook = WebhookServer::start_on(hook_port, echo_after(Duration::ZERO)).await;
    // Several probe intervals with the webhook back and no stream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posted_while_away = webhook.requests().len();
    relay.open().await;

    for (i, client) in clients.iter_mut().enumerate() {
        let bodies = bodies_received(client, EACH, Duration::from_secs(90)).await;
        let expected: Vec<String> = (0..EACH).map(|k| format!("echo u{i}-{k}")).collect();
        let log = daemon.log_text();
        assert!(
            bodies == expected,
            "u{i}: {} replies of {EACH}, in order: {}; {posted_while_away} POSTed while the \
             stream was down; {} dropped replies in the log",
            bodies.len(),
            bodies == expected[..bodies.len().min(EACH)],
            log.matches("dropped").count()
        );
    }
    daemon.stop().await;
}
