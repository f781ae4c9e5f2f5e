//! Queue mode through a long outage: the webhook is down for 90 s while 300 messages come
//! from 10 senders, and the daemon is stopped and started again in the middle. Once the
//! webhook is back, every message reaches it once, in order per sender, every sender gets
//! its replies in order, and `queued_notice` once.

use std::time::{Duration, Instant};

use super::{
    bodies_received, count_listed, echo_after, eventually, prosody_with_senders, senders,
    store_config, DaemonProcess,
};
use crate::fixture::{wait_component_online, DOMAIN};
use crate::support::client::XmppClient;
use crate::support::server_process::free_port;
use crate::webhook_server::WebhookServer;

const NOTICE: &str = "The bot is away; your message will be delivered when it is back.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_delivers_everything_in_order_after_a_90_s_outage_and_a_restart() {
    const SENDERS: usize = 10;
    const EACH: usize = 30;
    let server = prosody_with_senders(SENDERS);
    // Nothing listens on the webhook's port until the outage ends.
    let hook_port = free_port();
    let url = format!("http://127.0.0.1:{hook_port}/hook");
    let outage = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let keys = format!(
        "when_unreachable = \"queue\"\nqueue_probe_interval = 1\nqueue_probe_max_interval = 4\n\
         queued_notice = \"{NOTICE}\"\nretry = {{ max_attempts = 2, max_elapsed = 2 }}\ntimeout = 5\n"
    );
    let config = store_config(&server, &url, dir.path(), api_port, &keys);
    let daemon = DaemonProcess::start(dir.path(), &config);
    let mut clients = senders(&server, SENDERS).await;
    // The component is pinged from a session of its own (another resource of u0): the
    // senders' sessions read only what is sent to them.
    let mut probe = XmppClient::connect("u0@localhost", "pw", server.c2s_port()).await;
    wait_component_online(&mut probe).await;
    let send = |from: usize| {
        (from..from + EACH / 2).map(|k| {
            format!("<message type='chat' to='{DOMAIN}' id='m{k}'><body>{k}</body></message>")
        })
    };
    for client in &mut clients {
        for message in send(0) {
            client.send(&message).await;
        }
    }
    let half = SENDERS * EACH / 2;
    eventually(Duration::from_secs(60), "the first half queued", || async {
        count_listed(&base, "status=queued").await == half
    })
    .await;
    daemon.stop().await;
    let daemon = DaemonProcess::start(dir.path(), &config);
    wait_component_online(&mut probe).await;
    for client in &mut clients {
        for message in send(EACH / 2) {
            client.send(&message).await;
        }
    }
    eventually(Duration::from_secs(60), "all 300 queued", || async {
        count_listed(&base, "status=queued").await == SENDERS * EACH
    })
    .await;
    let down_for = Duration::from_secs(90);
    tokio::time::sleep(down_for.saturating_sub(outage.elapsed())).await;
    let webhook = WebhookServer::start_on(hook_port, echo_after(Duration::ZERO)).await;
    let back = Instant::now();

    let expected: Vec<String> = (0..EACH).map(|k| format!("echo {k}")).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let bodies = bodies_received(client, EACH + 1, Duration::from_secs(60)).await;
        let notices = bodies.iter().filter(|b| *b == NOTICE).count();
        assert_eq!(notices, 1, "u{i}: one notice for the outage: {bodies:?}");
        let replies: Vec<String> = bodies.into_iter().filter(|b| b != NOTICE).collect();
        assert_eq!(
            replies,
            expected,
            "u{i}: every reply, in order; daemon log:\n{}",
            daemon.log_text()
        );
    }
    println!(
        "outage {:.0} s; all {} replies received {:.1} s after the webhook came back",
        outage.elapsed().as_secs_f64() - back.elapsed().as_secs_f64(),
        SENDERS * EACH,
        back.elapsed().as_secs_f64()
    );
    for i in 0..SENDERS {
        let sender = format!("u{i}@localhost");
        let posted: Vec<String> = webhook
            .requests()
            .iter()
            .filter(|r| {
                r.json["from"]
                    .as_str()
                    .is_some_and(|f| f.starts_with(&sender))
            })
            .map(|r| r.json["body"].as_str().unwrap_or_default().to_string())
            .collect();
        let in_order: Vec<String> = (0..EACH).map(|k| k.to_string()).collect();
        assert_eq!(
            posted, in_order,
            "{sender}: each message POSTed once, in order"
        );
    }
    // The log is written in batches, after the answers: it may lag the replies a moment.
    eventually(
        Duration::from_secs(10),
        "all 300 delivered in the log",
        || async { count_listed(&base, "status=delivered").await == SENDERS * EACH },
    )
    .await;
    daemon.stop().await;
}
