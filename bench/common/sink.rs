//! The webhook both benchmarks POST to: a hyper HTTP/1.1 server that reads each request body
//! whole and answers `200 application/json` with one fixed JSON reply, `{"body": "yyy…"}`,
//! its body as long as the stanza bodies of the run. It runs as a child process (this same
//! benchmark binary, started with `--sink-child`) so that 10,000 client connections and
//! 10,000 server connections never share one process's open-file limit. `GET /` returns
//! `requests bytes` so far, to check that the daemon and the bare client POST the same JSON.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The argument that turns a benchmark binary into the sink: `--sink-child REPLY_BODY_SIZE`.
pub const CHILD_FLAG: &str = "--sink-child";
/// The sink exits when its stdin closes (the benchmark ended) or after this long.
const MAX_LIFETIME: Duration = Duration::from_secs(4 * 3600);

/// The fixed reply: `{"body": "<body_size × y>"}`.
pub fn reply_json(body_size: usize) -> Bytes {
    Bytes::from(serde_json::json!({ "body": "y".repeat(body_size) }).to_string())
}

/// If this process was started as the sink, serves until stdin closes and returns true.
pub fn run_if_child() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_FLAG) {
        return false;
    }
    let size = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .expect("--sink-child needs the reply body size");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the sink's runtime");
    runtime.block_on(serve(reply_json(size)));
    runtime.shutdown_timeout(Duration::ZERO);
    true
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    bytes: AtomicU64,
}

async fn serve(reply: Bytes) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the sink on 127.0.0.1");
    let port = listener.local_addr().expect("sink address").port();
    println!("{port}");
    let stats = Arc::new(Stats::default());
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    let accept = async {
        // Bounded by stdin closing and MAX_LIFETIME (the select below).
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(connection(tcp, reply.clone(), Arc::clone(&stats)));
                }
                Err(error) => {
                    eprintln!("sink: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = stdin_closed => {}
        _ = tokio::time::sleep(MAX_LIFETIME) => {}
    }
}

async fn connection(tcp: TcpStream, reply: Bytes, stats: Arc<Stats>) {
    let service = hyper::service::service_fn(move |request| {
        answer(request, reply.clone(), Arc::clone(&stats))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

async fn answer(
    request: Request<Incoming>,
    reply: Bytes,
    stats: Arc<Stats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET {
        let text = format!(
            "{} {}",
            stats.requests.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed)
        );
        return Ok(Response::new(Full::new(Bytes::from(text))));
    }
    let length = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().len() as u64,
        Err(_) => 0,
    };
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats.bytes.fetch_add(length, Ordering::Relaxed);
    let mut response = Response::new(Full::new(reply));
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("a header value"),
    );
    Ok(response)
}

/// The sink child process, seen from the benchmark.
pub struct SinkProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
}

impl SinkProcess {
    /// Starts this same binary as the sink, answering bodies of `reply_body_size` bytes.
    pub fn start(reply_body_size: usize) -> SinkProcess {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let mut child = Command::new(exe)
            .args([CHILD_FLAG, &reply_body_size.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the sink child process");
        let stdout = child.stdout.take().expect("the sink's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the sink's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the sink printed {line:?} instead of its port"));
        let stdin = child.stdin.take();
        SinkProcess { child, stdin, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (requests, request body bytes) the sink has received so far.
    pub async fn stats(&self) -> (u64, u64) {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to the sink");
        let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        tcp.write_all(request.as_bytes())
            .await
            .expect("ask the sink");
        let mut text = String::new();
        tcp.read_to_string(&mut text)
            .await
            .expect("the sink's stats");
        let body = text.rsplit("\r\n\r\n").next().unwrap_or_default();
        let mut numbers = body.split_whitespace().map(|n| n.parse().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the sink exits when its stdin closes
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
