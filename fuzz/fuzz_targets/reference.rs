//! The reference side of the `reader_vs_rxml` comparison: what rxml and minidom, the readers
//! the project replaced with its own, make of the same bytes. rxml's namespace-checking
//! `Parser` says whether the text is well-formed, namespace-well-formed XML, how deep it
//! nests and where each top-level element of a stream starts and ends; minidom (on rxml's
//! `RawParser`, as `xml::parse_stanza` and tokio-xmpp read) builds the elements. Nothing here
//! recurses on the input's depth, and minidom is never asked to build a tree deeper than the
//! caller's cap: a `minidom::Element` is dropped, compared and written recursively.

use std::collections::BTreeMap;

use minidom::rxml::error::EndOrError;
use minidom::rxml::{self, Event, Options, Parse, Parser, RawParser, WithOptions};
use minidom::tree_builder::TreeBuilder;
use minidom::{Element, Node};

/// rxml refuses a name or attribute value longer than 8 KiB by default (`max_token_length`,
/// not an XML rule); the comparison reads with this limit instead, far above any input.
const TOKEN_LIMIT: usize = 1 << 30;

fn options() -> Options {
    Options {
        max_token_length: TOKEN_LIMIT,
        ..Options::default()
    }
}

/// What rxml's `Parser` saw of one XML text.
#[derive(Debug)]
pub struct Document {
    /// `Err`: the text is not (namespace-)well-formed XML, or it stopped short (`None`).
    pub end: End,
    /// Each top-level element at `level` (0: the document's root; 1: a stream's children):
    /// its byte range and how deep it nests (itself 1). The last may be unfinished.
    pub elements: Vec<Span>,
    /// Bytes of the XML declaration, when the text starts with one.
    pub declaration: Option<usize>,
    /// Where character data other than whitespace first appears at `level - 1`, i.e.
    /// between a stream's top-level elements (references and CDATA sections included).
    pub text_at_top: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The whole text was read (a document) or its root closed (a stream).
    Closed,
    /// More bytes are needed (streams only).
    Open,
    Refused(String),
}

#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: usize,
    pub end: Option<usize>,
    pub depth: usize,
}

/// Reads `bytes` with rxml's `Parser`: as a whole document (`stream == false`, `level` 0), or
/// as the start of a stream whose root stays open (`level` 1), stopping where the root ends.
pub fn survey(bytes: &[u8], stream: bool) -> Document {
    let level = usize::from(stream);
    let mut parser = Parser::with_options(options());
    let mut document = Document {
        end: End::Open,
        elements: Vec::new(),
        declaration: None,
        text_at_top: None,
    };
    let mut rest = bytes;
    let mut at = 0;
    let mut depth = 0;
    loop {
        let event = match parser.parse(&mut rest, !stream) {
            Ok(Some(event)) => event,
            Ok(None) => {
                document.end = End::Closed;
                return document;
            }
            Err(EndOrError::NeedMoreData) => return document,
            Err(EndOrError::Error(error)) => {
                document.end = End::Refused(error.to_string());
                return document;
            }
        };
        let start = at;
        at += event.metrics().len();
        match event {
            Event::XmlDeclaration(..) => document.declaration = Some(at),
            Event::StartElement(..) => {
                if depth == level {
                    // The root's event also holds the whitespace before it.
                    let skipped = bytes[start..at].iter().take_while(|&&b| b != b'<').count();
                    document.elements.push(Span {
                        start: start + skipped,
                        end: None,
                        depth: 0,
                    });
                }
                depth += 1;
                if let Some(span) = document.elements.last_mut().filter(|_| depth > level) {
                    span.depth = span.depth.max(depth - level);
                }
            }
            Event::EndElement(..) => {
                depth -= 1;
                if depth == level {
                    if let Some(span) = document.elements.last_mut() {
                        span.end = Some(at);
                    }
                }
                if stream && depth == 0 {
                    document.end = End::Closed;
                    return document;
                }
            }
            Event::Text(..) => {
                let raw = &bytes[start..at];
                let blank = raw
                    .iter()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                if stream && depth == level && !blank && document.text_at_top.is_none() {
                    document.text_at_top = Some(start);
                }
            }
        }
    }
}

/// The prefixes in force where minidom reads an element: the default namespace, `stream`
/// when it is a stream's child, and `xml` when minidom must be told it (see [`build`]).
fn prefixes(default: &str, stream: bool, xml: bool) -> BTreeMap<Option<String>, String> {
    let mut prefixes = BTreeMap::from([(None, default.to_string())]);
    if stream {
        prefixes.insert(
            Some("stream".into()),
            "http://etherx.jabber.org/streams".into(),
        );
    }
    if xml {
        prefixes.insert(Some("xml".into()), rxml::XMLNS_XML.to_string());
    }
    prefixes
}

/// minidom's element for the whole of `bytes` (one element, as rxml found it), or with
/// `head_only` its root's start tag alone: what `Element::from_reader_with_prefixes` does
/// (`parse_stanza`), with rxml's token limit raised. minidom, unlike rxml and the XML
/// namespaces spec, does not know the `xml` prefix in element names (`<xml:x/>`):
/// `xml_prefix` declares it.
pub fn build(
    bytes: &[u8],
    default: &str,
    stream: bool,
    xml_prefix: bool,
    head_only: bool,
) -> Result<Element, String> {
    let prefixes = prefixes(default, stream, xml_prefix);
    let mut builder = TreeBuilder::new().with_prefixes_stack(vec![prefixes.into()]);
    let mut parser = RawParser::with_options(options());
    let mut rest = bytes;
    let mut defaults = 0;
    let result = loop {
        let event = match parser.parse(&mut rest, true) {
            Ok(Some(event)) => event,
            Ok(None) => break Err("the end came before the element's".to_string()),
            Err(EndOrError::NeedMoreData) => break Err("more data needed at the end".into()),
            Err(EndOrError::Error(error)) => break Err(error.to_string()),
        };
        // XML §3.1: `xmlns` twice in a start tag is an attribute given twice. rxml's
        // `Parser` refuses `xmlns:p` twice but lets `xmlns` pass (minidom keeps the last).
        match &event {
            rxml::RawEvent::ElementHeadOpen(..) => defaults = 0,
            rxml::RawEvent::Attribute(_, (None, name), _) if name == "xmlns" => {
                defaults += 1;
                if defaults > 1 {
                    break Err("the default namespace declared twice in a tag".into());
                }
            }
            _ => {}
        }
        let head_closed = matches!(event, rxml::RawEvent::ElementHeadClose(..));
        if let Err(error) = builder.process_event(event) {
            break Err(error.to_string());
        }
        if head_only && head_closed {
            break builder.top().map(head).ok_or_else(|| "no root".to_string());
        }
        if let Some(root) = builder.root.take() {
            break Ok(root);
        }
    };
    // The elements still open, each holding only closed children (no deeper than the
    // caller's cap), go with the builder.
    result
}

/// `Element::from_reader_with_prefixes` itself, as `parse_stanza` calls it (rxml's default
/// token limit): [`build`] must agree with it wherever it reads the element.
pub fn minidom_itself(bytes: &[u8], default: &str, stream: bool) -> Option<Element> {
    let mut rest = bytes;
    let element =
        Element::from_reader_with_prefixes(&mut rest, prefixes(default, stream, false)).ok()?;
    rest.iter().all(u8::is_ascii_whitespace).then_some(element)
}

/// An element's start tag alone: its name, namespace and attributes.
pub fn head(element: &Element) -> Element {
    let mut head = Element::bare(element.name(), element.ns());
    *head.attrs_mut() = element.attrs().clone();
    head
}

/// How deep `element` nests (itself 1), without recursing.
pub fn depth(element: &Element) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(element, 1)];
    while let Some((element, level)) = stack.pop() {
        deepest = deepest.max(level);
        stack.extend(element.children().map(|child| (child, level + 1)));
    }
    deepest
}

/// Drops `element` a node at a time: `Element`'s own `Drop` recurses.
pub fn dismantle(element: Element) {
    let mut stack = vec![element];
    while let Some(mut element) = stack.pop() {
        for node in element.take_nodes() {
            if let Node::Element(child) = node {
                stack.push(child);
            }
        }
    }
}

/// The same XML text in the form rxml reads: XML's end-of-line handling first (§2.11: CR LF
/// and a lone CR become LF; rxml refuses a lone CR in an attribute value instead), then the
/// leading zeros of character references dropped outside CDATA sections (`&#0000000065;` is
/// `A`; rxml refuses a reference of more than eight digits).
pub fn normalise(bytes: &[u8]) -> Vec<u8> {
    let mut lines = Vec::with_capacity(bytes.len());
    let mut rest = bytes.iter().peekable();
    while let Some(&byte) = rest.next() {
        if byte == b'\r' {
            rest.next_if_eq(&&b'\n');
            lines.push(b'\n');
        } else {
            lines.push(byte);
        }
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut at = 0;
    while at < lines.len() {
        let rest = &lines[at..];
        if rest.starts_with(b"<![CDATA[") {
            let length = rest
                .windows(3)
                .position(|w| w == b"]]>")
                .map_or(rest.len(), |end| end + 3);
            out.extend_from_slice(&rest[..length]);
            at += length;
        } else if rest.starts_with(b"&#") {
            let hex = rest.get(2) == Some(&b'x');
            let digits_at = if hex { 3 } else { 2 };
            let digits = rest[digits_at..]
                .iter()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            let zeros = rest[digits_at..digits_at + digits]
                .iter()
                .take_while(|&&b| b == b'0')
                .count()
                .min(digits.saturating_sub(1));
            out.extend_from_slice(&rest[..digits_at]);
            out.extend_from_slice(&rest[digits_at + zeros..digits_at + digits]);
            at += digits_at + digits;
        } else {
            out.push(rest[0]);
            at += 1;
        }
    }
    out
}
