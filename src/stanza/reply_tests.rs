//! Each row of docs/contract.md's "Response: webhook → reply" as literal JSON in, XML out.

use super::*;
use crate::stanza::Inbound;
use crate::stanza::fields::NoRooms;
use crate::xml::write::write_stanza;

const DOMAIN: &str = "bot.example.com";
const POLICY: SendPolicy<'static> = SendPolicy {
    domain: DOMAIN,
    max_depth: crate::config::DEFAULT_MAX_DEPTH,
    rooms: &NoRooms,
};
const CHAT: &str = "<message from='alice@example.com/phone' to='echo@bot.example.com' \
                    type='chat' id='m1' xml:lang='en'><body>hello</body></message>";

fn inbound(xml: &str) -> Inbound {
    Inbound::from_test_xml(xml)
}

fn json(status: u16, content_type: &str, body: &str) -> WebhookOutcome {
    WebhookOutcome::Response {
        status,
        content_type: Some(content_type.to_string()),
        body: body.as_bytes().to_vec(),
    }
}

fn sent(original: &str, outcome: WebhookOutcome) -> Vec<String> {
    answer(&inbound(original), &outcome, &POLICY)
        .stanzas
        .iter()
        .map(write_stanza)
        .collect()
}

fn problem(original: &str, outcome: WebhookOutcome) -> Option<ReplyError> {
    answer(&inbound(original), &outcome, &POLICY).problem
}

#[test]
fn json_body_becomes_a_chat_reply_to_the_sender() {
    assert_eq!(
        sent(
            CHAT,
            json(200, "application/json", r#"{"body": "Did you say hello?"}"#)
        ),
        [
            "<message from='echo@bot.example.com' to='alice@example.com/phone' type='chat'>\
          <body>Did you say hello?</body></message>"
        ]
    );
}

#[test]
fn charset_parameter_and_case_are_accepted() {
    let expected = sent(CHAT, json(200, "application/json", r#"{"body": "x"}"#));
    assert_eq!(
        sent(
            CHAT,
            json(200, "application/json; charset=utf-8", r#"{"body": "x"}"#)
        ),
        expected
    );
    assert_eq!(
        sent(
            CHAT,
            json(200, "Application/JSON;charset=UTF-8", r#"{"body": "x"}"#)
        ),
        expected
    );
    assert!(is_json_media_type(Some("application/vnd.bot+json")));
    assert!(!is_json_media_type(Some("text/json")));
    assert!(!is_json_media_type(Some("application/jsonp")));
    assert!(!is_json_media_type(None));
}

#[test]
fn other_2xx_and_non_json_200_send_nothing() {
    assert!(sent(CHAT, json(204, "application/json", "")).is_empty());
    assert!(sent(CHAT, json(201, "application/json", r#"{"body": "x"}"#)).is_empty());
    assert!(sent(CHAT, json(200, "text/plain", "hello")).is_empty());
    let no_type = WebhookOutcome::Response {
        status: 200,
        content_type: None,
        body: b"{}".to_vec(),
    };
    assert!(sent(CHAT, no_type).is_empty());
}

#[test]
fn iq_request_gets_an_empty_result_when_the_webhook_sends_nothing() {
    let iq = "<iq from='a@example.com/r' to='bot.example.com' type='get' id='q1'>\
              <query xmlns='jabber:iq:version'/></iq>";
    assert_eq!(
        sent(iq, json(204, "text/plain", "")),
        ["<iq from='bot.example.com' id='q1' to='a@example.com/r' type='result'/>"]
    );
}

#[test]
fn iq_reply_defaults_to_result_with_the_original_id() {
    let iq = "<iq from='a@example.com/r' to='bot.example.com' type='get' id='q1'>\
              <query xmlns='jabber:iq:version'/></iq>";
    assert_eq!(
        sent(iq, json(200, "application/json", "{}")),
        ["<iq from='bot.example.com' id='q1' to='a@example.com/r' type='result'/>"]
    );
    let raw = r#"{"stanza": "<iq type='result' id='q1'><query xmlns='jabber:iq:version'><name>bot</name></query></iq>"}"#;
    assert_eq!(
        sent(iq, json(200, "application/json", raw)),
        [
            "<iq from='bot.example.com' id='q1' to='a@example.com/r' type='result'>\
          <query xmlns='jabber:iq:version'><name>bot</name></query></iq>"
        ]
    );
}

#[test]
fn a_message_in_answer_to_an_iq_still_leaves_one_iq_answer() {
    let iq =
        "<iq from='a@example.com/r' to='bot.example.com' type='set' id='q2'><x xmlns='u'/></iq>";
    let out = sent(
        iq,
        json(
            200,
            "application/json",
            r#"{"kind": "message", "body": "done"}"#,
        ),
    );
    assert_eq!(out.len(), 2);
    assert!(out[0].starts_with("<message "));
    assert_eq!(
        out[1],
        "<iq from='bot.example.com' id='q2' to='a@example.com/r' type='result'/>"
    );
}

#[test]
fn error_statuses_follow_the_table() {
    assert_eq!(
        sent(CHAT, json(404, "text/html", "<h1>no</h1>")),
        ["<message from='echo@bot.example.com' id='m1' to='alice@example.com/phone' type='error'>\
          <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
          </error></message>"]
    );
    let unavailable = &sent(
        CHAT,
        json(503, "application/json", r#"{"body": "ignored"}"#),
    )[0];
    assert!(unavailable.contains("<error type='wait'><remote-server-timeout"));
    assert!(unavailable.contains("Service temporarily unavailable"));
}

#[test]
fn connection_failure_and_timeout() {
    let refused = &sent(CHAT, WebhookOutcome::ConnectionFailed)[0];
    assert!(refused.contains("<error type='cancel'><remote-server-timeout"));
    assert!(refused.contains(">Connection failure</text>"));
    let timed_out = &sent(CHAT, WebhookOutcome::TimedOut)[0];
    assert!(timed_out.contains("<error type='wait'><remote-server-timeout"));
    assert!(timed_out.contains(">Gateway timeout</text>"));
}

#[test]
fn bad_json_is_an_internal_server_error_with_a_warning() {
    let internal = "<message from='echo@bot.example.com' id='m1' to='alice@example.com/phone' \
                    type='error'><error type='cancel'><internal-server-error \
                    xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>";
    for body in [
        "{not json",
        "[1, 2]",
        "\"text\"",
        r#"{"body": {"nested": 1}}"#,
        r#"{"kind": "chat"}"#,
    ] {
        assert_eq!(
            sent(CHAT, json(200, "application/json", body)),
            [internal],
            "{body}"
        );
        assert!(
            problem(CHAT, json(200, "application/json", body)).is_some(),
            "{body}"
        );
    }
}

#[test]
fn bad_stanza_is_an_internal_server_error() {
    for raw in [
        "<message><body>unclosed</message>",
        "<message/><message/>",
        "<foo/>",
        "text",
    ] {
        let body = serde_json::json!({ "stanza": raw }).to_string();
        let out = sent(CHAT, json(200, "application/json", &body));
        assert!(out[0].contains("internal-server-error"), "{raw}: {out:?}");
        assert!(matches!(
            problem(CHAT, json(200, "application/json", &body)),
            Some(ReplyError::BadStanza(_))
        ));
    }
}

#[test]
fn raw_stanza_is_sent_as_is_with_only_missing_addresses_filled() {
    let raw = r#"{"stanza": "<message type='normal'><subject>s</subject><body>b</body><x xmlns='urn:x'/></message>"}"#;
    assert_eq!(
        sent(CHAT, json(200, "application/json", raw)),
        [
            "<message from='echo@bot.example.com' to='alice@example.com/phone' type='normal'>\
          <subject>s</subject><body>b</body><x xmlns='urn:x'/></message>"
        ]
    );
    let addressed = r#"{"stanza": "<message xmlns='jabber:client' to='bob@example.com' from='other@bot.example.com'><body>b</body></message>"}"#;
    assert_eq!(
        sent(CHAT, json(200, "application/json", addressed)),
        ["<message from='other@bot.example.com' to='bob@example.com'><body>b</body></message>"]
    );
}

#[test]
fn reply_to_another_user_and_from_another_address_on_the_domain() {
    let body = r#"{"to": "bob@example.com", "from": "news@bot.example.com/x", "body": "hi", "type": "normal", "id": "r1"}"#;
    assert_eq!(
        sent(CHAT, json(200, "application/json", body)),
        [
            "<message from='news@bot.example.com/x' id='r1' to='bob@example.com' type='normal'>\
          <body>hi</body></message>"
        ]
    );
}

#[test]
fn numbers_are_written_as_text() {
    assert_eq!(
        sent(
            CHAT,
            json(200, "application/json", r#"{"body": 42.5, "id": 7}"#)
        ),
        [
            "<message from='echo@bot.example.com' id='7' to='alice@example.com/phone' type='chat'>\
          <body>42.5</body></message>"
        ]
    );
}

#[test]
fn presence_reply() {
    assert_eq!(
        sent(
            CHAT,
            json(
                200,
                "application/json",
                r#"{"kind": "presence", "body": "ignored"}"#
            )
        ),
        ["<presence from='echo@bot.example.com' to='alice@example.com/phone'/>"]
    );
}

#[test]
fn foreign_from_is_refused_with_not_allowed() {
    for body in [
        r#"{"from": "admin@example.com", "body": "x"}"#,
        r#"{"stanza": "<message from='bot.example.com.evil.org'><body>x</body></message>"}"#,
    ] {
        let out = sent(CHAT, json(200, "application/json", body));
        assert_eq!(out.len(), 1);
        assert!(
            out[0].contains("<error type='cancel'><not-allowed"),
            "{out:?}"
        );
        assert!(matches!(
            problem(CHAT, json(200, "application/json", body)),
            Some(ReplyError::ForeignFrom { .. })
        ));
    }
}

#[test]
fn invalid_destination_is_refused() {
    let out = sent(
        CHAT,
        json(200, "application/json", r#"{"to": "a@b@c", "body": "x"}"#),
    );
    assert!(out[0].contains("internal-server-error"));
}

#[test]
fn errors_are_never_answered() {
    let error = "<message from='alice@example.com/phone' to='echo@bot.example.com' type='error'>\
                 <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 </error></message>";
    assert!(sent(error, json(200, "application/json", r#"{"body": "x"}"#)).is_empty());
    assert!(sent(error, json(500, "text/plain", "")).is_empty());
    assert!(sent(error, WebhookOutcome::ConnectionFailed).is_empty());
    let result = "<iq from='a@example.com/r' to='bot.example.com' type='result' id='x'/>";
    assert!(sent(result, json(200, "application/json", "{}")).is_empty());
}

#[test]
fn oversized_response_is_an_internal_server_error() {
    let out = sent(CHAT, WebhookOutcome::ResponseTooLarge);
    assert!(out[0].contains("internal-server-error"));
}

#[test]
fn characters_xml_forbids_are_an_internal_server_error() {
    // Found by the webhook_reply fuzz target: such a reply could not be written to the stream.
    for body in [
        r#"{"body": "\u0000"}"#,
        r#"{"type": "\u000e"}"#,
        r#"{"id": "\uffff"}"#,
    ] {
        let out = sent(CHAT, json(200, "application/json", body));
        assert!(out[0].contains("internal-server-error"), "{body}: {out:?}");
        assert!(matches!(
            problem(CHAT, json(200, "application/json", body)),
            Some(ReplyError::NotXmlText(_))
        ));
    }
}
