//! The ceiling of the through-server benchmarks: a minimal external component with no HTTP.
//! It connects to the server's component port like component-http (XEP-0114 header, SHA-1
//! handshake), then answers every message immediately with to and from swapped and the same
//! body, byte for byte: no DOM, no JSON, no HTTP, one write per batch of answers read
//! together. Messages of type `error` are not answered (no loops). It runs as a child
//! process (this benchmark binary, started with `--echo-child`) on one thread, so that its
//! CPU time is read from /proc beside component-http's. The same process handle also runs
//! `echo.py`, the echo component a user would write in Python.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::peer_xml::{self, Scanner};
use crate::common::wire::{self, lossy};

/// The argument that turns the benchmark binary into the echo component:
/// `--echo-child PORT DOMAIN SECRET`.
const CHILD_FLAG: &str = "--echo-child";

/// Which echo component.
#[derive(Clone, Copy)]
pub enum Echo {
    /// This file's: Rust, one thread, no parser.
    Rust,
    /// `echo.py`: Python's asyncio and regular expressions.
    Python,
}

/// The echo component's process; it stops when this is dropped.
pub struct EchoProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl EchoProcess {
    /// Starts the echo component and returns once it is connected to the server as
    /// `domain`, or its error.
    pub fn start(echo: Echo, port: u16, domain: &str, secret: &str) -> Result<EchoProcess, String> {
        let mut command = match echo {
            Echo::Rust => {
                let exe =
                    std::env::current_exe().map_err(|e| format!("the benchmark's path: {e}"))?;
                let mut command = Command::new(exe);
                command.arg(CHILD_FLAG);
                command
            }
            Echo::Python => {
                let mut command = Command::new("python3");
                command.arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/bench/through_server/echo.py"
                ));
                command
            }
        };
        let mut child = command
            .args([&port.to_string(), domain, secret])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the echo component: {e}"))?;
        let stdout = child.stdout.take().ok_or("the echo component's stdout")?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let echo = EchoProcess { child, stdin };
        match line.trim() {
            "connected" => Ok(echo),
            other => Err(format!("echo component {domain}: {other}")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// If this process was started as the echo component, connects, prints `connected` (or the
/// error), answers until the stream or stdin closes, and returns true.
pub fn run_if_child() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_FLAG) {
        return false;
    }
    let (Some(port), Some(domain), Some(secret)) = (
        args.get(2).and_then(|p| p.parse().ok()),
        args.get(3),
        args.get(4),
    ) else {
        println!("{CHILD_FLAG} needs PORT DOMAIN SECRET");
        return true;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start the echo component's runtime");
    runtime.block_on(async {
        match connect(port, domain, secret, Duration::from_secs(20)).await {
            Ok((tcp, leftover)) => {
                println!("connected");
                let stdin_closed = tokio::task::spawn_blocking(|| {
                    let _ = std::io::stdin().read_to_end(&mut Vec::new());
                });
                tokio::select! {
                    _ = serve(tcp, leftover) => {}
                    _ = stdin_closed => {}
                }
            }
            Err(error) => println!("{error}"),
        }
    });
    runtime.shutdown_timeout(Duration::ZERO);
    true
}

/// Connects as `domain`; returns the stream and what was read past the handshake.
async fn connect(
    port: u16,
    domain: &str,
    secret: &str,
    timeout: Duration,
) -> Result<(TcpStream, Vec<u8>), String> {
    let fail = |step: &str, e: std::io::Error| format!("echo component {domain}: {step}: {e}");
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| fail("connect", e))?;
    tcp.set_nodelay(true).map_err(|e| fail("nodelay", e))?;
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
    );
    tcp.write_all(header.as_bytes())
        .await
        .map_err(|e| fail("header", e))?;
    let mut buf = Vec::new();
    let open = wire::read_until(&mut tcp, &mut buf, b"<stream:stream", 0, timeout)
        .await
        .map_err(|e| fail("stream header", e))?;
    let close = wire::read_until(&mut tcp, &mut buf, b">", open, timeout)
        .await
        .map_err(|e| fail("stream header", e))?;
    let id = peer_xml::attr(&buf[open..=close], "id")
        .map(lossy)
        .ok_or_else(|| format!("echo component {domain}: no stream id: {}", lossy(&buf)))?;
    let digest: String = Sha1::digest(format!("{id}{secret}"))
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let handshake = format!("<handshake>{digest}</handshake>");
    tcp.write_all(handshake.as_bytes())
        .await
        .map_err(|e| fail("handshake", e))?;
    // Both `<handshake/>` and a refusal (`<stream:error><conflict …/>…`) contain "/>".
    let end = wire::read_until(&mut tcp, &mut buf, b"/>", close, timeout)
        .await
        .map_err(|e| fail("handshake answer", e))?
        + 1;
    if peer_xml::find(&buf[close..end], b"<handshake", 0).is_none() {
        return Err(format!(
            "echo component {domain}: handshake refused: {}",
            lossy(&buf[close + 1..])
        ));
    }
    let leftover = buf[end + 1..].to_vec();
    Ok((tcp, leftover))
}

/// Answers until the server closes the stream.
async fn serve(tcp: TcpStream, leftover: Vec<u8>) {
    let (mut read, mut write) = tcp.into_split();
    let mut scanner = Scanner::new(leftover);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        out.clear();
        while let Some(range) = scanner.next_message() {
            let stanza = &scanner.bytes()[range];
            let tag = peer_xml::start_tag(stanza);
            if peer_xml::attr(tag, "type") == Some(b"error".as_slice()) {
                continue;
            }
            let (Some(from), Some(to)) = (peer_xml::attr(tag, "from"), peer_xml::attr(tag, "to"))
            else {
                continue;
            };
            out.extend_from_slice(b"<message from='");
            out.extend_from_slice(to);
            out.extend_from_slice(b"' to='");
            out.extend_from_slice(from);
            out.extend_from_slice(b"' type='chat'><body>");
            out.extend_from_slice(peer_xml::body(stanza).unwrap_or_default());
            out.extend_from_slice(b"</body></message>");
        }
        if !out.is_empty() && write.write_all(&out).await.is_err() {
            return;
        }
        match scanner.fill(&mut read).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
