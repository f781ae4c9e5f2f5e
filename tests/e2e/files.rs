//! Issue 18, files (XEP-0363): uploads through each server's own upload service
//! (`upload.localhost`: Prosody's mod_http_file_share, ejabberd's mod_http_upload, both with
//! HTTP on a loopback port): `POST /v1/upload` and a webhook reply's `file`, each fetched
//! back over HTTP byte for byte; a file over `max_upload_size` refused with the documented
//! errors; and the service found by discovery when `upload_service` is not set.

use base64::Engine;
use serde_json::{json, Value};

use crate::fixture::{body, error_of, next_message, World, DOMAIN, WAIT};
use crate::http_api::{with_api, TOKEN};
use crate::support::client::to_xml;
use crate::support::server_process::UPLOAD_SERVICE;
use crate::support::xmpp_server::Server;
use crate::webhook_server::{scripted_bot, Canned};

const OOB_NS: &str = "jabber:x:oob";
/// The upload services' own limit in the harness (tests/support: `UPLOAD_LIMIT`).
const SERVICE_LIMIT: usize = crate::support::server_process::UPLOAD_LIMIT;

/// Bytes no text codec would leave alone: every byte value, twice, and a tail.
fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

/// `POST /v1/upload?filename=` with `data`: the status and the JSON answer.
async fn api_upload(base: &str, filename: &str, data: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/upload?filename={filename}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .expect("API reachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The bytes at `url`, fetched as any client would.
async fn fetch(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.expect("the upload service answers");
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    response.bytes().await.expect("the file's bytes").to_vec()
}

/// The webhook: "send file N" answers with a file of N bytes (and a body with "and say").
fn file_bot(request: &Value) -> Canned {
    let said = request["body"].as_str().unwrap_or_default();
    let Some(size) = said
        .strip_prefix("send file ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
    else {
        return scripted_bot(request);
    };
    let data = base64::engine::general_purpose::STANDARD.encode(sample(size));
    let mut reply = json!({"file": {"name": "sample.bin", "content_type": "application/octet-stream", "data": data}});
    if said.ends_with("and say") {
        reply["body"] = json!("Here it is");
    }
    Canned::json(reply)
}

async fn world(server: Server, keys: &str) -> (World, String) {
    let (config, base) = with_api(keys);
    (World::start_with_on(server, file_bot, &config).await, base)
}

async fn api_upload_gives_a_url_that_serves_the_same_bytes(server: Server) {
    let keys = format!("upload_service = \"{UPLOAD_SERVICE}\"");
    let (world, base) = world(server, &keys).await;
    let _alice = world.client("alice").await;
    let data = sample(70_000);
    let (status, answer) = api_upload(&base, "sample.bin", data.clone()).await;
    assert_eq!(status, 200, "{answer}\n{}", world.server.log_tail());
    let url = answer["url"].as_str().expect("a url");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(fetch(url).await, data);
}
on_both_servers!(api_upload_gives_a_url_that_serves_the_same_bytes);

async fn a_webhook_file_arrives_as_a_url_with_oob_after_the_body(server: Server) {
    let keys = format!("upload_service = \"{UPLOAD_SERVICE}\"");
    let (world, _base) = world(server, &keys).await;
    let mut alice = world.client("alice").await;
    alice
        .send(&format!(
            "<message type='chat' to='{DOMAIN}' id='f1'><body>send file 5000 and say</body></message>"
        ))
        .await;
    let first = next_message(&mut alice).await;
    assert_eq!(body(&first), "Here it is", "{}", to_xml(&first));
    assert!(
        first.children().all(|c| c.name() != "x"),
        "{}",
        to_xml(&first)
    );
    let second = next_message(&mut alice).await;
    let url = body(&second);
    let oob = second
        .get_child("x", OOB_NS)
        .and_then(|x| x.get_child("url", OOB_NS))
        .map(|u| u.text());
    assert_eq!(oob.as_deref(), Some(url.as_str()), "{}", to_xml(&second));
    assert_eq!(fetch(&url).await, sample(5000));

    alice
        .send(&format!(
            "<message type='chat' to='{DOMAIN}' id='f2'><body>send file 10</body></message>"
        ))
        .await;
    let only = next_message(&mut alice).await;
    let url = body(&only);
    assert!(only.get_child("x", OOB_NS).is_some(), "{}", to_xml(&only));
    assert_eq!(fetch(&url).await, sample(10));
}
on_both_servers!(a_webhook_file_arrives_as_a_url_with_oob_after_the_body);

async fn a_file_over_max_upload_size_is_refused_with_the_documented_errors(server: Server) {
    let keys = format!("upload_service = \"{UPLOAD_SERVICE}\"\nmax_upload_size = 1000");
    let (world, base) = world(server, &keys).await;
    let mut alice = world.client("alice").await;
    let (status, answer) = api_upload(&base, "big.bin", sample(1001)).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "too_large");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("max_upload_size (1000 bytes)"),
        "{message}"
    );
    let (status, answer) = api_upload(&base, "fits.bin", sample(1000)).await;
    assert_eq!(status, 200, "{answer}");

    alice
        .send(&format!(
            "<message type='chat' to='{DOMAIN}' id='big'><body>send file 1001</body></message>"
        ))
        .await;
    let refused = next_message(&mut alice).await;
    let (kind, condition, text) = error_of(&refused);
    assert_eq!(
        (kind.as_str(), condition.as_str()),
        ("modify", "not-acceptable")
    );
    assert_eq!(text.as_deref(), Some("The file is too large"));
    assert_eq!(refused.attr("id"), Some("big"));
}
on_both_servers!(a_file_over_max_upload_size_is_refused_with_the_documented_errors);

async fn the_upload_service_is_found_by_discovery(server: Server) {
    let (world, base) = world(server, "max_response_size = 4194304").await;
    let mut alice = world.client("alice").await;
    let data = sample(3000);
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = api_upload(&base, "found.bin", data.clone()).await;
        if last.1["error"] != "no_upload_service" {
            break;
        }
        tokio::time::sleep(WAIT / 50).await;
    }
    let (status, answer) = last;
    assert_eq!(status, 200, "{answer}\n{}", world.server.log_tail());
    assert_eq!(fetch(answer["url"].as_str().expect("a url")).await, data);
    // Both services say their limit (1 MiB in the harness) in their disco#info form, below
    // max_upload_size (10 MiB): it is honoured, and named.
    let (status, answer) = api_upload(&base, "huge.bin", sample(SERVICE_LIMIT + 1)).await;
    assert_eq!(status, 413, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "the service's max-file-size ({SERVICE_LIMIT} bytes)"
        )),
        "{message}"
    );
    alice
        .send(&format!(
            "<message type='chat' to='{DOMAIN}' id='huge'><body>send file {}</body></message>",
            SERVICE_LIMIT + 1
        ))
        .await;
    let (_, condition, _) = error_of(&next_message(&mut alice).await);
    assert_eq!(condition, "not-acceptable");
}
on_both_servers!(the_upload_service_is_found_by_discovery);
