//! The room directory's states, driven with literal stanzas from a room: joined, created
//! (made instant), a nick conflict, a kick and its rejoin, a ban, the API's joins and
//! leaves, and what is POSTed.

use super::*;
use crate::config::Config;
use crate::xml::write::write_stanza;

const ROOM: &str = "lobby@conference.example.com";
const USER: &str = "xmlns='http://jabber.org/protocol/muc#user'";

fn rooms(extra: &str) -> Rooms {
    let text = format!(
        "[[component]]\ndomain = \"bot.example.com\"\nsecret = \"s\"\n\
         post_url = \"http://127.0.0.1:1/\"\n\
         rooms = [{{ jid = \"{ROOM}\", nick = \"EchoBot\" }}]\n{extra}"
    );
    let config = Config::parse(&text, std::path::Path::new(".")).expect("valid");
    Rooms::new(&config.components[0])
}

fn from_room(xml: &str) -> Inbound {
    Inbound::from_test_xml(xml)
}

fn arrive(rooms: &Rooms, xml: &str) -> Arrival {
    rooms.arrival(&from_room(xml), &[Kind::Message])
}

fn self_presence(nick: &str, codes: &[u16], ty: &str) -> String {
    let status: String = codes
        .iter()
        .map(|c| format!("<status code='{c}'/>"))
        .collect();
    format!(
        "<presence from='{ROOM}/{nick}' to='bot.example.com/EchoBot' {ty}>\
         <x {USER}><item role='participant'/><status code='110'/>{status}</x></presence>"
    )
}

fn state(rooms: &Rooms) -> RoomState {
    rooms.list()[0].state
}

#[test]
fn joins_follow_each_handshake_and_a_created_room_is_made_instant() {
    let rooms = rooms("");
    let joins = rooms.joins();
    assert_eq!(joins.len(), 1);
    assert_eq!(
        write_stanza(&joins[0]),
        "<presence from='bot.example.com/EchoBot' \
         to='lobby@conference.example.com/EchoBot'><x xmlns='http://jabber.org/protocol/muc'>\
         <history maxstanzas='0'/></x></presence>"
    );
    assert_eq!(state(&rooms), RoomState::Joining);
    let Arrival::Handled { send, .. } = arrive(&rooms, &self_presence("EchoBot", &[201], ""))
    else {
        panic!("handled");
    };
    assert_eq!(state(&rooms), RoomState::Joined);
    assert!(write_stanza(&send[0]).contains("muc#owner"), "instant room");
    rooms.disconnected();
    assert_eq!(state(&rooms), RoomState::Joining);
}

#[test]
fn a_taken_nick_is_retried_with_a_suffix_then_given_up() {
    let rooms = rooms("");
    rooms.joins();
    let conflict = |nick: &str| {
        format!(
            "<presence from='{ROOM}/{nick}' type='error'><error type='cancel'>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        )
    };
    let mut nick = "EchoBot".to_string();
    for n in 2..=5 {
        let Arrival::Handled { send, .. } = arrive(&rooms, &conflict(&nick)) else {
            panic!("retried");
        };
        nick = format!("EchoBot_{n}");
        assert_eq!(send[0].attr("to"), Some(&*format!("{ROOM}/{nick}")));
        assert_eq!(send[0].attr("from"), Some("bot.example.com/EchoBot"));
    }
    arrive(&rooms, &conflict(&nick));
    let info = &rooms.list()[0];
    assert_eq!(info.state, RoomState::Error);
    assert_eq!(info.condition.as_deref(), Some("conflict"));
}

#[test]
fn a_kick_rejoins_once_a_ban_never() {
    let rooms = rooms("rejoin_after_kick = 2");
    rooms.joins();
    arrive(&rooms, &self_presence("EchoBot", &[], ""));
    let kicked = arrive(
        &rooms,
        &self_presence("EchoBot", &[307], "type='unavailable'"),
    );
    let Arrival::Handled {
        rejoin: Some(rejoin),
        ..
    } = kicked
    else {
        panic!("a rejoin is due: {kicked:?}");
    };
    assert!(
        rejoin.after >= Duration::from_millis(1600) && rejoin.after < Duration::from_millis(2400)
    );
    assert_eq!(state(&rooms), RoomState::Kicked);
    assert!(rooms.rejoin(&rejoin).is_some());
    assert!(rooms.rejoin(&rejoin).is_none(), "only once");
    arrive(&rooms, &self_presence("EchoBot", &[], ""));
    let banned = arrive(
        &rooms,
        &self_presence("EchoBot", &[301], "type='unavailable'"),
    );
    assert!(matches!(banned, Arrival::Handled { rejoin: None, .. }));
    assert_eq!(state(&rooms), RoomState::Banned);
    assert!(
        rooms.joins().is_empty(),
        "a ban is not retried, even after a reconnect"
    );
}

#[test]
fn room_traffic_is_posted_or_skipped() {
    let rooms = rooms("");
    rooms.joins();
    arrive(&rooms, &self_presence("EchoBot", &[], ""));
    arrive(
        &rooms,
        &format!("<presence from='{ROOM}/alice'><x {USER}><item jid='alice@example.com/a'/></x></presence>"),
    );
    let message = format!(
        "<message from='{ROOM}/alice' to='bot.example.com/EchoBot' type='groupchat'>\
         <body>hi</body></message>"
    );
    let Arrival::Post(fields) = arrive(&rooms, &message) else {
        panic!("posted");
    };
    assert_eq!(fields.occupant_jid.as_deref(), Some("alice@example.com/a"));
    let presence = format!("<presence from='{ROOM}/bob'/>");
    assert!(matches!(arrive(&rooms, &presence), Arrival::Skipped(_)));
    let posted = rooms.arrival(&from_room(&presence), &[Kind::Message, Kind::Presence]);
    assert!(matches!(posted, Arrival::Post(_)));
    let ping = format!(
        "<iq from='{ROOM}/alice' to='bot.example.com/EchoBot' type='get' id='p'>\
         <ping xmlns='urn:xmpp:ping'/></iq>"
    );
    let Arrival::Handled { send, .. } = arrive(&rooms, &ping) else {
        panic!("self-ping answered");
    };
    assert_eq!(send[0].attr("type"), Some("result"));
    let elsewhere =
        "<message from='alice@example.com/a' to='bot.example.com'><body>x</body></message>";
    assert!(matches!(arrive(&rooms, elsewhere), Arrival::Elsewhere));
    assert_eq!(
        rooms
            .occupant_address("Lobby@Conference.Example.com")
            .as_deref(),
        Some("bot.example.com/EchoBot")
    );
}

#[test]
fn the_api_joins_waits_and_leaves() {
    let rooms = rooms("max_rooms = 2");
    let room = |jid: &str, nick: &str| {
        RoomConfig::check("bot.example.com", Some(jid), Some(nick), None, None, None)
            .expect("valid")
    };
    let Ok(Joining::Waiting {
        presence: Some(_),
        outcome: mut waiting,
    }) = rooms.add(room("ops@conference.example.com", "Ops"), true)
    else {
        panic!("a join to send");
    };
    assert!(waiting.try_recv().is_err(), "not joined yet");
    rooms.arrival(
        &from_room("<presence from='ops@conference.example.com/Ops'><x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>"),
        &[],
    );
    let joined = waiting.try_recv().expect("settled").expect("joined");
    assert_eq!(joined.state, RoomState::Joined);
    assert_eq!(joined.source, Source::Api);
    assert!(matches!(
        rooms.add(room("ops@conference.example.com", "Ops"), true),
        Ok(Joining::Already(_))
    ));
    assert!(matches!(
        rooms.add(room("ops@conference.example.com", "Other"), true),
        Err(AddError::Exists(_))
    ));
    assert!(matches!(
        rooms.add(room("third@conference.example.com", "x"), true),
        Err(AddError::TooMany(2))
    ));
    let (left, presence) = rooms.leave("ops@conference.example.com").expect("known");
    assert_eq!(left.state, RoomState::Left);
    assert_eq!(presence.attr("type"), Some("unavailable"));
    // A room left through the API makes room for another.
    assert!(rooms
        .add(room("third@conference.example.com", "x"), true)
        .is_ok());
    assert!(rooms.leave("nowhere@conference.example.com").is_none());
}

#[test]
fn a_locked_room_is_tried_again_a_few_times() {
    let rooms = rooms("rejoin_after_kick = 1");
    rooms.joins();
    let locked = format!(
        "<presence from='{ROOM}/EchoBot' type='error'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    );
    for _ in 0..3 {
        let Arrival::Handled {
            rejoin: Some(rejoin),
            ..
        } = arrive(&rooms, &locked)
        else {
            panic!("tried again");
        };
        assert_eq!(state(&rooms), RoomState::Joining);
        assert!(rooms.rejoin(&rejoin).is_some());
    }
    assert!(matches!(
        arrive(&rooms, &locked),
        Arrival::Handled { rejoin: None, .. }
    ));
    assert_eq!(rooms.list()[0].condition.as_deref(), Some("item-not-found"));
    // A new connection starts the count again.
    rooms.joins();
    assert!(matches!(
        arrive(&rooms, &locked),
        Arrival::Handled {
            rejoin: Some(_),
            ..
        }
    ));
}

#[test]
fn occupants_are_remembered_up_to_max_room_occupants() {
    let rooms = rooms("max_room_occupants = 2");
    rooms.joins();
    arrive(&rooms, &self_presence("EchoBot", &[], ""));
    for nick in ["alice", "bob", "carol"] {
        arrive(
            &rooms,
            &format!(
                "<presence from='{ROOM}/{nick}'><x {USER}><item jid='{nick}@example.com/a'/></x>\
                 </presence>"
            ),
        );
    }
    let jid_of = |nick: &str| {
        let message = format!(
            "<message from='{ROOM}/{nick}' to='bot.example.com/EchoBot' type='groupchat'>\
             <body>hi</body></message>"
        );
        match arrive(&rooms, &message) {
            Arrival::Post(fields) => fields.occupant_jid,
            other => panic!("posted: {other:?}"),
        }
    };
    // At the bound, and past it: the third is not remembered, the first two still are.
    assert_eq!(jid_of("bob").as_deref(), Some("bob@example.com/a"));
    assert_eq!(jid_of("carol"), None);
    // One who leaves makes room for another.
    arrive(
        &rooms,
        &format!("<presence from='{ROOM}/alice' type='unavailable'/>"),
    );
    arrive(
        &rooms,
        &format!("<presence from='{ROOM}/carol'><x {USER}><item jid='carol@example.com/a'/></x></presence>"),
    );
    assert_eq!(jid_of("carol").as_deref(), Some("carol@example.com/a"));
}

#[test]
fn api_requests_waiting_for_one_join_are_bounded() {
    let rooms = rooms("");
    let room = || {
        RoomConfig::check(
            "bot.example.com",
            Some("ops@conference.example.com"),
            Some("Ops"),
            None,
            None,
            None,
        )
        .expect("valid")
    };
    let mut waiting = Vec::new();
    for _ in 0..MAX_WAITING_JOINS {
        match rooms.add(room(), false) {
            Ok(Joining::Waiting { outcome, .. }) => waiting.push(outcome),
            _ => panic!("waits"),
        }
    }
    assert!(matches!(
        rooms.add(room(), false),
        Err(AddError::TooManyWaiting(MAX_WAITING_JOINS))
    ));
}
