//! The contract's group-chat rules for what goes back (docs/contract.md, "Group chats"):
//! a groupchat message is answered in its room from the JID that joined it, with an
//! origin-id; no other JID of the domain may speak there; no error goes to a room.

use serde_json::json;

use super::*;
use crate::stanza::fields::{stanza_from_fields, Defaults, JoinedRooms};
use crate::stanza::Inbound;
use crate::xml::write::write_stanza;

const ROOM: &str = "lobby@conference.example.com";
const JOINED: &str = "bot.example.com/EchoBot";

/// One room, joined from `bot.example.com/EchoBot`.
#[derive(Debug)]
struct OneRoom;

impl JoinedRooms for OneRoom {
    fn occupant_address(&self, room: &str) -> Option<String> {
        room.eq_ignore_ascii_case(ROOM).then(|| JOINED.to_string())
    }

    fn new_origin_id(&self) -> String {
        "origin-1".into()
    }
}

const POLICY: SendPolicy<'static> = SendPolicy {
    domain: "bot.example.com",
    max_depth: crate::config::DEFAULT_MAX_DEPTH,
    rooms: &OneRoom,
};

fn groupchat() -> Inbound {
    let mut inbound = Inbound::from_test_xml(&format!(
        "<message from='{ROOM}/alice' to='{JOINED}' type='groupchat' id='g1'>\
         <body>EchoBot: ping</body></message>"
    ));
    inbound.mark_from_room();
    inbound
}

fn reply(inbound: &Inbound, body: serde_json::Value) -> Answer {
    let outcome = WebhookOutcome::Response {
        status: 200,
        content_type: Some("application/json".into()),
        body: body.to_string().into_bytes(),
    };
    answer(inbound, &outcome, &POLICY)
}

#[test]
fn a_groupchat_message_is_answered_in_its_room() {
    let answer = reply(&groupchat(), json!({ "body": "pong" }));
    assert_eq!(
        answer.stanzas.iter().map(write_stanza).collect::<Vec<_>>(),
        [format!(
            "<message from='{JOINED}' to='{ROOM}' type='groupchat'><body>pong</body>\
             <origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/></message>"
        )]
    );
}

#[test]
fn a_private_message_from_an_occupant_is_answered_privately() {
    let mut inbound = Inbound::from_test_xml(&format!(
        "<message from='{ROOM}/alice' to='{JOINED}' type='chat'><body>psst</body></message>"
    ));
    inbound.mark_from_room();
    let answer = reply(&inbound, json!({ "body": "hush" }));
    let stanza = &answer.stanzas[0];
    assert_eq!(stanza.attr("to"), Some(&*format!("{ROOM}/alice")));
    assert_eq!(stanza.attr("from"), Some(JOINED));
    assert_eq!(stanza.attr("type"), Some("chat"));
    assert!(stanza.get_child("origin-id", "urn:xmpp:sid:0").is_none());
}

#[test]
fn another_jid_of_the_domain_may_not_speak_in_the_room() {
    let answer = reply(
        &groupchat(),
        json!({ "from": "other@bot.example.com", "body": "me too" }),
    );
    assert!(
        matches!(answer.problem, Some(ReplyError::NotTheOccupant { .. })),
        "{:?}",
        answer.problem
    );
    // The refusal is an error to the room: taken out before it is written.
    let mut stanzas = answer.stanzas;
    assert_eq!(
        keep_errors_from_rooms(&mut stanzas, groupchat().head()),
        ["not-allowed"]
    );
    assert!(stanzas.is_empty());
}

#[test]
fn no_error_goes_back_to_a_room() {
    for outcome in [
        WebhookOutcome::TimedOut,
        WebhookOutcome::ConnectionFailed,
        WebhookOutcome::Response {
            status: 503,
            content_type: None,
            body: Vec::new(),
        },
    ] {
        let inbound = groupchat();
        let mut stanzas = answer(&inbound, &outcome, &POLICY).stanzas;
        let withheld = keep_errors_from_rooms(&mut stanzas, inbound.head());
        assert_eq!(withheld.len(), 1, "{outcome:?}");
        assert!(stanzas.is_empty(), "{outcome:?}");
    }
    // A webhook's own error stanza, whatever it names, is withheld with a known label.
    let inbound = groupchat();
    let mut stanzas = reply(
        &inbound,
        json!({ "stanza": "<message type='error'><error type='cancel'><made-up/></error></message>" }),
    )
    .stanzas;
    assert_eq!(
        keep_errors_from_rooms(&mut stanzas, inbound.head()),
        ["undefined-condition"]
    );
    // Elsewhere, errors go as always.
    let direct = Inbound::from_test_xml(
        "<message from='alice@example.com/a' to='echo@bot.example.com'><body>x</body></message>",
    );
    let mut stanzas = answer(&direct, &WebhookOutcome::TimedOut, &POLICY).stanzas;
    assert!(keep_errors_from_rooms(&mut stanzas, direct.head()).is_empty());
    assert_eq!(stanzas.len(), 1);
}

#[test]
fn a_send_to_a_room_is_a_groupchat_message_from_the_jid_that_joined() {
    let defaults = Defaults {
        kind: Kind::Message,
        to: None,
        from: "bot.example.com",
        iq_type: "get",
        iq_id: None,
        quoted: crate::stanza::request::Quoted::Nothing,
    };
    let send = |value: serde_json::Value| {
        let fields = value.as_object().cloned().expect("object");
        stanza_from_fields(&fields, &defaults, &POLICY)
    };
    let sent = send(json!({ "to": ROOM, "body": "hi" })).expect("sent");
    assert_eq!(sent.attr("type"), Some("groupchat"));
    assert_eq!(sent.attr("from"), Some(JOINED));
    let private = send(json!({ "to": format!("{ROOM}/alice"), "body": "hi" })).expect("sent");
    assert_eq!(private.attr("type"), Some("chat"));
    assert_eq!(private.attr("from"), Some(JOINED));
    let elsewhere = send(json!({ "to": "alice@example.com", "body": "hi" })).expect("sent");
    assert_eq!(elsewhere.attr("type"), Some("chat"));
    assert_eq!(elsewhere.attr("from"), Some("bot.example.com"));
    let spoofed = send(json!({ "to": ROOM, "from": "x@bot.example.com", "body": "hi" }));
    assert!(matches!(spoofed, Err(ReplyError::NotTheOccupant { .. })));
}
