//! The two halves of one load connection, each a task of its own so that neither side can
//! stall the other: a writer that turns slot numbers into stanzas (all that are ready in one
//! write) and a reader that turns each `<message>` answer back into its slot and latency.
//! Which slot an answer belongs to is read from a JID in it: every slot has its own address.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::peer_xml::{self, Scanner};
use super::Done;

/// Bytes gathered before one write, at most (more slots wait for the next write).
const MAX_WRITE: usize = 256 * 1024;

/// When each slot's current stanza went out, in ns since `origin`.
pub struct SentTimes {
    origin: Instant,
    at: Vec<AtomicU64>,
}

impl SentTimes {
    pub fn new(slots: usize) -> Arc<SentTimes> {
        Arc::new(SentTimes {
            origin: Instant::now(),
            at: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn mark(&self, slot: u32) {
        self.at[slot as usize].store(self.now(), Ordering::Release);
    }

    fn latency_us(&self, slot: u32) -> u32 {
        let sent = self.at[slot as usize].load(Ordering::Acquire);
        (self.now().saturating_sub(sent) / 1000) as u32
    }
}

/// Starts the writer; each slot number sent to the returned channel becomes one stanza,
/// written by `format` (which appends it to the buffer).
pub fn spawn_writer<F>(
    mut write: OwnedWriteHalf,
    times: Arc<SentTimes>,
    mut format: F,
) -> mpsc::UnboundedSender<u32>
where
    F: FnMut(u32, &mut Vec<u8>) + Send + 'static,
{
    let (sender, mut slots) = mpsc::unbounded_channel::<u32>();
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        // Ends when every sender is dropped, i.e. when the benchmark is done with this link.
        while let Some(first) = slots.recv().await {
            buf.clear();
            let mut next = Some(first);
            while let Some(slot) = next {
                format(slot, &mut buf);
                times.mark(slot);
                next = if buf.len() < MAX_WRITE {
                    slots.try_recv().ok()
                } else {
                    None
                };
            }
            if let Err(error) = write.write_all(&buf).await {
                eprintln!("load writer: connection lost: {error}");
                return;
            }
        }
    });
    sender
}

/// How a reader finds the slot of an answer: the JID in attribute `attr` is
/// `{prefix}{k}@…`, and the slot is `base + k`.
pub struct SlotKey {
    pub attr: &'static str,
    pub prefix: &'static str,
    pub base: u32,
    pub slots: u32,
}

/// Starts the reader: every `<message>` read reports a [`Done`]; other elements are skipped.
pub fn spawn_reader(
    mut read: OwnedReadHalf,
    leftover: Vec<u8>,
    times: Arc<SentTimes>,
    key: SlotKey,
    done: mpsc::UnboundedSender<Done>,
) {
    tokio::spawn(async move {
        let mut scanner = Scanner::new(leftover);
        let mut strays = 0u32;
        // Ends at end of stream or on an error: the connection is closed when the bench ends.
        loop {
            while let Some(range) = scanner.next_message() {
                let tag = peer_xml::start_tag(&scanner.bytes()[range]);
                let slot = peer_xml::attr(tag, key.attr)
                    .and_then(|jid| peer_xml::slot_of(jid, key.prefix))
                    .filter(|k| *k < key.slots);
                let Some(k) = slot else {
                    strays += 1;
                    if strays <= 3 {
                        eprintln!("load reader: an answer for no slot: {}", lossy(tag));
                    }
                    continue;
                };
                let slot = key.base + k;
                let error = peer_xml::attr(tag, "type") == Some(b"error".as_slice());
                let latency_us = times.latency_us(slot);
                if done
                    .send(Done {
                        slot,
                        latency_us,
                        error,
                    })
                    .is_err()
                {
                    return;
                }
            }
            match scanner.fill(&mut read).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) => {
                    eprintln!("load reader: connection lost: {error}");
                    return;
                }
            }
        }
    });
}

/// Reads into `buf` until it contains `needle` (after `from`), within `timeout`.
pub async fn read_until<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
    needle: &[u8],
    from: usize,
    timeout: Duration,
) -> io::Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(at) = peer_xml::find(buf, needle, from) {
            return Ok(at);
        }
        buf.reserve(16 * 1024);
        let read = tokio::time::timeout_at(deadline, read.read_buf(buf)).await;
        match read {
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    waited_for(needle, buf),
                ))
            }
            Ok(Ok(0)) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    waited_for(needle, buf),
                ))
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error),
        }
    }
}

fn waited_for(needle: &[u8], buf: &[u8]) -> String {
    let tail = &buf[buf.len().saturating_sub(300)..];
    format!(
        "waiting for {:?}; last bytes read: {}",
        lossy(needle),
        lossy(tail)
    )
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
