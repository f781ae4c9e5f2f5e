//! Replays: a delivery the webhook refused (404) is POSTed again once the webhook is fixed,
//! with the same webhook-id, and its reply goes to the sender; a bulk replay takes every
//! failed delivery its filter matches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{api, count_listed, eventually, webhook_id, TOKEN};
use crate::fixture::{next_message, World};
use crate::support::server_process::free_port;
use crate::support::xmpp_server::Server;
use crate::webhook_server::Canned;

async fn a_failed_delivery_is_replayed_once_the_webhook_is_fixed(server: Server) {
    let fixed = Arc::new(AtomicBool::new(false));
    let script = {
        let fixed = Arc::clone(&fixed);
        move |request: &Value| {
            if !fixed.load(Ordering::SeqCst) {
                return Canned::raw(404, Some("text/plain"), "no such bot");
            }
            let body = request["body"].as_str().unwrap_or_default();
            Canned::json(json!({ "body": format!("echo {body}") }))
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let extra = format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\ntoken = \"{TOKEN}\"\n[store]\npath = \"{}\"\n",
        dir.path().join("deliveries.db").display()
    );
    let world = World::start_with_on(server, script, &extra).await;
    let mut alice = world.client("alice").await;
    let mut bob = world.client("bob").await;
    for (client, body) in [(&mut alice, "one"), (&mut bob, "two")] {
        client
            .send(&format!(
                "<message type='chat' to='{}' id='r-{body}'><body>{body}</body></message>",
                crate::fixture::DOMAIN
            ))
            .await;
        let error = next_message(client).await;
        assert_eq!(
            error.attr("type"),
            Some("error"),
            "the 404 is an error to the sender"
        );
    }
    eventually(Duration::from_secs(10), "both failures logged", || async {
        count_listed(&base, "status=failed").await == 2
    })
    .await;
    fixed.store(true, Ordering::SeqCst);

    let (_, page) = api(
        reqwest::Method::GET,
        format!("{base}/v1/deliveries?status=failed&from=alice@localhost"),
        None,
    )
    .await;
    let id = page["deliveries"][0]["id"]
        .as_str()
        .expect("alice's delivery")
        .to_string();
    let (status, replayed) = api(
        reqwest::Method::POST,
        format!("{base}/v1/deliveries/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{replayed}");
    let reply = next_message(&mut alice).await;
    assert_eq!(crate::fixture::body(&reply), "echo one");
    let calls: Vec<_> = world
        .webhook()
        .requests()
        .iter()
        .filter(|r| webhook_id(r) == id)
        .map(|r| r.json["body"].clone())
        .collect();
    assert_eq!(
        calls,
        [json!("one"), json!("one")],
        "the same webhook-id, twice"
    );
    eventually(
        Duration::from_secs(10),
        "the replay's outcome logged",
        || async {
            let (_, detail) = api(
                reqwest::Method::GET,
                format!("{base}/v1/deliveries/{id}"),
                None,
            )
            .await;
            detail["status"] == "delivered"
        },
    )
    .await;
    let (_, detail) = api(
        reqwest::Method::GET,
        format!("{base}/v1/deliveries/{id}"),
        None,
    )
    .await;
    let statuses: Vec<_> = detail["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(404), json!(200)], "{detail}");
    assert_eq!(detail["request"]["body"], "one");

    let (status, bulk) = api(
        reqwest::Method::POST,
        format!("{base}/v1/deliveries/replay"),
        Some(json!({ "status": "failed" })),
    )
    .await;
    assert_eq!((status, &bulk["replayed"]), (202, &json!(1)), "{bulk}");
    let reply = next_message(&mut bob).await;
    assert_eq!(crate::fixture::body(&reply), "echo two");
}
on_both_servers!(a_failed_delivery_is_replayed_once_the_webhook_is_fixed);
