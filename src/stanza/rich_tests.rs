//! The rich keys both ways, with literal XML and JSON: each key read from a received stanza
//! (and written by the one-pass writer exactly as serde writes it), each written into a
//! described stanza, wrong types named, the 64-entry bounds, odd input, and the round trip.

use serde_json::{json, Map, Value};

use super::fields::{stanza_from_fields, Defaults, NoRooms, ReplyError, SendPolicy};
use super::request::{request_body, RoomFields, WebhookRequest};
use super::rich_read::{read_rich, MAX_RICH_ENTRIES};
use super::{Inbound, Kind};
use crate::xml::write::write_stanza;

const POLICY: SendPolicy<'static> = SendPolicy {
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

fn message(children: &str) -> String {
    format!(
        "<message from='alice@example.com/phone' to='echo@bot.example.com' type='chat' \
         id='m1'>{children}</message>"
    )
}

/// The described stanza for `reply`, written as XML.
fn written(reply: Value, quoted: Option<&str>) -> Result<String, ReplyError> {
    let Value::Object(fields) = reply else {
        panic!("an object");
    };
    let defaults = Defaults {
        kind: Kind::Message,
        to: Some("alice@example.com/phone"),
        from: "echo@bot.example.com",
        iq_type: "result",
        iq_id: None,
        quoted,
    };
    stanza_from_fields(&fields, &defaults, &POLICY).map(|s| write_stanza(&s))
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

#[test]
fn every_message_key_is_written() {
    let reply = json!({
        "body": "hi",
        "oob": {"url": "https://x.example/a.png", "desc": "a cat"},
        "reply": {"id": "r1", "to": "bob@example.com/pc"},
        "replace": "c1",
        "reactions": {"id": "e1", "reactions": ["👍"]},
        "retract": "t1",
        "state": "active",
        "thread": {"id": "th1", "parent": "p1"},
        "subject": "topic",
        "receipt_request": true,
        "received": "d1",
        "markable": true,
        "displayed": "s0",
        "nick": "Bot",
        // Read-only and unknown keys are ignored.
        "stanza_id": "x", "delay": "y", "origin_id": "z", "error": {}, "unknown": [1],
    });
    assert_eq!(
        written(reply, None).expect("written"),
        "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
         <body>hi</body>\
         <x xmlns='jabber:x:oob'><url>https://x.example/a.png</url><desc>a cat</desc></x>\
         <reply xmlns='urn:xmpp:reply:0' id='r1' to='bob@example.com/pc'/>\
         <replace xmlns='urn:xmpp:message-correct:0' id='c1'/>\
         <retract xmlns='urn:xmpp:message-retract:1' id='t1'/>\
         <received xmlns='urn:xmpp:receipts' id='d1'/>\
         <displayed xmlns='urn:xmpp:chat-markers:0' id='s0'/>\
         <reactions xmlns='urn:xmpp:reactions:0' id='e1'><reaction>👍</reaction></reactions>\
         <active xmlns='http://jabber.org/protocol/chatstates'/>\
         <thread parent='p1'>th1</thread><subject>topic</subject>\
         <request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>\
         <nick xmlns='http://jabber.org/protocol/nick'>Bot</nick></message>"
    );
    let plain_thread = json!({"thread": "th2", "body": "b"});
    assert!(written(plain_thread, None)
        .expect("written")
        .contains("<thread>th2</thread>"));
}

#[test]
fn an_attachment_without_a_body_has_its_url_as_body() {
    let xml = written(json!({"oob_url": "https://x.example/a.png"}), None).expect("written");
    assert!(
        xml.contains("<body>https://x.example/a.png</body><x xmlns='jabber:x:oob'><url>"),
        "{xml}"
    );
    let xml = written(json!({"oob": {"url": "https://x.example/b"}}), None).expect("written");
    assert!(xml.contains("<body>https://x.example/b</body>"), "{xml}");
    let xml = written(
        json!({"oob_url": "https://x.example/c", "body": "look"}),
        None,
    );
    assert!(xml.expect("written").contains("<body>look</body>"));
}

#[test]
fn a_fallback_reply_quotes_the_answered_body() {
    let reply = json!({"body": "yes", "reply": {"id": "m1"}, "fallback": true});
    let xml = written(reply.clone(), Some("héllo\nwörld")).expect("written");
    // "> héllo\n> wörld\n" is 16 code points (18 bytes).
    assert_eq!(
        xml,
        "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
         <body>&gt; héllo\n&gt; wörld\nyes</body><reply xmlns='urn:xmpp:reply:0' id='m1'/>\
         <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>\
         <body end='16' start='0'/></fallback></message>"
    );
    // `reply.quote` wins over the answered body; without `fallback` nothing is quoted.
    let own = json!({"body": "b", "reply": {"id": "m1", "quote": "q"}, "fallback": true});
    assert!(written(own, Some("answered"))
        .expect("written")
        .contains("<body>&gt; q\nb</body>"));
    let none = written(
        json!({"body": "b", "reply": {"id": "m1"}}),
        Some("answered"),
    );
    assert!(!none.expect("written").contains("fallback"));
}

#[test]
fn presence_keys_are_written() {
    let reply = json!({"kind": "presence", "show": "away", "status": "out", "priority": -1});
    assert_eq!(
        written(reply, None).expect("written"),
        "<presence from='echo@bot.example.com' to='alice@example.com/phone'>\
         <show>away</show><status>out</status><priority>-1</priority></presence>"
    );
}

#[test]
fn a_key_of_the_wrong_type_is_refused_and_named() {
    let wrong = |field, expected| Err(ReplyError::WrongType { field, expected });
    let too_many: Vec<_> = (0..=MAX_RICH_ENTRIES).map(|i| i.to_string()).collect();
    let cases = [
        (json!({"oob_url": 1}), wrong("oob_url", "a string")),
        (json!({"oob": "u"}), wrong("oob", "an object")),
        (
            json!({"oob": {"desc": "d"}}),
            Err(ReplyError::MissingField("oob.url")),
        ),
        (
            json!({"reply": {"id": ["x"]}}),
            wrong("reply.id", "a string"),
        ),
        (
            json!({"reply": {"id": "x", "quote": 1}}),
            wrong("reply.quote", "a string"),
        ),
        (json!({"replace": true}), wrong("replace", "a string")),
        (
            json!({"reactions": ["👍"]}),
            wrong("reactions", "an object"),
        ),
        (
            json!({"reactions": {"id": "r", "reactions": [1]}}),
            wrong("reactions.reactions", "an array of at most 64 strings"),
        ),
        (
            json!({"reactions": {"id": "r", "reactions": too_many}}),
            wrong("reactions.reactions", "an array of at most 64 strings"),
        ),
        (
            json!({"state": "typing"}),
            wrong("state", "one of active, composing, paused, inactive, gone"),
        ),
        (
            json!({"thread": 5}),
            wrong("thread", "a string or an object {id, parent}"),
        ),
        (
            json!({"receipt_request": "yes"}),
            wrong("receipt_request", "true or false"),
        ),
        (json!({"markable": 1}), wrong("markable", "true or false")),
        (
            json!({"fallback": "true"}),
            wrong("fallback", "true or false"),
        ),
        (json!({"nick": {}}), wrong("nick", "a string")),
        (
            json!({"subject": "\u{1}"}),
            Err(ReplyError::NotXmlText("subject")),
        ),
        (
            json!({"kind": "presence", "show": "busy"}),
            wrong("show", "one of away, chat, dnd, xa"),
        ),
        (
            json!({"kind": "presence", "priority": 128}),
            wrong("priority", "an integer from -128 to 127"),
        ),
    ];
    for (reply, expected) in cases {
        assert_eq!(written(reply.clone(), None), expected, "{reply}");
    }
    let message = ReplyError::WrongType {
        field: "reactions",
        expected: "an object",
    }
    .to_string();
    assert_eq!(message, "field 'reactions' must be an object");
    // At the bound, 64 reactions are written.
    let at_bound: Vec<_> = (0..MAX_RICH_ENTRIES).map(|i| i.to_string()).collect();
    let xml = written(
        json!({"reactions": {"id": "r", "reactions": at_bound}}),
        None,
    );
    assert_eq!(xml.expect("written").matches("<reaction>").count(), 64);
    // A raw `stanza` wins over every key, whatever their types.
    let raw = json!({"stanza": "<message to='a@b'/>", "reactions": 1, "state": "typing"});
    assert_eq!(
        written(raw, None).expect("written"),
        "<message from='echo@bot.example.com' to='a@b'/>"
    );
}

/// Each writable key, as the reader gives it back.
#[test]
fn what_is_written_reads_back_the_same() {
    let message_keys = json!({
        "oob_url": "https://x.example/a.png",
        "oob": {"url": "https://x.example/a.png", "desc": "a <cat> & \"dog\""},
        "reply": {"id": "r1", "to": "bob@example.com/pc"},
        "replace": "c1",
        "reactions": {"id": "e1", "reactions": ["👍", "🎉", "❤\u{fe0f}"]},
        "retract": "t1",
        "state": "gone",
        "thread": {"id": "th1", "parent": "p1"},
        "subject": "topic\nline",
        "receipt_request": true,
        "received": "d1",
        "markable": true,
        "displayed": "s0",
        "nick": "Bot",
    });
    let presence_keys = json!({"nick": "N", "show": "chat", "status": "s", "priority": 127});
    for (kind, keys) in [("message", message_keys), ("presence", presence_keys)] {
        let mut fields: Map<String, Value> = keys.as_object().expect("object").clone();
        fields.insert("kind".into(), json!(kind));
        let xml = written(Value::Object(fields), None).expect("written");
        let inbound = Inbound::from_test_xml(&xml);
        let read = serde_json::to_value(read_rich(&inbound, None)).expect("json");
        assert_eq!(read, keys, "{xml}");
    }
}
