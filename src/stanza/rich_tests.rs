//! The rich keys read from a received stanza, with literal XML and JSON: each key (and the
//! one-pass writer's JSON, byte for byte as serde writes it), the stanza-id chosen, the
//! 64-entry bounds and odd input. Writing them: `rich_write_tests.rs`.

use serde_json::{json, Value};

use super::fields::{NoRooms, SendPolicy};
use super::request::{request_body, RoomFields, WebhookRequest};
use super::rich_read::{read_rich, MAX_RICH_ENTRIES};
use super::Inbound;

pub(super) const POLICY: SendPolicy<'static> = SendPolicy {
    domain: "bot.example.com",
    max_depth: crate::config::DEFAULT_MAX_DEPTH,
    rooms: &NoRooms,
};

/// The JSON posted for `xml` (checked byte for byte against serde's), without the five
/// base fields.
fn rich_of(xml: &str) -> Value {
    let inbound = Inbound::from_test_xml(xml);
    let body = request_body(&inbound, None);
    let oracle = WebhookRequest::new(&inbound).to_json();
    assert_eq!(
        String::from_utf8_lossy(&body.json),
        String::from_utf8_lossy(&oracle),
        "{xml}"
    );
    let mut value: Value = serde_json::from_slice(&body.json).expect("valid json");
    let object = value.as_object_mut().expect("an object");
    for base in ["to", "from", "kind", "stanza", "body", "type", "id"] {
        object.remove(base);
    }
    value
}

pub(super) fn message(children: &str) -> String {
    format!(
        "<message from='alice@example.com/phone' to='echo@bot.example.com' type='chat' \
         id='m1'>{children}</message>"
    )
}

#[test]
fn every_message_key_is_read() {
    let xml = message(
        "<body>hi</body>\
         <x xmlns='jabber:x:oob'><url>https://x.example/a.png</url><desc>a cat</desc></x>\
         <x xmlns='jabber:x:oob'><url>https://x.example/second.png</url></x>\
         <reply xmlns='urn:xmpp:reply:0' id='r1' to='bob@example.com/pc'/>\
         <replace xmlns='urn:xmpp:message-correct:0' id='c1'/>\
         <reactions xmlns='urn:xmpp:reactions:0' id='e1'><reaction>👍</reaction><reaction>🎉</reaction></reactions>\
         <retract xmlns='urn:xmpp:message-retract:1' id='t1'/>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/>\
         <thread parent='p1'>th1</thread><subject xml:lang='de'>Betreff</subject><subject>topic</subject>\
         <request xmlns='urn:xmpp:receipts'/><received xmlns='urn:xmpp:receipts' id='d1'/>\
         <markable xmlns='urn:xmpp:chat-markers:0'/><displayed xmlns='urn:xmpp:chat-markers:0' id='s0'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='elsewhere.example' id='forged'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='echo@bot.example.com' id='sid1'/>\
         <origin-id xmlns='urn:xmpp:sid:0' id='o1'/>\
         <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>\
         <nick xmlns='http://jabber.org/protocol/nick'>Alice &amp; co</nick>\
         <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='5'/></fallback>\
         <fallback xmlns='urn:xmpp:fallback:0' for='jabber:x:oob'/>",
    );
    assert_eq!(
        rich_of(&xml),
        json!({
            "oob_url": "https://x.example/a.png",
            "oob": {"url": "https://x.example/a.png", "desc": "a cat"},
            "reply": {"id": "r1", "to": "bob@example.com/pc"},
            "replace": "c1",
            "reactions": {"id": "e1", "reactions": ["👍", "🎉"]},
            "retract": "t1",
            "state": "composing",
            "thread": {"id": "th1", "parent": "p1"},
            "subject": "topic",
            "receipt_request": true,
            "received": "d1",
            "markable": true,
            "displayed": "s0",
            "stanza_id": "sid1",
            "stanza_ids": [
                {"id": "forged", "by": "elsewhere.example"},
                {"id": "sid1", "by": "echo@bot.example.com"},
            ],
            "origin_id": "o1",
            "delay": "2026-01-01T00:00:00Z",
            "nick": "Alice & co",
            "fallback": [
                {"for": "urn:xmpp:reply:0", "start": 0, "end": 5},
                {"for": "jabber:x:oob"},
            ],
        })
    );
}

#[test]
fn presence_keys_and_errors_are_read() {
    let presence = "<presence from='alice@example.com/phone' to='echo@bot.example.com'>\
                    <show>dnd</show><status>busy \"really\"</status><priority>-5</priority>\
                    <nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>";
    assert_eq!(
        rich_of(presence),
        json!({"nick": "Al", "show": "dnd", "status": "busy \"really\"", "priority": -5})
    );
    let error = message(
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error>",
    )
    .replace("type='chat'", "type='error'");
    assert_eq!(
        rich_of(&error),
        json!({"error": {"type": "cancel", "condition": "item-not-found", "text": "gone"}})
    );
    // Not an error message: its <error/> is nobody's business; a presence's message keys
    // and a message's presence keys are not read.
    let chat = message("<error type='cancel'/><show>away</show><priority>1</priority>");
    assert_eq!(rich_of(&chat), json!({}));
}

#[test]
fn a_message_with_nothing_rich_gets_only_the_base_fields() {
    let xml = message("<body>plain</body><x xmlns='urn:example'/>");
    let inbound = Inbound::from_test_xml(&xml);
    let json: Value = serde_json::from_slice(&request_body(&inbound, None).json).expect("json");
    let keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
    // serde_json's map keeps its keys sorted.
    assert_eq!(keys, ["body", "from", "id", "kind", "stanza", "to", "type"]);
}

#[test]
fn stanza_id_is_the_rooms_in_a_room_else_the_recipients() {
    let ids = "<stanza-id xmlns='urn:xmpp:sid:0' by='echo@bot.example.com' id='mine'/>\
               <stanza-id xmlns='urn:xmpp:sid:0' by='lobby@conference.example.com' id='room'/>";
    let direct = Inbound::from_test_xml(&message(ids));
    assert_eq!(read_rich(&direct, None).stanza_id, Some("mine"));
    let from_room = Inbound::from_test_xml(&message(ids));
    assert_eq!(
        read_rich(&from_room, Some("lobby@conference.example.com")).stanza_id,
        Some("room")
    );
    // The recipient's domain stands for it; a `by` anybody else chose is not taken.
    let domain = message("<stanza-id xmlns='urn:xmpp:sid:0' by='BOT.example.com' id='d'/>");
    assert_eq!(rich_of(&domain)["stanza_id"], "d");
    let forged = message("<stanza-id xmlns='urn:xmpp:sid:0' by='evil.example' id='f'/>");
    assert_eq!(rich_of(&forged).get("stanza_id"), None);
    // With the room fields, the room's stanza-id follows them, once.
    let inbound = Inbound::from_test_xml(&message(ids));
    let room = RoomFields {
        room: "lobby@conference.example.com".into(),
        nick: Some("alice".into()),
        occupant_id: None,
        occupant_jid: None,
        mentioned: Some(true),
    };
    let json = String::from_utf8(request_body(&inbound, Some(&room)).json).expect("utf-8");
    assert_eq!(json.matches("\"stanza_id\":").count(), 1, "{json}");
    assert!(
        json.contains(",\"mentioned\":true,\"stanza_id\":\"room\","),
        "{json}"
    );
}

#[test]
fn arrays_read_hold_at_most_64_entries() {
    for count in [MAX_RICH_ENTRIES, MAX_RICH_ENTRIES + 1, 1000] {
        let reactions = "<reaction>x</reaction>".repeat(count);
        let sids = "<stanza-id xmlns='urn:xmpp:sid:0' by='a' id='s'/>".repeat(count);
        let fallbacks = "<fallback xmlns='urn:xmpp:fallback:0' for='f'><body start='0' end='1'/>\
                         </fallback>"
            .repeat(count);
        let xml = message(&format!(
            "<reactions xmlns='urn:xmpp:reactions:0' id='r'>{reactions}</reactions>{sids}{fallbacks}"
        ));
        let rich = rich_of(&xml);
        for (key, list) in [
            ("reactions", &rich["reactions"]["reactions"]),
            ("stanza_ids", &rich["stanza_ids"]),
            ("fallback", &rich["fallback"]),
        ] {
            let len = list.as_array().expect("an array").len();
            assert_eq!(len, count.min(MAX_RICH_ENTRIES), "{key} of {count}");
        }
    }
}

#[test]
fn odd_rich_elements_are_read_without_a_panic() {
    let deep = format!(
        "<x xmlns='jabber:x:oob'><url>{}u{}</url></x>",
        "<a>".repeat(60),
        "</a>".repeat(60)
    );
    let odd = [
        // Wrong namespaces, missing ids and stamps, bad numbers, empty elements.
        "<reply id='r'/><reply xmlns='urn:xmpp:reply:0'/><replace xmlns='urn:wrong' id='c'/>",
        "<reactions xmlns='urn:xmpp:reactions:0'><reaction>x</reaction></reactions>",
        "<typing xmlns='http://jabber.org/protocol/chatstates'/><delay xmlns='urn:xmpp:delay'/>",
        "<fallback xmlns='urn:xmpp:fallback:0'><body start='-1' end='99999999999'/></fallback>",
        "<x xmlns='jabber:x:oob'/><thread/><subject/><nick xmlns='http://jabber.org/protocol/nick'/>",
        &deep,
    ];
    for children in odd {
        let rich = rich_of(&message(children));
        assert!(
            rich.get("reply").is_none() && rich.get("replace").is_none(),
            "{rich}"
        );
        assert!(
            rich.get("reactions").is_none() && rich.get("state").is_none(),
            "{rich}"
        );
    }
    let bad_priority = "<presence from='a@b/c'><priority>high</priority><show/></presence>";
    assert_eq!(rich_of(bad_priority), json!({"show": ""}));
    // Text in pieces (CDATA) is read whole; a URL's text is its own, not its children's.
    let pieces = message("<subject>a<![CDATA[<b>]]>c</subject>");
    assert_eq!(rich_of(&pieces)["subject"], "a<b>c");
    assert_eq!(rich_of(&message(&deep))["oob_url"], "");
}
