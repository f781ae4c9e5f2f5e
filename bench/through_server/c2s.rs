//! The real c2s clients of the through-server benchmarks, and the load they carry.
//!
//! A raw client (plaintext stream, SASL PLAIN, resource binding, initial presence, then
//! bytes) rather than tokio-xmpp's: after login it must push and read thousands of stanzas
//! a second without building a DOM for each, so that it costs next to nothing beside
//! the server and the daemon on a 2-core machine; and the benchmark needs exact control of how
//! many stanzas are outstanding. It is still a real client: the server authenticates it, binds
//! its resource and routes every stanza through its c2s code.
//!
//! Matching answers: client i keeps `window` slots; slot k sends to `s{k}@DOMAIN`, and the
//! answer comes back from `s{k}@DOMAIN` (both component-http and the echo component swap
//! to/from), so slot `i × window + k` is closed by it.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::common::peer_xml;
use crate::common::wire::{self, lossy, SentTimes, SlotKey};
use crate::common::{closed_loop, Done, RoundResult};

const HOST: &str = "localhost";
const RESOURCE: &str = "r";

fn stream_header() -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{HOST}' version='1.0'>"
    )
}

/// Logs `user` in on 127.0.0.1:`port`; returns the stream and bytes read past the login.
pub async fn login(
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<(TcpStream, Vec<u8>), String> {
    let fail = |step: &str, e: std::io::Error| format!("{user}: {step}: {e}");
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| fail("connect", e))?;
    tcp.set_nodelay(true).map_err(|e| fail("nodelay", e))?;
    let mut buf = Vec::new();
    tcp.write_all(stream_header().as_bytes())
        .await
        .map_err(|e| fail("header", e))?;
    wire::read_until(&mut tcp, &mut buf, b"</stream:features>", 0, timeout)
        .await
        .map_err(|e| fail("features", e))?;
    let credentials = peer_xml::base64(format!("\0{user}\0{password}").as_bytes());
    let auth = format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{credentials}</auth>"
    );
    tcp.write_all(auth.as_bytes())
        .await
        .map_err(|e| fail("auth", e))?;
    buf.clear();
    wire::read_until(&mut tcp, &mut buf, b"<success", 0, timeout)
        .await
        .map_err(|e| fail("SASL success", e))?;
    buf.clear();
    tcp.write_all(stream_header().as_bytes())
        .await
        .map_err(|e| fail("restart", e))?;
    wire::read_until(&mut tcp, &mut buf, b"</stream:features>", 0, timeout)
        .await
        .map_err(|e| fail("features after SASL", e))?;
    buf.clear();
    let bind = format!(
        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>{RESOURCE}</resource></bind></iq>"
    );
    tcp.write_all(bind.as_bytes())
        .await
        .map_err(|e| fail("bind", e))?;
    let end = wire::read_until(&mut tcp, &mut buf, b"</iq>", 0, timeout)
        .await
        .map_err(|e| fail("bind result", e))?;
    let result = &buf[..end];
    let jid = format!("{user}@{HOST}/{RESOURCE}");
    if peer_xml::find(result, b"result", 0).is_none()
        || peer_xml::find(result, jid.as_bytes(), 0).is_none()
    {
        return Err(format!("{user}: bind failed: {}", lossy(result)));
    }
    tcp.write_all(b"<presence/>")
        .await
        .map_err(|e| fail("presence", e))?;
    let leftover = buf[end + b"</iq>".len()..].to_vec();
    Ok((tcp, leftover))
}

/// All clients' load: a writer and a reader per client, one answer channel for all.
pub struct C2sLoad {
    writers: Vec<mpsc::UnboundedSender<u32>>,
    done: mpsc::UnboundedReceiver<Done>,
    window: u32,
    /// Index into `domains` of the component the next stanzas go to.
    target: Arc<AtomicUsize>,
    domains: Vec<&'static str>,
}

impl C2sLoad {
    /// `clients` are logged-in streams (with their leftover bytes); each gets `window` slots;
    /// every message has a body of `body_size` bytes.
    pub fn new(
        clients: Vec<(TcpStream, Vec<u8>)>,
        window: u32,
        body_size: usize,
        domains: Vec<&'static str>,
    ) -> C2sLoad {
        let slots = clients.len() * window as usize;
        let times = SentTimes::new(slots);
        let target = Arc::new(AtomicUsize::new(0));
        let body: Arc<str> = "x".repeat(body_size).into();
        let (report, done) = mpsc::unbounded_channel();
        let mut writers = Vec::new();
        for (index, (tcp, leftover)) in clients.into_iter().enumerate() {
            let base = index as u32 * window;
            let (read, write) = tcp.into_split();
            let (target, domains, body) = (Arc::clone(&target), domains.clone(), Arc::clone(&body));
            let mut seq = 0u64;
            let format = move |slot: u32, buf: &mut Vec<u8>| {
                seq += 1;
                let domain = domains[target.load(Ordering::Relaxed)];
                let k = slot - base;
                write!(
                    buf,
                    "<message to='s{k}@{domain}' id='m{seq}' type='chat'><body>{body}</body></message>"
                )
                .expect("write into a Vec");
            };
            writers.push(wire::spawn_writer(write, Arc::clone(&times), format));
            let key = SlotKey {
                attr: "from",
                prefix: "s",
                base,
                slots: window,
            };
            wire::spawn_reader(read, leftover, Arc::clone(&times), key, report.clone());
        }
        C2sLoad {
            writers,
            done,
            window,
            target,
            domains,
        }
    }

    /// Sends the next rounds' stanzas to `domain` (one of those given to `new`).
    pub fn aim_at(&self, domain: &str) {
        let index = self.domains.iter().position(|d| *d == domain);
        self.target
            .store(index.expect("a known domain"), Ordering::Relaxed);
    }

    /// One closed-loop round over the first `slots` slots (`window` per client).
    pub async fn round(&mut self, slots: u32, duration: Duration, drain: Duration) -> RoundResult {
        let (writers, window) = (&self.writers, self.window);
        let mut send = |slot: u32| {
            let _ = writers[(slot / window) as usize].send(slot);
        };
        closed_loop(slots, duration, drain, &mut self.done, &mut send).await
    }
}
