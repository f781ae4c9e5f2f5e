//! Joining rooms other than by the config: `POST /v1/rooms` and `DELETE /v1/rooms/{jid}`
//! (answered once the room has let the bot in, or out) and `GET /v1/rooms`; a nick someone
//! else already has in the room (the bot takes `<nick>_2`); examples/room_bot.py in a room.

use serde_json::{json, Value};

use super::{api_call as call, bot_says, room, rooms_config, wait_for_occupant, BOT_NICK};
use crate::examples::ExampleBot;
use crate::fixture::{World, DOMAIN, WAIT};
use crate::http_api::{with_api, world_with_api};
use crate::support::xmpp_server::Server;

/// The entry of `GET /v1/rooms` for `jid`, if any.
async fn listed(base: &str, jid: &str) -> Option<Value> {
    let (status, listing) = call(reqwest::Method::GET, format!("{base}/v1/rooms"), None).await;
    assert_eq!(status, 200, "{listing}");
    let rooms = listing["rooms"].as_array().expect("a rooms array").clone();
    rooms.into_iter().find(|r| r["jid"] == jid)
}

async fn the_api_joins_and_leaves_a_room(server: Server) {
    let lobby = room("ops");
    let (world, base) = world_with_api(server, "").await;
    let mut alice = world.client("alice").await;
    assert!(alice.join_room(&lobby, "alice").await.created);
    assert_eq!(listed(&base, &lobby).await, None, "not in the table yet");

    let url = format!("{base}/v1/rooms");
    let body = json!({ "jid": lobby, "nick": BOT_NICK });
    let (status, joined) = call(reqwest::Method::POST, url, Some(body)).await;
    assert_eq!(status, 200, "{joined}");
    let expected = json!({
        "component": DOMAIN, "jid": lobby, "nick": BOT_NICK, "occupant_nick": BOT_NICK,
        "from": format!("{DOMAIN}/{BOT_NICK}"), "forward": "all", "source": "api",
        "state": "joined",
    });
    assert_eq!(joined, expected);
    let came = alice.occupant_presence(&lobby, BOT_NICK, true, WAIT).await;
    assert!(came.is_some(), "alice sees the bot come in");
    assert_eq!(listed(&base, &lobby).await, Some(expected));
    alice.send_groupchat(&lobby, "hello api").await;
    assert_eq!(
        bot_says(&mut alice, &lobby, BOT_NICK).await,
        "Did you say hello api?"
    );

    let url = format!("{base}/v1/rooms/{lobby}");
    let (status, left) = call(reqwest::Method::DELETE, url, None).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(
        (&left["jid"], &left["state"]),
        (&json!(lobby), &json!("left"))
    );
    let gone = alice.occupant_presence(&lobby, BOT_NICK, false, WAIT).await;
    assert!(gone.is_some(), "alice sees the bot leave");
    let entry = listed(&base, &lobby)
        .await
        .expect("a left room stays listed");
    assert_eq!(entry["state"], "left");

    let url = format!("{base}/v1/rooms");
    let other = json!({ "jid": lobby, "nick": "OtherBot" });
    let (status, refused) = call(reqwest::Method::POST, url.clone(), Some(other)).await;
    assert_eq!((status, &refused["error"]), (409, &json!("room_exists")));
    let again = json!({ "jid": lobby, "nick": BOT_NICK });
    let (status, rejoined) = call(reqwest::Method::POST, url, Some(again)).await;
    assert_eq!(
        (status, &rejoined["state"]),
        (200, &json!("joined")),
        "{rejoined}"
    );
    let back = alice.occupant_presence(&lobby, BOT_NICK, true, WAIT).await;
    assert!(back.is_some(), "the same POST joins a left room again");

    let url = format!("{base}/v1/rooms/{}", room("nowhere"));
    let (status, unknown) = call(reqwest::Method::DELETE, url, None).await;
    assert_eq!((status, &unknown["error"]), (404, &json!("unknown_room")));
}
on_both_servers!(the_api_joins_and_leaves_a_room);

async fn a_taken_nick_is_joined_with_a_suffix(server: Server) {
    let lobby = room("crowded");
    let mut world = World::without_daemon_on(server).await;
    let mut alice = world.user("alice").await;
    assert!(
        alice.join_room(&lobby, BOT_NICK).await.created,
        "alice is EchoBot there"
    );
    let (config, base) = with_api(&rooms_config(&[&lobby], "", ""));
    world.start_daemon(&config);
    let second = format!("{BOT_NICK}_2");
    let came = alice.occupant_presence(&lobby, &second, true, WAIT).await;
    assert!(came.is_some(), "the bot joins as {second}");
    // The room tells alice that the bot came and the bot that it is in (its own presence)
    // in either order: ejabberd has been seen to tell alice first.
    let deadline = tokio::time::Instant::now() + WAIT;
    let entry = loop {
        let entry = listed(&base, &lobby).await.expect("the room is listed");
        if entry["state"] != "joining" || tokio::time::Instant::now() >= deadline {
            break entry;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        (&entry["state"], &entry["occupant_nick"]),
        (&json!("joined"), &json!(second))
    );
    assert_eq!(entry["from"], format!("{DOMAIN}/{BOT_NICK}"));

    // From room/EchoBot, yet not the bot's own: it is posted and answered.
    alice.send_groupchat(&lobby, "who is the real one").await;
    assert_eq!(
        bot_says(&mut alice, &lobby, &second).await,
        "Did you say who is the real one?"
    );
    let posted = &world.webhook().requests()[0].json;
    assert_eq!(posted["from"], format!("{lobby}/{BOT_NICK}"));
    assert_eq!(posted["to"], format!("{DOMAIN}/{BOT_NICK}"));
    assert_eq!(posted["occupant"]["nick"], BOT_NICK);
}
on_both_servers!(a_taken_nick_is_joined_with_a_suffix);

async fn the_example_room_bot_answers_ping(server: Server) {
    let bot = ExampleBot::start("python3", &["examples/room_bot.py", "{port}"]).await;
    let lobby = room("pingpong");
    let world = World::start_for_url_on(server, &bot.url, &rooms_config(&[&lobby], "", "")).await;
    let mut alice = world.client("alice").await;
    let joined = alice.join_room(&lobby, "alice").await;
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    // The bot answers only when asked: had it answered "hello", that would come first.
    alice.send_groupchat(&lobby, "hello").await;
    alice.send_groupchat(&lobby, "!ping").await;
    let said = bot_says(&mut alice, &lobby, BOT_NICK).await;
    assert_eq!(said, "pong", "bot stderr:\n{}", bot.stderr());
    alice.send_groupchat(&lobby, "EchoBot: !ping").await;
    assert_eq!(bot_says(&mut alice, &lobby, BOT_NICK).await, "pong");
}
on_both_servers!(the_example_room_bot_answers_ping);
