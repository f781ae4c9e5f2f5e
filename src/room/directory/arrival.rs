//! What a room's presence, a bounced message or an iq from a room does to the room's entry:
//! joined, refused (another nick after a conflict), kicked (a rejoin later), banned or
//! removed; occupants coming and going; the room's self-ping answered.

use minidom::Element;

use super::{empty_iq_result, Inbound, RoomFields, RoomPresence};
use super::{instant_room, occupant_id, random_u64, read_presence, Departure};
use super::{Arrival, Entry, Rejoin, RoomState, Rooms, INSTANT_ID_PREFIX, NICK_RETRIES, PING_NS};
use super::{Duration, LOCKED_RETRIES};
use crate::xml::outgoing::error_condition;
use std::sync::atomic::Ordering;

impl Rooms {
    pub(super) fn presence(&self, entry: &mut Entry, inbound: &Inbound, posted: bool) -> Arrival {
        let room = entry.config.jid.clone();
        match read_presence(inbound.element(), &entry.nick) {
            RoomPresence::Joined { nick, created } => {
                let first = entry.state != RoomState::Joined;
                entry.state = RoomState::Joined;
                entry.condition = None;
                entry.nick = nick.to_string();
                entry.locked_retries = 0;
                if first {
                    tracing::info!("{}: joined {room} as {nick}", self.domain);
                }
                entry.settle(&self.domain, None);
                let mut send = Vec::new();
                if created {
                    let id = self.instant_ids.fetch_add(1, Ordering::Relaxed);
                    let id = format!("{INSTANT_ID_PREFIX}{id}");
                    tracing::info!("{}: created {room}, making it an instant room", self.domain);
                    send.push(instant_room(&room, &entry.config.occupant_address(), &id));
                }
                Arrival::Handled { send, rejoin: None }
            }
            RoomPresence::Departed(departure) => self.departed(entry, departure),
            RoomPresence::Refused(condition) if entry.state == RoomState::Joining => {
                self.refused(entry, condition)
            }
            RoomPresence::Refused(_) => Arrival::Skipped("an error presence from a joined room"),
            RoomPresence::Occupant {
                nick,
                available,
                jid,
                id,
            } => {
                if !available {
                    entry.occupants.remove(nick);
                } else if entry.occupants.len() < self.max_occupants
                    || entry.occupants.contains_key(nick)
                {
                    entry
                        .occupants
                        .insert(nick.to_string(), jid.map(str::to_string));
                }
                if !posted {
                    return Arrival::Skipped("room presence, and presence is not in `stanzas`");
                }
                Arrival::Post(RoomFields {
                    room,
                    nick: Some(nick.to_string()),
                    occupant_id: id.map(str::to_string),
                    occupant_jid: jid.map(str::to_string),
                    mentioned: None,
                })
            }
            RoomPresence::Other if posted => Arrival::Post(RoomFields {
                room,
                nick: None,
                occupant_id: occupant_id(inbound.element()).map(str::to_string),
                occupant_jid: None,
                mentioned: None,
            }),
            RoomPresence::Other => Arrival::Skipped("room presence"),
        }
    }

    fn departed(&self, entry: &mut Entry, departure: Departure) -> Arrival {
        let room = entry.config.jid.clone();
        entry.occupants.clear();
        let (state, condition, why) = match departure {
            Departure::NickChanged(nick) => {
                tracing::info!("{}: {room} changed the bot's nick to {nick}", self.domain);
                entry.nick = nick;
                return Arrival::Handled {
                    send: Vec::new(),
                    rejoin: None,
                };
            }
            // Out without being left: it was removed, and may come back.
            Departure::Kicked | Departure::Left => (RoomState::Kicked, None, "kicked"),
            Departure::Banned => (RoomState::Banned, Some("banned"), "banned"),
            Departure::Removed(condition) => (RoomState::Error, Some(condition), "removed"),
        };
        entry.state = state;
        entry.condition = condition.map(str::to_string);
        entry.generation += 1;
        entry.settle(&self.domain, Some(condition.unwrap_or("kicked")));
        let rejoin = match (state, self.rejoin_delay()) {
            (RoomState::Kicked, Some(after)) => {
                tracing::warn!(
                    "{}: {why} from {room}; rejoining in {:.1} s",
                    self.domain,
                    after.as_secs_f64()
                );
                Some(Rejoin {
                    room,
                    generation: entry.generation,
                    after,
                })
            }
            (RoomState::Kicked, None) => {
                tracing::warn!(
                    "{}: {why} from {room}; staying out (rejoin_after_kick = 0)",
                    self.domain
                );
                None
            }
            _ => {
                tracing::warn!(
                    "{}: {why} from {room} ({}); not rejoining",
                    self.domain,
                    condition.unwrap_or_default()
                );
                None
            }
        };
        Arrival::Handled {
            send: Vec::new(),
            rejoin,
        }
    }

    /// `rejoin_after_kick` within ±20 %, so that bots kicked together do not come back
    /// together; `None`: they stay out.
    fn rejoin_delay(&self) -> Option<Duration> {
        self.rejoin_after_kick
            .map(|after| after.mul_f64(0.8 + (random_u64() % 1000) as f64 / 2500.0))
    }

    /// The join was refused: another nick after a conflict, a locked room tried again a few
    /// times, else the room's state is `error`.
    fn refused(&self, entry: &mut Entry, condition: &str) -> Arrival {
        let room = entry.config.jid.clone();
        if condition == "conflict" && entry.retries < NICK_RETRIES {
            entry.retries += 1;
            let taken = std::mem::replace(
                &mut entry.nick,
                format!("{}_{}", entry.config.nick, entry.retries + 1),
            );
            tracing::warn!(
                "{}: the nick {taken} is taken in {room}; joining as {}",
                self.domain,
                entry.nick
            );
            return Arrival::Handled {
                send: vec![entry.join_presence()],
                rejoin: None,
            };
        }
        if let Some(after) = self.rejoin_delay() {
            if condition == "item-not-found" && entry.locked_retries < LOCKED_RETRIES {
                entry.locked_retries += 1;
                entry.generation += 1;
                tracing::warn!(
                    "{}: {room} is locked (item-not-found); trying again in {:.1} s",
                    self.domain,
                    after.as_secs_f64()
                );
                return Arrival::Handled {
                    send: Vec::new(),
                    rejoin: Some(Rejoin {
                        room,
                        generation: entry.generation,
                        after,
                    }),
                };
            }
        }
        tracing::warn!(
            "{}: {room} refused the join: {condition}; not retrying before the next connection",
            self.domain
        );
        entry.state = RoomState::Error;
        entry.condition = Some(condition.to_string());
        entry.settle(&self.domain, Some(condition));
        Arrival::Handled {
            send: Vec::new(),
            rejoin: None,
        }
    }

    /// A message of the bot's that the room bounced: `not-acceptable` says the bot is not in
    /// the room (it was dropped unseen): join again.
    pub(super) fn bounced(&self, entry: &mut Entry, inbound: &Inbound) -> Arrival {
        let condition = error_condition(inbound.element());
        if condition == Some("not-acceptable") && entry.state == RoomState::Joined {
            tracing::warn!(
                "{}: {} says the bot is not in it; joining again",
                self.domain,
                entry.config.jid
            );
            return Arrival::Handled {
                send: vec![entry.begin_join()],
                rejoin: None,
            };
        }
        Arrival::Skipped("an error message from the room")
    }

    /// The room's self-ping (XEP-0410) is answered; the answer to the instant-room form is
    /// taken here; any other iq goes its usual way.
    pub(super) fn iq(&self, entry: &mut Entry, inbound: &Inbound) -> Arrival {
        let element: &Element = inbound.element();
        let ty = inbound.stanza_type();
        if ty == Some("get") && element.get_child("ping", PING_NS).is_some() {
            return Arrival::Handled {
                send: vec![empty_iq_result(inbound)],
                rejoin: None,
            };
        }
        let ours = inbound
            .id()
            .is_some_and(|id| id.starts_with(INSTANT_ID_PREFIX));
        match ty {
            Some("result") if ours => Arrival::Skipped("the room accepted the instant-room form"),
            Some("error") if ours => {
                tracing::warn!(
                    "{}: {} refused to become an instant room: {}",
                    self.domain,
                    entry.config.jid,
                    error_condition(element).unwrap_or("no condition")
                );
                Arrival::Skipped("the room refused the instant-room form")
            }
            _ => Arrival::Elsewhere,
        }
    }
}
