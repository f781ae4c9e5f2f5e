//! The room message rules with literal stanzas: which messages reach the webhook, and
//! with which fields.

use super::*;

const ROOM: &str = "lobby@conference.example.com";

fn view<'a>(origin_ids: &'a OriginIds, forward: Forward) -> RoomView<'a> {
    RoomView {
        room: ROOM,
        own_nick: "EchoBot",
        forward,
        origin_ids,
    }
}

fn groupchat(from_nick: &str, inner: &str) -> Inbound {
    Inbound::from_test_xml(&format!(
        "<message xmlns='jabber:component:accept' from='{ROOM}/{from_nick}' \
         to='bot.example.com/EchoBot' type='groupchat' id='g1'>{inner}</message>"
    ))
}

fn read(inbound: &Inbound, forward: Forward) -> Result<RoomFields, Skipped> {
    let ids = OriginIds::default();
    read_message(inbound, &view(&ids, forward), |nick| {
        (nick == "alice").then(|| "alice@example.com/phone".to_string())
    })
}

#[test]
fn a_groupchat_message_carries_the_room_fields() {
    let message = groupchat(
        "alice",
        "<body>EchoBot: hi</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='s9' by='elsewhere@example.com'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='lobby@conference.example.com'/>\
         <occupant-id xmlns='urn:xmpp:occupant-id:0' id='occ1'/>",
    );
    let fields = read(&message, Forward::All).expect("posted");
    assert_eq!(
        fields,
        RoomFields {
            room: ROOM.into(),
            nick: Some("alice".into()),
            occupant_id: Some("occ1".into()),
            occupant_jid: Some("alice@example.com/phone".into()),
            mentioned: Some(true),
        }
    );
}

#[test]
fn what_is_not_posted() {
    let reflection = groupchat("EchoBot", "<body>pong</body>");
    assert_eq!(read(&reflection, Forward::All), Err(Skipped::Reflection));
    let subject = groupchat("alice", "<subject>new topic</subject>");
    assert_eq!(read(&subject, Forward::All), Err(Skipped::Subject));
    let history = groupchat(
        "alice",
        "<body>old</body><delay xmlns='urn:xmpp:delay' from='lobby@conference.example.com' \
         stamp='2026-01-01T00:00:00Z'/>",
    );
    assert_eq!(read(&history, Forward::All), Err(Skipped::History));
    let chatter = groupchat("alice", "<body>hello all</body>");
    assert_eq!(
        read(&chatter, Forward::Mentions),
        Err(Skipped::NotMentioned)
    );
    assert_eq!(
        read(&chatter, Forward::All).map(|f| f.mentioned),
        Ok(Some(false))
    );
}

#[test]
fn the_bots_own_origin_id_marks_a_reflection_under_another_nick() {
    let ids = OriginIds::default();
    let id = ids.make();
    assert!(ids.is_ours(&id));
    assert!(!ids.is_ours("chttp-0-0000000000000000"));
    assert!(!OriginIds::default().is_ours(&id), "another process's key");
    let renamed = groupchat(
        "EchoBot_2",
        &format!("<body>pong</body><origin-id xmlns='urn:xmpp:sid:0' id='{id}'/>"),
    );
    let verdict = read_message(&renamed, &view(&ids, Forward::All), |_| None);
    assert_eq!(verdict, Err(Skipped::Reflection));
}

#[test]
fn mentions_are_words_or_references() {
    assert!(names("EchoBot: hi", "EchoBot"));
    assert!(names("hey echobot!", "EchoBot"));
    assert!(names("ping @EchoBot", "EchoBot"));
    assert!(!names("EchoBots are nice", "EchoBot"));
    assert!(!names("MyEchoBot", "EchoBot"));
    assert!(names("ça va, Élodie ?", "élodie"));
    assert!(names("[bot] hi", "[bot]"));
    assert!(!names("anything", ""));
    let referenced = groupchat(
        "alice",
        "<body>hi there</body><reference xmlns='urn:xmpp:reference:0' type='mention' \
         uri='xmpp:lobby@conference.example.com/Echo%42ot'/>",
    );
    let fields = read(&referenced, Forward::Mentions).expect("a mention");
    assert_eq!(fields.mentioned, Some(true));
}

#[test]
fn a_private_message_is_always_for_the_bot() {
    let private = Inbound::from_test_xml(&format!(
        "<message xmlns='jabber:component:accept' from='{ROOM}/alice' \
         to='bot.example.com/EchoBot' type='chat'><body>psst</body></message>"
    ));
    let fields = read(&private, Forward::Mentions).expect("posted");
    assert_eq!(fields.mentioned, Some(true));
    assert_eq!(fields.nick.as_deref(), Some("alice"));
}
