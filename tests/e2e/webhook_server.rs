//! A real HTTP webhook for the tests: axum on a free loopback port, answering what the test's
//! script says and recording every request it was sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

/// What the webhook answers to one request.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn json(body: Value) -> Canned {
        Canned::raw(200, Some("application/json"), &body.to_string())
    }

    pub fn raw(status: u16, content_type: Option<&str>, body: &str) -> Canned {
        Canned {
            status,
            content_type: content_type.map(str::to_string),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Canned {
        self.delay = delay;
        self
    }
}

/// One request as the webhook saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub json: Value,
    pub headers: HeaderMap,
}

type Script = Arc<dyn Fn(&Value) -> Canned + Send + Sync>;

/// The running webhook; stops when dropped.
pub struct WebhookServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// How many requests are recorded: `wait_for` waits on its changes.
    recorded_count: watch::Sender<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    pub async fn start(script: impl Fn(&Value) -> Canned + Send + Sync + 'static) -> WebhookServer {
        WebhookServer::start_on(0, script).await
    }

    /// As `start`, on `port` (0: any free one): a webhook that was stopped comes back at
    /// the same URL.
    pub async fn start_on(
        port: u16,
        script: impl Fn(&Value) -> Canned + Send + Sync + 'static,
    ) -> WebhookServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind webhook");
        let address: SocketAddr = listener.local_addr().expect("webhook address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let recorded = Arc::clone(&requests);
        let recorded_count = watch::Sender::new(0);
        let count = recorded_count.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let script = Arc::clone(&script);
            let recorded = Arc::clone(&recorded);
            let count = count.clone();
            async move { answer(&script, &recorded, &count, headers, &body).await }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("webhook server");
        });
        WebhookServer {
            url: format!("http://{address}/hook"),
            requests,
            recorded_count,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// The first recorded request for which `wanted` holds, once there is one. A request
    /// is recorded before the script's answer is even chosen, so when this returns, the
    /// call it records is in flight (or answered). Panics after `within`.
    pub async fn wait_for(&self, within: Duration, wanted: impl Fn(&Recorded) -> bool) -> Recorded {
        let mut count = self.recorded_count.subscribe();
        let waited = tokio::time::timeout(within, async {
            loop {
                // Subscribed before looking: a request recorded after this look changes
                // the count, so `changed` cannot miss it.
                if let Some(found) = self.requests().into_iter().find(&wanted) {
                    return found;
                }
                count.changed().await.expect("the webhook is running");
            }
        });
        match waited.await {
            Ok(found) => found,
            Err(_) => panic!(
                "no such webhook request within {within:?}; recorded: {:?}",
                self.requests().iter().map(|r| &r.json).collect::<Vec<_>>()
            ),
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    script: &Script,
    recorded: &Mutex<Vec<Recorded>>,
    count: &watch::Sender<usize>,
    headers: HeaderMap,
    body: &[u8],
) -> Response {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    recorded.lock().expect("requests lock").push(Recorded {
        json: json.clone(),
        headers,
    });
    count.send_modify(|n| *n += 1);
    let canned = script(&json);
    tokio::time::sleep(canned.delay).await;
    let status = StatusCode::from_u16(canned.status).expect("valid status");
    let mut response = (status, canned.body).into_response();
    response.headers_mut().remove("content-type");
    if let Some(content_type) = canned.content_type {
        let value = HeaderValue::from_str(&content_type).expect("valid content type");
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// The bot every test talks to: the message body says what to answer, so one webhook
/// covers every row of the contract.
pub fn scripted_bot(request: &Value) -> Canned {
    let body = request["body"].as_str().unwrap_or_default();
    let (command, argument) = body.split_once(' ').unwrap_or((body, ""));
    match command {
        "status" => Canned::raw(
            argument.parse().expect("status number"),
            Some("text/html"),
            "<h1>no</h1>",
        ),
        "charset" => Canned::raw(
            200,
            Some("application/json; charset=utf-8"),
            r#"{"body": "charset ok é"}"#,
        ),
        "raw" => Canned::json(serde_json::json!({
            "stanza": "<message type='normal'><subject>raw</subject><body>raw reply</body>\
                       <x xmlns='urn:example:custom' v='1'/></message>"
        })),
        "to" => Canned::json(serde_json::json!({ "to": argument, "body": "for you" })),
        "foreign" => {
            Canned::json(serde_json::json!({ "from": "admin@localhost", "body": "spoof" }))
        }
        "badjson" => Canned::raw(200, Some("application/json"), "{not json"),
        "badstanza" => {
            Canned::json(serde_json::json!({ "stanza": "<message><body>unclosed</message>" }))
        }
        "sleep" => Canned::json(serde_json::json!({ "body": "too late" }))
            .after(Duration::from_secs(argument.parse().expect("secs"))),
        "number" => Canned::raw(200, Some("application/json"), r#"{"body": 42}"#),
        _ if request["kind"] == "message" && request.get("body").is_some() => {
            Canned::json(serde_json::json!({ "body": format!("Did you say {body}?") }))
        }
        _ => Canned::raw(204, None, ""),
    }
}
