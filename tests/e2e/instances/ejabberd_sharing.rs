//! Two component-http instances for one domain on ejabberd (instances.rs says how ejabberd
//! spreads the stanzas): they share 1,000 messages from 5 senders, each sender's in order;
//! then the same with one instance killed mid-run and replaced, its senders re-sending.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::sender_log::converse;
use super::{
    connections_to, echo, wait_connections, wait_handshakes, Instance, PER_SENDER, SENDERS,
};
use crate::fixture::{wait_component_online, DOMAIN, SECRET, WAIT};
use crate::support::client::XmppClient;
use crate::support::ejabberd::Ejabberd;
use crate::support::xmpp_server::XmppServer;
use crate::webhook_server::WebhookServer;

/// The kill test kills `a` this long after the first send...
const KILL_AT: Duration = Duration::from_secs(3);
/// ...and starts its replacement this long after the kill (systemd's `RestartSec=2`).
const REPLACE_AFTER: Duration = Duration::from_secs(2);

/// What each `domain_balancing` setting does: instances.rs.
const BALANCING: &str =
    "domain_balancing:\n  \"bot.localhost\":\n    type: bare_source\n    component_number: 2\n";

fn balancing() -> String {
    std::env::var("INSTANCES_BALANCING").unwrap_or_else(|_| BALANCING.to_string())
}

fn replace_after() -> Option<Duration> {
    match std::env::var("INSTANCES_REPLACE_AFTER") {
        Ok(value) if value == "never" => None,
        Ok(value) => Some(Duration::from_secs_f64(
            value
                .parse()
                .expect("INSTANCES_REPLACE_AFTER: seconds or never"),
        )),
        Err(_) => Some(REPLACE_AFTER),
    }
}

/// One webhook request: the instance that posted it (its `X-Instance` header), the
/// message id, and when the webhook got it.
struct Posted {
    instance: String,
    id: String,
    at: Instant,
}

/// The webhook's record. The script notes, per id and in call order, when it was called;
/// the webhook records a request just before calling the script, so for one id both lists
/// are in the same order (an id's posts are seconds apart).
fn posted(webhook: &WebhookServer, called: &Mutex<HashMap<String, Vec<Instant>>>) -> Vec<Posted> {
    let called = called.lock().expect("lock").clone();
    let mut seen: HashMap<String, usize> = HashMap::new();
    webhook
        .requests()
        .into_iter()
        .map(|r| {
            let id = r.json["id"].as_str().unwrap_or_default().to_string();
            let nth = seen.entry(id.clone()).or_default();
            let at = called.get(&id).and_then(|c| c.get(*nth)).copied();
            *nth += 1;
            Posted {
                instance: r
                    .headers
                    .get("x-instance")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
                    .to_string(),
                id,
                at: at.expect("the script saw every recorded request"),
            }
        })
        .collect()
}

/// What a two-instance run on ejabberd measured.
#[derive(Default)]
struct Report {
    sent: usize,
    sends: usize,
    answered: usize,
    errors: BTreeMap<String, usize>,
    duplicates: usize,
    out_of_order: usize,
    missing: Vec<String>,
    unknown: Vec<String>,
    /// Webhook requests per instance: (all, after the kill).
    received: BTreeMap<String, (usize, usize)>,
    /// Per sender, the instances that posted its messages before the kill.
    sender_instances: BTreeMap<String, BTreeSet<String>>,
    /// Messages the webhook got more than once.
    posted_twice: usize,
    /// Re-sent messages, by where the first send was lost: it reached the killed instance
    /// (which posted it, but its reply went down with it); it was sent before the killed
    /// connection closed and never reached a webhook (in the socket or the server when it
    /// died); it was sent after that, to the dead slot (dropped by ejabberd).
    resent_reached_a: usize,
    resent_lost_at_the_kill: usize,
    resent_to_the_dead_slot: usize,
    /// Re-sent messages of the senders the survivor served before the kill.
    resent_of_survivors_senders: usize,
}

impl Report {
    fn resent(&self) -> usize {
        self.resent_reached_a + self.resent_lost_at_the_kill + self.resent_to_the_dead_slot
    }

    fn print(&self, title: &str) {
        println!("{title}");
        println!(
            "  sent {} messages ({} sends); answered {}, errors {} {:?}, duplicates {}, \
             out-of-order {}, missing {}, unidentified {}",
            self.sent,
            self.sends,
            self.answered,
            self.errors.values().sum::<usize>(),
            self.errors,
            self.duplicates,
            self.out_of_order,
            self.missing.len(),
            self.unknown.len()
        );
        println!(
            "  re-sent {}: {} had reached the killed instance, {} were lost at the kill, \
             {} went to the dead slot; {} of them from the survivor's senders",
            self.resent(),
            self.resent_reached_a,
            self.resent_lost_at_the_kill,
            self.resent_to_the_dead_slot,
            self.resent_of_survivors_senders
        );
        for (instance, (all, after)) in &self.received {
            println!("  webhook received from {instance}: {all} ({after} after the kill)");
        }
        println!(
            "  instances of each sender before the kill: {:?}; messages posted more than \
             once: {}",
            self.sender_instances, self.posted_twice
        );
        if !self.missing.is_empty() {
            let shown: Vec<_> = self.missing.iter().take(20).collect();
            println!("  missing (first 20): {shown:?}");
        }
        for stanza in self.unknown.iter().take(5) {
            println!("  unidentified: {stanza}");
        }
    }
}

/// Two instances for one domain on ejabberd (`balancing()`), 1,000 messages from 5
/// senders. With `kill`, instance `a` is killed `KILL_AT` after the first send, a
/// replacement `a2` is started `replace_after()` later, and senders re-send what gets no
/// outcome (see `converse`).
async fn two_instances_on_ejabberd(kill: bool) -> Report {
    let wall = Instant::now();
    let users: Vec<(&str, &str)> = SENDERS.iter().map(|s| (*s, "pw")).collect();
    let yaml = balancing();
    let server = XmppServer::Ejabberd(Ejabberd::start_with(&[(DOMAIN, SECRET)], &users, &yaml));
    let called: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let notes = Arc::clone(&called);
    let webhook = WebhookServer::start(move |request: &Value| {
        let id = request["id"].as_str().unwrap_or_default().to_string();
        let mut notes = notes.lock().expect("lock");
        notes.entry(id).or_default().push(Instant::now());
        echo(request)
    })
    .await;
    let port = server.component_port();
    // One after the other, so that `a` takes slot 1 (s0, s1) and `b` slot 2 (s2, s3, s4).
    let mut a = Instance::start(&server, &webhook.url, "a");
    wait_handshakes(&server, 1).await;
    let b = Instance::start(&server, &webhook.url, "b");
    wait_handshakes(&server, 2).await;
    assert!(
        wait_connections(port, 2, WAIT).await.is_some(),
        "two component connections: {}\n{}",
        connections_to(port),
        server.log_tail()
    );
    let mut clients = Vec::new();
    for (user, password) in &users {
        let jid = format!("{user}@localhost");
        let mut client = XmppClient::connect(&jid, password, server.c2s_port()).await;
        // A ping from each sender takes that sender's route: every slot is served.
        wait_component_online(&mut client).await;
        clients.push(client);
    }
    println!(
        "[instances] ejabberd with {:?}: two instances and {} senders ready after {:.1} s",
        yaml.replace('\n', " "),
        SENDERS.len(),
        wall.elapsed().as_secs_f64()
    );
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = tokio::task::JoinSet::new();
    for (sender, client) in clients.into_iter().enumerate() {
        tasks.spawn(async move { (sender, converse(client, sender, start, kill).await) });
    }
    let mut replacement = None;
    let mut killed = None;
    if kill {
        tokio::time::sleep_until((start + KILL_AT).into()).await;
        let before = connections_to(port);
        let at = Instant::now();
        a.kill();
        let closed = wait_connections(port, 1, Duration::from_secs(5)).await;
        println!(
            "[instances] killed a at t={:.2} s: component connections {before} -> 1 after {}",
            start.elapsed().as_secs_f64(),
            closed.map_or(format!("NOT within 5 s ({})", connections_to(port)), |d| {
                format!("{:.0} ms", d.as_secs_f64() * 1000.0)
            })
        );
        assert!(closed.is_some(), "the killed instance's connection closed");
        killed = Some((at, at + closed.unwrap_or_default()));
        if let Some(after) = replace_after() {
            // A connection that comes while both slots are still taken gets none, ever
            // (ejabberd accepts it, and routes nothing to it): as with a process that has
            // died, the old connection must be gone, and ejabberd must have seen it go.
            let closed = at + closed.unwrap_or_default();
            let restart_at = (at + after).max(closed + Duration::from_millis(500));
            tokio::time::sleep_until(restart_at.into()).await;
            replacement = Some(Instance::start(&server, &webhook.url, "a2"));
            wait_handshakes(&server, 3).await;
            let up = wait_connections(port, 2, WAIT).await;
            println!(
                "[instances] replacement a2 started at t={:.2} s, connected {}",
                (restart_at - start).as_secs_f64(),
                up.map_or("NOT within 10 s".to_string(), |d| format!(
                    "{:.0} ms later",
                    d.as_secs_f64() * 1000.0
                ))
            );
        }
    }
    let mut logs = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (sender, log) = joined.expect("sender task");
        logs.insert(sender, log);
    }
    let took = start.elapsed();
    for instance in [Some(&a), Some(&b), replacement.as_ref()]
        .into_iter()
        .flatten()
    {
        println!("[instances] {}", instance.summary().await);
    }
    let mut report = Report {
        sent: SENDERS.len() * PER_SENDER,
        ..Report::default()
    };
    let posts = posted(&webhook, &called);
    let kill_at = killed.map(|(at, _)| at);
    let mut posts_per_id: HashMap<&str, usize> = HashMap::new();
    for post in &posts {
        let after_kill = kill_at.is_some_and(|k| post.at >= k);
        let entry = report.received.entry(post.instance.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(after_kill);
        if !after_kill {
            let sender = post.id.split('-').next().unwrap_or_default().to_string();
            let instances = report.sender_instances.entry(sender).or_default();
            instances.insert(post.instance.clone());
        }
        *posts_per_id.entry(post.id.as_str()).or_default() += 1;
    }
    report.posted_twice = posts_per_id.values().filter(|&&n| n > 1).count();
    for (sender, log) in &logs {
        report.sends += log.sends.values().map(|&n| n as usize).sum::<usize>();
        report.answered += log.replies.len();
        for error in log.errors.values() {
            *report.errors.entry(error.clone()).or_default() += 1;
        }
        report.duplicates += log.duplicates;
        report.out_of_order += log.out_of_order();
        report.unknown.extend(log.unknown.iter().cloned());
        report.missing.extend(
            (0..PER_SENDER)
                .filter(|n| !log.has_outcome(*n))
                .map(|n| format!("S{sender}-{n}")),
        );
        let survivors = report
            .sender_instances
            .get(&format!("S{sender}"))
            .is_some_and(|i| !i.contains("a"));
        for n in log.resent() {
            let id = format!("S{sender}-{n}");
            report.resent_of_survivors_senders += usize::from(survivors);
            let reached_a = posts.iter().any(|p| p.id == id && p.instance == "a");
            let closed = killed.map_or(start, |(_, closed)| closed);
            if reached_a {
                report.resent_reached_a += 1;
            } else if log.first_sent[&n] < closed {
                report.resent_lost_at_the_kill += 1;
            } else {
                report.resent_to_the_dead_slot += 1;
            }
        }
    }
    let title = format!(
        "[instances] ejabberd, two instances{}: sending and outcomes took {:.1} s, wall {:.1} s",
        if kill { ", a killed mid-run" } else { "" },
        took.as_secs_f64(),
        wall.elapsed().as_secs_f64()
    );
    report.print(&title);
    let log = server.log();
    for needle in [
        "badkey",
        "Failed to register route",
        "Mnesia transaction failed",
    ] {
        let count = log.matches(needle).count();
        if count > 0 {
            println!("[instances] ejabberd.log mentions {needle:?} {count} times");
        }
    }
    report
}

/// ejabberd only: Prosody takes one connection per domain (see prosody_standby.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_two_instances_share_the_load_in_order() {
    let report = two_instances_on_ejabberd(false).await;
    for instance in ["a", "b"] {
        let got = report.received.get(instance).map_or(0, |r| r.0);
        assert!(
            got > 0,
            "{instance} received nothing: {:?}",
            report.received
        );
    }
    assert!(
        report.sender_instances.values().all(|i| i.len() == 1),
        "a sender's messages went to both instances: {:?}",
        report.sender_instances
    );
    assert_eq!(report.missing, Vec::<String>::new(), "missing outcomes");
    assert_eq!(report.answered, report.sent, "errors: {:?}", report.errors);
    assert_eq!(report.duplicates, 0, "answered more than once");
    assert_eq!(
        report.posted_twice, 0,
        "posted to the webhook more than once"
    );
    assert_eq!(report.out_of_order, 0, "replies out of order");
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
}

/// ejabberd only: `a` is killed 3 s into the 8 s of sending and replaced 2 s later. The
/// survivor `b` carries on with its senders (nothing of theirs re-sent); `a`'s senders
/// re-send what the kill and the empty slot swallowed, and the replacement answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_survivor_carries_on_after_an_instance_is_killed() {
    let report = two_instances_on_ejabberd(true).await;
    assert_eq!(
        report.missing,
        Vec::<String>::new(),
        "messages without any outcome"
    );
    assert_eq!(
        report.resent_of_survivors_senders, 0,
        "the survivor lost nothing"
    );
    assert_eq!(
        report.out_of_order, 0,
        "out of order (among messages sent once)"
    );
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
}
