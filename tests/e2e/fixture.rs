//! One test's world: a real XMPP server (Prosody or ejabberd), the webhook, component-http's
//! `run` in-process, and logged-in clients; plus the small assertions every test shares,
//! the daemons' warnings kept for the tests that check what was logged, and
//! `on_both_servers!`, which runs one test body against each server.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::Duration;

use component_http::{Config, RunError};
use minidom::Element;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::support::client::{to_xml, XmppClient};
use crate::support::xmpp_server::{Server, XmppServer};
use crate::webhook_server::{scripted_bot, Canned, WebhookServer};

pub const DOMAIN: &str = "bot.localhost";
pub const SECRET: &str = "component-secret";
pub const WAIT: Duration = Duration::from_secs(10);
const CLIENT_NS: &str = "jabber:client";

/// component-http running in this process.
pub struct Daemon {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RunError>>,
}

impl Daemon {
    pub fn start(config_text: &str) -> Daemon {
        // Warnings are kept for the tests that read them; RUST_LOG=component_http=debug
        // also shows the daemons' logs on stderr (a debugging aid).
        install_log_capture();
        let config =
            Config::parse(config_text, std::path::Path::new(".")).expect("valid test config");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(component_http::run(config, async move {
            let _ = stopped.await;
        }));
        Daemon {
            stop: Some(stop),
            task,
        }
    }

    /// Asks for a graceful shutdown and returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let joined = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        joined
            .expect("run returns after shutdown")
            .expect("run task does not panic")
    }

    /// Waits for `run` to end on its own (a fatal error).
    pub async fn finished(mut self, timeout: Duration) -> Result<(), RunError> {
        let joined = tokio::time::timeout(timeout, &mut self.task).await;
        joined
            .expect("run ends on its own")
            .expect("run task does not panic")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// After `async fn name(server: Server) { ... }`, `on_both_servers!(name);` adds the
/// tests `name::prosody` and `name::ejabberd`, which run that body against each server.
macro_rules! on_both_servers {
    ($name:ident) => {
        mod $name {
            use crate::support::xmpp_server::Server;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn prosody() {
                super::$name(Server::Prosody).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ejabberd() {
                super::$name(Server::Ejabberd).await;
            }
        }
    };
}

/// The configuration text for one component of `server`, with `extra` keys appended.
pub fn config_for(server: &XmppServer, post_url: &str, extra: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {}\n\n[[component]]\ndomain = \"{DOMAIN}\"\n\
         secret = \"{SECRET}\"\npost_url = \"{post_url}\"\n{extra}\n",
        server.component_port()
    )
}

pub struct World {
    pub server: XmppServer,
    /// The in-process webhook; None when the daemon posts to an external one (`start_for_url`).
    webhook: Option<WebhookServer>,
    pub daemon: Option<Daemon>,
}

impl World {
    /// `server` (users alice and bob), the scripted webhook bot and component-http.
    pub async fn start_on(server: Server, extra_config: &str) -> World {
        World::start_with_on(server, scripted_bot, extra_config).await
    }

    pub async fn start_with_on(
        server: Server,
        script: impl Fn(&Value) -> Canned + Send + Sync + 'static,
        extra_config: &str,
    ) -> World {
        let webhook = WebhookServer::start(script).await;
        let url = webhook.url.clone();
        World::launch(server, Some(webhook), &url, extra_config)
    }

    /// As [`World::start_on`], the daemon posting to `url(webhook's URL)` (e.g. with
    /// credentials in it).
    pub async fn start_posting_to_on(server: Server, url: impl Fn(&str) -> String) -> World {
        let webhook = WebhookServer::start(scripted_bot).await;
        let post_url = url(&webhook.url);
        World::launch(server, Some(webhook), &post_url, "")
    }

    /// `server` (users alice and bob) and component-http posting to `url`, a webhook this
    /// fixture does not run (e.g. one of the example bots).
    pub async fn start_for_url_on(server: Server, url: &str, extra_config: &str) -> World {
        World::launch(server, None, url, extra_config)
    }

    /// `server` (users alice and bob) and the scripted webhook bot, without component-http
    /// yet: for a test that sets the scene first (e.g. a room someone else created), then
    /// calls `start_daemon`. Its clients log in with `user`.
    pub async fn without_daemon_on(server: Server) -> World {
        let webhook = WebhookServer::start(scripted_bot).await;
        World {
            server: server.start(&[(DOMAIN, SECRET)], &[("alice", "pw"), ("bob", "pw")]),
            webhook: Some(webhook),
            daemon: None,
        }
    }

    /// Starts component-http for a world made by `without_daemon_on`.
    pub fn start_daemon(&mut self, extra_config: &str) {
        let url = self.webhook().url.clone();
        let config = config_for(&self.server, &url, extra_config);
        self.daemon = Some(Daemon::start(&config));
    }

    /// A logged-in client, without waiting for the component (which may not run yet).
    pub async fn user(&self, user: &str) -> XmppClient {
        XmppClient::connect(&format!("{user}@localhost"), "pw", self.server.c2s_port()).await
    }

    fn launch(
        server: Server,
        webhook: Option<WebhookServer>,
        post_url: &str,
        extra_config: &str,
    ) -> World {
        let server = server.start(&[(DOMAIN, SECRET)], &[("alice", "pw"), ("bob", "pw")]);
        let daemon = Daemon::start(&config_for(&server, post_url, extra_config));
        World {
            server,
            webhook,
            daemon: Some(daemon),
        }
    }

    /// The in-process webhook (panics for a world started with `start_for_url`).
    pub fn webhook(&self) -> &WebhookServer {
        self.webhook
            .as_ref()
            .expect("this World posts to an external webhook (start_for_url): no recorded requests")
    }

    /// A logged-in client, once the component answers through the server.
    pub async fn client(&self, user: &str) -> XmppClient {
        let mut client =
            XmppClient::connect(&format!("{user}@localhost"), "pw", self.server.c2s_port()).await;
        if !component_online(&mut client).await {
            let ended = match &self.daemon {
                Some(daemon) if daemon.task.is_finished() => "its run ended early",
                Some(_) => "its run is still going",
                None => "no daemon was started",
            };
            let warnings = logged_lines_with(&[]);
            let last = &warnings[warnings.len().saturating_sub(20)..];
            panic!(
                "component {DOMAIN} never came online ({ended}); the last warnings logged:\n{}",
                last.join("\n")
            );
        }
        client
    }
}

/// Pings the component through the server until it answers `result` (the server itself
/// answers with an error while the component is not connected).
pub async fn wait_component_online(client: &mut XmppClient) {
    if !component_online(client).await {
        panic!("component {DOMAIN} never came online");
    }
}

/// Whether the component answers pings through the server within about a minute.
async fn component_online(client: &mut XmppClient) -> bool {
    // A ping routed to a component connection that is just closing is lost by the server
    // (neither answered nor bounced): ask again after a second rather than wait it out.
    const PER_PING: Duration = Duration::from_secs(1);
    for attempt in 0..60 {
        let id = format!("online-{attempt}");
        client
            .send(&format!(
                "<iq type='get' to='{DOMAIN}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let answer = client
            .recv_matching(PER_PING, |s| {
                s.name() == "iq" && s.attr("id") == Some(id.as_str())
            })
            .await;
        if answer.as_ref().and_then(|a| a.attr("type")) == Some("result") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sends a chat message with `body` and returns the next message from the component.
pub async fn ask(client: &mut XmppClient, to: &str, body: &str) -> Element {
    client
        .send(&format!(
            "<message type='chat' to='{to}' id='q-{}'><body>{body}</body></message>",
            body.len()
        ))
        .await;
    next_message(client).await
}

/// The next message that is not a standalone typing notice (see `is_chat_state_notice`).
pub async fn next_message(client: &mut XmppClient) -> Element {
    let stanza = client
        .recv_matching(WAIT, |s| s.name() == "message" && !is_chat_state_notice(s))
        .await;
    stanza.unwrap_or_else(|| {
        panic!(
            "no message within {WAIT:?}; client stderr:\n{}",
            client.stderr()
        )
    })
}

/// A message carrying only a XEP-0085 chat state (`<composing/>`, `<active/>`): what the
/// component sends while a webhook is slow (`typing_after`), not an answer.
pub fn is_chat_state_notice(stanza: &Element) -> bool {
    let chat_states = "http://jabber.org/protocol/chatstates";
    stanza.name() == "message"
        && stanza.children().count() > 0
        && stanza.children().all(|child| child.has_ns(chat_states))
}

pub fn body(stanza: &Element) -> String {
    match stanza.get_child("body", CLIENT_NS) {
        Some(body) => body.text(),
        None => panic!("no <body> in {}", to_xml(stanza)),
    }
}

/// (type, condition, text) of an error stanza.
pub fn error_of(stanza: &Element) -> (String, String, Option<String>) {
    assert_eq!(
        stanza.attr("type"),
        Some("error"),
        "not an error: {}",
        to_xml(stanza)
    );
    let error = stanza
        .get_child("error", CLIENT_NS)
        .expect("an <error/> child");
    let stanzas_ns = "urn:ietf:params:xml:ns:xmpp-stanzas";
    let condition = error
        .children()
        .find(|c| c.has_ns(stanzas_ns) && c.name() != "text");
    let text = error.get_child("text", stanzas_ns).map(Element::text);
    (
        error.attr("type").unwrap_or_default().to_string(),
        condition.map(|c| c.name().to_string()).unwrap_or_default(),
        text,
    )
}

/// Kept lines stop growing past this many bytes (the tests' daemons warn far less).
const MAX_KEPT: usize = 16 * 1024 * 1024;

static KEPT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Keeper;

impl Write for Keeper {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut kept = KEPT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() + bytes.len() <= MAX_KEPT {
            kept.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process's log subscriber, once: warnings of component-http kept in
/// memory (every daemon of the test binary logs there: a test looks for lines naming
/// addresses only it uses), and everything `RUST_LOG` asks for on stderr.
pub fn install_log_capture() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let kept = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| Keeper)
            .with_filter(EnvFilter::new("component_http=warn"));
        let stderr = std::env::var("RUST_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::new(filter))
        });
        tracing_subscriber::registry()
            .with(kept)
            .with(stderr)
            .try_init()
            .expect("no other log subscriber is installed in the e2e binary");
    });
}

/// The kept lines that contain every one of `needles`.
pub fn logged_lines_with(needles: &[&str]) -> Vec<String> {
    let kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&kept)
        .lines()
        .filter(|line| needles.iter().all(|needle| line.contains(needle)))
        .map(str::to_string)
        .collect()
}
