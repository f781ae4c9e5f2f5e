//! A received message or presence → its rich keys (attachments, replies, corrections,
//! reactions, receipts and the rest of docs/contract.md's table), read from its direct
//! children in one pass and written into the webhook request after the base and room
//! fields. Each key is present only when the stanza carries its element; arrays hold at
//! most [`MAX_RICH_ENTRIES`] entries, and nothing here recurses.

use std::borrow::Cow;

use minidom::Element;
use serde::Serialize;

use super::{bare, Inbound, Kind, COMPONENT_NS};

/// The most entries an array key holds (`reactions`, `stanza_ids`, `fallback`), read or
/// written: the first ones are kept.
pub const MAX_RICH_ENTRIES: usize = 64;

pub(crate) const OOB_NS: &str = "jabber:x:oob";
pub(crate) const REPLY_NS: &str = "urn:xmpp:reply:0";
pub(crate) const CORRECT_NS: &str = "urn:xmpp:message-correct:0";
pub(crate) const REACTIONS_NS: &str = "urn:xmpp:reactions:0";
pub(crate) const RETRACT_NS: &str = "urn:xmpp:message-retract:1";
pub(crate) const CHAT_STATES_NS: &str = "http://jabber.org/protocol/chatstates";
pub(crate) const RECEIPTS_NS: &str = "urn:xmpp:receipts";
pub(crate) const MARKERS_NS: &str = "urn:xmpp:chat-markers:0";
pub(crate) const SID_NS: &str = "urn:xmpp:sid:0";
pub(crate) const DELAY_NS: &str = "urn:xmpp:delay";
pub(crate) const NICK_NS: &str = "http://jabber.org/protocol/nick";
pub(crate) const FALLBACK_NS: &str = "urn:xmpp:fallback:0";
pub(crate) const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The XEP-0085 chat states, by element name.
pub(crate) const CHAT_STATES: [&str; 5] = ["active", "composing", "paused", "inactive", "gone"];

/// The rich keys of one received stanza, borrowed from its element. Serialised by serde in
/// the same order and form as `rich_json` writes them (the tests' oracle).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct RichKeys<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob: Option<Oob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<IdTo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Reactions<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retract: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<Thread<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "is_false")]
    pub receipt_request: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    pub markable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub displayed: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stanza_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stanza_ids: Vec<StanzaId<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nick: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<Fallback<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKey<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i8>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Oob<'a> {
    pub url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<Cow<'a, str>>,
}

/// XEP-0461's `reply`: the message replied to and its author.
#[derive(Debug, Serialize, PartialEq)]
pub struct IdTo<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Reactions<'a> {
    pub id: &'a str,
    pub reactions: Vec<Cow<'a, str>>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Thread<'a> {
    pub id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<&'a str>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct StanzaId<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'a str>,
}

/// One XEP-0428 fallback range: `for` the namespace it stands in for; no `start`/`end`
/// when the whole body is fallback.
#[derive(Debug, Serialize, PartialEq)]
pub struct Fallback<'a> {
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_ns: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u32>,
}

/// The `<error/>` of a message of type `error`.
#[derive(Debug, Serialize, PartialEq)]
pub struct ErrorKey<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'a str>,
    pub condition: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Reads the rich keys of `inbound` (none for an iq). `room` is the room's bare JID when
/// the stanza came from one of the bot's rooms: its `stanza_id` is the one the room
/// assigned, else the one the recipient's server did.
pub fn read_rich<'a>(inbound: &'a Inbound, room: Option<&str>) -> RichKeys<'a> {
    let mut keys = RichKeys::default();
    let kind = inbound.kind();
    if kind == Kind::Iq {
        return keys;
    }
    let element = inbound.element();
    let message = kind == Kind::Message;
    let mut subject = None;
    let mut status = None;
    for child in element.children() {
        match child.name() {
            "x" if message && keys.oob.is_none() && child.is("x", OOB_NS) => {
                read_oob(child, &mut keys)
            }
            "reply" if message && keys.reply.is_none() && child.is("reply", REPLY_NS) => {
                keys.reply = child.attr("id").map(|id| IdTo {
                    id,
                    to: child.attr("to"),
                });
            }
            "replace" if message && child.is("replace", CORRECT_NS) => {
                keys.replace = keys.replace.or(child.attr("id"));
            }
            "reactions"
                if message && keys.reactions.is_none() && child.is("reactions", REACTIONS_NS) =>
            {
                keys.reactions = child.attr("id").map(|id| Reactions {
                    id,
                    reactions: child
                        .children()
                        .filter(|r| r.is("reaction", REACTIONS_NS))
                        .take(MAX_RICH_ENTRIES)
                        .map(text_of)
                        .collect(),
                });
            }
            "retract" if message && child.is("retract", RETRACT_NS) => {
                keys.retract = keys.retract.or(child.attr("id"));
            }
            name if message && keys.state.is_none() && child.is(name, CHAT_STATES_NS) => {
                keys.state = CHAT_STATES.into_iter().find(|state| *state == name);
            }
            "thread" if message && keys.thread.is_none() && child.is("thread", COMPONENT_NS) => {
                keys.thread = Some(Thread {
                    id: text_of(child),
                    parent: child.attr("parent"),
                });
            }
            "subject" if message && child.is("subject", COMPONENT_NS) => {
                subject = Some(plainer(subject, child));
            }
            "request" if message && child.is("request", RECEIPTS_NS) => keys.receipt_request = true,
            "received" if message && child.is("received", RECEIPTS_NS) => {
                keys.received = keys.received.or(child.attr("id"));
            }
            "markable" if message && child.is("markable", MARKERS_NS) => keys.markable = true,
            "displayed" if message && child.is("displayed", MARKERS_NS) => {
                keys.displayed = keys.displayed.or(child.attr("id"));
            }
            "stanza-id" if message && child.is("stanza-id", SID_NS) => {
                if let (Some(id), true) =
                    (child.attr("id"), keys.stanza_ids.len() < MAX_RICH_ENTRIES)
                {
                    keys.stanza_ids.push(StanzaId {
                        id,
                        by: child.attr("by"),
                    });
                }
            }
            "origin-id" if message && child.is("origin-id", SID_NS) => {
                keys.origin_id = keys.origin_id.or(child.attr("id"));
            }
            "delay" if child.is("delay", DELAY_NS) => {
                keys.delay = keys.delay.or(child.attr("stamp"));
            }
            "nick" if keys.nick.is_none() && child.is("nick", NICK_NS) => {
                keys.nick = Some(text_of(child));
            }
            "fallback" if message && child.is("fallback", FALLBACK_NS) => {
                read_fallback(child, &mut keys.fallback);
            }
            "error" if message && keys.error.is_none() && child.is("error", COMPONENT_NS) => {
                keys.error = read_error(inbound, child);
            }
            "show" if !message && keys.show.is_none() && child.is("show", COMPONENT_NS) => {
                keys.show = Some(text_of(child));
            }
            "status" if !message && child.is("status", COMPONENT_NS) => {
                status = Some(plainer(status, child));
            }
            "priority"
                if !message && keys.priority.is_none() && child.is("priority", COMPONENT_NS) =>
            {
                keys.priority = text_of(child).trim().parse().ok();
            }
            _ => {}
        }
    }
    keys.subject = subject.map(text_of);
    keys.status = status.map(text_of);
    keys.stanza_id = chosen_stanza_id(&keys.stanza_ids, inbound.to(), room);
    keys
}

/// The first `<x xmlns='jabber:x:oob'>` with a `<url>`: `oob_url` and `oob`.
fn read_oob<'a>(x: &'a Element, keys: &mut RichKeys<'a>) {
    let Some(url) = x.get_child("url", OOB_NS) else {
        return;
    };
    let url = text_of(url);
    keys.oob_url = Some(url.clone());
    keys.oob = Some(Oob {
        url,
        desc: x.get_child("desc", OOB_NS).map(text_of),
    });
}

/// One fallback element's ranges, or the element alone when it has none; at most
/// [`MAX_RICH_ENTRIES`] in all.
fn read_fallback<'a>(fallback: &'a Element, ranges: &mut Vec<Fallback<'a>>) {
    let for_ns = fallback.attr("for");
    let mut any = false;
    for body in fallback.children().filter(|c| c.is("body", FALLBACK_NS)) {
        any = true;
        if ranges.len() >= MAX_RICH_ENTRIES {
            return;
        }
        ranges.push(Fallback {
            for_ns,
            start: body.attr("start").and_then(|s| s.parse().ok()),
            end: body.attr("end").and_then(|e| e.parse().ok()),
        });
    }
    if !any && ranges.len() < MAX_RICH_ENTRIES {
        ranges.push(Fallback {
            for_ns,
            start: None,
            end: None,
        });
    }
}

/// A message of type `error`: the error's type, its defined condition and its text.
fn read_error<'a>(inbound: &Inbound, error: &'a Element) -> Option<ErrorKey<'a>> {
    if inbound.stanza_type() != Some("error") {
        return None;
    }
    let condition = error
        .children()
        .find(|c| c.ns() == STANZAS_NS && c.name() != "text")
        .map_or("undefined-condition", Element::name);
    Some(ErrorKey {
        error_type: error.attr("type"),
        condition,
        text: error.get_child("text", STANZAS_NS).map(text_of),
    })
}

/// The stanza-id that matters for answering: the room's (`by` the room) for a stanza from
/// one of the bot's rooms, else the recipient's (`by` its bare JID or its domain).
fn chosen_stanza_id<'a>(ids: &[StanzaId<'a>], to: &str, room: Option<&str>) -> Option<&'a str> {
    let by = |wanted: &str| {
        ids.iter()
            .find(|s| s.by.is_some_and(|by| by.eq_ignore_ascii_case(wanted)))
            .map(|s| s.id)
    };
    if let Some(id) = room.and_then(by) {
        return Some(id);
    }
    let recipient = bare(to);
    let domain = recipient.rsplit_once('@').map_or(recipient, |(_, d)| d);
    by(recipient).or_else(|| by(domain))
}

/// Of two elements of the same name, the one to read: one without `xml:lang` wins, else
/// the first (as for `<body>`).
fn plainer<'a>(kept: Option<&'a Element>, next: &'a Element) -> &'a Element {
    let has_lang = |e: &Element| {
        e.attrs()
            .iter()
            .any(|((_, name), _)| name.as_str() == "lang")
    };
    match kept {
        Some(kept) if !has_lang(kept) || has_lang(next) => kept,
        _ => next,
    }
}

/// An element's text, borrowed when it is one piece.
fn text_of(element: &Element) -> Cow<'_, str> {
    let mut texts = element.texts();
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(one), None) => Cow::Borrowed(one),
        _ => Cow::Owned(element.text()),
    }
}
