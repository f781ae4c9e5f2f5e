//! The HTTP API against a real Prosody and a real client: sending, iq round trips through
//! the API, authentication, a disconnected component, metrics read by Prometheus' own
//! parser, and the typing notice of a slow webhook.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fixture::{ask, body, next_message, World, WAIT};
use crate::support::server_process::free_port;
use crate::support::xmpp_server::Server;

pub const TOKEN: &str = "e2e-api-token-0123456789";

/// A world whose daemon also serves the API; returns it with the API's base URL.
pub async fn world_with_api(server: Server, extra: &str) -> (World, String) {
    let (config, base) = with_api(extra);
    (World::start_on(server, &config).await, base)
}

/// The component's `extra` keys followed by an `[api]` section on a free port (the token
/// is `TOKEN`); returns that config text with the API's base URL.
pub fn with_api(extra: &str) -> (String, String) {
    let port = free_port();
    let config = format!(
        "{extra}\n[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\niq_timeout = 10\n"
    );
    (config, format!("http://127.0.0.1:{port}"))
}

/// One API call: its status and JSON body (Null when the body is not JSON).
pub async fn api_call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("API reachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(base: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, json, _) = crate::hostile_api::post_as(base, token, body).await;
    (status, json)
}

async fn get(base: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("API reachable");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn api_send_reaches_the_client(server: Server) {
    let (world, base) = world_with_api(server, "").await;
    let mut alice = world.client("alice").await;
    let (status, answer) = post(
        &base,
        TOKEN,
        json!({ "to": "alice@localhost", "body": "disk full", "from": "alerts@bot.localhost" }),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let message = next_message(&mut alice).await;
    assert_eq!(body(&message), "disk full");
    assert_eq!(message.attr("from"), Some("alerts@bot.localhost"));
}
on_both_servers!(api_send_reaches_the_client);

async fn api_iq_ping_to_a_full_jid_returns_the_answer(server: Server) {
    let (world, base) = world_with_api(server, "").await;
    let mut alice = world.client("alice").await;
    let stanza = format!(
        "<iq type='get' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
        alice.full_jid()
    );
    let request = tokio::spawn({
        let base = base.clone();
        async move { post(&base, TOKEN, json!({ "stanza": stanza })).await }
    });
    let ping = alice
        .recv_matching(WAIT, |s| s.name() == "iq")
        .await
        .expect("the ping reaches the client");
    let id = ping.attr("id").expect("an id").to_string();
    alice
        .send(&format!(
            "<iq type='result' id='{id}' to='{}'/>",
            ping.attr("from").expect("from")
        ))
        .await;
    let (status, answer) = request.await.expect("request task");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "iq");
    assert_eq!(answer["type"], "result");
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["from"], alice.full_jid());
}
on_both_servers!(api_iq_ping_to_a_full_jid_returns_the_answer);

async fn api_refuses_bad_tokens_and_a_disconnected_component(server: Server) {
    let (mut world, base) =
        world_with_api(server, "reconnect_delay = 0.2\nreconnect_max_delay = 1").await;
    let _alice = world.client("alice").await;
    let (status, answer) = post(
        &base,
        "not-the-token-at-all",
        json!({ "to": "alice@localhost" }),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = get(&base, "/healthz").await;
    assert_eq!(status, 200);
    world.server.stop();
    let mut refused = None;
    for _ in 0..50 {
        let (status, answer) = post(
            &base,
            TOKEN,
            json!({ "to": "alice@localhost", "body": "x" }),
        )
        .await;
        if status == 503 {
            refused = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        refused.expect("503 once disconnected")["error"],
        "not_connected"
    );
    let (status, health) = get(&base, "/healthz").await;
    assert_eq!(status, 503, "{health}");
}
on_both_servers!(api_refuses_bad_tokens_and_a_disconnected_component);

/// Scrapes /metrics and parses it with the Prometheus project's parser.
pub async fn scrape(base: &str) -> HashMap<String, f64> {
    let (status, text) = get(base, "/metrics").await;
    assert_eq!(status, 200);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/parse_metrics.py"
    );
    let mut parser = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = parser.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, text.as_bytes())
        .await
        .expect("write metrics");
    drop(stdin);
    let output = parser.wait_with_output().await.expect("parser output");
    assert!(
        output.status.success(),
        "the Prometheus parser rejected the page ({}):\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser JSON")
}

async fn metrics_parse_and_count_traffic(server: Server) {
    let (world, base) = world_with_api(server, "").await;
    let mut alice = world.client("alice").await;
    let before = scrape(&base).await;
    for n in 0..3 {
        assert_eq!(
            body(&ask(&mut alice, "echo@bot.localhost", &format!("m{n}")).await),
            format!("Did you say m{n}?")
        );
    }
    let error = ask(&mut alice, "echo@bot.localhost", "status 404").await;
    assert_eq!(error.attr("type"), Some("error"));
    let after = scrape(&base).await;
    let delta = |key: &str| {
        after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
    };
    let c = "component=bot.localhost";
    assert_eq!(
        delta(&format!(
            "component_http_stanzas_received_total{{{c},kind=message}}"
        )),
        4.0,
        "{after:?}"
    );
    assert_eq!(
        delta(&format!(
            "component_http_webhook_requests_total{{class=2xx,{c}}}"
        )),
        3.0,
        "{after:?}"
    );
    assert_eq!(
        delta(&format!(
            "component_http_webhook_requests_total{{class=4xx,{c}}}"
        )),
        1.0,
        "{after:?}"
    );
    assert_eq!(
        delta(&format!(
            "component_http_stanza_errors_sent_total{{{c},condition=item-not-found}}"
        )),
        1.0,
        "{after:?}"
    );
    assert_eq!(
        delta(&format!(
            "component_http_webhook_request_duration_seconds_count{{{c}}}"
        )),
        4.0,
        "{after:?}"
    );
    assert_eq!(
        after.get(&format!("component_http_connected{{{c}}}")),
        Some(&1.0)
    );
    assert_eq!(
        after.get(&format!("component_http_in_flight{{{c}}}")),
        Some(&0.0)
    );
}
on_both_servers!(metrics_parse_and_count_traffic);

async fn slow_webhook_shows_a_typing_notice(server: Server) {
    let world = World::start_on(server, "typing_after = 0.3").await;
    let mut alice = world.client("alice").await;
    alice
        .send("<message type='chat' to='echo@bot.localhost'><body>sleep 1</body></message>")
        .await;
    let chat_states = "http://jabber.org/protocol/chatstates";
    let composing = alice
        .recv_matching(WAIT, |s| s.name() == "message")
        .await
        .expect("a message");
    assert!(
        composing.has_child("composing", chat_states),
        "first a composing notice: {composing:?}"
    );
    let reply = next_message(&mut alice).await;
    assert_eq!(body(&reply), "too late");
    assert!(reply.has_child("active", chat_states), "the reply ends it");
    let quick = ask(&mut alice, "echo@bot.localhost", "quick").await;
    assert!(
        !quick.has_child("composing", chat_states),
        "no notice for a fast answer"
    );
}
on_both_servers!(slow_webhook_shows_a_typing_notice);
