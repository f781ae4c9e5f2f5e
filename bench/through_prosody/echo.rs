//! The ceiling of the through-Prosody benchmark: a minimal external component with no HTTP.
//! It connects to Prosody's component port like component-http (XEP-0114 header, SHA-1
//! handshake), then answers every message immediately with to and from swapped and the same
//! body, byte for byte: no DOM, no JSON, no HTTP, one write per batch of answers read
//! together. Messages of type `error` are not answered (no loops).

use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::common::peer_xml::{self, Scanner};
use crate::common::wire::{self, lossy};

/// Connects as `domain` and starts answering; the task returns how many it answered.
pub async fn start(
    port: u16,
    domain: &str,
    secret: &str,
    timeout: Duration,
) -> Result<JoinHandle<u64>, String> {
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
    Ok(tokio::spawn(serve(tcp, leftover)))
}

/// Answers until the server closes the stream (when the benchmark stops Prosody).
async fn serve(tcp: TcpStream, leftover: Vec<u8>) -> u64 {
    let (mut read, mut write) = tcp.into_split();
    let mut scanner = Scanner::new(leftover);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut answered = 0u64;
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
            answered += 1;
        }
        if !out.is_empty() && write.write_all(&out).await.is_err() {
            return answered;
        }
        match scanner.fill(&mut read).await {
            Ok(0) | Err(_) => return answered,
            Ok(_) => {}
        }
    }
}
