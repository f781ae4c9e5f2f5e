//! A component's rooms while it runs: each room's state (`joining`, `joined`, `kicked`,
//! `banned`, `error`, `left`), the nick it sits under, the occupants it has seen (at most
//! `max_room_occupants`), and the API requests waiting for a join. The dispatcher hands it
//! every stanza from one of its rooms ([`Rooms::arrival`]) and sends what it says; the
//! component asks it for the joins after each handshake. It keeps no socket and no timer:
//! a rejoin after a kick is a [`Rejoin`] the dispatcher waits out.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use minidom::Element;
use serde::Serialize;
use tokio::sync::oneshot;

use super::message::{read_message, OriginIds, RoomFields, RoomView};
use super::presence::{instant_room, join_presence, leave_presence, occupant_id, read_presence};
use super::presence::{Departure, RoomPresence};
use super::{room_key, RoomConfig};
use crate::backoff::random_u64;
use crate::config::ComponentConfig;
use crate::stanza::fields::JoinedRooms;
use crate::stanza::reply::empty_iq_result;
use crate::stanza::{Inbound, Kind};

/// Nick retries after a conflict: `<nick>_2` to `<nick>_5`.
const NICK_RETRIES: u32 = 4;
/// Joins tried again, `rejoin_after_kick` apart, when the room is locked (`item-not-found`:
/// another occupant created it and has not configured it yet) before giving up.
const LOCKED_RETRIES: u32 = 3;
/// API requests waiting for one room's join, at most.
const MAX_WAITING_JOINS: usize = 64;
const INSTANT_ID_PREFIX: &str = "chttp-instant-";
const PING_NS: &str = "urn:xmpp:ping";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomState {
    Joining,
    Joined,
    Kicked,
    Banned,
    Error,
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Api,
}

/// One room in `GET /v1/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    pub component: String,
    pub jid: String,
    pub nick: String,
    /// The nick the room knows the bot by (another after a nick conflict).
    pub occupant_nick: String,
    pub from: String,
    pub forward: &'static str,
    pub source: Source,
    pub state: RoomState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// A join the room refused (or the bot left the room while an API request waited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinFailure {
    pub condition: String,
    pub room: RoomInfo,
}

pub type JoinOutcome = Result<RoomInfo, JoinFailure>;

/// What becomes of a stanza from one of the rooms.
#[derive(Debug)]
pub enum Arrival {
    /// Not from a room of this component.
    Elsewhere,
    /// Taken care of here: send these, and come back for a rejoin after a kick.
    Handled {
        send: Vec<Element>,
        rejoin: Option<Rejoin>,
    },
    /// Not POSTed, for this reason (debug log).
    Skipped(&'static str),
    /// POSTed to the webhook with these fields; never answered with an error.
    Post(RoomFields),
}

/// A rejoin due after `after`, unless the room was joined or left meanwhile (`generation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoin {
    pub room: String,
    pub generation: u64,
    pub after: Duration,
}

#[derive(Debug)]
struct Entry {
    config: RoomConfig,
    source: Source,
    state: RoomState,
    condition: Option<String>,
    /// The nick the room knows the bot by.
    nick: String,
    /// Nick retries made since the last join began.
    retries: u32,
    /// Joins tried again since the last handshake because the room was locked.
    locked_retries: u32,
    /// Occupants seen, by nick: their real JID when the room showed it.
    occupants: HashMap<String, Option<String>>,
    waiting: Vec<oneshot::Sender<JoinOutcome>>,
    /// Moves on with every join and leave: a rejoin from an older one is dropped.
    generation: u64,
}

/// A component's rooms.
#[derive(Debug)]
pub struct Rooms {
    domain: String,
    rejoin_after_kick: Option<Duration>,
    join_timeout: Duration,
    max_rooms: usize,
    max_occupants: usize,
    origin_ids: OriginIds,
    instant_ids: AtomicU64,
    /// Whether any room is in the table: the only check most stanzas cost.
    any: AtomicBool,
    table: Mutex<BTreeMap<String, Entry>>,
}

impl Entry {
    fn new(config: RoomConfig, source: Source) -> Entry {
        Entry {
            nick: config.nick.clone(),
            config,
            source,
            state: RoomState::Joining,
            condition: None,
            retries: 0,
            locked_retries: 0,
            occupants: HashMap::new(),
            waiting: Vec::new(),
            generation: 0,
        }
    }

    fn info(&self, component: &str) -> RoomInfo {
        RoomInfo {
            component: component.to_string(),
            jid: self.config.jid.clone(),
            nick: self.config.nick.clone(),
            occupant_nick: self.nick.clone(),
            from: self.config.occupant_address(),
            forward: self.config.forward.as_str(),
            source: self.source,
            state: self.state,
            condition: self.condition.clone(),
        }
    }

    /// Starts a join afresh: the configured nick, no occupants known.
    fn begin_join(&mut self) -> Element {
        self.state = RoomState::Joining;
        self.condition = None;
        self.nick.clone_from(&self.config.nick);
        self.retries = 0;
        self.occupants.clear();
        self.generation += 1;
        self.join_presence()
    }

    fn join_presence(&self) -> Element {
        let password = self.config.password.as_ref().map(|p| p.expose());
        let from = self.config.occupant_address();
        join_presence(&self.config.jid, &self.nick, &from, password)
    }

    /// Tells every waiting API request how the join ended.
    fn settle(&mut self, component: &str, failed: Option<&str>) {
        let info = self.info(component);
        for waiter in self.waiting.drain(..) {
            let outcome = match failed {
                None => Ok(info.clone()),
                Some(condition) => Err(JoinFailure {
                    condition: condition.to_string(),
                    room: info.clone(),
                }),
            };
            let _ = waiter.send(outcome);
        }
    }
}

impl Rooms {
    pub fn new(config: &ComponentConfig) -> Rooms {
        let table: BTreeMap<String, Entry> = config
            .rooms
            .iter()
            .map(|room| (room.jid.clone(), Entry::new(room.clone(), Source::Config)))
            .collect();
        Rooms {
            domain: config.domain.clone(),
            rejoin_after_kick: config.rejoin_after_kick,
            join_timeout: config.join_timeout,
            max_rooms: config.max_rooms,
            max_occupants: config.max_room_occupants,
            origin_ids: OriginIds::default(),
            instant_ids: AtomicU64::new(0),
            any: AtomicBool::new(!table.is_empty()),
            table: Mutex::new(table),
        }
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `from` is one of the rooms, or an occupant of one.
    pub fn is_room(&self, from: &str) -> bool {
        self.any.load(Ordering::Relaxed) && self.table().contains_key(&*room_key(from))
    }

    /// The joins to send right after a handshake: every room but those left or banned.
    pub fn joins(&self) -> Vec<Element> {
        let mut table = self.table();
        table
            .values_mut()
            .filter(|e| !matches!(e.state, RoomState::Left | RoomState::Banned))
            .map(|entry| {
                entry.locked_retries = 0;
                entry.begin_join()
            })
            .collect()
    }

    /// The connection is gone: the rooms will be joined again after the next handshake.
    pub fn disconnected(&self) {
        for entry in self.table().values_mut() {
            if matches!(entry.state, RoomState::Joined | RoomState::Kicked) {
                entry.state = RoomState::Joining;
                entry.occupants.clear();
            }
        }
    }

    /// The join for `rejoin`, unless the room was joined again or left since.
    pub fn rejoin(&self, rejoin: &Rejoin) -> Option<Element> {
        let mut table = self.table();
        let entry = table.get_mut(&rejoin.room)?;
        let waiting = matches!(entry.state, RoomState::Kicked | RoomState::Joining);
        (entry.generation == rejoin.generation && waiting).then(|| entry.begin_join())
    }

    /// How long `POST /v1/rooms` waits for a room's answer.
    pub fn join_timeout(&self) -> Duration {
        self.join_timeout
    }

    pub fn list(&self) -> Vec<RoomInfo> {
        self.table()
            .values()
            .map(|e| e.info(&self.domain))
            .collect()
    }

    /// (joined, all) for `/v1/status`.
    pub fn counts(&self) -> (usize, usize) {
        let table = self.table();
        let joined = table
            .values()
            .filter(|e| e.state == RoomState::Joined)
            .count();
        (joined, table.len())
    }

    /// What becomes of a stanza (see [`Arrival`]); `forwarded`: the kinds the webhook takes.
    pub fn arrival(&self, inbound: &Inbound, forwarded: &[Kind]) -> Arrival {
        if !self.any.load(Ordering::Relaxed) {
            return Arrival::Elsewhere;
        }
        let mut table = self.table();
        let Some(entry) = table.get_mut(&*room_key(inbound.from())) else {
            return Arrival::Elsewhere;
        };
        if entry.state == RoomState::Left {
            return Arrival::Skipped("from a room the bot left");
        }
        match inbound.kind() {
            Kind::Presence => self.presence(entry, inbound, forwarded.contains(&Kind::Presence)),
            Kind::Message if !forwarded.contains(&Kind::Message) => {
                Arrival::Skipped("a message, and messages are not in `stanzas`")
            }
            Kind::Message if inbound.stanza_type() == Some("error") => self.bounced(entry, inbound),
            Kind::Message => {
                let view = RoomView {
                    room: &entry.config.jid,
                    own_nick: &entry.nick,
                    forward: entry.config.forward,
                    origin_ids: &self.origin_ids,
                };
                let occupants = &entry.occupants;
                match read_message(inbound, &view, |nick| {
                    occupants.get(nick).cloned().flatten()
                }) {
                    Ok(fields) => Arrival::Post(fields),
                    Err(skipped) => Arrival::Skipped(skipped.as_str()),
                }
            }
            Kind::Iq => self.iq(entry, inbound),
        }
    }
}

mod arrival;
mod requests;

pub use requests::{AddError, Joining};

impl JoinedRooms for Rooms {
    fn occupant_address(&self, room: &str) -> Option<String> {
        if !self.any.load(Ordering::Relaxed) || room.contains('/') {
            return None;
        }
        let table = self.table();
        table
            .get(&*room_key(room))
            .map(|e| e.config.occupant_address())
    }

    fn new_origin_id(&self) -> String {
        self.origin_ids.make()
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
