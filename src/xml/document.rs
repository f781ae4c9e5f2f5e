//! A stanza given as XML text (by the webhook or the API) read into a `minidom::Element`, by
//! rxml and minidom's tree builder, within `max_depth`.

use minidom::rxml::{RawEvent, RawReader};
use minidom::tree_builder::TreeBuilder;
use minidom::{Element, Node};

use super::{XmlError, COMPONENT_NS};

/// What clients and servers write on their own streams; a webhook may copy it.
const CLIENT_NS: &str = "jabber:client";
const SERVER_NS: &str = "jabber:server";

/// Parses one stanza, refusing one nested more than `max_depth` deep before it is built
/// (the stanza is level 1). Without an `xmlns` it is in the component namespace;
/// `jabber:client` and `jabber:server` are moved to it, so a webhook can echo what it was
/// sent. DTDs, entity declarations and processing instructions are refused by the parser.
pub fn parse_stanza(text: &str, max_depth: usize) -> Result<Element, XmlError> {
    let mut rest = text.trim().as_bytes();
    let element = read_element(&mut rest, max_depth)?;
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(XmlError::TrailingContent);
    }
    let element = into_component_namespace(element);
    if !element.has_ns(COMPONENT_NS) || !matches!(element.name(), "message" | "presence" | "iq") {
        return Err(XmlError::NotAStanza(element.name().into()));
    }
    Ok(element)
}

/// The first element of `bytes`, read by rxml and built by minidom's tree builder, as
/// `Element::from_reader_with_prefixes` does, but with the depth counted before each element
/// opens: a tree deeper than `max_depth` is never built (its drop would recurse as deep).
fn read_element(bytes: &mut &[u8], max_depth: usize) -> Result<Element, XmlError> {
    let malformed = |error: &dyn std::fmt::Display| XmlError::Malformed(error.to_string().into());
    let mut reader = RawReader::new(bytes);
    let mut builder =
        TreeBuilder::new().with_prefixes_stack(vec![Some(COMPONENT_NS.to_string()).into()]);
    loop {
        let Some(event) = reader.read().map_err(|e| malformed(&e))? else {
            return Err(malformed(&minidom::Error::EndOfDocument));
        };
        if matches!(event, RawEvent::ElementHeadOpen(..)) && builder.depth() >= max_depth {
            return Err(XmlError::TooDeep(max_depth));
        }
        builder.process_event(event).map_err(|e| malformed(&e))?;
        if let Some(root) = builder.root.take() {
            return Ok(root);
        }
    }
}

/// Rebuilds an element (and its descendants) that is in `jabber:client` or `jabber:server`
/// in the component namespace; anything else is returned untouched. It recurses as deep as
/// the element nests: only for elements read within `max_depth`.
fn into_component_namespace(mut element: Element) -> Element {
    if !(element.has_ns(CLIENT_NS) || element.has_ns(SERVER_NS)) {
        return element;
    }
    let nodes = element.take_nodes();
    let mut rebuilt = Element::bare(element.name(), COMPONENT_NS);
    *rebuilt.attrs_mut() = element.attrs().clone();
    for node in nodes {
        match node {
            Node::Element(child) => {
                rebuilt.append_child(into_component_namespace(child));
            }
            Node::Text(text) => rebuilt.append_text_node(text),
        }
    }
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::write::write_stanza;

    #[test]
    fn client_namespace_is_moved_to_the_component_namespace() {
        let element = parse_stanza(
            "<message xmlns='jabber:client' to='a@b'><body>x</body></message>",
            crate::config::DEFAULT_MAX_DEPTH,
        )
        .expect("valid stanza");
        assert!(element.has_ns(COMPONENT_NS));
        assert!(element.has_child("body", COMPONENT_NS));
        assert_eq!(
            write_stanza(&element),
            "<message to='a@b'><body>x</body></message>"
        );
    }

    #[test]
    fn two_stanzas_are_refused() {
        assert_eq!(
            parse_stanza("<message/><message/>", crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::TrailingContent)
        );
        assert_eq!(
            parse_stanza("<message/>text", crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::TrailingContent)
        );
    }

    #[test]
    fn malformed_xml_is_refused() {
        assert!(matches!(
            parse_stanza("<message>", crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_stanza("not xml", crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_stanza("", crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn dtds_and_entity_declarations_are_refused() {
        let text = "<!DOCTYPE m [<!ENTITY x 'boom'>]><message><body>&x;</body></message>";
        assert!(matches!(
            parse_stanza(text, crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_stanza(
                "<message><body>&x;</body></message>",
                crate::config::DEFAULT_MAX_DEPTH
            ),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn only_message_presence_and_iq_are_stanzas() {
        assert_eq!(
            parse_stanza("<body/>", crate::config::DEFAULT_MAX_DEPTH),
            Err(XmlError::NotAStanza("body".into()))
        );
        assert!(matches!(
            parse_stanza(
                "<message xmlns='urn:other'/>",
                crate::config::DEFAULT_MAX_DEPTH
            ),
            Err(XmlError::NotAStanza(_))
        ));
    }
}
