//! Issue 17, group chats (XEP-0045), against the real MUC service of each server
//! (`conference.localhost`): real users in a room, the bot configured for it or joined
//! through the API, and what the webhook is sent and answers.

use crate::fixture::{World, WAIT};
use crate::support::room_client::body_text;
use crate::support::xmpp_server::{Server, MUC_SERVICE};

/// A room JID on the test servers' MUC service.
fn room(name: &str) -> String {
    format!("{name}@{MUC_SERVICE}")
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
    eprintln!("[{}] bob got: {}", server.name(), String::from(&heard));
    assert_eq!(body_text(&heard), "hello bob");
    assert_eq!(heard.attr("from"), Some(format!("{lobby}/alice").as_str()));
}
on_both_servers!(people_talk_in_a_room_without_the_bot);
