//! Stanza XML text ⇄ `minidom::Element`: parsing one stanza from a webhook, and writing a
//! received stanza back out exactly as it came (every attribute, child and extension).

use minidom::rxml::{Namespace, NcNameStr, RawEvent, RawReader};
use minidom::tree_builder::TreeBuilder;
use minidom::{Element, Node};

use super::scan::escape_with;
/// Re-exported where callers looked for it before the word-at-a-time scan.
pub use super::scan::is_xml_text;

/// The default namespace of an XEP-0114 stream; stanzas on it carry no `xmlns`.
pub const COMPONENT_NS: &str = "jabber:component:accept";
/// What clients and servers write on their own streams; a webhook may copy it.
const CLIENT_NS: &str = "jabber:client";
const SERVER_NS: &str = "jabber:server";

/// Why a piece of XML text is not one usable stanza.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    #[error("more than one element, or text after the stanza")]
    TrailingContent,
    #[error("<{0}> is not a stanza (expected message, presence or iq)")]
    NotAStanza(String),
    #[error("a text or attribute value holds a character XML does not allow")]
    NotXmlText,
    #[error("elements nested more than {0} deep (max_depth)")]
    TooDeep(usize),
    #[error("{length} bytes written, more than max_outgoing_size ({max})")]
    TooLarge { length: usize, max: usize },
}

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
        return Err(XmlError::NotAStanza(element.name().to_string()));
    }
    Ok(element)
}

/// The first element of `bytes`, read by rxml and built by minidom's tree builder, as
/// `Element::from_reader_with_prefixes` does, but with the depth counted before each element
/// opens: a tree deeper than `max_depth` is never built (its drop would recurse as deep).
fn read_element(bytes: &mut &[u8], max_depth: usize) -> Result<Element, XmlError> {
    let malformed = |error: &dyn std::fmt::Display| XmlError::Malformed(error.to_string());
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

/// Sets an unqualified attribute (`to`, `from`, `type`, `id`, ...), replacing any value it
/// had: one lookup in the attribute map (minidom's `set_attr` looks twice, and the
/// namespace comparisons showed in the profile).
pub fn set_attr(element: &mut Element, name: &'static NcNameStr, value: &str) {
    element
        .attrs_mut()
        .insert(Namespace::NONE, name.to_owned(), value.to_owned());
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

/// Where a stanza is written: XML text, or XML text inside a JSON string
/// ([`super::request`]). The writer hands over markup (names, which never need escaping),
/// character data and attribute values; each sink escapes them in one pass.
pub(crate) trait XmlSink {
    fn markup(&mut self, markup: &str);
    fn text(&mut self, text: &str);
    fn attribute_value(&mut self, value: &str);
}

/// XML text.
impl XmlSink for String {
    fn markup(&mut self, markup: &str) {
        self.push_str(markup);
    }

    fn text(&mut self, text: &str) {
        escape_into(text, false, self);
    }

    fn attribute_value(&mut self, value: &str) {
        escape_into(value, true, self);
    }
}

/// Writes a stanza as XML text, the way the XMPP server sent it: the root and its children in
/// the stream's namespace carry no `xmlns`, extensions keep theirs, `xml:lang` stays.
pub fn write_stanza(element: &Element) -> String {
    let mut out = String::with_capacity(256);
    write_element(element, COMPONENT_NS, &mut out);
    out
}

/// Appends a stanza to `out` as it goes on the component stream (as [`write_stanza`]); a
/// stanza holding a character XML does not allow is refused and `out` left as it was: the
/// server would close the stream on it.
pub fn append_stanza(element: &Element, out: &mut String) -> Result<(), XmlError> {
    let start = out.len();
    let mut sink = CheckedText { out, allowed: true };
    write_element(element, COMPONENT_NS, &mut sink);
    if sink.allowed {
        Ok(())
    } else {
        out.truncate(start);
        Err(XmlError::NotXmlText)
    }
}

/// XML text, noting whether every text and value is one XML allows.
struct CheckedText<'a> {
    out: &'a mut String,
    allowed: bool,
}

impl XmlSink for CheckedText<'_> {
    fn markup(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    fn text(&mut self, text: &str) {
        self.allowed &= is_xml_text(text);
        escape_into(text, false, self.out);
    }

    fn attribute_value(&mut self, value: &str) {
        self.allowed &= is_xml_text(value);
        escape_into(value, true, self.out);
    }
}

/// Writes `element` and its descendants. It recurses as deep as the element nests: every
/// element it is given was read within `max_depth`, or built by the daemon.
pub(crate) fn write_element(element: &Element, parent_ns: &str, out: &mut impl XmlSink) {
    let ns = element.ns();
    // The XML namespace is never a default namespace (Namespaces in XML §3): its own prefix,
    // declared for readers that do not know it always bound (minidom). Its children are in
    // the parent's default namespace still.
    let in_xml = ns == Namespace::xml().as_str();
    let prefix = if in_xml { "xml:" } else { "" };
    out.markup("<");
    out.markup(prefix);
    out.markup(element.name());
    if in_xml {
        out.markup(" xmlns:xml='");
        out.attribute_value(&ns);
        out.markup("'");
    } else if ns != parent_ns {
        out.markup(" xmlns='");
        out.attribute_value(&ns);
        out.markup("'");
    }
    let mut prefixes = 0;
    for ((attr_ns, name), value) in element.attrs().iter() {
        out.markup(" ");
        if *attr_ns == Namespace::XML {
            out.markup("xml:");
        } else if *attr_ns != Namespace::NONE {
            // Rare: a namespaced attribute on an extension. Declare a prefix for it.
            prefixes += 1;
            out.markup(&format!("xmlns:a{prefixes}='"));
            out.attribute_value(attr_ns.as_str());
            out.markup(&format!("' a{prefixes}:"));
        }
        out.markup(name.as_str());
        out.markup("='");
        out.attribute_value(value);
        out.markup("'");
    }
    let mut nodes = element.nodes().peekable();
    if nodes.peek().is_none() {
        out.markup("/>");
        return;
    }
    out.markup(">");
    let default = if in_xml { parent_ns } else { &ns };
    for node in nodes {
        match node {
            Node::Element(child) => write_element(child, default, out),
            Node::Text(text) => out.text(text),
        }
    }
    out.markup("</");
    out.markup(prefix);
    out.markup(element.name());
    out.markup(">");
}

/// The entity standing for `byte` in XML text (in an attribute value, tabs and line feeds
/// too, which a parser would otherwise turn into spaces); `None`: written as it is.
pub(crate) fn xml_entity(byte: u8, in_attribute: bool) -> Option<&'static str> {
    match byte {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\'' => Some("&apos;"),
        b'"' => Some("&quot;"),
        b'\r' => Some("&#13;"),
        b'\t' if in_attribute => Some("&#9;"),
        b'\n' if in_attribute => Some("&#10;"),
        _ => None,
    }
}

fn escape_into(text: &str, in_attribute: bool, out: &mut String) {
    escape_with(
        text,
        |byte| xml_entity(byte, in_attribute),
        |piece| out.push_str(piece),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::rxml::xml_ncname;

    #[test]
    fn a_stanza_is_written_back_as_received() {
        let text = "<message to='echo@bot.example.com' from='a@example.com/r' type='chat' \
                    id='m1' xml:lang='en'><body>hi</body>\
                    <x xmlns='urn:example:x' a='1'><y/>text</x></message>";
        let element = parse_stanza(text, crate::config::DEFAULT_MAX_DEPTH).expect("valid stanza");
        let written = write_stanza(&element);
        assert_eq!(
            parse_stanza(&written, crate::config::DEFAULT_MAX_DEPTH),
            Ok(element)
        );
        assert!(written.starts_with("<message "));
        assert!(written.contains("xml:lang='en'"));
        assert!(written.contains("<body>hi</body>"));
        assert!(written.contains("<x xmlns='urn:example:x' a='1'><y/>text</x>"));
        assert!(!written.contains("jabber:component:accept"));
    }

    #[test]
    fn set_attr_adds_or_replaces_an_unqualified_attribute() {
        let mut element = parse_stanza(
            "<iq xml:lang='en' type='get'/>",
            crate::config::DEFAULT_MAX_DEPTH,
        )
        .expect("valid stanza");
        set_attr(&mut element, xml_ncname!("type"), "result");
        set_attr(&mut element, xml_ncname!("id"), "1");
        assert_eq!(element.attr("type"), Some("result"));
        assert_eq!(element.attr("id"), Some("1"));
        assert_eq!(element.attrs().len(), 3, "xml:lang kept, nothing doubled");
    }

    #[test]
    fn a_stanza_for_the_stream_is_refused_with_a_character_xml_forbids() {
        let mut out = String::from("<presence/>");
        let mut bad = Element::bare("message", COMPONENT_NS);
        bad.append_child(
            Element::builder("body", COMPONENT_NS)
                .append("bell \u{7}")
                .build(),
        );
        assert_eq!(append_stanza(&bad, &mut out), Err(XmlError::NotXmlText));
        let mut bad_attribute = Element::bare("message", COMPONENT_NS);
        set_attr(
            &mut bad_attribute,
            minidom::rxml::xml_ncname!("id"),
            "\u{FFFE}",
        );
        assert_eq!(
            append_stanza(&bad_attribute, &mut out),
            Err(XmlError::NotXmlText)
        );
        assert_eq!(out, "<presence/>");
        let good = parse_stanza(
            "<message to='a@b'><body>x &amp; y</body></message>",
            crate::config::DEFAULT_MAX_DEPTH,
        )
        .expect("stanza");
        append_stanza(&good, &mut out).expect("allowed");
        assert_eq!(
            out,
            "<presence/><message to='a@b'><body>x &amp; y</body></message>"
        );
    }

    #[test]
    fn special_characters_are_escaped() {
        let element = parse_stanza(
            "<message><body>a &amp; b &lt;c&gt; &apos;d&apos; é</body></message>",
            crate::config::DEFAULT_MAX_DEPTH,
        )
        .expect("valid stanza");
        assert_eq!(
            write_stanza(&element),
            "<message><body>a &amp; b &lt;c&gt; &apos;d&apos; é</body></message>"
        );
    }

    #[test]
    fn tabs_and_line_feeds_in_attributes_survive_a_round_trip() {
        // Found by the stanza_to_json fuzz target: written raw, they came back as spaces.
        for text in [
            "<iq e='&#9;'/>",
            "<iq e='&#10;'/>",
            "<message id='a&#10;b&#9;c&#13;'/>",
        ] {
            let element =
                parse_stanza(text, crate::config::DEFAULT_MAX_DEPTH).expect("valid stanza");
            assert_eq!(
                parse_stanza(&write_stanza(&element), crate::config::DEFAULT_MAX_DEPTH),
                Ok(element),
                "{text}"
            );
        }
    }

    #[test]
    fn characters_xml_forbids_are_told_apart() {
        assert!(is_xml_text("héllo\tworld\n🎉"));
        for bad in ["\u{0}", "a\u{2}b", "\u{E}", "\u{FFFF}", "\u{FFFE}"] {
            assert!(!is_xml_text(bad), "{bad:?}");
        }
    }

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
