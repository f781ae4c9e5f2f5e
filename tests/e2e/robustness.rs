//! What must not break the component: large and unicode bodies, stanzas other libraries
//! reject, long idle periods, and a wrong secret (which must stop it loudly).

use std::time::Duration;

use serde_json::Value;

use crate::fixture::{ask, body, config_for, Daemon, World, DOMAIN, WAIT};
use crate::support::xmpp_server::Server;

async fn unicode_and_a_20_kb_body_round_trip(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    let unicode = "héllo wörld ✓ 🎉 日本語 &amp; &lt;tag&gt;";
    let reply = ask(&mut alice, "echo@bot.localhost", unicode).await;
    assert_eq!(body(&reply), "Did you say héllo wörld ✓ 🎉 日本語 & <tag>?");
    let large = "ab🎉".repeat(20 * 1024 / 6 + 1);
    assert!(large.len() >= 20 * 1024);
    let reply = ask(&mut alice, "echo@bot.localhost", &large).await;
    assert_eq!(body(&reply), format!("Did you say {large}?"));
}
on_both_servers!(unicode_and_a_20_kb_body_round_trip);

async fn bogus_message_type_does_not_knock_the_component_offline(server: Server) {
    let world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    alice
        .send("<message type='bogus' to='echo@bot.localhost' id='b1'><body>bogus</body></message>")
        .await;
    // The server routes it (Prosody with its type, ejabberd without: see
    // `Server::message_type_as_delivered`); the component forwards it like any message.
    assert_eq!(
        body(&crate::fixture::next_message(&mut alice).await),
        "Did you say bogus?"
    );
    let bogus = world
        .webhook()
        .requests()
        .into_iter()
        .find(|r| r.json["id"] == "b1");
    assert_eq!(
        bogus
            .expect("the bogus message reached the webhook")
            .json
            .get("type")
            .cloned(),
        server.message_type_as_delivered("bogus").map(Value::from)
    );
    // And the stream is still up: the next message is answered.
    let reply = ask(&mut alice, "echo@bot.localhost", "after bogus").await;
    assert_eq!(body(&reply), "Did you say after bogus?");
}
on_both_servers!(bogus_message_type_does_not_knock_the_component_offline);

async fn idle_connection_is_kept_alive(server: Server) {
    // The library's read timeout is `keepalive` and its hard timeout `timeout` after that:
    // idle for well over both, the stream must still be the same one. The sleep below is
    // the idle time under test, not a wait for something to happen: no event would do.
    let world = World::start_on(server, "keepalive = 1\ntimeout = 1").await;
    let mut alice = world.client("alice").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        body(&ask(&mut alice, "echo@bot.localhost", "still there").await),
        "Did you say still there?"
    );
    let log = world.server.log();
    let sessions = log.matches(server.component_login_log_line()).count();
    assert_eq!(
        sessions, 1,
        "one component session, never reconnected:\n{log}"
    );
}
on_both_servers!(idle_connection_is_kept_alive);

async fn wrong_secret_stops_run_with_a_clear_error(server: Server) {
    let world = World::start_on(server, "").await;
    let config =
        config_for(&world.server, &world.webhook().url, "").replace("component-secret", "wrong");
    let daemon = Daemon::start(&config);
    let error = daemon
        .finished(Duration::from_secs(15))
        .await
        .expect_err("handshake must fail");
    assert_eq!(
        error.to_string(),
        format!("handshake rejected by the server for {DOMAIN}: check the secret")
    );
}
on_both_servers!(wrong_secret_stops_run_with_a_clear_error);

async fn shutdown_answers_in_flight_stanzas_then_returns_ok(server: Server) {
    let mut world = World::start_on(server, "").await;
    let mut alice = world.client("alice").await;
    alice
        .send("<message type='chat' to='echo@bot.localhost'><body>sleep 1</body></message>")
        .await;
    // The shutdown must find the webhook call in flight: it is once the webhook has it
    // (its answer comes 1 s later).
    world
        .webhook()
        .wait_for(WAIT, |r| r.json["body"] == "sleep 1")
        .await;
    let daemon = world.daemon.take().expect("daemon running");
    daemon.stop().await.expect("clean shutdown");
    let reply = crate::fixture::next_message(&mut alice).await;
    assert_eq!(
        body(&reply),
        "too late",
        "the in-flight webhook call was answered before exit"
    );
}
on_both_servers!(shutdown_answers_in_flight_stanzas_then_returns_ok);
