//! The always-online contact and the iq rules: answered here unless forwarded.

use crate::fixture::{error_of, World, DOMAIN, WAIT};
use crate::support::xmpp_server::Server;

async fn subscribe_and_probe_are_answered_by_the_component(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    // Prosody forwards `subscribed` only to sessions that fetched the roster, as clients do.
    alice
        .send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let roster = alice
        .recv_matching(WAIT, |s| s.attr("id") == Some("roster"))
        .await;
    assert!(roster.is_some(), "roster fetched");
    alice
        .send("<presence type='subscribe' to='echo@bot.localhost'/>")
        .await;
    let subscribed = alice
        .recv_matching(WAIT, |s| {
            s.name() == "presence" && s.attr("type") == Some("subscribed")
        })
        .await
        .unwrap_or_else(|| panic!("no subscribed; server log:\n{}", world.server.log_tail()));
    let from = subscribed.attr("from").unwrap_or_default();
    assert_eq!(from.split('/').next(), Some("echo@bot.localhost"), "{from}");
    let available = alice
        .recv_matching(WAIT, |s| {
            s.name() == "presence"
                && s.attr("type").is_none()
                && s.attr("from") == Some("echo@bot.localhost/default")
        })
        .await;
    assert!(
        available.is_some(),
        "available presence from echo@bot.localhost/default"
    );

    // Prosody sends its own probe to the contact on the next login; probe it directly too.
    alice
        .send("<presence type='probe' to='echo@bot.localhost'/>")
        .await;
    let probed = alice
        .recv_matching(WAIT, |s| {
            s.name() == "presence" && s.attr("from") == Some("echo@bot.localhost/default")
        })
        .await;
    assert!(probed.is_some(), "probe answered with available presence");
    assert!(
        world.webhook().requests().is_empty(),
        "presence is not forwarded by default"
    );
}
on_both_servers!(subscribe_and_probe_are_answered_by_the_component);

async fn ping_disco_and_unknown_iq(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    alice
        .send(&format!(
            "<iq type='get' to='{DOMAIN}' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))
        .await;
    let pong = alice
        .recv_matching(WAIT, |s| s.attr("id") == Some("p1"))
        .await
        .expect("ping answer");
    assert_eq!(pong.attr("type"), Some("result"));

    alice.send(&format!("<iq type='get' to='{DOMAIN}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await;
    let disco = alice
        .recv_matching(WAIT, |s| s.attr("id") == Some("d1"))
        .await
        .expect("disco answer");
    let query = disco
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    let features: Vec<_> = query.children().filter_map(|c| c.attr("var")).collect();
    assert!(features.contains(&"urn:xmpp:ping"), "{features:?}");

    alice
        .send(&format!(
            "<iq type='get' to='{DOMAIN}' id='v1'><query xmlns='jabber:iq:version'/></iq>"
        ))
        .await;
    let unknown = alice
        .recv_matching(WAIT, |s| s.attr("id") == Some("v1"))
        .await
        .expect("answer");
    assert_eq!(error_of(&unknown).1, "service-unavailable");
    assert!(
        world.webhook().requests().is_empty(),
        "iq is not forwarded by default"
    );
}
on_both_servers!(ping_disco_and_unknown_iq);

async fn forwarded_iq_and_presence_reach_the_webhook(server: Server) {
    let world = World::start_on(server, r#"stanzas = ["message", "presence", "iq"]"#).await;
    let mut alice = world.client("alice").await;
    alice
        .send(&format!(
            "<iq type='get' to='{DOMAIN}' id='v2'><query xmlns='jabber:iq:version'/></iq>"
        ))
        .await;
    let answer = alice
        .recv_matching(WAIT, |s| s.attr("id") == Some("v2"))
        .await
        .expect("answer");
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "204 to an iq get: an empty result"
    );
    alice
        .send("<presence type='subscribe' to='echo@bot.localhost'/>")
        .await;
    // The iq was answered, so it was posted; the presence gets no answer to wait for:
    // wait until the webhook has been posted it.
    world
        .webhook()
        .wait_for(WAIT, |r| r.json["kind"] == "presence")
        .await;
    let requests = world.webhook().requests();
    let kinds: Vec<_> = requests
        .iter()
        .map(|r| r.json["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(kinds.contains(&"iq".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"presence".to_string()), "{kinds:?}");
    let iq = requests
        .iter()
        .find(|r| r.json["id"] == "v2")
        .expect("the version iq");
    assert!(iq.json["stanza"]
        .as_str()
        .unwrap_or_default()
        .contains("jabber:iq:version"));
}
on_both_servers!(forwarded_iq_and_presence_reach_the_webhook);
