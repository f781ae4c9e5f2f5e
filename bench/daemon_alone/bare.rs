//! The ceiling of the daemon-alone benchmark: a bare HTTP client POSTing the same JSON to the
//! same sink at the same concurrency, with no XMPP at all. It is hyper-util's pooled client
//! (the one reqwest is built on) with TCP_NODELAY and a keep-alive pool as large as the
//! concurrency, like the daemon's; each of `concurrency` tasks POSTs, reads the whole answer,
//! and POSTs again until the round ends.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, ACCEPT, CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;

use crate::common::RoundResult;
use crate::synthetic_server::DOMAIN;

/// The daemon's request headers are matched too (its `webhook-id` has this length).
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");

/// The JSON body component-http POSTs for one of the benchmark's stanzas (the contract in
/// README.md: to, from, kind, the stanza as received, body, type, id).
pub fn request_json(body_size: usize) -> Bytes {
    let body = "x".repeat(body_size);
    let from = "user0@localhost/r";
    let to = format!("echo@{DOMAIN}");
    // The daemon writes the stanza's attributes in name order; ids have 6 digits mid-run.
    let stanza = format!(
        "<message from='{from}' id='100000' to='{to}' type='chat'><body>{body}</body></message>"
    );
    let json = serde_json::json!({
        "to": to, "from": from, "kind": "message", "stanza": stanza,
        "body": body, "type": "chat", "id": "100000",
    });
    Bytes::from(json.to_string())
}

pub struct BareClient {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    json: Bytes,
}

impl BareClient {
    pub fn new(sink_port: u16, pool_size: usize, body_size: usize) -> BareClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool_size)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let uri = format!("http://127.0.0.1:{sink_port}/webhook")
            .parse()
            .expect("the sink's URL");
        BareClient {
            client,
            uri,
            json: request_json(body_size),
        }
    }

    /// One round: `concurrency` POSTs outstanding for `duration`; answers later than
    /// `duration + drain` count as lost.
    pub async fn round(
        &self,
        concurrency: u32,
        duration: Duration,
        drain: Duration,
    ) -> RoundResult {
        let end = Instant::now() + duration;
        let hard_stop = tokio::time::Instant::from_std(end + drain);
        let mut tasks = JoinSet::new();
        for _ in 0..concurrency {
            let (client, uri, json) = (self.client.clone(), self.uri.clone(), self.json.clone());
            tasks.spawn(async move {
                let mut mine = RoundResult::default();
                // Bounded by `end`: no new POST starts after it.
                while Instant::now() < end {
                    let request = Request::post(uri.clone())
                        .header(CONTENT_TYPE, "application/json")
                        .header(USER_AGENT, "component-http-bench/0")
                        .header(ACCEPT, "*/*")
                        .header(WEBHOOK_ID, "msg_00000000000000000000000000000000")
                        .body(Full::new(json.clone()))
                        .expect("a valid request");
                    let started = Instant::now();
                    let exchange = async {
                        let response = client.request(request).await.ok()?;
                        let ok = response.status().is_success();
                        let body = response.into_body().collect().await.ok()?;
                        Some(ok && !body.to_bytes().is_empty())
                    };
                    match tokio::time::timeout_at(hard_stop, exchange).await {
                        Err(_) => {
                            mine.lost += 1;
                            break;
                        }
                        Ok(answer) => {
                            let ok = answer == Some(true);
                            mine.errors += u64::from(!ok);
                            if Instant::now() < end {
                                mine.completed += 1;
                                mine.latencies_us.push(started.elapsed().as_micros() as u32);
                            }
                        }
                    }
                }
                mine
            });
        }
        let mut total = RoundResult {
            secs: duration.as_secs_f64(),
            ..RoundResult::default()
        };
        while let Some(joined) = tasks.join_next().await {
            let mine = joined.expect("a bare-client task panicked");
            total.completed += mine.completed;
            total.errors += mine.errors;
            total.lost += mine.lost;
            total.latencies_us.extend(mine.latencies_us);
        }
        total.sort();
        total
    }
}
