//! A real user in XEP-0045 group chats, on top of `XmppClient`'s raw stanzas: joining a room
//! (and making it an instant room when the join created it), talking in it, watching other
//! occupants come and go, kicking one, leaving. The tests of issue 17 (tests/e2e/rooms.rs)
//! use it both as the people in a room and as the moderator who kicks the bot.

use std::time::Duration;

use minidom::Element;
use tokio::time::Instant;

use super::client::{to_xml, XmppClient};

pub const MUC_NS: &str = "http://jabber.org/protocol/muc";
pub const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
const MUC_OWNER_NS: &str = "http://jabber.org/protocol/muc#owner";
const MUC_ADMIN_NS: &str = "http://jabber.org/protocol/muc#admin";
const CLIENT_NS: &str = "jabber:client";
const DELAY_NS: &str = "urn:xmpp:delay";
/// Joining, configuring, kicking and leaving each get this long.
const ROOM_WAIT: Duration = Duration::from_secs(15);

/// What a join saw: the room's own presence for us, whether we created the room, and the
/// other occupants' presences that came before it (the room sends those first).
pub struct Joined {
    pub self_presence: Element,
    pub created: bool,
    pub others: Vec<Element>,
}

impl Joined {
    /// Whether `nick` was already in the room when we joined.
    pub fn saw(&self, room: &str, nick: &str) -> bool {
        let from = format!("{room}/{nick}");
        self.others.iter().any(|p| p.attr("from") == Some(&from))
    }
}

/// The `<status code='…'/>` values of a room presence's muc#user payload.
pub fn status_codes(presence: &Element) -> Vec<String> {
    presence
        .get_child("x", MUC_USER_NS)
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A groupchat message with a body that is live: not room history (`<delay>`), not a
/// subject change.
pub fn is_live_groupchat(stanza: &Element, room: &str) -> bool {
    let from_room = stanza
        .attr("from")
        .is_some_and(|from| from.split('/').next() == Some(room));
    stanza.name() == "message"
        && stanza.attr("type") == Some("groupchat")
        && from_room
        && stanza.has_child("body", CLIENT_NS)
        && !stanza.has_child("delay", DELAY_NS)
}

/// The body text of a message (empty without one).
pub fn body_text(stanza: &Element) -> String {
    stanza
        .get_child("body", CLIENT_NS)
        .map(Element::text)
        .unwrap_or_default()
}

impl XmppClient {
    /// Joins `room` as `nick` and waits for the room's presence for us (status 110). A
    /// room this join created (status 201) is made an instant room (an empty muc#owner
    /// submit) before this returns. A room that is still locked (its creator has not
    /// configured it yet: `item-not-found`) is tried again until the deadline; any other
    /// refusal panics with the error presence.
    pub async fn join_room(&mut self, room: &str, nick: &str) -> Joined {
        let occupant = format!("{room}/{nick}");
        let deadline = Instant::now() + ROOM_WAIT;
        let mut others = Vec::new();
        'attempt: loop {
            self.send(&format!(
                "<presence to='{occupant}'><x xmlns='{MUC_NS}'/></presence>"
            ))
            .await;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some(presence) = self
                    .recv_matching(left, |s| {
                        s.name() == "presence"
                            && s.attr("from")
                                .is_some_and(|from| from.split('/').next() == Some(room))
                    })
                    .await
                else {
                    panic!("{}: no answer to joining {occupant}", self.full_jid());
                };
                if presence.attr("type") == Some("error") {
                    let locked = presence
                        .get_child("error", CLIENT_NS)
                        .is_some_and(|e| e.children().any(|c| c.name() == "item-not-found"));
                    assert!(
                        locked && Instant::now() < deadline,
                        "{}: joining {occupant} refused: {}",
                        self.full_jid(),
                        to_xml(&presence)
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'attempt;
                }
                let codes = status_codes(&presence);
                if presence.attr("from") == Some(&occupant) && codes.iter().any(|c| c == "110") {
                    let created = codes.iter().any(|c| c == "201");
                    if created {
                        self.make_instant(room).await;
                    }
                    return Joined {
                        self_presence: presence,
                        created,
                        others,
                    };
                }
                others.push(presence);
            }
        }
    }

    /// Accepts the default configuration of a room we just created (XEP-0045 10.1.2).
    async fn make_instant(&mut self, room: &str) {
        let id = format!("instant-{room}");
        self.send(&format!(
            "<iq type='set' to='{room}' id='{id}'><query xmlns='{MUC_OWNER_NS}'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ))
        .await;
        self.expect_iq_result(&id, "configuring the instant room")
            .await;
    }

    /// Sends a groupchat message with `body` to `room`.
    pub async fn send_groupchat(&mut self, room: &str, body: &str) {
        self.send(&format!(
            "<message type='groupchat' to='{room}'><body>{body}</body></message>"
        ))
        .await;
    }

    /// The next live groupchat message from `room` (see `is_live_groupchat`) for which
    /// `wanted` holds, skipping everything else; None after `within`.
    pub async fn next_groupchat(
        &mut self,
        room: &str,
        within: Duration,
        wanted: impl Fn(&Element) -> bool,
    ) -> Option<Element> {
        self.recv_matching(within, |s| is_live_groupchat(s, room) && wanted(s))
            .await
    }

    /// The next presence of occupant `room/nick`: available (`available`) or unavailable;
    /// None after `within`.
    pub async fn occupant_presence(
        &mut self,
        room: &str,
        nick: &str,
        available: bool,
        within: Duration,
    ) -> Option<Element> {
        let from = format!("{room}/{nick}");
        let wanted_type = if available { None } else { Some("unavailable") };
        self.recv_matching(within, |s| {
            s.name() == "presence" && s.attr("from") == Some(&from) && s.attr("type") == wanted_type
        })
        .await
    }

    /// Kicks occupant `nick` from `room` (role none, XEP-0045 8.2) and returns the
    /// room's unavailable presence for it; panics unless the room says it is done. The
    /// presence and the iq result come in either order.
    pub async fn kick(&mut self, room: &str, nick: &str) -> Element {
        let id = format!("kick-{nick}");
        let kicked = format!("{room}/{nick}");
        self.send(&format!(
            "<iq type='set' to='{room}' id='{id}'><query xmlns='{MUC_ADMIN_NS}'>\
             <item nick='{nick}' role='none'><reason>test kick</reason></item></query></iq>"
        ))
        .await;
        let deadline = Instant::now() + ROOM_WAIT;
        let (mut done, mut gone) = (false, None);
        while !done || gone.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let stanza = self
                .recv_matching(left, |s| {
                    (s.name() == "iq" && s.attr("id") == Some(&id))
                        || (s.name() == "presence"
                            && s.attr("from") == Some(&kicked)
                            && s.attr("type") == Some("unavailable"))
                })
                .await
                .unwrap_or_else(|| panic!("{}: kicking {kicked} unfinished", self.full_jid()));
            if stanza.name() == "presence" {
                gone = Some(stanza);
            } else if stanza.attr("type") == Some("result") {
                done = true;
            } else {
                panic!(
                    "{}: kicking {kicked} failed: {}",
                    self.full_jid(),
                    to_xml(&stanza)
                );
            }
        }
        gone.expect("the loop ends with the presence")
    }

    /// Leaves `room` (we are `nick` there) and waits for the room's unavailable
    /// presence for us.
    pub async fn leave_room(&mut self, room: &str, nick: &str) {
        let occupant = format!("{room}/{nick}");
        self.send(&format!("<presence type='unavailable' to='{occupant}'/>"))
            .await;
        let gone = self.occupant_presence(room, nick, false, ROOM_WAIT).await;
        assert!(
            gone.is_some(),
            "{}: no unavailable presence after leaving {occupant}",
            self.full_jid()
        );
    }

    async fn expect_iq_result(&mut self, id: &str, what: &str) {
        let answer = self
            .recv_matching(ROOM_WAIT, |s| s.name() == "iq" && s.attr("id") == Some(id))
            .await;
        match answer {
            Some(iq) if iq.attr("type") == Some("result") => {}
            Some(iq) => panic!("{}: {what} failed: {}", self.full_jid(), to_xml(&iq)),
            None => panic!(
                "{}: no answer to {what} within {ROOM_WAIT:?}",
                self.full_jid()
            ),
        }
    }
}
