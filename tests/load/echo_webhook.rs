//! The webhook the load runs against: an echo bot on a fixed loopback port that records
//! every POST, and can refuse connections for the outage, then come back on the same port.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the webhook saw of one message body.
#[derive(Debug, Default)]
pub struct Seen {
    pub posts: usize,
    /// When it answered 200 (once per POST answered).
    pub answered: Vec<Instant>,
}

#[derive(Debug, Default)]
pub struct HookRecord {
    pub posts: usize,
    pub bodies: HashMap<String, Seen>,
    /// type='error' messages POSTed (the server bouncing a reply back to the component),
    /// by id (the echo reply carries the message's id).
    pub bounces: usize,
    pub bounced_ids: HashMap<String, usize>,
}

/// An echo bot on a fixed loopback port that can go down (listener and every connection
/// closed: connection refused) and come back on the same port.
pub struct Webhook {
    pub port: u16,
    pub record: Arc<Mutex<HookRecord>>,
    serving: Option<JoinHandle<()>>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let port = listener.local_addr().expect("webhook address").port();
        let record = Arc::new(Mutex::new(HookRecord::default()));
        let serving = Some(tokio::spawn(serve(listener, Arc::clone(&record))));
        Webhook {
            port,
            record,
            serving,
        }
    }

    /// Closes the listener and every connection (requests in progress are cut off).
    pub fn stop(&mut self) {
        if let Some(task) = self.serving.take() {
            task.abort(); // drops the listener and the JoinSet of connections
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        // The port was just released; give it a few tries (bounded).
        for _ in 0..50 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serving = Some(tokio::spawn(serve(listener, Arc::clone(&self.record))));
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the webhook could not bind port {} again", self.port);
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts until aborted; aborting drops the listener and (with the JoinSet) every connection.
async fn serve(listener: TcpListener, record: Arc<Mutex<HookRecord>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(connection(tcp, Arc::clone(&record)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(tcp: TcpStream, record: Arc<Mutex<HookRecord>>) {
    let _ = tcp.set_nodelay(true);
    let service = hyper::service::service_fn(move |request| answer(request, Arc::clone(&record)));
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

/// The echo bot: `{"body": "Did you say <body>?", "id": <id>}` to a message with a body,
/// 204 to anything else.
async fn answer(
    request: Request<Incoming>,
    record: Arc<Mutex<HookRecord>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let bytes = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let body = json["body"].as_str();
    let mut record = record.lock().expect("hook record");
    record.posts += 1;
    if json["type"] == "error" {
        record.bounces += 1;
        let id = json["id"].as_str().unwrap_or_default().to_string();
        *record.bounced_ids.entry(id).or_default() += 1;
    }
    let is_message = json["kind"] == "message" && json["type"] != "error";
    let Some(body) = body.filter(|_| is_message) else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        return Ok(response);
    };
    let seen = record.bodies.entry(body.to_string()).or_default();
    seen.posts += 1;
    seen.answered.push(Instant::now());
    let reply = serde_json::json!({ "body": format!("Did you say {body}?"), "id": json["id"] });
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
