//! Finding 8: stanzas from the component's own domain. A webhook that answers an address on
//! its own domain, and the example echo bot after one API send from one of the domain's
//! addresses to another, each started an endless exchange through the server (thousands of
//! webhook calls a second, a body growing each turn). The daemon must drop such a stanza
//! without an answer, count it, log it once, and go on answering everyone else.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{api_send, metrics};
use crate::examples::ExampleBot;
use crate::fixture::{ask, body, logged_lines_with, World, DOMAIN};
use crate::support::xmpp_server::Server;

const TOKEN: &str = "hostile-dispatch-token-0123456789";
/// How long the dropped stanzas may take to be counted.
const COUNTED_WITHIN: Duration = Duration::from_secs(10);

/// The `[api]` section for a free port, and the API's base URL.
fn api_section() -> (String, String) {
    let port = crate::support::server_process::free_port();
    (
        format!("[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"),
        format!("http://127.0.0.1:{port}"),
    )
}

fn metric_key(name: &str, labels: &str) -> String {
    format!("component_http_{name}{{component=\"{DOMAIN}\",{labels}}}")
}

/// Waits until the daemon has dropped `count` stanzas from its own domains; panics with
/// `what_happened` (what the webhook saw) if that does not happen.
async fn wait_dropped(api: &str, count: f64, what_happened: impl Fn() -> String) {
    let key = metric_key("stanzas_refused_total", "reason=\"own_domain\"");
    let deadline = Instant::now() + COUNTED_WITHIN;
    loop {
        let seen = metrics(api, TOKEN).await.get(&key).copied().unwrap_or(0.0);
        if seen >= count {
            assert_eq!(seen, count, "{key}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} is {seen}, not {count}, after {COUNTED_WITHIN:?}; {}",
            what_happened()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A lower-case name for the server: the addresses of each test run are its own, so that
/// the two runs of a test (in one process, one log) do not see each other's lines.
fn tag(server: Server) -> String {
    server.name().to_lowercase()
}

async fn a_webhook_answering_its_own_domain_does_not_loop(server: Server) {
    let (api_config, api) = api_section();
    let world = World::start_on(server, &api_config).await;
    let mut alice = world.client("alice").await;
    let tag = tag(server);
    let bot = format!("loop-{tag}@{DOMAIN}");
    // The scripted webhook answers "to X" with a message from the address written to, to X.
    let triggers = 3;
    for n in 0..triggers {
        alice
            .send(&format!(
                "<message type='chat' to='{bot}' id='t{n}'><body>to echo2-{tag}@{DOMAIN}</body></message>"
            ))
            .await;
    }
    let webhook = world.webhook();
    wait_dropped(&api, f64::from(triggers), || {
        format!("the webhook was called {} times", webhook.requests().len())
    })
    .await;
    assert_eq!(
        body(&ask(&mut alice, &format!("echo@{DOMAIN}"), "still there").await),
        "Did you say still there?"
    );
    let requests = webhook.requests();
    let from_us: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.json["from"]
                .as_str()
                .is_some_and(|from| from.contains(&format!("@{DOMAIN}")))
        })
        .collect();
    assert!(
        from_us.is_empty(),
        "POSTed from our own domain: {from_us:?}"
    );
    assert_eq!(
        requests.len(),
        triggers as usize + 1,
        "the triggers and the last question"
    );
    let logged = logged_lines_with(&[&format!("from {bot}"), "loop guard"]);
    assert_eq!(logged.len(), 1, "logged once, not per stanza: {logged:#?}");
    println!("[hostile_dispatch] {}: {}", server.name(), logged[0]);
}
on_both_servers!(a_webhook_answering_its_own_domain_does_not_loop);

async fn the_echo_bot_and_an_api_send_between_two_own_addresses_do_not_ping_pong(server: Server) {
    let bot = ExampleBot::start("python3", &["examples/echo_bot.py", "{port}"]).await;
    let (api_config, api) = api_section();
    let world = World::start_for_url_on(server, &bot.url, &api_config).await;
    let mut bob = world.client("bob").await;
    let tag = tag(server);
    let other = format!("other-{tag}@{DOMAIN}");
    let sent = json!({ "from": other, "to": format!("echo-{tag}@{DOMAIN}"), "body": "ping" });
    assert_eq!(api_send(&api, TOKEN, sent).await, 202);
    let posts = || bot.stderr().matches("\"POST ").count();
    wait_dropped(&api, 1.0, || {
        format!("the echo bot was called {} times", posts())
    })
    .await;
    assert_eq!(
        body(&ask(&mut bob, &format!("echo@{DOMAIN}"), "hello").await),
        "Did you say hello?"
    );
    let counts = metrics(&api, TOKEN).await;
    let received = metric_key("stanzas_received_total", "kind=\"message\"");
    assert_eq!(
        counts.get(&received).copied(),
        Some(2.0),
        "the API's message and bob's: {counts:?}"
    );
    assert_eq!(
        posts(),
        1,
        "only bob's message was POSTed:\n{}",
        bot.stderr()
    );
    let logged = logged_lines_with(&[&format!("from {other}"), "loop guard"]);
    assert_eq!(logged.len(), 1, "{logged:#?}");
}
on_both_servers!(the_echo_bot_and_an_api_send_between_two_own_addresses_do_not_ping_pong);
