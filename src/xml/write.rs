//! Elements written as XML text: a stanza exactly as it was received (every attribute, child
//! and extension), into a string or, through `XmlSink`, into any other text (the webhook
//! request's JSON string).

use minidom::rxml::Namespace;
use minidom::{Element, Node};

use super::scan::{escape_with, is_xml_text};
use super::{XmlError, COMPONENT_NS};

/// Where a stanza is written: XML text, or XML text inside a JSON string (the contract's
/// webhook request). The writer hands over markup (names, which never need escaping),
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
    use crate::xml::document::parse_stanza;
    use crate::xml::set_attr;
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
}
