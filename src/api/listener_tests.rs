//! The API's socket against clients that misbehave on purpose: a head sent halfway, nothing
//! sent at all, a body that never ends, answers never read, more connections than allowed;
//! and a graceful shutdown that still answers the request in progress.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{serve_on, ConnectionLimits};
use crate::api::tests::{app_with, TOKEN};
use crate::component::Component;

/// A served API; `stop` starts its graceful shutdown, `served` is `serve_on`'s task.
struct Served {
    address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<std::io::Result<()>>,
    _components: Vec<Component>,
}

async fn serve(limits: ConnectionLimits, api_keys: &str) -> Served {
    let (router, components) = app_with(&["bot.example.com"], true, api_keys);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve_on(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    Served {
        address,
        stop: Some(stop),
        served,
        _components: components,
    }
}

fn limits(max_connections: usize, header_timeout: f64, write_timeout: f64) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        header_timeout: Duration::from_secs_f64(header_timeout),
        write_timeout: Duration::from_secs_f64(write_timeout),
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n";

/// Reads until the server closes the connection (or resets it); returns what was read and
/// when it ended.
async fn read_to_close(stream: &mut TcpStream) -> (String, Instant) {
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut text))
        .await
        .expect("the server closes the connection");
    (String::from_utf8_lossy(&text).into_owned(), Instant::now())
}

/// Sends one request and reads the status line and headers of its answer.
async fn ask(address: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.expect("answer");
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test]
async fn a_half_sent_head_and_a_silent_connection_are_closed_after_header_timeout() {
    let api = serve(limits(8, 0.5, 5.0), "").await;
    let started = Instant::now();
    let mut half = TcpStream::connect(api.address).await.expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\n")
        .await
        .expect("send");
    let mut silent = TcpStream::connect(api.address).await.expect("connect");
    for stream in [&mut half, &mut silent] {
        let (text, closed) = read_to_close(stream).await;
        assert_eq!(text, "", "closed without an answer");
        let after = closed - started;
        assert!(
            after >= Duration::from_millis(450) && after < Duration::from_secs(3),
            "closed after {after:?}"
        );
    }
    // An idle keep-alive connection, after a complete request, counts as well.
    let mut idle = TcpStream::connect(api.address).await.expect("connect");
    idle.write_all(HEALTHZ).await.expect("send");
    let answered = Instant::now();
    let (text, closed) = read_to_close(&mut idle).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed - answered >= Duration::from_millis(450));
}

#[tokio::test]
async fn past_max_connections_a_client_waits_for_a_free_slot() {
    let api = serve(limits(2, 30.0, 5.0), "").await;
    let first = TcpStream::connect(api.address).await.expect("connect");
    let _second = TcpStream::connect(api.address).await.expect("connect");
    let mut third = TcpStream::connect(api.address).await.expect("connect");
    third.write_all(HEALTHZ).await.expect("send");
    let mut answer = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut answer)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open"
    );
    drop(first);
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut answer))
        .await
        .expect("served once a slot is free")
        .expect("answer");
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_within_body_timeout_is_408() {
    let api = serve(limits(8, 5.0, 5.0), "body_timeout = 0.3").await;
    let head = format!(
        "POST /v1/send HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"to\": "
    );
    let mut stream = TcpStream::connect(api.address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send");
    let sent = Instant::now();
    let (text, closed) = read_to_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(
        closed - sent >= Duration::from_millis(250),
        "{:?}",
        closed - sent
    );
}

#[tokio::test]
async fn answers_the_client_never_reads_close_the_connection_after_write_timeout() {
    let api = serve(limits(1, 5.0, 0.5), "").await;
    let stream = TcpStream::connect(api.address).await.expect("connect");
    let (_reader, mut writer) = stream.into_split();
    let metrics =
        format!("GET /metrics HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let requests = metrics.repeat(64);
    // Requests pipelined without ever reading an answer: the answers fill the socket's
    // buffers, then the server's writes stall.
    let flood = tokio::spawn(async move {
        loop {
            if writer.write_all(requests.as_bytes()).await.is_err() {
                return Instant::now();
            }
        }
    });
    let cut_off = tokio::time::timeout(Duration::from_secs(20), flood)
        .await
        .expect("the server closes the connection")
        .expect("flood task");
    // The one slot is free again.
    let answer = ask(api.address, HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(cut_off.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_answers_the_request_in_progress_and_closes_idle_connections() {
    let mut api = serve(limits(8, 30.0, 5.0), "").await;
    let mut idle = TcpStream::connect(api.address).await.expect("connect");
    idle.write_all(HEALTHZ).await.expect("send");
    let mut answer = [0u8; 1024];
    let read = idle.read(&mut answer).await.expect("answer");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let body = r#"{"to": "alice@example.com/phone", "kind": "iq", "timeout": 1}"#;
    let iq = format!(
        "POST /v1/send HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut waiting = TcpStream::connect(api.address).await.expect("connect");
    waiting.write_all(iq.as_bytes()).await.expect("send");
    let handle = api._components[0].handle();
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.pending_iqs() == 0 {
        assert!(Instant::now() < deadline, "the iq never waited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = api.stop.take().map(|stop| stop.send(()));
    let stopping = Instant::now();
    let (text, closed) = read_to_close(&mut idle).await;
    assert_eq!(text, "", "the idle connection is closed");
    assert!(closed - stopping < Duration::from_millis(500), "at once");
    let (text, _) = read_to_close(&mut waiting).await;
    assert!(
        text.starts_with("HTTP/1.1 504"),
        "answered, then closed: {text}"
    );
    let served = tokio::time::timeout(Duration::from_secs(5), api.served)
        .await
        .expect("serve_on returns once every connection has closed");
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}
