//! The JSON object that describes a stanza to send — a webhook's reply or a `POST /v1/send`
//! — turned into an `Element`: either `stanza` (raw XML) or `kind`, `to`, `from`, `type`,
//! `id` and `body`, with the caller's defaults, and the address checks both need.

use std::borrow::Cow;

use minidom::rxml::xml_ncname;
use minidom::Element;
use serde_json::{Map, Value};

use super::request::Quoted;
use super::{address_on_domain, bare, normalised, rich_write, Kind, COMPONENT_NS};
use crate::xml::document::parse_stanza;
use crate::xml::scan::is_xml_text;
use crate::xml::{set_attr, XmlError};

/// Why a JSON object (a webhook reply, or an API request) could not be turned into a stanza.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    #[error("webhook reply is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("webhook reply is JSON but not an object")]
    NotAnObject,
    #[error("field '{0}' must be a string or a number")]
    BadField(&'static str),
    #[error("field '{field}' must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field '{0}' is required")]
    MissingField(&'static str),
    #[error("field '{0}' holds a character XML does not allow")]
    NotXmlText(&'static str),
    #[error("field 'kind' is '{0}' (expected message, presence or iq)")]
    UnknownKind(String),
    #[error("field 'stanza' is not one well-formed stanza: {0}")]
    BadStanza(#[from] XmlError),
    #[error("field 'to': '{0}' is not a valid JID")]
    BadAddress(String),
    #[error("field 'from': '{from}' is not on {domain}: not sent")]
    ForeignFrom { from: String, domain: String },
    #[error("field 'from': '{from}' is not the JID that joined {room} ({joined}): not sent")]
    NotTheOccupant {
        from: String,
        room: String,
        joined: String,
    },
    #[error("webhook response is larger than max_response_size")]
    TooLarge,
    /// A bad `file` field (stanza/attachment.rs).
    #[error(transparent)]
    File(#[from] super::attachment::AttachmentError),
}

/// What every stanza a component sends must satisfy, whoever described it (a webhook's
/// reply, an API request).
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy<'a> {
    /// The component's domain: every `from` is on it, written as the server checks it.
    pub domain: &'a str,
    /// How deeply a raw `stanza` may nest (`max_depth`).
    pub max_depth: usize,
    /// The rooms the component sits in: a room knows its occupant by one JID only.
    pub rooms: &'a dyn JoinedRooms,
}

/// The rooms a component sits in, as what it sends to them needs to know.
pub trait JoinedRooms: std::fmt::Debug + Sync {
    /// The full JID the component joined `room` from, when `room` (a bare JID) is one of
    /// its rooms.
    fn occupant_address(&self, room: &str) -> Option<String>;
    /// A new XEP-0359 origin-id for a message to a room, which the component will know again
    /// when the room reflects the message.
    fn new_origin_id(&self) -> String;
}

/// A component in no room (tests, fuzzing).
#[derive(Debug)]
pub struct NoRooms;

impl JoinedRooms for NoRooms {
    fn occupant_address(&self, _room: &str) -> Option<String> {
        None
    }

    fn new_origin_id(&self) -> String {
        String::new()
    }
}

const SID_NS: &str = "urn:xmpp:sid:0";

/// What a field left out means.
pub struct Defaults<'a> {
    pub kind: Kind,
    /// `None`: `to` is required.
    pub to: Option<&'a str>,
    pub from: &'a str,
    /// The `type` of an iq without one (`result` for a reply, `get` for a send).
    pub iq_type: &'static str,
    /// The `id` of an iq without one.
    pub iq_id: Option<&'a str>,
    /// What a reply with `fallback: true` quotes when its `reply` has no `quote`: the
    /// body of the message the webhook answers.
    pub quoted: Quoted<'a>,
}

/// Builds the stanza; it must be addressed to a valid JID and come from the policy's domain.
/// Its `from` is written in the normalised form the server compares (`Bot@EXT.example` →
/// `bot@ext.example`): a `from` the server refuses would close the component's stream.
pub fn stanza_from_fields(
    fields: &Map<String, Value>,
    defaults: &Defaults<'_>,
    policy: &SendPolicy<'_>,
) -> Result<Element, ReplyError> {
    let domain = policy.domain;
    let raw = text(fields, "stanza")?;
    let described = raw.is_none();
    let mut stanza = match raw {
        Some(raw) => parse_stanza(&raw, policy.max_depth)?,
        None => described_stanza(fields, defaults)?,
    };
    if stanza.attr("to").is_none() {
        let to = defaults.to.ok_or(ReplyError::MissingField("to"))?;
        set_attr(&mut stanza, xml_ncname!("to"), to);
    }
    let to = stanza.attr("to").unwrap_or_default();
    if jid::Jid::new(to).is_err() {
        return Err(ReplyError::BadAddress(to.to_string()));
    }
    if stanza.name() == "message" {
        to_a_room(&mut stanza, described, policy)?;
    }
    if stanza.attr("from").is_none() {
        set_attr(&mut stanza, xml_ncname!("from"), defaults.from);
    }
    let from = stanza.attr("from").unwrap_or_default();
    match address_on_domain(from, domain) {
        Some(Cow::Borrowed(_)) => {}
        Some(Cow::Owned(normalised)) => set_attr(&mut stanza, xml_ncname!("from"), &normalised),
        None => {
            return Err(ReplyError::ForeignFrom {
                from: from.to_string(),
                domain: domain.to_string(),
            })
        }
    }
    Ok(stanza)
}

/// A message to one of the component's rooms, or to an occupant of one, comes from the JID
/// that joined it (the room refuses any other); one without a `type` to a room is
/// `groupchat` (a described one elsewhere is `chat`), and a groupchat message carries an
/// origin-id. A groupchat message whose `from` is another JID is refused.
fn to_a_room(
    stanza: &mut Element,
    described: bool,
    policy: &SendPolicy<'_>,
) -> Result<(), ReplyError> {
    let to = stanza.attr("to").unwrap_or_default();
    let room = bare(to);
    let to_occupant = room.len() < to.len();
    let joined = policy.rooms.occupant_address(room);
    if described && stanza.attr("type").is_none() {
        let ty = if joined.is_some() && !to_occupant {
            "groupchat"
        } else {
            "chat"
        };
        set_attr(stanza, xml_ncname!("type"), ty);
    }
    let Some(joined) = joined else {
        return Ok(());
    };
    let groupchat = stanza.attr("type") == Some("groupchat") && !to_occupant;
    match stanza.attr("from") {
        None => set_attr(stanza, xml_ncname!("from"), &joined),
        Some(from) if groupchat && *normalised(from) != *joined => {
            return Err(ReplyError::NotTheOccupant {
                from: from.to_string(),
                room: bare(stanza.attr("to").unwrap_or_default()).to_string(),
                joined,
            })
        }
        Some(_) => {}
    }
    if groupchat && stanza.get_child("origin-id", SID_NS).is_none() {
        let mut origin = Element::bare("origin-id", SID_NS);
        set_attr(
            &mut origin,
            xml_ncname!("id"),
            &policy.rooms.new_origin_id(),
        );
        stanza.append_child(origin);
    }
    Ok(())
}

/// The stanza described by `kind`, `to`, `from`, `type`, `id`, `body` and the rich keys
/// ([`rich_write`]); `to` and `from` are filled in by the caller when missing.
fn described_stanza(
    fields: &Map<String, Value>,
    defaults: &Defaults<'_>,
) -> Result<Element, ReplyError> {
    let kind = match text(fields, "kind")? {
        None => defaults.kind,
        Some(name) => Kind::of(&name).ok_or_else(|| ReplyError::UnknownKind(name.into_owned()))?,
    };
    let mut stanza = Element::bare(kind.as_str(), COMPONENT_NS);
    for (field, attr) in [("to", xml_ncname!("to")), ("from", xml_ncname!("from"))] {
        if let Some(value) = text(fields, field)? {
            set_attr(&mut stanza, attr, &value);
        }
    }
    // A message's type is chosen once its address is known (`to_a_room`).
    let stanza_type = match (text(fields, "type")?, kind) {
        (Some(value), _) => Some(value),
        (None, Kind::Iq) => Some(Cow::Borrowed(defaults.iq_type)),
        (None, Kind::Message | Kind::Presence) => None,
    };
    if let Some(value) = stanza_type {
        set_attr(&mut stanza, xml_ncname!("type"), &value);
    }
    let id = match (text(fields, "id")?, kind) {
        (Some(value), _) => Some(value),
        (None, Kind::Iq) => defaults.iq_id.map(Cow::Borrowed),
        (None, _) => None,
    };
    if let Some(value) = id {
        set_attr(&mut stanza, xml_ncname!("id"), &value);
    }
    let body = text(fields, "body")?;
    match kind {
        Kind::Message => rich_write::write_message(fields, body, defaults.quoted, &mut stanza)?,
        Kind::Presence => rich_write::write_presence(fields, &mut stanza)?,
        Kind::Iq => {}
    }
    Ok(stanza)
}

/// A field as text: strings as they are (borrowed, not copied), numbers and booleans
/// written out, null as absent.
pub fn text<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<Cow<'a, str>>, ReplyError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if !is_xml_text(value) => Err(ReplyError::NotXmlText(name)),
        Some(Value::String(value)) => Ok(Some(Cow::Borrowed(value))),
        Some(Value::Number(value)) => Ok(Some(Cow::Owned(value.to_string()))),
        Some(Value::Bool(value)) => Ok(Some(Cow::Owned(value.to_string()))),
        Some(_) => Err(ReplyError::BadField(name)),
    }
}
