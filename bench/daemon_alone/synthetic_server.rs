//! The synthetic XEP-0114 server of the daemon-alone benchmark: it accepts component-http's
//! connection, completes the stream header and handshake (any digest is accepted), then
//! pushes message stanzas with a fixed number outstanding and reads the replies.
//!
//! Matching a reply to its stanza: the daemon's reply carries no id of the original, but it
//! is addressed to the original sender. So each outstanding slot `k` has its own sender,
//! `user{k}@localhost/r`, and at most one stanza in flight; a reply `to='user{k}@…'` closes
//! slot k, whose latency is "stanza written → reply read", and slot k is sent again. The
//! HTTP sink can then answer every request with one fixed JSON reply, as asked.

use std::io::Write;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::common::wire::{self, lossy, SentTimes, SlotKey};
use crate::common::{closed_loop, Done, RoundResult};

/// The component domain the daemon connects as.
pub const DOMAIN: &str = "bench.localhost";
const STREAM_ID: &str = "bench-stream-1";

/// Accepts one component connection and completes its handshake; returns the stream and any
/// bytes already read past the handshake.
pub async fn accept(
    listener: &TcpListener,
    timeout: Duration,
) -> Result<(TcpStream, Vec<u8>), String> {
    let (mut tcp, _) = tokio::time::timeout(timeout, listener.accept())
        .await
        .map_err(|_| format!("component-http did not connect within {timeout:?}"))?
        .map_err(|e| format!("accept failed: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let header = wire::read_until(&mut tcp, &mut buf, b"<stream:stream", 0, timeout)
        .await
        .map_err(|e| format!("no stream header: {e}"))?;
    let header_end = wire::read_until(&mut tcp, &mut buf, b">", header, timeout)
        .await
        .map_err(|e| format!("stream header not closed: {e}"))?;
    let header_text = lossy(&buf[header..=header_end]);
    if !header_text.contains("jabber:component:accept") || !header_text.contains(DOMAIN) {
        return Err(format!("unexpected stream header: {header_text}"));
    }
    let answer = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' from='{DOMAIN}' id='{STREAM_ID}'>"
    );
    tcp.write_all(answer.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let close = b"</handshake>";
    let handshake = wire::read_until(&mut tcp, &mut buf, close, header_end, timeout)
        .await
        .map_err(|e| format!("no handshake: {e}"))?;
    tcp.write_all(b"<handshake/>")
        .await
        .map_err(|e| e.to_string())?;
    let leftover = buf[handshake + close.len()..].to_vec();
    Ok((tcp, leftover))
}

/// The load on one accepted component connection: a writer and a reader task, and the
/// channel of answers they report.
pub struct ComponentLoad {
    issue: mpsc::UnboundedSender<u32>,
    done: mpsc::UnboundedReceiver<Done>,
}

impl ComponentLoad {
    /// Prepares `slots` senders; every stanza has a body of `body_size` bytes.
    pub fn new(tcp: TcpStream, leftover: Vec<u8>, slots: u32, body_size: usize) -> ComponentLoad {
        let (read, write) = tcp.into_split();
        let times = SentTimes::new(slots as usize);
        let body = "x".repeat(body_size);
        let mut seq = 0u64;
        let issue = wire::spawn_writer(write, times.clone(), move |slot, buf| {
            seq += 1;
            write!(
                buf,
                "<message from='user{slot}@localhost/r' to='echo@{DOMAIN}' id='{seq}' \
                 type='chat'><body>{body}</body></message>"
            )
            .expect("write into a Vec");
        });
        let (report, done) = mpsc::unbounded_channel();
        let key = SlotKey {
            attr: "to",
            prefix: "user",
            base: 0,
            slots,
        };
        wire::spawn_reader(read, leftover, times, key, report);
        ComponentLoad { issue, done }
    }

    /// One closed-loop round with `slots` stanzas outstanding (at most those of `new`).
    pub async fn round(&mut self, slots: u32, duration: Duration, drain: Duration) -> RoundResult {
        let issue = &self.issue;
        let mut send = |slot: u32| {
            let _ = issue.send(slot);
        };
        closed_loop(slots, duration, drain, &mut self.done, &mut send).await
    }
}
