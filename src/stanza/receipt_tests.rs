//! Which messages are only notices, and when a receipt goes back, as literal XML.

use super::*;
use crate::stanza::error::StanzaError;
use crate::stanza::fields::ReplyError;
use crate::stanza::Inbound;
use crate::xml::write::write_stanza;

fn only_a_notice(xml: &str) -> bool {
    is_only_a_notice(Inbound::from_test_xml(xml).element())
}

fn asks(xml: &str) -> bool {
    asks_for_receipt(Inbound::from_test_xml(xml).element())
}

const ASKING: &str = "<message from='alice@example.com/phone' to='echo@bot.example.com' \
                      type='chat' id='m1'><body>hi</body>\
                      <request xmlns='urn:xmpp:receipts'/></message>";

fn ok(status: u16) -> WebhookOutcome {
    WebhookOutcome::Response {
        status,
        content_type: None,
        body: Vec::new(),
    }
}

/// The receipt written, for `xml` (marked from a room when `from_room`).
fn receipt_of(
    xml: &str,
    from_room: bool,
    outcome: &WebhookOutcome,
    answer: &Answer,
) -> Option<String> {
    let mut inbound = Inbound::from_test_xml(xml);
    if from_room {
        inbound.mark_from_room();
    }
    receipt(inbound.head(), outcome, answer).map(|r| write_stanza(&r))
}

#[test]
fn chat_states_receipts_and_markers_alone_are_notices() {
    for child in [
        "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
        "<active xmlns='http://jabber.org/protocol/chatstates'/>",
        "<gone xmlns='http://jabber.org/protocol/chatstates'/>",
        "<received xmlns='urn:xmpp:receipts' id='m1'/>",
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>",
        "<received xmlns='urn:xmpp:chat-markers:0' id='m1'/>",
        "<acknowledged xmlns='urn:xmpp:chat-markers:0' id='m1'/>",
        // With the bookkeeping clients add.
        "<paused xmlns='http://jabber.org/protocol/chatstates'/><thread>t1</thread>\
         <no-store xmlns='urn:xmpp:hints'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>",
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='a@b'/>\
         <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>",
    ] {
        let xml = format!("<message from='a@b/c' to='e@bot' type='chat'>{child}</message>");
        assert!(only_a_notice(&xml), "only a notice: {xml}");
    }
}

#[test]
fn anything_with_content_is_not_a_notice() {
    for xml in [
        // A chat state with a body: the usual message.
        "<message from='a@b/c' type='chat'><body>hi</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<message from='a@b/c'><subject>s</subject>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<message from='a@b/c'><x xmlns='jabber:x:oob'><url>https://x/y.png</url></x>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        // A reaction, a retraction, an unknown extension.
        "<message from='a@b/c'><reactions xmlns='urn:xmpp:reactions:0' id='m1'>\
         <reaction>👍</reaction></reactions></message>",
        "<message from='a@b/c'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<message from='a@b/c'><x xmlns='urn:example'/>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        // Not a known state, a receipt request alone, a markable alone.
        "<message from='a@b/c'><typing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<message from='a@b/c' id='m1'><request xmlns='urn:xmpp:receipts'/></message>",
        "<message from='a@b/c'><markable xmlns='urn:xmpp:chat-markers:0'/></message>",
        // Empty, bookkeeping only, an error bounce of a chat state.
        "<message from='a@b/c'/>",
        "<message from='a@b/c'><thread>t</thread></message>",
        "<message from='a@b/c' type='error'>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        // Not a message at all.
        "<presence from='a@b/c'><composing xmlns='http://jabber.org/protocol/chatstates'/></presence>",
    ] {
        assert!(!only_a_notice(xml), "not only a notice: {xml}");
    }
}

#[test]
fn a_receipt_is_asked_for_with_a_request_and_an_id_outside_group_chats() {
    assert!(asks(ASKING));
    assert!(asks(
        "<message from='a@b/c' id='m1'><request xmlns='urn:xmpp:receipts'/></message>"
    ));
    for xml in [
        "<message from='a@b/c' type='chat'><body>hi</body>\
         <request xmlns='urn:xmpp:receipts'/></message>",
        "<message from='a@b/c' type='chat' id=''><request xmlns='urn:xmpp:receipts'/></message>",
        "<message from='r@muc/n' type='groupchat' id='m1'><body>hi</body>\
         <request xmlns='urn:xmpp:receipts'/></message>",
        "<message from='a@b/c' type='error' id='m1'><request xmlns='urn:xmpp:receipts'/></message>",
        "<message from='a@b/c' type='chat' id='m1'><body>hi</body></message>",
        "<message from='a@b/c' id='m1'><request xmlns='urn:example'/></message>",
    ] {
        assert!(!asks(xml), "asks for no receipt: {xml}");
    }
}

#[test]
fn a_2xx_gets_the_receipt_from_the_address_the_message_went_to() {
    let expected = "<message from='echo@bot.example.com' to='alice@example.com/phone'>\
                    <received xmlns='urn:xmpp:receipts' id='m1'/></message>";
    for status in [200, 202, 204] {
        assert_eq!(
            receipt_of(ASKING, false, &ok(status), &Answer::default()).as_deref(),
            Some(expected),
            "status {status}"
        );
    }
    // A reply does not stop it.
    let replied = Answer {
        stanzas: vec![
            "<message xmlns='jabber:component:accept' to='alice@example.com/phone'>\
                       <body>yes</body></message>"
                .parse()
                .expect("xml"),
        ],
        problem: None,
        file: None,
    };
    assert_eq!(
        receipt_of(ASKING, false, &ok(200), &replied).as_deref(),
        Some(expected)
    );
}

#[test]
fn no_receipt_before_a_2xx_nor_after_a_failure() {
    let inbound = Inbound::from_test_xml(ASKING);
    for outcome in [
        ok(301),
        ok(404),
        ok(503),
        WebhookOutcome::ConnectionFailed,
        WebhookOutcome::TimedOut,
        WebhookOutcome::ResponseTooLarge,
    ] {
        let error = Answer {
            stanzas: StanzaError::INTERNAL_SERVER_ERROR
                .reply_to(inbound.head())
                .into_iter()
                .collect(),
            problem: None,
            file: None,
        };
        assert_eq!(
            receipt_of(ASKING, false, &outcome, &error),
            None,
            "{outcome:?}"
        );
    }
    // A 200 whose JSON the daemon could not use: the sender gets an error, not a receipt.
    let unusable = Answer {
        stanzas: Vec::new(),
        problem: Some(ReplyError::NotAnObject),
        file: None,
    };
    assert_eq!(receipt_of(ASKING, false, &ok(200), &unusable), None);
}

#[test]
fn no_receipt_to_rooms_nor_twice() {
    // A private message from a room's occupant, marked by the directory.
    let private = "<message from='lobby@conference.example.com/alice' to='echo@bot.example.com' \
                   type='chat' id='m1'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>";
    assert_eq!(
        receipt_of(private, true, &ok(200), &Answer::default()),
        None
    );
    let groupchat = "<message from='lobby@conference.example.com/alice' to='echo@bot.example.com' \
                     type='groupchat' id='m1'><body>hi</body></message>";
    assert_eq!(
        receipt_of(groupchat, false, &ok(200), &Answer::default()),
        None
    );
    // The webhook sent the receipt itself.
    let own = Answer {
        stanzas: vec![
            "<message xmlns='jabber:component:accept' to='alice@example.com/phone'>\
                       <received xmlns='urn:xmpp:receipts' id='m1'/></message>"
                .parse()
                .expect("xml"),
        ],
        problem: None,
        file: None,
    };
    assert_eq!(receipt_of(ASKING, false, &ok(200), &own), None);
    // No id to echo.
    let no_id = "<message from='alice@example.com/phone' to='echo@bot.example.com'>\
                 <request xmlns='urn:xmpp:receipts'/></message>";
    assert_eq!(receipt_of(no_id, false, &ok(200), &Answer::default()), None);
}
