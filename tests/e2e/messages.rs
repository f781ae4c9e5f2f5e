//! Replies built from the webhook's JSON: echo, addressing, raw stanzas, media types.

use crate::fixture::{ask, body, next_message, World, DOMAIN};
use crate::support::xmpp_server::Server;

async fn echo_round_trip_and_request_fields(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    let reply = ask(&mut alice, &format!("echo@{DOMAIN}"), "hello").await;
    assert_eq!(body(&reply), "Did you say hello?");
    assert_eq!(reply.attr("from"), Some("echo@bot.localhost"));
    assert_eq!(reply.attr("type"), Some("chat"));

    let requests = world.webhook().requests();
    let request = requests
        .iter()
        .find(|r| r.json["body"] == "hello")
        .expect("request recorded");
    assert_eq!(request.json["to"], "echo@bot.localhost");
    assert_eq!(request.json["from"], alice.full_jid());
    assert_eq!(request.json["kind"], "message");
    let stanza = request.json["stanza"].as_str().expect("stanza text");
    assert!(stanza.starts_with("<message "), "{stanza}");
    assert!(
        stanza.contains("xml:lang='en'"),
        "the server's xml:lang is kept: {stanza}"
    );
    assert!(stanza.contains("<body>hello</body>"), "{stanza}");
    assert_eq!(request.headers["content-type"], "application/json");
    let agent = request.headers["user-agent"].to_str().expect("ascii");
    assert_eq!(agent, concat!("component-http/", env!("CARGO_PKG_VERSION")));
}
on_both_servers!(echo_round_trip_and_request_fields);

async fn credentials_in_post_url_are_sent_as_basic_authorization(server: Server) {
    let world =
        World::start_posting_to_on(server, |url| url.replace("http://", "http://bot:p%40ss@"))
            .await;
    let mut alice = world.client("alice").await;
    let reply = ask(&mut alice, &format!("echo@{DOMAIN}"), "let me in").await;
    assert_eq!(body(&reply), "Did you say let me in?");
    let requests = world.webhook().requests();
    let request = requests.first().expect("request recorded");
    // base64("bot:p@ss"): the user and password percent-decoded, as curl sends them.
    assert_eq!(request.headers["authorization"], "Basic Ym90OnBAc3M=");
}
on_both_servers!(credentials_in_post_url_are_sent_as_basic_authorization);

async fn host_bare_and_full_addresses_all_reach_the_webhook(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    for to in [DOMAIN, "echo@bot.localhost", "echo@bot.localhost/desk"] {
        let reply = ask(&mut alice, to, "where").await;
        assert_eq!(body(&reply), "Did you say where?");
        assert_eq!(
            reply.attr("from"),
            Some(to),
            "answered from the address written to"
        );
    }
}
on_both_servers!(host_bare_and_full_addresses_all_reach_the_webhook);

async fn reply_to_another_user(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    let mut bob = world.client("bob").await;
    alice
        .send(
            "<message type='chat' to='echo@bot.localhost'><body>to bob@localhost</body></message>",
        )
        .await;
    let forwarded = next_message(&mut bob).await;
    assert_eq!(body(&forwarded), "for you");
    assert_eq!(forwarded.attr("from"), Some("echo@bot.localhost"));
}
on_both_servers!(reply_to_another_user);

async fn raw_stanza_reply_is_sent_as_given(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    let reply = ask(&mut alice, "echo@bot.localhost", "raw").await;
    // The webhook's stanza says type='normal': see `Server::message_type_as_delivered`.
    assert_eq!(
        reply.attr("type"),
        server.message_type_as_delivered("normal")
    );
    assert_eq!(reply.attr("from"), Some("echo@bot.localhost"));
    assert_eq!(body(&reply), "raw reply");
    assert!(reply.get_child("subject", "jabber:client").is_some());
    let custom = reply
        .get_child("x", "urn:example:custom")
        .expect("extension kept");
    assert_eq!(custom.attr("v"), Some("1"));
}
on_both_servers!(raw_stanza_reply_is_sent_as_given);

async fn charset_parameter_and_numbers(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    assert_eq!(
        body(&ask(&mut alice, "echo@bot.localhost", "charset").await),
        "charset ok é"
    );
    assert_eq!(
        body(&ask(&mut alice, "echo@bot.localhost", "number").await),
        "42"
    );
}
on_both_servers!(charset_parameter_and_numbers);
