//! The pure heart of the daemon, the webhook contract (docs/contract.md): what a received
//! stanza means, what the webhook is sent, and which stanzas go back. No I/O here: no tokio,
//! no HTTP, only XML and JSON values; the XML itself is read and written by [`crate::xml`].
//!
//! - [`request`]: a received stanza → the JSON body POSTed to the webhook.
//! - [`reply`]: the webhook's answer (or failure) → the stanzas to send back.
//! - [`error`]: stanza errors and the HTTP status table.
//! - [`local`]: what the component answers itself (presence, ping, disco).
//! - [`fields`]: a JSON object that describes a stanza (a webhook reply, an API request).
//! - [`receipt`]: messages that are only notices (chat states, receipts, markers), and the
//!   XEP-0184 receipt sent once the webhook has taken a message.
//! - [`rich_read`], [`rich_write`]: the rich keys (attachments, replies, reactions…), read
//!   from a received stanza and written into a described one.

pub mod attachment;
pub mod error;
pub mod fields;
pub mod local;
pub mod receipt;
pub mod reply;
pub mod request;
mod rich_json;
pub mod rich_read;
pub mod rich_write;

use std::borrow::Cow;

use minidom::Element;
use serde::{Deserialize, Serialize};

pub use crate::xml::COMPONENT_NS;

/// The longest `id` echoed in an answer: a longer one (no client makes one) is left out of
/// answers, whose size would otherwise be the sender's to choose.
pub const MAX_ECHOED_ID: usize = 256;

/// The three kinds of stanza, as named in the configuration and the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Presence => "presence",
            Kind::Iq => "iq",
        }
    }

    pub fn of(name: &str) -> Option<Kind> {
        match name {
            "message" => Some(Kind::Message),
            "presence" => Some(Kind::Presence),
            "iq" => Some(Kind::Iq),
            _ => None,
        }
    }
}

/// Why a top-level element from the server cannot be handled as a stanza.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    #[error("<{0}> in namespace '{1}' is not a stanza")]
    NotAStanza(String, String),
    #[error("{0} stanza without a 'from' address")]
    NoFrom(&'static str),
}

/// A stanza received from the server for one of our addresses: the element, and its
/// addresses read once (attribute lookups compare namespace strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    head: Head,
    element: Element,
}

/// What an answer needs of a received stanza, without its content: kind, `from`, `to`,
/// `type` and `id`. It outlives the element: a stanza waiting for the webhook keeps only this
/// and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    kind: Kind,
    /// `from`, `to`, `type` and `id` one after another; `ends` says where each stops.
    text: Box<str>,
    ends: [u32; 4],
    has_type: bool,
    has_id: bool,
    /// From a room the bot is in (or one of its occupants): never answered with an error.
    from_room: bool,
}

impl Inbound {
    /// Wraps a top-level element read from the component stream.
    pub fn new(element: Element) -> Result<Inbound, InboundError> {
        let kind = match Kind::of(element.name()) {
            Some(kind) if element.has_ns(COMPONENT_NS) => kind,
            _ => {
                return Err(InboundError::NotAStanza(
                    element.name().into(),
                    element.ns(),
                ))
            }
        };
        let Some(from) = element.attr("from") else {
            return Err(InboundError::NoFrom(kind.as_str()));
        };
        let head = Head::new(
            kind,
            from,
            // Answers come from it: written as the server compares it.
            &normalised(element.attr("to").unwrap_or_default()),
            element.attr("type"),
            element.attr("id").filter(|id| id.len() <= MAX_ECHOED_ID),
        );
        Ok(Inbound { head, element })
    }

    pub fn element(&self) -> &Element {
        &self.element
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// A stanza from its literal XML, as the contract's tests write them.
    #[cfg(test)]
    pub(crate) fn from_test_xml(text: &str) -> Inbound {
        let element = crate::xml::document::parse_stanza(text, crate::config::DEFAULT_MAX_DEPTH);
        Inbound::new(element.expect("valid xml")).expect("a stanza")
    }

    /// See [`Head::mark_from_room`].
    pub fn mark_from_room(&mut self) {
        self.head.mark_from_room();
    }

    /// The head alone, the element dropped.
    pub fn into_head(self) -> Head {
        self.head
    }
    /// The message's `<body>` text whatever its `xml:lang`: one without `xml:lang` if there
    /// is one, else the first.
    pub fn body(&self) -> Option<String> {
        self.body_element().map(Element::text)
    }

    /// The `<body>` element [`Inbound::body`] reads.
    pub fn body_element(&self) -> Option<&Element> {
        if self.head.kind != Kind::Message {
            return None;
        }
        let mut bodies = self
            .element
            .children()
            .filter(|child| child.is("body", COMPONENT_NS));
        let first = bodies.next()?;
        let plain = std::iter::once(first).chain(bodies).find(|body| {
            body.attrs()
                .iter()
                .all(|((_, name), _)| name.as_str() != "lang")
        });
        Some(plain.unwrap_or(first))
    }
}

impl std::ops::Deref for Inbound {
    type Target = Head;

    fn deref(&self) -> &Head {
        &self.head
    }
}

impl Head {
    pub fn new(kind: Kind, from: &str, to: &str, ty: Option<&str>, id: Option<&str>) -> Head {
        let mut text = String::with_capacity(
            from.len() + to.len() + ty.map_or(0, str::len) + id.map_or(0, str::len),
        );
        let mut ends = [0; 4];
        for (end, part) in ends
            .iter_mut()
            .zip([from, to, ty.unwrap_or(""), id.unwrap_or("")])
        {
            text.push_str(part);
            // A stanza is far smaller than 4 GiB (max_stanza_size, the server's own limit).
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Head {
            kind,
            text: text.into_boxed_str(),
            ends,
            has_type: ty.is_some(),
            has_id: id.is_some(),
            from_room: false,
        }
    }

    fn part(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.text
            .get(start as usize..self.ends[index] as usize)
            .unwrap_or_default()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Marks a stanza from one of the bot's rooms: whatever goes wrong with it, no stanza
    /// error goes back (a room expels an occupant that sends it errors).
    pub fn mark_from_room(&mut self) {
        self.from_room = true;
    }

    pub fn is_from_room(&self) -> bool {
        self.from_room
    }

    /// A groupchat message of one of the bot's rooms: answered in the room.
    pub fn is_room_groupchat(&self) -> bool {
        self.from_room && self.kind == Kind::Message && self.stanza_type() == Some("groupchat")
    }

    /// The sender's address (checked present by [`Inbound::new`]).
    pub fn from(&self) -> &str {
        self.part(0)
    }

    /// The address it was sent to; empty when the server left it out.
    pub fn to(&self) -> &str {
        self.part(1)
    }

    pub fn stanza_type(&self) -> Option<&str> {
        self.has_type.then(|| self.part(2))
    }

    pub fn id(&self) -> Option<&str> {
        self.has_id.then(|| self.part(3))
    }

    /// An iq that requires exactly one answer (RFC 6120 §8.2.3).
    pub fn is_iq_request(&self) -> bool {
        self.kind == Kind::Iq && matches!(self.stanza_type(), Some("get" | "set"))
    }

    /// Whether anything may be sent back: never to an error (loop guard), nor to an iq
    /// result or error.
    pub fn may_be_answered(&self) -> bool {
        match (self.kind, self.stanza_type()) {
            (_, Some("error")) => false,
            (Kind::Iq, ty) => matches!(ty, Some("get" | "set")),
            _ => true,
        }
    }
}

/// Whether `jid` is the component's domain or an address on it (`node@domain/resource`).
pub fn is_on_domain(jid: &str, domain: &str) -> bool {
    address_on_domain(jid, domain).is_some()
}

/// `jid` as the server compares addresses (nodeprep, nameprep, resourceprep: `Bot@EXT.b` is
/// `bot@ext.b`), borrowed when it is written so already; `None` when it is not a valid JID
/// on `domain`.
pub fn address_on_domain<'a>(jid: &'a str, domain: &str) -> Option<Cow<'a, str>> {
    let parsed = jid::Jid::new(jid).ok()?;
    if !parsed.domain().as_str().eq_ignore_ascii_case(domain) {
        return None;
    }
    let normalised = parsed.to_string();
    Some(if normalised == jid {
        Cow::Borrowed(jid)
    } else {
        Cow::Owned(normalised)
    })
}

/// `jid` in the form the server compares, when it parses (else as it is). An address the
/// server routed is written so already; the check costs a scan, not a parse.
pub fn normalised(jid: &str) -> Cow<'_, str> {
    if jid.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(jid);
    }
    match jid::Jid::new(jid) {
        Ok(parsed) => Cow::Owned(parsed.to_string()),
        Err(_) => Cow::Borrowed(jid),
    }
}

/// `node@domain` of an address: everything before the first `/`, which neither a localpart
/// nor a domainpart may hold (RFC 7622), so the rest is the resource. The address is taken as
/// written: compare it after [`normalised`] where case matters (answers' addresses are).
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::document::parse_stanza;

    fn inbound(text: &str) -> Inbound {
        Inbound::from_test_xml(text)
    }

    #[test]
    fn body_is_found_whatever_its_language() {
        let tagged = inbound("<message from='a@b/c'><body xml:lang='en'>hello</body></message>");
        assert_eq!(tagged.body().as_deref(), Some("hello"));
        let both = inbound(
            "<message from='a@b/c'><body xml:lang='de'>hallo</body><body>hello</body></message>",
        );
        assert_eq!(both.body().as_deref(), Some("hello"));
        let none = inbound("<message from='a@b/c'><x xmlns='urn:x'/></message>");
        assert_eq!(none.body(), None);
    }

    #[test]
    fn stanza_without_from_is_refused() {
        let element = parse_stanza("<message to='a@b'/>", crate::config::DEFAULT_MAX_DEPTH)
            .expect("valid xml");
        assert_eq!(Inbound::new(element), Err(InboundError::NoFrom("message")));
    }

    #[test]
    fn other_elements_are_not_stanzas() {
        let element: Element = "<handshake xmlns='jabber:component:accept'/>"
            .parse()
            .expect("xml");
        assert!(matches!(
            Inbound::new(element),
            Err(InboundError::NotAStanza(..))
        ));
    }

    #[test]
    fn errors_and_iq_results_are_never_answered() {
        assert!(!inbound("<message from='a@b' type='error'/>").may_be_answered());
        assert!(!inbound("<iq from='a@b' type='result' id='1'/>").may_be_answered());
        assert!(!inbound("<iq from='a@b' type='error' id='1'/>").may_be_answered());
        assert!(!inbound("<presence from='a@b' type='error'/>").may_be_answered());
        assert!(inbound("<iq from='a@b' type='get' id='1'/>").may_be_answered());
        assert!(inbound("<message from='a@b'/>").may_be_answered());
    }

    #[test]
    fn addresses_on_the_domain() {
        assert!(is_on_domain("bot.example.com", "bot.example.com"));
        assert!(is_on_domain("echo@bot.example.com", "bot.example.com"));
        assert!(is_on_domain("echo@bot.example.com/r", "bot.example.com"));
        assert!(!is_on_domain("echo@example.com", "bot.example.com"));
        assert!(!is_on_domain("bot.example.com.evil", "bot.example.com"));
        assert!(!is_on_domain("", "bot.example.com"));
        assert_eq!(bare("echo@bot.example.com/r"), "echo@bot.example.com");
    }
}

#[cfg(test)]
#[path = "stanza/limits_tests.rs"]
mod limits_tests;

#[cfg(test)]
#[path = "stanza/rich_tests.rs"]
mod rich_tests;

#[cfg(test)]
#[path = "stanza/rich_write_tests.rs"]
mod rich_write_tests;
