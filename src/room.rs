//! Group chats (XEP-0045): the rooms a component's bot sits in, as the configuration and the
//! API describe them, and the rules of being an occupant. What a room's stanzas mean and
//! which stanzas the bot sends a room is pure code (`presence`, `message`); the live table of
//! rooms, their states and occupants, is `directory`.
//!
//! - [`presence`]: join and leave presences, the instant-room form, a room's presence read.
//! - [`message`]: a groupchat or private message from a room → what the webhook is told of
//!   it (or why it is not POSTed); mentions; the origin-ids the bot puts on what it sends.
//! - [`directory`]: a component's rooms: their states, occupants, the API's waiting joins.

pub mod directory;
pub mod message;
pub mod presence;

use std::borrow::Cow;

use serde::Serialize;

use crate::config::Secret;
use crate::stanza::{address_on_domain, bare, normalised};

/// Which groupchat messages of a room go to the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// Every message of the room.
    #[default]
    All,
    /// Only those that mention the bot (its nick as a word, or an XEP-0372 mention).
    Mentions,
}

impl Forward {
    pub fn as_str(self) -> &'static str {
        match self {
            Forward::All => "all",
            Forward::Mentions => "mentions",
        }
    }
}

/// One room the bot joins, checked: addresses written as the server compares them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomConfig {
    /// The room's bare JID (`lobby@conference.example.com`).
    pub jid: String,
    pub nick: String,
    pub password: Option<Secret>,
    /// The bare JID on the component's domain that joins; it joins as `<from>/<nick>`.
    pub from: String,
    pub forward: Forward,
}

/// A room description that cannot be used: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RoomFieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_error(field: &'static str, message: impl Into<String>) -> RoomFieldError {
    RoomFieldError {
        field,
        message: message.into(),
    }
}

/// The longest nick accepted (a JID's resource is at most 1023 bytes).
const MAX_NICK: usize = 1023;

impl RoomConfig {
    /// Checks one room for the component of `domain`: `jid` a room's bare JID, `nick` a
    /// resource, `from` (default: the domain) a bare JID on the domain, `forward` `all` or
    /// `mentions`.
    pub fn check(
        domain: &str,
        jid: Option<&str>,
        nick: Option<&str>,
        password: Option<&str>,
        from: Option<&str>,
        forward: Option<&str>,
    ) -> Result<RoomConfig, RoomFieldError> {
        let jid = jid.ok_or_else(|| field_error("jid", "is missing"))?;
        let room = match jid::BareJid::new(jid) {
            Ok(room) if room.node().is_some() => room,
            _ => {
                return Err(field_error(
                    "jid",
                    format!("'{jid}' is not a room's bare JID (room@conference.example.com)"),
                ))
            }
        };
        let nick = nick.ok_or_else(|| field_error("nick", "is missing"))?;
        if nick.is_empty() || nick.len() > MAX_NICK || jid::ResourcePart::new(nick).is_err() {
            return Err(field_error(
                "nick",
                format!("'{nick}' is not a nick (a non-empty JID resource)"),
            ));
        }
        let from = from.unwrap_or(domain);
        let from = match address_on_domain(from, domain) {
            Some(address) if !address.contains('/') => address.into_owned(),
            _ => {
                return Err(field_error(
                    "from",
                    format!("'{from}' is not a bare JID on {domain}"),
                ))
            }
        };
        let forward = match forward {
            None | Some("all") => Forward::All,
            Some("mentions") => Forward::Mentions,
            Some(other) => {
                return Err(field_error(
                    "forward",
                    format!("'{other}' is not \"all\" or \"mentions\""),
                ))
            }
        };
        if password.is_some_and(|p| p.len() > MAX_NICK) {
            return Err(field_error("password", "is longer than 1023 bytes"));
        }
        Ok(RoomConfig {
            jid: room.to_string(),
            nick: nick.to_string(),
            password: password.map(|p| Secret::new(p.to_string())),
            from,
            forward,
        })
    }

    /// The full JID the bot joins from, and sends the room's messages from.
    pub fn occupant_address(&self) -> String {
        format!("{}/{}", self.from, self.nick)
    }
}

/// The bare part of `jid`, in the form the server compares (the key of a room); borrowed
/// when it is written so already, as an address the server routed is.
pub fn room_key(jid: &str) -> Cow<'_, str> {
    normalised(bare(jid))
}

/// The resource of `jid` (a room occupant's nick), if it has one.
pub fn nick_of(jid: &str) -> Option<&str> {
    jid.split_once('/').map(|(_, nick)| nick)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(jid: &str, nick: &str, from: Option<&str>) -> Result<RoomConfig, RoomFieldError> {
        RoomConfig::check("bot.example.com", Some(jid), Some(nick), None, from, None)
    }

    #[test]
    fn a_room_is_read_with_its_defaults() {
        let room = check("Lobby@Conference.Example.com", "EchoBot", None).expect("valid");
        assert_eq!(room.jid, "lobby@conference.example.com");
        assert_eq!(room.from, "bot.example.com");
        assert_eq!(room.forward, Forward::All);
        assert_eq!(room.occupant_address(), "bot.example.com/EchoBot");
    }

    #[test]
    fn bad_rooms_name_their_field() {
        let field = |r: Result<RoomConfig, RoomFieldError>| r.expect_err("refused").field;
        assert_eq!(field(check("conference.example.com", "a", None)), "jid");
        assert_eq!(field(check("a@b/c", "a", None)), "jid");
        assert_eq!(field(check("a@b", "", None)), "nick");
        assert_eq!(field(check("a@b", "n", Some("x@elsewhere.com"))), "from");
        assert_eq!(
            field(check("a@b", "n", Some("x@bot.example.com/r"))),
            "from"
        );
        let missing = RoomConfig::check("d", Some("a@b"), None, None, None, None);
        assert_eq!(
            missing.expect_err("refused").to_string(),
            "nick: is missing"
        );
        let longest = "n".repeat(MAX_NICK);
        assert!(check("a@b", &longest, None).is_ok(), "a nick at the bound");
        assert_eq!(field(check("a@b", &format!("{longest}n"), None)), "nick");
        let password = "p".repeat(MAX_NICK + 1);
        let long = RoomConfig::check("d", Some("a@b"), Some("n"), Some(&password), None, None);
        assert_eq!(long.expect_err("refused").field, "password");
        let forward = RoomConfig::check("d", Some("a@b"), Some("n"), None, None, Some("some"));
        assert_eq!(forward.expect_err("refused").field, "forward");
    }

    #[test]
    fn keys_are_bare_and_normalised() {
        assert_eq!(room_key("Lobby@Conf.Example/Alice"), "lobby@conf.example");
        assert_eq!(nick_of("lobby@conf/Alice Smith"), Some("Alice Smith"));
        assert_eq!(nick_of("lobby@conf"), None);
    }
}
