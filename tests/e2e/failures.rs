//! Everything that is not a clean 200: the status table, transport failures, bad replies,
//! and the loop guard.

use std::time::Duration;

use crate::fixture::{ask, body, config_for, error_of, Daemon, World};
use crate::support::xmpp_server::Server;

fn owned(error: (&str, &str, Option<&str>)) -> (String, String, Option<String>) {
    (error.0.into(), error.1.into(), error.2.map(str::to_string))
}

async fn status_codes_map_to_stanza_errors(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    let table = [
        ("status 404", ("cancel", "item-not-found", None)),
        (
            "status 503",
            (
                "wait",
                "remote-server-timeout",
                Some("Service temporarily unavailable"),
            ),
        ),
        ("status 400", ("modify", "bad-request", None)),
        (
            "status 502",
            ("cancel", "remote-server-timeout", Some("Bad gateway")),
        ),
        ("status 418", ("cancel", "service-unavailable", None)),
    ];
    for (command, expected) in table {
        let reply = ask(&mut alice, "echo@bot.localhost", command).await;
        assert_eq!(error_of(&reply), owned(expected), "{command}");
        assert_eq!(reply.attr("from"), Some("echo@bot.localhost"));
    }
}
on_both_servers!(status_codes_map_to_stanza_errors);

async fn no_content_sends_nothing(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    alice
        .send("<message type='chat' to='echo@bot.localhost'><x xmlns='urn:no-body'/></message>")
        .await;
    let nothing = alice
        .expect_nothing(Duration::from_secs(2), |s| s.name() == "message")
        .await;
    assert!(nothing.is_none(), "204 must not be answered");
    assert_eq!(
        world.webhook().requests().len(),
        1,
        "but the webhook was called"
    );
}
on_both_servers!(no_content_sends_nothing);

async fn bad_json_bad_stanza_and_foreign_from_get_errors(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    for command in ["badjson", "badstanza"] {
        let reply = ask(&mut alice, "echo@bot.localhost", command).await;
        assert_eq!(
            error_of(&reply),
            owned(("cancel", "internal-server-error", None)),
            "{command}"
        );
    }
    let reply = ask(&mut alice, "echo@bot.localhost", "foreign").await;
    assert_eq!(error_of(&reply), owned(("cancel", "not-allowed", None)));
    // The stream is still up: the server did not close it over a spoofed `from`.
    assert_eq!(
        body(&ask(&mut alice, "echo@bot.localhost", "still").await),
        "Did you say still?"
    );
}
on_both_servers!(bad_json_bad_stanza_and_foreign_from_get_errors);

async fn webhook_timeout_is_gateway_timeout(server: Server) {
    let world = World::start_on(server, "timeout = 1").await;
    let mut alice = world.client("alice").await;
    let started = std::time::Instant::now();
    let reply = ask(&mut alice, "echo@bot.localhost", "sleep 5").await;
    assert_eq!(
        error_of(&reply),
        owned(("wait", "remote-server-timeout", Some("Gateway timeout")))
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered after the 1 s timeout"
    );
}
on_both_servers!(webhook_timeout_is_gateway_timeout);

async fn connection_refused_is_connection_failure(server: Server) {
    // A socket bound but never listening holds the port (no other test can take it) and
    // refuses every connection to it.
    let closed = tokio::net::TcpSocket::new_v4().expect("socket");
    closed
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = closed.local_addr().expect("address").port();
    let mut world = World::start_on(server, "").await;
    drop(world.daemon.take());
    let daemon = Daemon::start(&config_for(
        &world.server,
        &format!("http://127.0.0.1:{port}/"),
        "",
    ));
    let mut alice = world.client("alice").await;
    let reply = ask(&mut alice, "echo@bot.localhost", "anyone?").await;
    assert_eq!(
        error_of(&reply),
        owned((
            "cancel",
            "remote-server-timeout",
            Some("Connection failure")
        ))
    );
    drop(daemon);
    drop(closed);
}
on_both_servers!(connection_refused_is_connection_failure);

async fn message_of_type_error_is_forwarded_but_never_answered(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    alice
        .send("<message type='error' to='echo@bot.localhost' id='e1'><body>status 500</body>\
               <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        .await;
    let nothing = alice
        .expect_nothing(Duration::from_secs(2), |s| s.name() == "message")
        .await;
    assert!(
        nothing.is_none(),
        "an error is never answered, even when the webhook fails"
    );
    let requests = world.webhook().requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json["type"], "error");
}
on_both_servers!(message_of_type_error_is_forwarded_but_never_answered);
