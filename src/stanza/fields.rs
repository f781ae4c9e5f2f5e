//! The JSON object that describes a stanza to send — a webhook's reply or a `POST /v1/send`
//! — turned into an `Element`: either `stanza` (raw XML) or `kind`, `to`, `from`, `type`,
//! `id` and `body`, with the caller's defaults, and the address checks both need.

use std::borrow::Cow;

use minidom::rxml::xml_ncname;
use minidom::Element;
use serde_json::{Map, Value};

use super::{address_on_domain, Kind, COMPONENT_NS};
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
    #[error("webhook response is larger than max_response_size")]
    TooLarge,
}

/// What every stanza a component sends must satisfy, whoever described it (a webhook's
/// reply, an API request).
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy<'a> {
    /// The component's domain: every `from` is on it, written as the server checks it.
    pub domain: &'a str,
    /// How deeply a raw `stanza` may nest (`max_depth`).
    pub max_depth: usize,
}

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
    let mut stanza = match text(fields, "stanza")? {
        Some(raw) => parse_stanza(&raw, policy.max_depth)?,
        None => described_stanza(fields, defaults)?,
    };
    if stanza.attr("to").is_none() {
        let to = defaults.to.ok_or(ReplyError::MissingField("to"))?;
        set_attr(&mut stanza, xml_ncname!("to"), to);
    }
    if stanza.attr("from").is_none() {
        set_attr(&mut stanza, xml_ncname!("from"), defaults.from);
    }
    let to = stanza.attr("to").unwrap_or_default();
    if jid::Jid::new(to).is_err() {
        return Err(ReplyError::BadAddress(to.to_string()));
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

/// The stanza described by `kind`, `to`, `from`, `type`, `id` and `body`; `to` and `from`
/// are filled in by the caller when missing.
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
    let stanza_type = match (text(fields, "type")?, kind) {
        (Some(value), _) => Some(value),
        (None, Kind::Message) => Some(Cow::Borrowed("chat")),
        (None, Kind::Iq) => Some(Cow::Borrowed(defaults.iq_type)),
        (None, Kind::Presence) => None,
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
    if let (Some(body), Kind::Message) = (text(fields, "body")?, kind) {
        stanza.append_child(
            Element::builder("body", COMPONENT_NS)
                .append(body.into_owned())
                .build(),
        );
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
