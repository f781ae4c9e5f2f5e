//! The webhook's connections against a real HTTP/1.1 peer on loopback: calls reuse the
//! connection used last, one the webhook closed while unused is replaced without the call
//! failing, and the sweep lets go of closed and long-unused ones. The peer is written out
//! here so that it can close a kept connection at a chosen moment, as servers with a short
//! keep-alive timeout do.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Config;
use crate::deadline::Deadline;
use crate::metrics::Metrics;
use crate::stanza::reply::WebhookOutcome;
use crate::webhook::pool::IDLE_TIMEOUT;
use crate::webhook::Webhook;

const ANSWER: &str = "{\"body\":\"ok\"}";

/// One request as the peer read it: which connection (0, 1, ...) and its head.
#[derive(Debug, Clone)]
struct Seen {
    connection: usize,
    head: String,
}

/// The peer: its port, the requests it read, and how many connections it is done with
/// (their socket closed: by the peer itself, or after the webhook closed its end).
struct Peer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: watch::Receiver<usize>,
}

/// Serves on a free loopback port; with `close_after_answer` it closes each connection
/// that long after its first answer, though the answer said nothing of closing.
async fn peer(close_after_answer: Option<Duration>) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let (closes, closed) = watch::channel(0);
    let closes = Arc::new(closes);
    tokio::spawn(async move {
        for connection in 0.. {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            let closes = Arc::clone(&closes);
            tokio::spawn(async move {
                // `serve` owns the socket: it is closed when `serve` returns.
                serve(tcp, connection, close_after_answer, log).await;
                closes.send_modify(|n| *n += 1);
            });
        }
    });
    Peer { port, seen, closed }
}

impl Peer {
    /// Waits until the peer has closed `count` connections in all.
    async fn closed(&mut self, count: usize) {
        let closed = self.closed.wait_for(|&n| n >= count);
        let waited = tokio::time::timeout(Duration::from_secs(5), closed).await;
        assert!(
            waited.is_ok_and(|accepting| accepting.is_ok()),
            "the peer did not close connection {count} within 5 s"
        );
    }
}

async fn serve(
    mut tcp: TcpStream,
    connection: usize,
    close: Option<Duration>,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = read_until_head_end(&mut tcp, &mut buffer).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let length = header(&head, "content-length").map_or(0, |v| v.parse().unwrap_or(0));
        while buffer.len() < end + 4 + length {
            let mut chunk = [0; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end + 4 + length);
        log.lock().expect("log").push(Seen { connection, head });
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
            ANSWER.len()
        );
        if tcp.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if let Some(delay) = close {
            tokio::time::sleep(delay).await;
            return;
        }
    }
}

/// Reads until the blank line that ends a request head; its offset, or `None` at EOF.
async fn read_until_head_end(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end);
        }
        let mut chunk = [0; 4096];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The webhook of a component posting to `url`, without retries: a call that needs a new
/// connection must get it on its one attempt.
fn webhook(url: &str) -> Webhook {
    let text = format!(
        "[[component]]\ndomain = \"bot.localhost\"\nsecret = \"s\"\npost_url = \"{url}\"\nretry = {{ max_attempts = 1 }}\n"
    );
    let config = Config::parse(&text, std::path::Path::new(".")).expect("valid config");
    let metrics = Metrics::default().component("bot.localhost");
    Webhook::new(&config.components[0], metrics).expect("webhook")
}

async fn post_ok(webhook: &Webhook) {
    let delivery = webhook
        .post(
            "msg_test",
            bytes::Bytes::from_static(b"{}"),
            tokio::time::Instant::now(),
            &mut Deadline::new(),
            None,
            false,
        )
        .await;
    assert_eq!(delivery.failure, None);
    assert_eq!(delivery.attempts, 1);
    assert!(
        matches!(delivery.outcome, WebhookOutcome::Response { status: 200, ref body, .. } if body == ANSWER.as_bytes()),
        "{:?}",
        delivery.outcome
    );
}

fn connections(seen: &Mutex<Vec<Seen>>) -> Vec<usize> {
    seen.lock()
        .expect("log")
        .iter()
        .map(|s| s.connection)
        .collect()
}

fn unused(webhook: &Webhook) -> usize {
    webhook.connections.unused.lock().expect("unused").len()
}

#[tokio::test]
async fn calls_one_after_another_share_one_connection() {
    let Peer { port, seen, .. } = peer(None).await;
    let webhook = webhook(&format!("http://127.0.0.1:{port}/hook?x=1"));
    for _ in 0..3 {
        post_ok(&webhook).await;
    }
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.connection, 0, "{seen:?}");
        assert!(
            request.head.starts_with("POST /hook?x=1 HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        assert_eq!(
            header(&request.head, "host"),
            Some(&*format!("127.0.0.1:{port}"))
        );
    }
}

#[tokio::test]
async fn calls_at_once_each_have_one_and_the_next_takes_the_one_used_last() {
    let Peer { port, seen, .. } = peer(None).await;
    let webhook = webhook(&format!("http://127.0.0.1:{port}/"));
    tokio::join!(post_ok(&webhook), post_ok(&webhook), post_ok(&webhook));
    assert_eq!(unused(&webhook), 3);
    for _ in 0..3 {
        post_ok(&webhook).await;
    }
    let connections = connections(&seen);
    let mut first = connections[..3].to_vec();
    first.sort();
    assert_eq!(first, [0, 1, 2]);
    // Not taken in turn: the two others stay unused (and the sweep closes them).
    assert!(
        connections[3..].iter().all(|&c| c == connections[3]),
        "{connections:?}"
    );
}

#[tokio::test]
async fn a_connection_closed_while_unused_is_replaced() {
    let mut peer = peer(Some(Duration::from_millis(20))).await;
    let webhook = webhook(&format!("http://127.0.0.1:{}/", peer.port));
    for call in 1..=3 {
        post_ok(&webhook).await;
        // The peer closes the connection while it is kept, unused: the next call finds
        // it closed only when it tries it.
        peer.closed(call).await;
        assert_eq!(unused(&webhook), 1, "kept, not yet known closed");
    }
    assert_eq!(connections(&peer.seen), [0, 1, 2]);
}

#[tokio::test]
async fn the_sweep_lets_go_of_closed_and_long_unused_connections() {
    let mut closing = peer(Some(Duration::from_millis(20))).await;
    let webhook = self::webhook(&format!("http://127.0.0.1:{}/", closing.port));
    tokio::spawn(webhook.sweep_unused());
    post_ok(&webhook).await;
    closing.closed(1).await;
    assert_eq!(unused(&webhook), 1);
    tokio::time::pause(); // the clock jumps ahead while all wait
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        unused(&webhook),
        0,
        "closed by the webhook, seen by the sweep"
    );

    tokio::time::resume();
    let open = peer(None).await;
    let webhook = self::webhook(&format!("http://127.0.0.1:{}/", open.port));
    tokio::spawn(webhook.sweep_unused());
    post_ok(&webhook).await;
    tokio::time::pause();
    tokio::time::sleep(IDLE_TIMEOUT - Duration::from_secs(11)).await;
    assert_eq!(unused(&webhook), 1, "still open, and not idle long enough");
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(unused(&webhook), 0, "unused for {IDLE_TIMEOUT:?}");
}
