//! The `file` field of a webhook reply, as literal JSON in: the stanzas sent at once, the
//! file to upload, the message that carries its URL, and each bad `file` named.

use super::*;
use crate::stanza::fields::NoRooms;
use crate::stanza::reply::{answer, WebhookOutcome};
use crate::stanza::Inbound;
use crate::xml::write::write_stanza;

const POLICY: SendPolicy<'static> = SendPolicy {
    domain: "bot.example.com",
    max_depth: crate::config::DEFAULT_MAX_DEPTH,
    rooms: &NoRooms,
};
const CHAT: &str = "<message from='alice@example.com/phone' to='echo@bot.example.com' \
                    type='chat' id='m1'><body>hello</body></message>";
const IQ: &str = "<iq from='alice@example.com/phone' to='echo@bot.example.com' \
                  type='get' id='q1'><query xmlns='urn:example'/></iq>";

fn reply(original: &str, body: serde_json::Value) -> crate::stanza::reply::Answer {
    let outcome = WebhookOutcome::Response {
        status: 200,
        content_type: Some("application/json".into()),
        body: body.to_string().into_bytes(),
    };
    answer(Inbound::from_test_xml(original).head(), &outcome, &POLICY)
}

#[test]
fn a_file_without_body_is_carried_by_the_reply_itself() {
    let answer = reply(
        CHAT,
        serde_json::json!({"file": {"name": "a.png", "content_type": "image/png", "data": "iVBORw=="}}),
    );
    assert!(answer.stanzas.is_empty(), "nothing goes before the upload");
    assert_eq!(answer.problem, None);
    let file = answer.file.expect("a file to upload");
    assert_eq!(file.attachment.name, "a.png");
    assert_eq!(file.attachment.content_type, "image/png");
    assert_eq!(file.attachment.data, b"\x89PNG");
    assert_eq!(
        write_stanza(&file.message_with_url("https://up.example.com/a.png")),
        "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
         <body>https://up.example.com/a.png</body>\
         <x xmlns='jabber:x:oob'><url>https://up.example.com/a.png</url></x></message>"
    );
}

#[test]
fn a_body_goes_first_in_a_message_of_its_own() {
    let answer = reply(
        CHAT,
        serde_json::json!({"body": "Here it is", "file": {"name": "a.txt", "data": "aGk="}}),
    );
    let sent: Vec<String> = answer.stanzas.iter().map(write_stanza).collect();
    assert_eq!(
        sent,
        [
            "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
          <body>Here it is</body></message>"
        ]
    );
    let file = answer.file.expect("a file to upload");
    assert_eq!(file.attachment.content_type, "application/octet-stream");
    assert_eq!(file.attachment.data, b"hi");
    assert_eq!(
        write_stanza(&file.message_with_url("http://u/a.txt")),
        "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
         <body>http://u/a.txt</body><x xmlns='jabber:x:oob'><url>http://u/a.txt</url></x></message>"
    );
}

#[test]
fn stanza_wins_over_file() {
    let answer = reply(
        CHAT,
        serde_json::json!({"stanza": "<message><body>raw</body></message>", "file": {"bad": 1}}),
    );
    assert_eq!(answer.stanzas.len(), 1);
    assert!(answer.file.is_none());
    assert_eq!(answer.problem, None);
}

#[test]
fn each_bad_file_is_named_and_the_sender_gets_an_internal_server_error() {
    let cases = [
        (serde_json::json!("a.png"), "field 'file' must be an object"),
        (
            serde_json::json!({"data": "aGk="}),
            "field 'file.name' is required",
        ),
        (
            serde_json::json!({"name": "a"}),
            "field 'file.data' is required",
        ),
        (
            serde_json::json!({"name": 3, "data": "aGk="}),
            "field 'file.name' must be a string",
        ),
        (
            serde_json::json!({"name": "../x", "data": "aGk="}),
            "field 'file.name' must be 1 to 255",
        ),
        (
            serde_json::json!({"name": "", "data": "aGk="}),
            "field 'file.name' must be 1 to 255",
        ),
        (
            serde_json::json!({"name": "a\nb", "data": "aGk="}),
            "field 'file.name' must be 1 to 255",
        ),
        (
            serde_json::json!({"name": "a", "data": "not base64!"}),
            "field 'file.data' is not base64",
        ),
        (
            serde_json::json!({"name": "a", "content_type": "png", "data": "aGk="}),
            "field 'file.content_type' is not a media type",
        ),
    ];
    for (file, expected) in cases {
        let answer = reply(CHAT, serde_json::json!({ "file": file }));
        let problem = answer.problem.expect("refused").to_string();
        assert!(problem.starts_with(expected), "{problem} for {file}");
        assert!(answer.file.is_none());
        let error = write_stanza(&answer.stanzas[0]);
        assert!(error.contains("<internal-server-error"), "{error}");
    }
}

#[test]
fn a_file_is_only_for_a_message() {
    let answer = reply(
        IQ,
        serde_json::json!({"file": {"name": "a", "data": "aGk="}}),
    );
    assert_eq!(
        answer.problem.expect("refused").to_string(),
        "field 'file' is only for a message, not a iq"
    );
    assert!(answer.file.is_none());
    assert_eq!(
        answer.stanzas.len(),
        1,
        "the iq still gets exactly one answer"
    );
    assert_eq!(answer.stanzas[0].attr("type"), Some("error"));
}

#[test]
fn media_types() {
    for good in [
        "image/png",
        "text/plain; charset=utf-8",
        "application/vnd.a+json",
    ] {
        assert!(is_media_type(good), "{good}");
    }
    for bad in [
        "",
        "png",
        "image/",
        "/png",
        "image/p ng",
        "image/png\n",
        "ima\u{e9}ge/png",
    ] {
        assert!(!is_media_type(bad), "{bad:?}");
    }
}

#[test]
fn the_senders_errors_are_what_the_contract_says() {
    let head = Inbound::from_test_xml(CHAT);
    for (error, condition) in [
        (FILE_TOO_LARGE, "not-acceptable"),
        (UPLOAD_FAILED, "remote-server-timeout"),
    ] {
        let stanza = error
            .reply_to(head.head())
            .expect("a chat message is answered");
        assert!(
            write_stanza(&stanza).contains(&format!("<{condition} ")),
            "{condition}"
        );
    }
}
