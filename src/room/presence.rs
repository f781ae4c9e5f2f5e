//! Presence between the bot and a room (XEP-0045 §7): the join presence (no history is
//! replayed), the leave presence, the instant-room form for a room the bot created, and
//! what a presence from the room says: the bot is in, or out (kicked, banned, ...), its join
//! was refused, or another occupant came or went.

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::nick_of;
use crate::stanza::COMPONENT_NS;
use crate::xml::outgoing::error_condition;
use crate::xml::set_attr;

pub const MUC_NS: &str = "http://jabber.org/protocol/muc";
pub const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
const MUC_OWNER_NS: &str = "http://jabber.org/protocol/muc#owner";
const DATA_FORMS_NS: &str = "jabber:x:data";
const OCCUPANT_ID_NS: &str = "urn:xmpp:occupant-id:0";

/// The presence that joins `room` as `nick`, from `from`, asking for no history.
pub fn join_presence(room: &str, nick: &str, from: &str, password: Option<&str>) -> Element {
    let mut presence = Element::bare("presence", COMPONENT_NS);
    set_attr(&mut presence, xml_ncname!("from"), from);
    set_attr(&mut presence, xml_ncname!("to"), &format!("{room}/{nick}"));
    let mut muc = Element::bare("x", MUC_NS);
    let mut history = Element::bare("history", MUC_NS);
    set_attr(&mut history, xml_ncname!("maxstanzas"), "0");
    muc.append_child(history);
    if let Some(password) = password {
        muc.append_child(
            Element::builder("password", MUC_NS)
                .append(password.to_string())
                .build(),
        );
    }
    presence.append_child(muc);
    presence
}

/// The presence that leaves `room`.
pub fn leave_presence(room: &str, nick: &str, from: &str) -> Element {
    let mut presence = Element::bare("presence", COMPONENT_NS);
    set_attr(&mut presence, xml_ncname!("from"), from);
    set_attr(&mut presence, xml_ncname!("to"), &format!("{room}/{nick}"));
    set_attr(&mut presence, xml_ncname!("type"), "unavailable");
    presence
}

/// Accepts the default configuration of a room the bot just created (XEP-0045 §10.1.2), so
/// that others can join it: servers lock a new room until its owner configures it.
pub fn instant_room(room: &str, from: &str, id: &str) -> Element {
    let mut iq = Element::bare("iq", COMPONENT_NS);
    set_attr(&mut iq, xml_ncname!("from"), from);
    set_attr(&mut iq, xml_ncname!("to"), room);
    set_attr(&mut iq, xml_ncname!("type"), "set");
    set_attr(&mut iq, xml_ncname!("id"), id);
    let mut query = Element::bare("query", MUC_OWNER_NS);
    let mut form = Element::bare("x", DATA_FORMS_NS);
    set_attr(&mut form, xml_ncname!("type"), "submit");
    query.append_child(form);
    iq.append_child(query);
    iq
}

/// Why the bot is out of a room it was in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departure {
    /// Kicked (307), or removed for a technical reason (333) or the service's shutdown
    /// (332): it may come back.
    Kicked,
    /// Banned (301).
    Banned,
    /// Removed for good, with the condition that says why: `gone` (the room destroyed),
    /// `registration-required` (members-only without membership: 321, 322),
    /// `service-unavailable` (the system closing the room: 344).
    Removed(&'static str),
    /// The room gave the bot another nick (303); the presence for it follows.
    NickChanged(String),
    /// An unavailable presence with no reason given: the bot left.
    Left,
}

/// What a presence from a room says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomPresence<'a> {
    /// The bot is in the room, as `nick`; `created`: it made the room (201).
    Joined { nick: &'a str, created: bool },
    /// The bot is out of the room.
    Departed(Departure),
    /// The join was refused, with the error's condition (`conflict`: the nick is taken).
    Refused(&'a str),
    /// Another occupant is there (`available`), or left.
    Occupant {
        nick: &'a str,
        available: bool,
        /// The real JID, when the room shows it.
        jid: Option<&'a str>,
        /// The XEP-0421 occupant id, when the room gives one.
        id: Option<&'a str>,
    },
    /// From the room's bare JID, or otherwise not about an occupant.
    Other,
}

/// Reads `presence`, from the room whose occupant the bot is as `own_nick`.
pub fn read_presence<'a>(presence: &'a Element, own_nick: &str) -> RoomPresence<'a> {
    let Some(nick) = nick_of(presence.attr("from").unwrap_or_default()) else {
        return RoomPresence::Other;
    };
    let ty = presence.attr("type");
    if ty == Some("error") {
        return match error_condition(presence) {
            Some(condition) if nick == own_nick || nick.is_empty() => {
                RoomPresence::Refused(condition)
            }
            _ => RoomPresence::Other,
        };
    }
    let user = presence.get_child("x", MUC_USER_NS);
    let codes: Vec<&str> = user
        .into_iter()
        .flat_map(|x| x.children())
        .filter(|c| c.is("status", MUC_USER_NS))
        .filter_map(|c| c.attr("code"))
        .take(16)
        .collect();
    let has = |code: &str| codes.contains(&code);
    let item = user.and_then(|x| x.get_child("item", MUC_USER_NS));
    let available = ty != Some("unavailable");
    if !(has("110") || nick == own_nick) {
        return match ty {
            None | Some("unavailable") => RoomPresence::Occupant {
                nick,
                available,
                jid: item.and_then(|i| i.attr("jid")),
                id: occupant_id(presence),
            },
            _ => RoomPresence::Other,
        };
    }
    if available {
        return RoomPresence::Joined {
            nick,
            created: has("201"),
        };
    }
    let destroyed = user.is_some_and(|x| x.get_child("destroy", MUC_USER_NS).is_some());
    let departure = if has("303") {
        match item.and_then(|i| i.attr("nick")) {
            Some(new) => Departure::NickChanged(new.to_string()),
            None => Departure::Left,
        }
    } else if has("301") {
        Departure::Banned
    } else if has("307") || has("333") || has("332") {
        Departure::Kicked
    } else if destroyed {
        Departure::Removed("gone")
    } else if has("321") || has("322") {
        Departure::Removed("registration-required")
    } else if has("344") {
        Departure::Removed("service-unavailable")
    } else {
        Departure::Left
    };
    RoomPresence::Departed(departure)
}

/// The XEP-0421 occupant id a room's stanza carries.
pub fn occupant_id(stanza: &Element) -> Option<&str> {
    stanza
        .get_child("occupant-id", OCCUPANT_ID_NS)
        .and_then(|o| o.attr("id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::document::parse_stanza;
    use crate::xml::write::write_stanza;

    fn read(xml: &str, own: &str) -> RoomPresence<'static> {
        let element = parse_stanza(xml, 64).expect("valid");
        let leaked: &'static Element = Box::leak(Box::new(element));
        read_presence(leaked, own)
    }

    const USER: &str = "xmlns='http://jabber.org/protocol/muc#user'";

    #[test]
    fn the_join_asks_for_no_history_and_carries_the_password() {
        let presence = join_presence("lobby@c.example", "Bot", "bot.example/Bot", Some("pw"));
        assert_eq!(
            write_stanza(&presence),
            "<presence from='bot.example/Bot' \
             to='lobby@c.example/Bot'><x xmlns='http://jabber.org/protocol/muc'>\
             <history maxstanzas='0'/><password>pw</password></x></presence>"
        );
        let instant = instant_room("lobby@c.example", "bot.example/Bot", "i1");
        assert!(write_stanza(&instant).contains(
            "<query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query>"
        ));
    }

    #[test]
    fn self_presence_says_joined_and_created() {
        let xml = format!(
            "<presence from='r@c/Bot' to='b/Bot'><x {USER}><item role='moderator'/>\
             <status code='110'/><status code='201'/></x></presence>"
        );
        assert_eq!(
            read(&xml, "Bot"),
            RoomPresence::Joined {
                nick: "Bot",
                created: true
            }
        );
        // A room that changed the nick still marks the bot's own presence with 110.
        let renamed = format!(
            "<presence from='r@c/Bot2' to='b/Bot'><x {USER}><status code='110'/>\
             <status code='210'/></x></presence>"
        );
        assert_eq!(
            read(&renamed, "Bot"),
            RoomPresence::Joined {
                nick: "Bot2",
                created: false
            }
        );
    }

    #[test]
    fn departures_are_told_apart() {
        let gone = |codes: &str, extra: &str| {
            read(
                &format!(
                    "<presence from='r@c/Bot' type='unavailable'><x {USER}>{extra}\
                     <status code='110'/>{codes}</x></presence>"
                ),
                "Bot",
            )
        };
        let status = |code| format!("<status code='{code}'/>");
        assert_eq!(
            gone(&status(307), ""),
            RoomPresence::Departed(Departure::Kicked)
        );
        assert_eq!(
            gone(&status(333), ""),
            RoomPresence::Departed(Departure::Kicked)
        );
        assert_eq!(
            gone(&status(301), ""),
            RoomPresence::Departed(Departure::Banned)
        );
        assert!(matches!(
            gone("", "<destroy/>"),
            RoomPresence::Departed(Departure::Removed(_))
        ));
        assert!(matches!(
            gone(&status(322), ""),
            RoomPresence::Departed(Departure::Removed(_))
        ));
        assert_eq!(gone("", ""), RoomPresence::Departed(Departure::Left));
        assert_eq!(
            gone(&status(303), "<item nick='Bot_'/>"),
            RoomPresence::Departed(Departure::NickChanged("Bot_".into()))
        );
    }

    #[test]
    fn refusals_and_other_occupants() {
        let conflict = "<presence from='r@c/Bot' type='error'><error type='cancel'>\
            <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>";
        assert_eq!(read(conflict, "Bot"), RoomPresence::Refused("conflict"));
        let alice = format!(
            "<presence from='r@c/alice'><x {USER}><item jid='alice@e/phone' role='participant'/>\
             </x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='o1'/></presence>"
        );
        assert_eq!(
            read(&alice, "Bot"),
            RoomPresence::Occupant {
                nick: "alice",
                available: true,
                jid: Some("alice@e/phone"),
                id: Some("o1")
            }
        );
        assert_eq!(read("<presence from='r@c'/>", "Bot"), RoomPresence::Other);
    }
}
