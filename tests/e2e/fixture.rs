//! One test's world: a real Prosody, the webhook, component-http's `run` in-process, and
//! logged-in clients; plus the small assertions every test shares.

use std::time::Duration;

use component_http::{Config, RunError};
use minidom::Element;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::client::{to_xml, XmppClient};
use crate::support::prosody::Prosody;
use crate::webhook::{scripted_bot, Canned, WebhookServer};

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

/// The configuration text for one component of `prosody`, with `extra` keys appended.
pub fn config_for(prosody: &Prosody, post_url: &str, extra: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {}\n\n[[component]]\ndomain = \"{DOMAIN}\"\n\
         secret = \"{SECRET}\"\npost_url = \"{post_url}\"\n{extra}\n",
        prosody.component_port
    )
}

pub struct World {
    pub prosody: Prosody,
    /// The in-process webhook; None when the daemon posts to an external one (`start_for_url`).
    webhook: Option<WebhookServer>,
    pub daemon: Option<Daemon>,
}

impl World {
    /// Prosody (users alice and bob), the scripted webhook bot and component-http.
    pub async fn start(extra_config: &str) -> World {
        World::start_with(scripted_bot, extra_config).await
    }

    pub async fn start_with(
        script: impl Fn(&Value) -> Canned + Send + Sync + 'static,
        extra_config: &str,
    ) -> World {
        let webhook = WebhookServer::start(script).await;
        let url = webhook.url.clone();
        World::launch(Some(webhook), &url, extra_config)
    }

    /// Prosody (users alice and bob) and component-http posting to `url`, a webhook this
    /// fixture does not run (e.g. one of the example bots).
    pub async fn start_for_url(url: &str, extra_config: &str) -> World {
        World::launch(None, url, extra_config)
    }

    fn launch(webhook: Option<WebhookServer>, post_url: &str, extra_config: &str) -> World {
        let prosody = Prosody::start(&[(DOMAIN, SECRET)], &[("alice", "pw"), ("bob", "pw")]);
        let daemon = Daemon::start(&config_for(&prosody, post_url, extra_config));
        World {
            prosody,
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
            XmppClient::connect(&format!("{user}@localhost"), "pw", self.prosody.c2s_port).await;
        wait_component_online(&mut client).await;
        client
    }
}

/// Pings the component through Prosody until it answers `result` (Prosody itself answers
/// with an error while the component is not connected).
pub async fn wait_component_online(client: &mut XmppClient) {
    for attempt in 0..100 {
        let id = format!("online-{attempt}");
        client
            .send(&format!(
                "<iq type='get' to='{DOMAIN}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let answer = client
            .recv_matching(WAIT, |s| {
                s.name() == "iq" && s.attr("id") == Some(id.as_str())
            })
            .await;
        if answer.as_ref().and_then(|a| a.attr("type")) == Some("result") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("component {DOMAIN} never came online");
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

pub async fn next_message(client: &mut XmppClient) -> Element {
    let stanza = client.recv_matching(WAIT, |s| s.name() == "message").await;
    stanza.unwrap_or_else(|| {
        panic!(
            "no message within {WAIT:?}; client stderr:\n{}",
            client.stderr()
        )
    })
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
