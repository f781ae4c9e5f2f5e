//! Issue 17, group chats (XEP-0045), against the real MUC service of each server
//! (`conference.localhost`): real users in a room with the bot configured for it, what the
//! webhook is sent and what the room hears back (here); the bot staying in its rooms
//! through webhook failures, server restarts and kicks (`staying`); rooms joined and left
//! through the API, a taken nick, and the example room bot (`joining`).

mod joining;
mod staying;

use minidom::Element;
use serde_json::Value;

use crate::fixture::{World, DOMAIN, WAIT};
use crate::http_api::api_call;
use crate::support::client::{to_xml, XmppClient};
use crate::support::room_client::{body_text, Joined};
use crate::support::server_process::MUC_SERVICE;
use crate::support::xmpp_server::Server;

/// The nick every test configures for the bot.
const BOT_NICK: &str = "EchoBot";
const ORIGIN_ID_NS: &str = "urn:xmpp:sid:0";

/// A room JID on the test servers' MUC service.
fn room(name: &str) -> String {
    format!("{name}@{MUC_SERVICE}")
}

/// The `rooms` key of a component: each of `rooms` with the nick `BOT_NICK` and the
/// inline-table keys `keys` (e.g. `forward = "mentions"`), then the `extra` keys.
fn rooms_config(rooms: &[&str], keys: &str, extra: &str) -> String {
    let tables: Vec<String> = rooms
        .iter()
        .map(|jid| {
            let more = if keys.is_empty() {
                String::new()
            } else {
                format!(", {keys}")
            };
            format!("{{ jid = \"{jid}\", nick = \"{BOT_NICK}\"{more} }}")
        })
        .collect();
    format!("rooms = [{}]\n{extra}", tables.join(", "))
}

/// Returns once `client` has seen `nick` available in `room`: among the presences its join
/// saw, or arriving after it.
async fn wait_for_occupant(client: &mut XmppClient, joined: &Joined, room: &str, nick: &str) {
    if joined.saw(room, nick) {
        return;
    }
    let presence = client.occupant_presence(room, nick, true, WAIT).await;
    assert!(
        presence.is_some(),
        "{}: {nick} never came into {room}",
        client.full_jid()
    );
}

/// The bot's next groupchat message in `room` as `client` gets it: from `room/<nick>`,
/// with an origin-id; returns its body.
async fn bot_says(client: &mut XmppClient, room: &str, nick: &str) -> String {
    let from = format!("{room}/{nick}");
    let said = client
        .next_groupchat(room, WAIT, |s| s.attr("from") == Some(&from))
        .await
        .unwrap_or_else(|| panic!("{}: nothing from {from} in {WAIT:?}", client.full_jid()));
    assert!(
        said.has_child("origin-id", ORIGIN_ID_NS),
        "the bot's groupchat carries an origin-id: {}",
        to_xml(&said)
    );
    body_text(&said)
}

/// The bodies the webhook was sent, in order.
fn posted_bodies(world: &World) -> Vec<String> {
    let requests = world.webhook().requests();
    requests
        .iter()
        .map(|r| r.json["body"].as_str().unwrap_or("<no body>").to_string())
        .collect()
}

async fn people_talk_in_a_room_without_the_bot(server: Server) {
    let world = World::start_on(server, "").await;
    let lobby = room("lobby");
    let mut alice = world.client("alice").await;
    let mut bob = world.client("bob").await;
    let joined = alice.join_room(&lobby, "alice").await;
    assert!(joined.created, "alice's join creates the room");
    let joined = bob.join_room(&lobby, "bob").await;
    assert!(!joined.created);
    assert!(joined.saw(&lobby, "alice"), "bob sees alice in the room");
    alice.send_groupchat(&lobby, "hello bob").await;
    let heard = bob
        .next_groupchat(&lobby, WAIT, |_| true)
        .await
        .expect("alice's groupchat reaches bob");
    assert_eq!(body_text(&heard), "hello bob");
    assert_eq!(heard.attr("from"), Some(format!("{lobby}/alice").as_str()));
}
on_both_servers!(people_talk_in_a_room_without_the_bot);

async fn a_groupchat_message_is_posted_once_and_the_answer_reaches_the_room(server: Server) {
    let lobby = room("lobby");
    let world = World::start_on(server, &rooms_config(&[&lobby], "", "")).await;
    let mut alice = world.client("alice").await;
    let mut bob = world.client("bob").await;
    let joined = alice.join_room(&lobby, "alice").await;
    assert!(!joined.created, "the bot created the room once connected");
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    bob.join_room(&lobby, "bob").await;

    alice.send_groupchat(&lobby, "EchoBot: hi").await;
    let alice_at = format!("{lobby}/alice");
    let heard = bob
        .next_groupchat(&lobby, WAIT, |s| s.attr("from") == Some(&alice_at))
        .await
        .expect("bob hears alice");
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            bot_says(client, &lobby, BOT_NICK).await,
            "Did you say EchoBot: hi?"
        );
    }
    let posted = world
        .webhook()
        .wait_for(WAIT, |r| r.json["body"] == "EchoBot: hi")
        .await
        .json;
    assert_eq!(posted["kind"], "message");
    assert_eq!(posted["type"], "groupchat");
    assert_eq!(posted["to"], format!("{DOMAIN}/{BOT_NICK}"));
    assert_eq!(posted["from"], alice_at);
    assert_eq!(posted["room"], lobby);
    assert_eq!(posted["mentioned"], true);
    assert_eq!(posted["occupant"]["nick"], "alice");
    // The bot created the room, so it is its owner and sees the real JIDs.
    assert_eq!(posted["occupant"]["jid"], alice.full_jid(), "{posted}");
    let occupant_id = heard
        .get_child("occupant-id", "urn:xmpp:occupant-id:0")
        .and_then(|o| o.attr("id"));
    assert_eq!(
        occupant_id.is_some(),
        server.adds_occupant_id(),
        "{}",
        to_xml(&heard)
    );
    assert_eq!(
        posted["occupant"].get("id").and_then(Value::as_str),
        occupant_id
    );
    assert_eq!(
        posted.get("stanza_id").is_some(),
        server.adds_room_stanza_id(),
        "{posted}"
    );

    bob.send_groupchat(&lobby, "just talking").await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            bot_says(client, &lobby, BOT_NICK).await,
            "Did you say just talking?"
        );
    }
    // The room reflected the bot's first answer to it before bob's message: had the
    // reflection been posted, the conversation would have posted it before bob's.
    assert_eq!(posted_bodies(&world), ["EchoBot: hi", "just talking"]);
    let second = &world.webhook().requests()[1].json;
    assert_eq!(second["mentioned"], false);
    assert_eq!(second["occupant"]["nick"], "bob");
}
on_both_servers!(a_groupchat_message_is_posted_once_and_the_answer_reaches_the_room);

async fn history_and_subject_changes_are_not_posted(server: Server) {
    let lobby = room("history");
    let mut world = World::without_daemon_on(server).await;
    let mut alice = world.user("alice").await;
    assert!(alice.join_room(&lobby, "alice").await.created);
    alice
        .send_groupchat(&lobby, "said before the bot came")
        .await;
    let kept = alice
        .next_groupchat(&lobby, WAIT, |_| true)
        .await
        .expect("the room echoes alice's message: it is in its history now");
    assert_eq!(body_text(&kept), "said before the bot came");
    world.start_daemon(&rooms_config(&[&lobby], "", ""));
    let came = alice.occupant_presence(&lobby, BOT_NICK, true, WAIT).await;
    assert!(came.is_some(), "the bot joins the room alice made");
    alice
        .send(&format!(
            "<message type='groupchat' to='{lobby}'><subject>Topic of the day</subject></message>"
        ))
        .await;
    alice
        .send_groupchat(&lobby, "said after the bot came")
        .await;
    assert_eq!(
        bot_says(&mut alice, &lobby, BOT_NICK).await,
        "Did you say said after the bot came?"
    );
    // History reaches a joining occupant before its own presence, the subject change came
    // before the live message: posted, either would have been posted first.
    assert_eq!(posted_bodies(&world), ["said after the bot came"]);
}
on_both_servers!(history_and_subject_changes_are_not_posted);

async fn forward_mentions_posts_only_what_names_the_bot(server: Server) {
    let lobby = room("quiet");
    let config = rooms_config(&[&lobby], "forward = \"mentions\"", "");
    let world = World::start_on(server, &config).await;
    let mut alice = world.client("alice").await;
    let joined = alice.join_room(&lobby, "alice").await;
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    alice.send_groupchat(&lobby, "nobody in particular").await;
    alice
        .send_groupchat(&lobby, "EchoBotty is some other bot")
        .await;
    let uri = format!("xmpp:{lobby}/{BOT_NICK}");
    alice
        .send(&format!(
            "<message type='groupchat' to='{lobby}'><body>hey you</body>\
             <reference xmlns='urn:xmpp:reference:0' type='mention' uri='{uri}'/></message>"
        ))
        .await;
    alice.send_groupchat(&lobby, "echobot, are you there").await;
    assert_eq!(
        bot_says(&mut alice, &lobby, BOT_NICK).await,
        "Did you say hey you?"
    );
    assert_eq!(
        bot_says(&mut alice, &lobby, BOT_NICK).await,
        "Did you say echobot, are you there?"
    );
    // One room is one conversation: the two before would have been posted first.
    assert_eq!(posted_bodies(&world), ["hey you", "echobot, are you there"]);
    let requests = world.webhook().requests();
    assert!(requests.iter().all(|r| r.json["mentioned"] == true));
}
on_both_servers!(forward_mentions_posts_only_what_names_the_bot);

async fn a_private_message_from_an_occupant_is_answered_privately(server: Server) {
    let lobby = room("whisper");
    let world = World::start_on(server, &rooms_config(&[&lobby], "", "")).await;
    let mut alice = world.client("alice").await;
    let joined = alice.join_room(&lobby, "alice").await;
    wait_for_occupant(&mut alice, &joined, &lobby, BOT_NICK).await;
    let bot = format!("{lobby}/{BOT_NICK}");
    alice
        .send(&format!(
            "<message type='chat' to='{bot}'><body>just between us</body>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        ))
        .await;
    let answer: Element = alice
        .recv_matching(WAIT, |s| {
            s.name() == "message" && s.attr("from") == Some(&bot)
        })
        .await
        .expect("the bot answers alice privately");
    assert_ne!(
        answer.attr("type"),
        Some("groupchat"),
        "{}",
        to_xml(&answer)
    );
    assert_eq!(body_text(&answer), "Did you say just between us?");
    let posted = &world.webhook().requests()[0].json;
    assert_eq!(posted["from"], format!("{lobby}/alice"));
    assert_eq!(posted["room"], lobby);
    assert_eq!(posted["occupant"]["nick"], "alice");
    assert_eq!(
        posted["mentioned"], true,
        "a private message is for the bot"
    );
}
on_both_servers!(a_private_message_from_an_occupant_is_answered_privately);
