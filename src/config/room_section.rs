//! A component's group-chat keys: `rooms` (each checked by [`RoomConfig::check`], its errors
//! naming `rooms[N].key`), `rejoin_after_kick`, `join_timeout`, `max_rooms` and
//! `max_room_occupants`.

use std::time::Duration;

use serde::Deserialize;

use super::duration;
use crate::room::RoomConfig;

pub const DEFAULT_REJOIN_AFTER_KICK: f64 = 5.0;
pub const DEFAULT_JOIN_TIMEOUT: f64 = 20.0;
pub const DEFAULT_MAX_ROOMS: usize = 100;
pub const DEFAULT_MAX_ROOM_OCCUPANTS: usize = 1000;

/// One entry of `rooms`, as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoom {
    jid: Option<String>,
    nick: Option<String>,
    password: Option<String>,
    from: Option<String>,
    forward: Option<String>,
}

/// The group-chat keys, checked.
pub(super) struct RoomKeys {
    pub(super) rooms: Vec<RoomConfig>,
    pub(super) rejoin_after_kick: Option<Duration>,
    pub(super) join_timeout: Duration,
    pub(super) max_rooms: usize,
    pub(super) max_room_occupants: usize,
}

/// Checks the group-chat keys of the component of `domain`, as serde read them.
pub(super) fn check_rooms(
    domain: &str,
    raw_rooms: Option<Vec<RawRoom>>,
    rejoin_after_kick: Option<f64>,
    join_timeout: Option<f64>,
    max_rooms: Option<usize>,
    max_room_occupants: Option<usize>,
) -> Result<RoomKeys, String> {
    let mut rooms: Vec<RoomConfig> = Vec::new();
    for (index, room) in raw_rooms.unwrap_or_default().iter().enumerate() {
        let checked = RoomConfig::check(
            domain,
            room.jid.as_deref(),
            room.nick.as_deref(),
            room.password.as_deref(),
            room.from.as_deref(),
            room.forward.as_deref(),
        )
        .map_err(|e| format!("key 'rooms[{index}].{}': {}", e.field, e.message))?;
        if rooms.iter().any(|r| r.jid == checked.jid) {
            return Err(format!(
                "key 'rooms[{index}].jid': room '{}' is listed twice",
                checked.jid
            ));
        }
        rooms.push(checked);
    }
    let max_rooms = max_rooms.unwrap_or(DEFAULT_MAX_ROOMS);
    if max_rooms < rooms.len() {
        return Err(format!(
            "key 'max_rooms': {max_rooms} is fewer than the {} rooms listed",
            rooms.len()
        ));
    }
    let rejoin_after_kick = match rejoin_after_kick {
        Some(0.0) => None,
        other => Some(duration(
            "rejoin_after_kick",
            other,
            DEFAULT_REJOIN_AFTER_KICK,
        )?),
    };
    Ok(RoomKeys {
        rooms,
        rejoin_after_kick,
        join_timeout: duration("join_timeout", join_timeout, DEFAULT_JOIN_TIMEOUT)?,
        max_rooms,
        max_room_occupants: max_room_occupants.unwrap_or(DEFAULT_MAX_ROOM_OCCUPANTS),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[[component]]\ndomain = \"bot.example.com\"\nsecret = \"s\"\n\
                        post_url = \"http://127.0.0.1:1/\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{extra}"), std::path::Path::new("."))
    }

    #[test]
    fn rooms_are_read_with_their_defaults() {
        let config = parse(
            "rooms = [{ jid = \"lobby@conference.example.com\", nick = \"EchoBot\" },\n\
             { jid = \"ops@conference.example.com\", nick = \"Ops\", password = \"pw\", \
             from = \"helper@bot.example.com\", forward = \"mentions\" }]\n",
        )
        .expect("valid");
        let component = &config.components[0];
        assert_eq!(component.rooms.len(), 2);
        assert_eq!(
            component.rooms[1].occupant_address(),
            "helper@bot.example.com/Ops"
        );
        assert_eq!(component.rejoin_after_kick.map(|d| d.as_secs()), Some(5));
        assert_eq!(component.join_timeout.as_secs(), 20);
        assert_eq!(component.max_rooms, 100);
        let printed = config.to_redacted_toml();
        assert!(!printed.contains("\"pw\""), "{printed}");
        let off = parse("rejoin_after_kick = 0\n").expect("valid");
        assert_eq!(off.components[0].rejoin_after_kick, None);
    }

    #[test]
    fn a_bad_room_names_its_key() {
        let error = |extra: &str| parse(extra).expect_err("refused");
        let no_nick = error("rooms = [{ jid = \"lobby@conference.example.com\" }]\n");
        assert!(
            no_nick.contains("key 'rooms[0].nick': is missing"),
            "{no_nick}"
        );
        let bad_jid = error("rooms = [{ jid = \"not a jid@@\", nick = \"n\" }]\n");
        assert!(bad_jid.contains("key 'rooms[0].jid'"), "{bad_jid}");
        let twice = error(
            "rooms = [{ jid = \"a@c.example\", nick = \"n\" }, { jid = \"A@c.example\", nick = \"m\" }]\n",
        );
        assert!(twice.contains("key 'rooms[1].jid'"), "{twice}");
        let unknown = error("rooms = [{ jid = \"a@c.example\", nick = \"n\", nik = \"m\" }]\n");
        assert!(unknown.contains("nik"), "{unknown}");
        let few = error("max_rooms = 0\nrooms = [{ jid = \"a@c.example\", nick = \"n\" }]\n");
        assert!(few.contains("max_rooms"), "{few}");
    }
}
