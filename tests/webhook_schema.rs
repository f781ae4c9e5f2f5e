//! docs/webhook.schema.json checked by an independent validator (python's `jsonschema`,
//! Draft 2020-12): its own examples, and the request bodies the library writes for literal
//! stanzas carrying every rich key, so that the schema and the code cannot drift apart.
//! Second tier: it needs python3 with `jsonschema` (scripts/test installs it).
#![cfg(feature = "system-tests")]

use std::io::Write as _;
use std::process::{Command, Stdio};

use component_http::config::DEFAULT_MAX_DEPTH;
use component_http::stanza::fields::{stanza_from_fields, Defaults, NoRooms, SendPolicy};
use component_http::stanza::request::{request_body, Quoted, RoomFields};
use component_http::stanza::{Inbound, Kind};
use component_http::xml::document::parse_stanza;
use serde_json::{json, Value};

const SCHEMA: &str = include_str!("../docs/webhook.schema.json");

/// Received stanzas that, between them, carry every key the schema's request lists.
const STANZAS: &[&str] = &[
    "<message to='echo@bot.example.com' from='alice@example.com/phone' type='chat' id='m1'>\
     <body>Hello</body></message>",
    "<message to='echo@bot.example.com' from='alice@example.com/phone' type='chat' id='m2'>\
     <body>&gt; Hello&#10;Look at this</body>\
     <x xmlns='jabber:x:oob'><url>https://upload.example.com/a/cat.png</url><desc>a cat</desc></x>\
     <reply xmlns='urn:xmpp:reply:0' id='m1' to='echo@bot.example.com'/>\
     <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='8'/></fallback>\
     <request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>\
     <active xmlns='http://jabber.org/protocol/chatstates'/><thread parent='t0'>t1</thread>\
     <origin-id xmlns='urn:xmpp:sid:0' id='o2'/>\
     <stanza-id xmlns='urn:xmpp:sid:0' by='echo@bot.example.com' id='sid-2'/>\
     <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>\
     <nick xmlns='http://jabber.org/protocol/nick'>Alice</nick></message>",
    "<message to='echo@bot.example.com' from='alice@example.com/phone' type='chat' id='m3'>\
     <reactions xmlns='urn:xmpp:reactions:0' id='r1'><reaction>👍</reaction><reaction>🎉</reaction>\
     </reactions><store xmlns='urn:xmpp:hints'/></message>",
    "<message to='echo@bot.example.com' from='alice@example.com/phone' type='chat' id='m4'>\
     <body>Hello, corrected</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>",
    "<message to='echo@bot.example.com' from='alice@example.com/phone' type='chat' id='m5'>\
     <retract xmlns='urn:xmpp:message-retract:1' id='m4'/><received xmlns='urn:xmpp:receipts' id='r9'/>\
     <displayed xmlns='urn:xmpp:chat-markers:0' id='r9'/></message>",
    "<message to='echo@bot.example.com' from='alice@example.com/phone' type='chat' id='m6'>\
     <subject>Weekly call</subject></message>",
    "<message to='echo@bot.example.com' from='alice@example.com' type='error' id='r7'>\
     <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
     <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No such user</text></error></message>",
    "<presence to='echo@bot.example.com' from='alice@example.com/phone'><show>away</show>\
     <status>Out for lunch</status><priority>5</priority></presence>",
];

/// The request body the daemon POSTs for `xml`, with `room`'s fields when given.
fn posted(xml: &str, room: Option<&RoomFields>) -> Value {
    let element = parse_stanza(xml, DEFAULT_MAX_DEPTH).expect("a literal stanza");
    let inbound = Inbound::new(element).expect("an inbound stanza");
    serde_json::from_slice(&request_body(&inbound, room).json).expect("JSON")
}

fn library_requests() -> Vec<Value> {
    let mut bodies: Vec<Value> = STANZAS.iter().map(|xml| posted(xml, None)).collect();
    let room = RoomFields {
        room: "lobby@conference.example.com".into(),
        nick: Some("alice".into()),
        occupant_id: Some("occ-1".into()),
        occupant_jid: Some("alice@example.com/phone".into()),
        mentioned: Some(true),
    };
    bodies.push(posted(
        "<message to='echo@bot.example.com/Echo' from='lobby@conference.example.com/alice' \
         type='groupchat' id='g1'><body>Echo: hi</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='lobby@conference.example.com' id='room-sid'/>\
         <occupant-id xmlns='urn:xmpp:occupant-id:0' id='occ-1'/></message>",
        Some(&room),
    ));
    bodies
}

/// Validates each instance against `#/$defs/<definition>` with python's jsonschema, and
/// the schema itself against the 2020-12 meta-schema. Returns one verdict per instance:
/// `None` when valid, else the validator's first message.
fn validate(definition: &str, instances: &[Value]) -> Vec<Option<String>> {
    const SCRIPT: &str = r##"
import json, sys
from jsonschema import Draft202012Validator
given = json.load(sys.stdin)
schema = given["schema"]
Draft202012Validator.check_schema(schema)
root = dict(schema)
root.pop("anyOf", None)
root["$ref"] = "#/$defs/" + given["definition"]
validator = Draft202012Validator(root)
verdicts = []
for instance in given["instances"]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    verdicts.append(None if not errors else errors[0].message + " at " + json.dumps(list(errors[0].path)))
json.dump(verdicts, sys.stdout)
"##;
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let input = json!({"schema": schema, "definition": definition, "instances": instances});
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test installs it, with jsonschema)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("written to python");
    let output = child.wait_with_output().expect("python3 finished");
    assert!(
        output.status.success(),
        "python3 jsonschema failed (is jsonschema installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("verdicts")
}

fn examples(definition: &str) -> Vec<Value> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let examples = schema["$defs"][definition]["examples"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(examples.len() >= 5, "{definition} has too few examples");
    examples
}

fn assert_all_valid(definition: &str, instances: &[Value]) {
    for (instance, verdict) in instances.iter().zip(validate(definition, instances)) {
        assert_eq!(verdict, None, "{definition}: {instance}");
    }
}

#[test]
fn the_schemas_examples_are_valid() {
    assert_all_valid("request", &examples("request"));
    assert_all_valid("reply", &examples("reply"));
    // The validator does refuse: a chat state no XEP has, a request without its stanza.
    let refused = validate(
        "reply",
        &[json!({"state": "typing"}), json!({"priority": 200})],
    );
    assert!(refused.iter().all(Option::is_some), "{refused:?}");
    let refused = validate(
        "request",
        &[json!({"to": "a", "from": "b", "kind": "message"})],
    );
    assert!(refused[0].is_some(), "{refused:?}");
}

#[test]
fn the_librarys_request_bodies_are_valid_and_use_every_key() {
    let bodies = library_requests();
    assert_all_valid("request", &bodies);
    // Each key the library writes is one the schema lists, and each it lists is written
    // for one of the stanzas.
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let listed = schema["$defs"]["request"]["properties"]
        .as_object()
        .expect("request properties");
    let mut written = std::collections::BTreeSet::new();
    for body in &bodies {
        for key in body.as_object().expect("an object").keys() {
            assert!(
                listed.contains_key(key),
                "{key} is not in the schema: {body}"
            );
            written.insert(key.clone());
        }
    }
    let missing: Vec<_> = listed.keys().filter(|k| !written.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "never written for the test stanzas: {missing:?}"
    );
}

#[test]
fn the_schemas_reply_examples_are_accepted_by_the_library() {
    let policy = SendPolicy {
        domain: "bot.example.com",
        max_depth: DEFAULT_MAX_DEPTH,
        rooms: &NoRooms,
    };
    let defaults = Defaults {
        kind: Kind::Message,
        to: Some("alice@example.com/phone"),
        from: "echo@bot.example.com",
        iq_type: "result",
        iq_id: Some("q1"),
        quoted: Quoted::Text("Hello"),
    };
    for example in examples("reply") {
        let fields = example.as_object().expect("an object");
        if let Err(error) = stanza_from_fields(fields, &defaults, &policy) {
            panic!("{example}: {error}");
        }
    }
}
