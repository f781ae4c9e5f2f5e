//! The XML layer: the server's stream cut into elements ([`stream`], [`parse`], [`scope`]), a stanza
//! given as text read into an `Element` ([`document`]), and elements written back as XML
//! ([`mod@write`], [`outgoing`]); [`scan`] finds the bytes to escape and the characters XML
//! forbids, a word at a time.
//!
//! This layer knows XML and the three stanza names, and nothing of JSON, webhooks or
//! sockets: the contract (`crate::stanza`) builds on it, and the XMPP edge feeds it bytes.

pub mod document;
pub mod outgoing;
pub mod parse;
pub mod scan;
pub mod scope;
pub mod stream;
pub mod write;

use minidom::rxml::{Namespace, NcNameStr};
use minidom::Element;

/// The default namespace of an XEP-0114 stream; stanzas on it carry no `xmlns`.
pub const COMPONENT_NS: &str = "jabber:component:accept";

/// Why a piece of XML text is not one usable stanza. Every step of the readers returns it in
/// its `Result`, so its texts are boxed: three words, not four, keep those results small
/// (bench/README.md, "Why the code is shaped so").
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("not well-formed XML: {0}")]
    Malformed(Box<str>),
    #[error("more than one element, or text after the stanza")]
    TrailingContent,
    #[error("<{0}> is not a stanza (expected message, presence or iq)")]
    NotAStanza(Box<str>),
    #[error("a text or attribute value holds a character XML does not allow")]
    NotXmlText,
    #[error("elements nested more than {0} deep (max_depth)")]
    TooDeep(usize),
    #[error("the server sent an element larger than {0} bytes (max_read_size)")]
    ReadTooLarge(usize),
    #[error("{length} bytes written, more than max_outgoing_size ({max})")]
    TooLarge { length: usize, max: usize },
}

/// Sets an unqualified attribute (`to`, `from`, `type`, `id`, ...), replacing any value it
/// had: one lookup in the attribute map (minidom's `set_attr` looks twice, and the
/// namespace comparisons showed in the profile).
pub fn set_attr(element: &mut Element, name: &'static NcNameStr, value: &str) {
    element
        .attrs_mut()
        .insert(Namespace::NONE, name.to_owned(), value.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_three_words() {
        assert_eq!(
            std::mem::size_of::<XmlError>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}
