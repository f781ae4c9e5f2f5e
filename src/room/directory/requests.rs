//! What the API asks of a component's rooms: `POST /v1/rooms` takes a room (or joins again
//! one it has) and hands back where the join's outcome will come; `DELETE` leaves one, which
//! stays listed as `left`.

use minidom::Element;
use tokio::sync::oneshot;

use super::{
    leave_presence, room_key, Entry, JoinOutcome, RoomConfig, RoomInfo, RoomState, Rooms, Source,
    MAX_WAITING_JOINS,
};
use std::sync::atomic::Ordering;

/// Why `POST /v1/rooms` cannot take a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("{0} is already joined with another nick or from another JID")]
    Exists(String),
    #[error("max_rooms ({0}) rooms are joined already")]
    TooMany(usize),
    #[error("{0} join requests wait for this room already")]
    TooManyWaiting(usize),
}

/// What `POST /v1/rooms` got: the join to send (when connected) and where its outcome comes.
pub enum Joining {
    Already(RoomInfo),
    Waiting {
        presence: Option<Element>,
        outcome: oneshot::Receiver<JoinOutcome>,
    },
}

impl Rooms {
    /// Takes a room from the API (or joins again one already there with the same nick);
    /// `connected`: the join can be sent now, else it goes after the next handshake.
    pub fn add(&self, config: RoomConfig, connected: bool) -> Result<Joining, AddError> {
        let mut table = self.table();
        if let Some(entry) = table.get(&config.jid) {
            if entry.config.nick != config.nick || entry.config.from != config.from {
                return Err(AddError::Exists(config.jid));
            }
            if entry.state == RoomState::Joined {
                return Ok(Joining::Already(entry.info(&self.domain)));
            }
        } else {
            if table.len() >= self.max_rooms {
                // A room left through the API makes room for another.
                let left = table
                    .iter()
                    .find(|(_, e)| e.state == RoomState::Left && e.source == Source::Api)
                    .map(|(key, _)| key.clone());
                match left {
                    Some(key) => table.remove(&key),
                    None => return Err(AddError::TooMany(self.max_rooms)),
                };
            }
            table.insert(config.jid.clone(), Entry::new(config.clone(), Source::Api));
            self.any.store(true, Ordering::Relaxed);
        }
        let Some(entry) = table.get_mut(&config.jid) else {
            return Err(AddError::TooMany(self.max_rooms));
        };
        if entry.waiting.len() >= MAX_WAITING_JOINS {
            return Err(AddError::TooManyWaiting(MAX_WAITING_JOINS));
        }
        // A joining room has its join on the way already; the rest start one.
        let already_joining = entry.state == RoomState::Joining && entry.generation > 0;
        entry.config.password = config.password;
        entry.config.forward = config.forward;
        let presence = if !connected {
            entry.state = RoomState::Joining;
            None
        } else if already_joining {
            None
        } else {
            Some(entry.begin_join())
        };
        let (sender, outcome) = oneshot::channel();
        entry.waiting.push(sender);
        Ok(Joining::Waiting { presence, outcome })
    }

    /// Leaves the room: its state is `left` until joined again; the presence to send.
    pub fn leave(&self, jid: &str) -> Option<(RoomInfo, Element)> {
        let mut table = self.table();
        let entry = table.get_mut(&*room_key(jid))?;
        entry.state = RoomState::Left;
        entry.condition = None;
        entry.generation += 1;
        entry.occupants.clear();
        entry.settle(&self.domain, Some("left"));
        let presence = leave_presence(
            &entry.config.jid,
            &entry.nick,
            &entry.config.occupant_address(),
        );
        Some((entry.info(&self.domain), presence))
    }
}
