//! The rich keys written into a described stanza (a webhook reply, `POST /v1/send`), with
//! literal JSON and XML: each key, the attachment's URL as body, the quoted fallback, wrong
//! types named, the 64-reaction bound, and the round trip through the reader.

use serde_json::{json, Map, Value};

use super::fields::{stanza_from_fields, Defaults, ReplyError};
use super::request::Quoted;
use super::rich_read::{read_rich, MAX_RICH_ENTRIES};
use super::rich_tests::{message, POLICY};
use super::{Inbound, Kind};
use crate::xml::write::write_stanza;

/// The described stanza for `reply`, written as XML.
fn written(reply: Value, quoted: Option<&str>) -> Result<String, ReplyError> {
    described(reply, quoted).map(|s| write_stanza(&s))
}

/// The described stanza for `reply`.
fn described(reply: Value, quoted: Option<&str>) -> Result<minidom::Element, ReplyError> {
    let Value::Object(fields) = reply else {
        panic!("an object");
    };
    let defaults = Defaults {
        kind: Kind::Message,
        to: Some("alice@example.com/phone"),
        from: "echo@bot.example.com",
        iq_type: "result",
        iq_id: None,
        quoted: quoted.map_or(Quoted::Nothing, Quoted::Text),
    };
    stanza_from_fields(&fields, &defaults, &POLICY)
}

/// Fuzz finding 10: `{"body": ""}` made a `<body>` holding an empty text node, which the
/// element read back from what is written (`<body/>`) does not have.
#[test]
fn an_empty_text_key_is_an_empty_element_that_reads_back_the_same() {
    let stanza = described(json!({"body": "", "subject": "", "nick": ""}), None).expect("built");
    let xml = write_stanza(&stanza);
    assert_eq!(
        xml,
        "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
         <body/><subject/><nick xmlns='http://jabber.org/protocol/nick'/></message>"
    );
    let read = crate::xml::document::parse_stanza(&xml, crate::config::DEFAULT_MAX_DEPTH)
        .expect("reads back");
    assert!(read == stanza, "{read:?}\n{stanza:?}");
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

#[test]
fn a_webhook_reply_quotes_the_message_it_answers_and_names_a_wrong_key() {
    use super::reply::{answer, answer_quoting, WebhookOutcome};
    let received = Inbound::from_test_xml(&message("<body>ping</body>"));
    let outcome = |body: &str| WebhookOutcome::Response {
        status: 200,
        content_type: Some("application/json".into()),
        body: body.as_bytes().to_vec(),
    };
    let quoting = r#"{"body": "pong", "reply": {"id": "m1"}, "fallback": true}"#;
    // The quote is read back from the request POSTed for the message, as the dispatcher
    // does.
    let request = super::request::request_body(&received, None);
    let quoted = Quoted::Request(&request.json);
    let answered = answer_quoting(received.head(), quoted, &outcome(quoting), &POLICY);
    let xml = write_stanza(&answered.stanzas[0]);
    assert!(xml.contains("<body>&gt; ping\npong</body>"), "{xml}");
    assert!(xml.contains("<body end='7' start='0'/>"), "{xml}");
    // A wrong type: internal-server-error to the sender, and the problem names the key.
    let answered = answer(received.head(), &outcome(r#"{"state": 1}"#), &POLICY);
    assert_eq!(
        answered.problem,
        Some(ReplyError::WrongType {
            field: "state",
            expected: "a string"
        })
    );
    let xml = write_stanza(&answered.stanzas[0]);
    assert!(
        xml.contains("type='error'") && xml.contains("internal-server-error"),
        "{xml}"
    );
}
