//! A second component-http instance for one domain on Prosody, which takes one connection
//! per domain: it stands by on `conflict` and takes over once the first is killed; the gap
//! is measured.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{connections_to, echo, is_answer, message, wait_connections, Instance};
use crate::fixture::{body, error_of, wait_component_online, DOMAIN, SECRET, WAIT};
use crate::support::client::{to_xml, XmppClient};
use crate::support::prosody::Prosody;
use crate::support::xmpp_server::XmppServer;
use crate::webhook_server::WebhookServer;

/// Pings the domain until the component answers `result` (as `wait_component_online`,
/// at most 60 pings, each waited for 1 s, 0.1 s apart); returns each ping's fate and when
/// it was sent, in seconds after `since`.
async fn ping_until_answered(client: &mut XmppClient, since: Instant) -> Vec<String> {
    let mut fates = Vec::new();
    for attempt in 0..60 {
        let id = format!("after-kill-{attempt}");
        let sent = since.elapsed().as_secs_f64();
        client
            .send(&format!(
                "<iq type='get' to='{DOMAIN}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let answer = client
            .recv_matching(Duration::from_secs(1), |s| {
                s.name() == "iq" && s.attr("id") == Some(id.as_str())
            })
            .await;
        let fate = match &answer {
            None => "no answer within 1 s".to_string(),
            Some(iq) if iq.attr("type") == Some("result") => "result".to_string(),
            Some(iq) => match iq.get_child("error", "jabber:client") {
                Some(_) => {
                    let (kind, condition, text) = error_of(iq);
                    format!("{kind}/{condition} {}", text.unwrap_or_default())
                }
                None => to_xml(iq),
            },
        };
        fates.push(format!("t={sent:.2} {fate}"));
        if fate == "result" {
            return fates;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{DOMAIN} never answered again: {fates:?}");
}

/// Prosody only (ejabberd takes both connections): `b` stands by on `conflict`, retrying
/// every `reconnect_max_delay` (2 s, jittered down to 1–2 s); `a` is killed (its task
/// aborted: the socket closes, no stream footer). The gap runs from the kill to the first
/// ping to the domain answered again, by `b`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_standby_takes_over_after_a_kill() {
    let wall = Instant::now();
    let server = XmppServer::Prosody(Prosody::start(&[(DOMAIN, SECRET)], &[("alice", "pw")]));
    let webhook = WebhookServer::start(echo).await;
    let mut a = Instance::start(&server, &webhook.url, "a");
    let mut alice = XmppClient::connect("alice@localhost", "pw", server.c2s_port()).await;
    wait_component_online(&mut alice).await;
    let b = Instance::start(&server, &webhook.url, "b");
    // b's first attempt is refused with `conflict` at once; then it stands by.
    let mut standby = Value::Null;
    for _ in 0..100 {
        standby = b.status().await;
        if standby["disconnected_because"]
            .as_str()
            .is_some_and(|why| why.starts_with("standby"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("[instances] Prosody: {}", b.summary().await);
    assert!(
        standby["disconnected_because"]
            .as_str()
            .is_some_and(|why| why.starts_with("standby")),
        "b stands by: {standby}"
    );
    let port = server.component_port();
    assert_eq!(connections_to(port), 1, "only a is connected");
    alice.send(&message(0, 0)).await;
    let first = alice.recv_matching(WAIT, is_answer).await;
    assert_eq!(first.as_ref().map(body).as_deref(), Some("S0-0"));
    // The kill lands at a random point of b's 1–2 s standby wait.
    let pause = Duration::from_millis(component_http::backoff::random_u64() % 2000);
    tokio::time::sleep(pause).await;
    let killed = Instant::now();
    a.kill();
    let closed = wait_connections(port, 0, Duration::from_secs(2)).await;
    let pings = ping_until_answered(&mut alice, killed).await;
    let gap = killed.elapsed();
    println!(
        "[instances] Prosody: pings after the kill: {}",
        pings.join(", ")
    );
    alice.send(&message(0, 1)).await;
    let second = alice.recv_matching(WAIT, is_answer).await;
    let instances: Vec<String> = webhook
        .requests()
        .iter()
        .map(|r| {
            let header = r.headers.get("x-instance").and_then(|v| v.to_str().ok());
            header.unwrap_or("?").to_string()
        })
        .collect();
    println!(
        "[instances] Prosody: a killed, its connection closed after {}; b answered a ping \
         {:.2} s after the kill (standby retry every 1-2 s); webhook requests by instance: \
         {instances:?}; {}; wall {:.1} s",
        closed.map_or("NOT within 2 s".to_string(), |d| format!(
            "{:.0} ms",
            d.as_secs_f64() * 1000.0
        )),
        gap.as_secs_f64(),
        b.summary().await,
        wall.elapsed().as_secs_f64()
    );
    let closed = closed.expect("the killed instance's connection closed");
    assert_eq!(second.as_ref().map(body).as_deref(), Some("S0-1"));
    assert_eq!(instances, ["a", "b"], "a answered before the kill, b after");
    // From the moment the socket is closed (Prosody drops the session on the FIN at once),
    // b's next attempt comes within the 2 s cap. An attempt between the kill and the close
    // gets one more `conflict`, so the cap counts from the close (milliseconds after the
    // kill on an idle machine, up to 2.4 s seen under a load average of 11: the abort
    // waits for a worker thread). Then the handshake (milliseconds on loopback), the next
    // ping (0.1 s apart, fixture.rs), and timers firing late on a loaded machine: 1 s.
    let bound = closed + Duration::from_secs(3);
    assert!(
        gap < bound,
        "b took over {gap:?} after the kill: over close ({closed:?}) + 2 s cap + 1 s"
    );
}
