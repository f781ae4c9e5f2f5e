//! A real XMPP user for integration tests: drives `tests/support/xmpp_client.py` (slixmpp)
//! in line mode and hands its received stanzas back as `minidom::Element`s.
//!
//! Protocol (see the script's docstring): one raw XML stanza per stdin line; stdout has one
//! JSON event per line (`online`, `stanza`, `stream_error`, `disconnected`, ...).

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{timeout_at, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/xmpp_client.py");
const ONLINE_TIMEOUT: Duration = Duration::from_secs(20);

/// One logged-in XMPP client (a python3 child process, killed on drop).
pub struct XmppClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    full_jid: String,
    disconnected: bool,
    /// Stream errors received so far (`<error xmlns='http://etherx.jabber.org/streams'>`).
    pub stream_errors: Vec<Element>,
}

/// One line of the script's stdout.
enum Event {
    /// A stanza, and what slixmpp's plugins parsed of it in rich mode (else Null).
    Stanza(Element, serde_json::Value),
    /// The stream ended (a `disconnected` event, or the script exited).
    Closed,
    Other,
}

impl XmppClient {
    /// Logs in as `jid` (bare, or full to choose the resource) on 127.0.0.1:`c2s_port`,
    /// sends initial presence and returns once online. Panics with the script's stderr
    /// if that does not happen within 20 s.
    pub async fn connect(jid: &str, password: &str, c2s_port: u16) -> XmppClient {
        XmppClient::connect_with(jid, password, c2s_port, &[]).await
    }

    /// As [`XmppClient::connect`], in rich mode (`--rich`): slixmpp's plugins for rich
    /// messages parse what arrives ([`XmppClient::recv_parsed`]) and build what
    /// [`XmppClient::send_built`] sends.
    pub async fn connect_rich(jid: &str, password: &str, c2s_port: u16) -> XmppClient {
        XmppClient::connect_with(jid, password, c2s_port, &["--rich"]).await
    }

    async fn connect_with(jid: &str, password: &str, c2s_port: u16, extra: &[&str]) -> XmppClient {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(["--jid", jid, "--password", password, "--host", "127.0.0.1"])
            .args(["--port", &c2s_port.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3 tests/support/xmpp_client.py (is python3 installed?)");
        let stdin = child.stdin.take().expect("child stdin is piped");
        let stdout = child.stdout.take().expect("child stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("child stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        // Drain stderr continuously so the child never blocks on a full pipe.
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock().expect("stderr buffer lock").push_str(&text);
            }
        });
        let mut client = XmppClient {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            stderr,
            full_jid: jid.to_owned(), // the bound full JID once online
            disconnected: false,
            stream_errors: Vec::new(),
        };
        let deadline = Instant::now() + ONLINE_TIMEOUT;
        loop {
            let line = match timeout_at(deadline, client.stdout.next_line()).await {
                Err(_) => {
                    client
                        .fail(&format!("not online after {ONLINE_TIMEOUT:?}"))
                        .await
                }
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) | Ok(Err(_)) => client.fail("exited before going online").await,
            };
            let event: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => continue, // not ours (stray library output)
            };
            match event["event"].as_str() {
                Some("online") => {
                    let full = event["jid"].as_str().expect("online event carries a jid");
                    client.full_jid = full.to_owned();
                    return client;
                }
                Some(other) => {
                    client
                        .fail(&format!("got {other:?} instead of online"))
                        .await
                }
                None => continue,
            }
        }
    }

    /// The full JID the server bound (user@host/resource).
    pub fn full_jid(&self) -> &str {
        &self.full_jid
    }

    /// Whether the server closed the stream (or the client died).
    pub fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// What the script wrote to stderr so far (slixmpp warnings, tracebacks).
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer lock").clone()
    }

    /// Sends one raw stanza verbatim (no validation: invalid stanzas are allowed).
    /// Newlines are replaced by spaces, as the script reads one stanza per line.
    pub async fn send(&mut self, xml: &str) {
        let line = format!("{}\n", xml.replace(['\r', '\n'], " "));
        self.write_line(&line).await;
    }

    /// Rich mode: a message built by slixmpp's plugins from `fields` (the script's
    /// `{"send": …}` command: to, type, id, body, oob_url, reply, replace, reactions,
    /// retract, state, request_receipt).
    pub async fn send_built(&mut self, fields: serde_json::Value) {
        let line = format!("{}\n", serde_json::json!({ "send": fields }));
        self.write_line(&line).await;
    }

    async fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("send() after close()");
        let result = match stdin.write_all(line.as_bytes()).await {
            Ok(()) => stdin.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let stderr = self.stderr();
            panic!(
                "{}: cannot send (client gone?): {e}\nstderr:\n{stderr}",
                self.full_jid
            );
        }
    }

    /// The next stanza received, or None after `timeout`, or once disconnected.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Element> {
        self.recv_matching(timeout, |_| true).await
    }

    /// The next stanza for which `pred` holds, skipping others (e.g. presences); None
    /// after `timeout` or once disconnected.
    pub async fn recv_matching(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Option<Element> {
        let found = self.recv_parsed(timeout, pred).await;
        found.map(|(stanza, _)| stanza)
    }

    /// As [`XmppClient::recv_matching`], with what the plugins parsed of the stanza (rich
    /// mode; Null otherwise).
    pub async fn recv_parsed(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Option<(Element, serde_json::Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let event = timeout_at(deadline, self.next_event()).await.ok()?;
            match event {
                Event::Stanza(el, parsed) if pred(&el) => return Some((el, parsed)),
                Event::Stanza(el, _) => {
                    eprintln!("[{}] skipped: {}", self.full_jid, to_xml(&el))
                }
                Event::Closed => return None,
                Event::Other => {}
            }
        }
    }

    /// For "no reply" assertions: waits up to `d` and returns the first stanza matching
    /// `pred` if one arrives (the caller asserts it is None).
    pub async fn expect_nothing(
        &mut self,
        d: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Option<Element> {
        self.recv_matching(d, pred).await
    }

    /// Reads (and drops) stanzas until the stream is closed by the server; false if that
    /// does not happen within `timeout`.
    pub async fn wait_disconnected(&mut self, timeout: Duration) -> bool {
        let never = |_: &Element| false;
        let _ = self.recv_matching(timeout, never).await;
        self.disconnected
    }

    /// Closes stdin so that the client ends its stream cleanly, and waits for it to exit.
    pub async fn close(mut self) -> ExitStatus {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("{}: wait for the client: {e}", self.full_jid),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "{}: client did not exit 10 s after stdin EOF",
                    self.full_jid
                )
            }
        }
    }

    async fn next_event(&mut self) -> Event {
        if self.disconnected {
            return Event::Closed;
        }
        let line = match self.stdout.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => {
                self.disconnected = true;
                return Event::Closed;
            }
        };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            return Event::Other;
        };
        let xml = event["xml"].as_str().unwrap_or_default();
        match event["event"].as_str() {
            Some("stanza") => Event::Stanza(self.parse(xml), event["parsed"].clone()),
            Some("stream_error") => {
                let el = self.parse(xml);
                self.stream_errors.push(el);
                Event::Other
            }
            Some("disconnected") => {
                self.disconnected = true;
                Event::Closed
            }
            _ => Event::Other,
        }
    }

    fn parse(&self, xml: &str) -> Element {
        parse_stanza(xml)
            .unwrap_or_else(|e| panic!("{}: unparsable stanza {xml}: {e}", self.full_jid))
    }

    async fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill().await;
        // Give the stderr task a moment to collect the last output.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stderr = self.stderr();
        let hint = if stderr.contains("No module named 'slixmpp'") {
            "\nslixmpp is not installed: run scripts/test (it installs Prosody and slixmpp)"
        } else {
            ""
        };
        panic!(
            "XMPP client {}: {what}\nstderr:\n{stderr}{hint}",
            self.full_jid
        );
    }
}

/// Parses one stanza as printed by the script. It declares `xmlns="jabber:client"` on the
/// root; should a root come without one, it is parsed inside a wrapper that declares it.
pub fn parse_stanza(xml: &str) -> Result<Element, minidom::Error> {
    match xml.parse::<Element>() {
        Ok(el) => Ok(el),
        Err(first) => {
            let wrapped = format!("<wrapper xmlns='jabber:client'>{xml}</wrapper>");
            let wrapper: Element = wrapped.parse().map_err(|_| first)?;
            let child = wrapper.children().next().cloned();
            Ok(child.expect("wrapper around one stanza has a child"))
        }
    }
}

/// Serialises an element (for logs and assertion messages).
pub fn to_xml(el: &Element) -> String {
    String::from(el)
}
