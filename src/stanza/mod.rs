//! The pure heart of the daemon: what a received stanza means, what the webhook is sent,
//! and which stanzas go back. No I/O here: no tokio, no HTTP, only XML and JSON values.
//!
//! - [`xml`]: stanza text ⇄ `Element`.
//! - [`request`]: a received stanza → the JSON body POSTed to the webhook.
//! - [`reply`]: the webhook's answer (or failure) → the stanzas to send back.
//! - [`error`]: stanza errors and the HTTP status table.
//! - [`local`]: what the component answers itself (presence, ping, disco).

pub mod error;
pub mod fields;
pub mod local;
pub mod reply;
pub mod request;
pub mod xml;

use minidom::Element;
use serde::{Deserialize, Serialize};

pub use xml::COMPONENT_NS;

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

/// A stanza received from the server for one of our addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    element: Element,
    kind: Kind,
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
        if element.attr("from").is_none() {
            return Err(InboundError::NoFrom(kind.as_str()));
        }
        Ok(Inbound { element, kind })
    }

    pub fn element(&self) -> &Element {
        &self.element
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The sender's address (checked present by [`Inbound::new`]).
    pub fn from(&self) -> &str {
        self.element.attr("from").unwrap_or_default()
    }

    /// The address it was sent to; empty when the server left it out.
    pub fn to(&self) -> &str {
        self.element.attr("to").unwrap_or_default()
    }

    pub fn stanza_type(&self) -> Option<&str> {
        self.element.attr("type")
    }

    pub fn id(&self) -> Option<&str> {
        self.element.attr("id")
    }

    /// The message's `<body>` text whatever its `xml:lang`: one without `xml:lang` if there
    /// is one, else the first.
    pub fn body(&self) -> Option<String> {
        if self.kind != Kind::Message {
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
        Some(plain.unwrap_or(first).text())
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
    match jid::Jid::new(jid) {
        Ok(parsed) => parsed.domain().as_str().eq_ignore_ascii_case(domain),
        Err(_) => false,
    }
}

/// `node@domain` of an address, or the address itself when it does not parse.
pub fn bare(jid: &str) -> String {
    match jid::Jid::new(jid) {
        Ok(parsed) => parsed.to_bare().to_string(),
        Err(_) => jid.split('/').next().unwrap_or(jid).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xml::parse_stanza;

    fn inbound(text: &str) -> Inbound {
        Inbound::new(parse_stanza(text).expect("valid xml")).expect("a stanza")
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
        let element = parse_stanza("<message to='a@b'/>").expect("valid xml");
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
