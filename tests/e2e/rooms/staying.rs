//! The bot stays in its rooms, as issue 17 demands: a failing webhook (503, a timeout)
//! sends the room no error, so no room expels it; after the server dies it is back in the
//! room once the server is; a moderator's kick brings it back after `rejoin_after_kick`.

use std::time::{Duration, Instant};

use super::{api_call, bot_says, room, rooms_config, wait_for_occupant, BOT_NICK};
use crate::fixture::{World, WAIT};
use crate::http_api::world_with_api;
use crate::support::client::to_xml;
use crate::support::room_client::{body_text, status_codes};
use crate::support::xmpp_server::Server;

/// Long enough for the 503's retries and the timed-out call (`timeout = 1`, "sleep 3").
const FAILURES_DONE: Duration = Duration::from_secs(60);

async fn webhook_failures_leave_the_bot_in_the_room(server: Server) {
    let lobby = room("flaky");
    let (world, base) = world_with_api(server, &rooms_config(&[&lobby], "", "timeout = 1")).await;
    let mut alice = world.client("alice").await;
    let joined = alice.join_room(&lobby, "alice").await;
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    alice.send_groupchat(&lobby, "status 503").await;
    alice.send_groupchat(&lobby, "sleep 3").await;
    alice.send_groupchat(&lobby, "after the failures").await;
    let bot = format!("{lobby}/{BOT_NICK}");
    // The first stanza that is either the bot speaking, the bot leaving, or an error.
    let next = alice
        .recv_matching(FAILURES_DONE, |s| {
            let from_bot = s.attr("from") == Some(&bot);
            s.attr("type") == Some("error")
                || (from_bot && s.name() == "presence" && s.attr("type") == Some("unavailable"))
                || (from_bot && s.name() == "message")
        })
        .await
        .expect("the bot answers after the failures");
    assert_eq!(
        (next.name(), body_text(&next)),
        ("message", "Did you say after the failures?".to_string()),
        "{}",
        to_xml(&next)
    );
    let bodies = super::posted_bodies(&world);
    assert!(bodies.iter().any(|b| b == "status 503"), "{bodies:?}");
    assert!(bodies.iter().any(|b| b == "sleep 3"), "{bodies:?}");
    let (_, status) = api_call(reqwest::Method::GET, format!("{base}/v1/status"), None).await;
    let component = &status["components"][0];
    assert_eq!(component["stanza_errors_suppressed"], 2, "{status}");
    assert_eq!(component["rooms"]["joined"], 1, "{status}");
}
on_both_servers!(webhook_failures_leave_the_bot_in_the_room);

async fn the_bot_is_back_in_the_room_after_the_server_is_killed(server: Server) {
    let lobby = room("phoenix");
    let reconnect = "reconnect_delay = 0.2\nreconnect_max_delay = 1";
    let mut world = World::start_on(server, &rooms_config(&[&lobby], "", reconnect)).await;
    let mut alice = world.client("alice").await;
    let joined = alice.join_room(&lobby, "alice").await;
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    alice.send_groupchat(&lobby, "before").await;
    assert_eq!(
        bot_says(&mut alice, &lobby, BOT_NICK).await,
        "Did you say before?"
    );

    world.server.kill9();
    world.server.restart();
    // The room died with the server (it was not persistent): the bot makes it again.
    let mut alice = world.client("alice").await;
    let mut bob = world.client("bob").await;
    let joined = alice.join_room(&lobby, "alice").await;
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    bob.join_room(&lobby, "bob").await;
    bob.send_groupchat(&lobby, "after the restart").await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            bot_says(client, &lobby, BOT_NICK).await,
            "Did you say after the restart?"
        );
    }
}
on_both_servers!(the_bot_is_back_in_the_room_after_the_server_is_killed);

async fn a_kicked_bot_rejoins_after_rejoin_after_kick(server: Server) {
    let lobby = room("strict");
    let mut world = World::without_daemon_on(server).await;
    let mut alice = world.user("alice").await;
    assert!(
        alice.join_room(&lobby, "alice").await.created,
        "alice owns the room"
    );
    world.start_daemon(&rooms_config(&[&lobby], "", "rejoin_after_kick = 1"));
    let came = alice.occupant_presence(&lobby, BOT_NICK, true, WAIT).await;
    assert!(came.is_some(), "the bot joins alice's room");

    let kicked_at = Instant::now();
    let gone = alice.kick(&lobby, BOT_NICK).await;
    assert!(
        status_codes(&gone).contains(&"307".to_string()),
        "{}",
        to_xml(&gone)
    );
    let back = alice.occupant_presence(&lobby, BOT_NICK, true, WAIT).await;
    assert!(back.is_some(), "the bot comes back after the kick");
    // rejoin_after_kick = 1, jittered by ±20%.
    let waited = kicked_at.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "back after {waited:?}"
    );
    alice.send_groupchat(&lobby, "welcome back").await;
    assert_eq!(
        bot_says(&mut alice, &lobby, BOT_NICK).await,
        "Did you say welcome back?"
    );
}
on_both_servers!(a_kicked_bot_rejoins_after_rejoin_after_kick);
