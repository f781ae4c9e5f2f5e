//! A message from a room the bot is in → what the webhook is told of it (`room`,
//! `occupant`, `mentioned`; its `stanza_id` is a rich key, read by `stanza::rich_read`), or
//! why it is not POSTed: the bot's own message reflected, a subject change, the room's
//! history, a message that does not mention it when the room forwards mentions only. And the XEP-0359 origin-ids the bot puts on what
//! it sends a room, which it knows again without keeping them.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use minidom::Element;

use super::presence::occupant_id;
use super::{nick_of, Forward};
pub use crate::stanza::request::RoomFields;
use crate::stanza::{Inbound, COMPONENT_NS};

pub const SID_NS: &str = "urn:xmpp:sid:0";
const DELAY_NS: &str = "urn:xmpp:delay";
const LEGACY_DELAY_NS: &str = "jabber:x:delay";
const REFERENCE_NS: &str = "urn:xmpp:reference:0";

/// What the bot knows of one room when a message of it arrives.
pub struct RoomView<'a> {
    pub room: &'a str,
    /// The bot's nick in the room.
    pub own_nick: &'a str,
    pub forward: Forward,
    pub origin_ids: &'a OriginIds,
}

/// Why a message from a room is not POSTed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    Reflection,
    Subject,
    History,
    NotMentioned,
}

impl Skipped {
    pub fn as_str(self) -> &'static str {
        match self {
            Skipped::Reflection => "the bot's own message, reflected by the room",
            Skipped::Subject => "a subject change",
            Skipped::History => "the room's history",
            Skipped::NotMentioned => "a message that does not mention the bot",
        }
    }
}

/// Reads a message of `view`'s room; `occupant_jid` finds an occupant's real JID by nick.
pub fn read_message(
    inbound: &Inbound,
    view: &RoomView<'_>,
    occupant_jid: impl FnOnce(&str) -> Option<String>,
) -> Result<RoomFields, Skipped> {
    let element = inbound.element();
    let nick = nick_of(inbound.from());
    let groupchat = inbound.stanza_type() == Some("groupchat");
    let mentioned = if groupchat {
        if nick == Some(view.own_nick) || is_own_origin(element, view.origin_ids) {
            return Err(Skipped::Reflection);
        }
        if element.get_child("body", COMPONENT_NS).is_none() {
            // A subject change, or a body-less notice (chat states, receipts, markers).
            if element.get_child("subject", COMPONENT_NS).is_some() {
                return Err(Skipped::Subject);
            }
        }
        if is_history(element, view.room) {
            return Err(Skipped::History);
        }
        let mentioned = mentions(inbound, view);
        if view.forward == Forward::Mentions && !mentioned {
            return Err(Skipped::NotMentioned);
        }
        mentioned
    } else {
        true
    };
    Ok(RoomFields {
        room: view.room.to_string(),
        nick: nick.map(str::to_string),
        occupant_id: occupant_id(element).map(str::to_string),
        occupant_jid: nick.and_then(occupant_jid),
        mentioned: Some(mentioned),
    })
}

/// A message the room replays from before the bot joined: delayed by the room itself.
fn is_history(element: &Element, room: &str) -> bool {
    element.children().any(|c| {
        (c.is("delay", DELAY_NS) || c.is("x", LEGACY_DELAY_NS))
            && c.attr("from")
                .is_some_and(|from| from.eq_ignore_ascii_case(room))
    })
}

fn is_own_origin(element: &Element, origin_ids: &OriginIds) -> bool {
    element
        .children()
        .filter(|c| c.is("origin-id", SID_NS))
        .filter_map(|c| c.attr("id"))
        .any(|id| origin_ids.is_ours(id))
}

/// Whether the body names the bot's nick as a word (in any case), or an XEP-0372 mention
/// points at its occupant JID.
fn mentions(inbound: &Inbound, view: &RoomView<'_>) -> bool {
    let referenced = inbound.element().children().any(|c| {
        c.is("reference", REFERENCE_NS)
            && c.attr("type") == Some("mention")
            && c.attr("uri").is_some_and(|u| {
                let uri = format!("xmpp:{}/{}", view.room, view.own_nick);
                percent_decoded(u).eq_ignore_ascii_case(&uri)
            })
    });
    referenced
        || inbound
            .body()
            .is_some_and(|body| names(&body, view.own_nick))
}

/// Whether `nick` is in `text` as a word: not inside a longer run of letters or digits.
pub fn names(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    let text = text.to_lowercase();
    let nick = nick.to_lowercase();
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    text.match_indices(&nick).any(|(at, found)| {
        let before = text[..at].chars().next_back();
        let after = text[at + found.len()..].chars().next();
        // A nick that itself starts or ends with punctuation needs no boundary there.
        let starts_word = nick.chars().next().is_some_and(char::is_alphanumeric);
        let ends_word = nick.chars().next_back().is_some_and(char::is_alphanumeric);
        !((starts_word && is_word(before)) || (ends_word && is_word(after)))
    })
}

/// `%XX` sequences of a URI decoded (XEP-0372 URIs escape a nick's spaces and more).
fn percent_decoded(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes the origin-ids of the bot's room messages and knows them again: each is a counter
/// and a keyed hash of it, so that none needs keeping (the key is the process's own).
#[derive(Debug, Default)]
pub struct OriginIds {
    key: RandomState,
    next: AtomicU64,
}

const ORIGIN_PREFIX: &str = "chttp-";

impl OriginIds {
    pub fn make(&self) -> String {
        let count = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{ORIGIN_PREFIX}{count:x}-{:016x}", self.key.hash_one(count))
    }

    pub fn is_ours(&self, id: &str) -> bool {
        let Some((count, tag)) = id
            .strip_prefix(ORIGIN_PREFIX)
            .and_then(|rest| rest.split_once('-'))
        else {
            return false;
        };
        match (u64::from_str_radix(count, 16), u64::from_str_radix(tag, 16)) {
            (Ok(count), Ok(tag)) => self.key.hash_one(count) == tag,
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
