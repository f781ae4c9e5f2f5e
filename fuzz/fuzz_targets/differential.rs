//! The property `reader_vs_rxml` checks (and `tests/reader_differential.rs` checks on the
//! corpus and generated inputs): the project's own XML reader and rxml + minidom accept and
//! refuse the same bytes and build the same elements, but for the deliberate differences
//! listed in `reader_vs_rxml.rs`, each handled here where it applies.

use component_http::stanza::parse::{parse_element, Scope};
use component_http::stanza::scan::is_xml_text;
use component_http::stanza::stream::{Event, StreamReader};
use component_http::stanza::xml::write_stanza;
use component_http::stanza::COMPONENT_NS;
use minidom::Element;

use crate::reference::{self, End};

/// What the server sends first; the input follows it.
pub const HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams'>";

/// The deepest element either side builds into a whole tree here, and compares and writes
/// out: `Element`'s `Drop`, `PartialEq` and `write_stanza` recurse, and must not overflow the
/// fuzzer's stack (8 MiB, ASan's frames) nor a test thread's (2 MiB). A deeper one is
/// compared by its start tag and depth, both sides measured without recursion.
pub const CAP: usize = 256;

/// One element, as a side read it.
#[derive(Debug)]
pub enum Read {
    Element(Element),
    TooDeep {
        head: Element,
        depth: usize,
    },
    /// Why, for the failure message.
    Refused(#[allow(dead_code)] String),
}

/// Whether a stream was read to its footer, is waiting for more, or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Footer,
    Open,
    Refused,
}

pub fn check(data: &[u8]) {
    check_stanza(data);
    check_stream(data);
}

/// Ours and theirs alike, an element being the same when it is equal and writes out the same.
fn same(ours: &Read, theirs: &Read) -> bool {
    match (ours, theirs) {
        (Read::Element(a), Read::Element(b)) => a == b && write_stanza(a) == write_stanza(b),
        (Read::TooDeep { head: a, depth: m }, Read::TooDeep { head: b, depth: n }) => {
            a == b && m == n
        }
        (Read::Refused(_), Read::Refused(_)) => true,
        _ => false,
    }
}

/// An element our reader built, measured; a deep one kept as its start tag alone.
fn ours_built(element: Element) -> Read {
    let depth = reference::depth(&element);
    if depth <= CAP {
        return Read::Element(element);
    }
    let head = reference::head(&element);
    reference::dismantle(element);
    Read::TooDeep { head, depth }
}

/// `parse_element` on a top-level element's text, as `stream.rs` calls it: on text with only
/// characters XML allows, in the component namespace.
fn ours_stanza(text: &str) -> Read {
    if !is_xml_text(text) {
        return Read::Refused("a character XML does not allow".into());
    }
    match parse_element(text, &mut Scope::new(COMPONENT_NS)) {
        Ok(element) => ours_built(element),
        Err(error) => Read::Refused(error.0),
    }
}

/// minidom's element for `bytes` (rxml found one element there, `depth` deep), or its start
/// tag alone when deeper than [`CAP`].
fn theirs_element(bytes: &[u8], depth: usize, stream: bool) -> Read {
    let deep = depth > CAP;
    let built = reference::build(bytes, COMPONENT_NS, stream, false, deep)
        // Deliberate difference 6: minidom does not know the `xml` prefix on element names.
        .or_else(|_| reference::build(bytes, COMPONENT_NS, stream, true, deep));
    match built {
        Ok(head) if deep => Read::TooDeep { head, depth },
        Ok(element) => {
            if let Some(itself) = reference::minidom_itself(bytes, COMPONENT_NS, stream) {
                assert!(
                    itself == element,
                    "the harness reads otherwise than minidom"
                );
            }
            Read::Element(element)
        }
        Err(error) => Read::Refused(format!("minidom: {error}")),
    }
}

/// The document `data` as rxml and minidom read it, and where its root element lies (what
/// our reader is given: the stream reader skips what is around an element).
fn theirs_stanza(data: &[u8]) -> (Read, Option<(usize, usize)>, Option<usize>) {
    let document = reference::survey(data, false);
    match (&document.end, document.elements.first()) {
        (
            End::Closed,
            Some(&reference::Span {
                start,
                end: Some(end),
                depth,
            }),
        ) => (
            theirs_element(&data[start..end], depth, false),
            Some((start, end)),
            document.declaration,
        ),
        (End::Refused(error), _) => (Read::Refused(error.clone()), None, None),
        (end, _) => (Read::Refused(format!("{end:?}")), None, None),
    }
}

fn check_stanza(data: &[u8]) {
    let (mut theirs, mut root, mut declaration) = theirs_stanza(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(
            matches!(theirs, Read::Refused(_)),
            "rxml read what is not UTF-8: {theirs:?}"
        );
        return;
    };
    // Deliberate difference 2: whitespace around the element is the stream reader's to skip.
    let ours = ours_stanza(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r')));
    let mut read = data.to_vec();
    if !same(&ours, &theirs) {
        // Deliberate differences 3 and 4: rxml refuses a lone CR in an attribute value and
        // a character reference of more than eight digits; it reads the same text without.
        read = reference::normalise(data);
        (theirs, root, declaration) = theirs_stanza(&read);
    }
    if let (Some(_), Some((start, end))) = (declaration, root) {
        // Deliberate difference 1: a stanza carries no XML declaration (the stream's comes
        // before its header, where `stream.rs` skips it). Ours refuses it, and reads the
        // element after it as rxml does.
        assert!(
            matches!(ours, Read::Refused(_)),
            "an XML declaration was read as part of a stanza: {text:?}"
        );
        let element = std::str::from_utf8(&read[start..end]).expect("rxml read UTF-8");
        let ours = ours_stanza(element);
        assert!(
            same(&ours, &theirs),
            "after a declaration\n ours: {ours:?}\n theirs: {theirs:?}\n input: {text:?}"
        );
        return;
    }
    assert!(
        same(&ours, &theirs),
        "the readers differ on one element\n ours: {ours:?}\n theirs: {theirs:?}\n input: {text:?}"
    );
}

/// The input after [`HEADER`], as the session reads it: elements until the footer, a read
/// error or the end of the bytes.
fn ours_stream(data: &[u8]) -> (Vec<Read>, Ending) {
    let mut reader = StreamReader::new(COMPONENT_NS, usize::MAX);
    reader.buffer().extend_from_slice(HEADER);
    reader.buffer().extend_from_slice(data);
    assert_eq!(reader.next_event(), Ok(Some(Event::Header { id: None })));
    let mut elements = Vec::new();
    loop {
        match reader.next_event() {
            Ok(Some(Event::Element(element))) => elements.push(ours_built(element)),
            Ok(Some(Event::Footer)) => return (elements, Ending::Footer),
            Ok(Some(other)) => panic!("a second header: {other:?}"),
            Ok(None) => return (elements, Ending::Open),
            Err(_) => return (elements, Ending::Refused),
        }
        assert!(elements.len() <= data.len(), "the reader is spinning");
    }
}

/// The same stream read by rxml, each top-level element built by minidom.
fn theirs_stream(data: &[u8]) -> (Vec<Read>, Ending) {
    let bytes = [HEADER, data].concat();
    let document = reference::survey(&bytes, true);
    let mut ending = match document.end {
        End::Closed => Ending::Footer,
        End::Open => Ending::Open,
        End::Refused(_) => Ending::Refused,
    };
    let mut elements = Vec::new();
    for span in &document.elements {
        if document.text_at_top.is_some_and(|text| text < span.start) {
            break;
        }
        let Some(end) = span.end else { break };
        let read = theirs_element(&bytes[span.start..end], span.depth, true);
        let refused = matches!(read, Read::Refused(_));
        elements.push(read);
        if refused {
            break;
        }
    }
    if document.text_at_top.is_some() {
        // Deliberate difference 4: text between top-level elements is not XMPP; XML
        // allows it as the stream element's content.
        ending = Ending::Refused;
    }
    if let Some(Read::Refused(_)) = elements.last() {
        elements.pop();
        ending = Ending::Refused;
    }
    (elements, ending)
}

fn check_stream(data: &[u8]) {
    let (ours, our_ending) = ours_stream(data);
    let (mut theirs, mut their_ending) = theirs_stream(data);
    let agree = |theirs: &[Read], their_ending| {
        ours.len() == theirs.len()
            && ours.iter().zip(theirs).all(|(a, b)| same(a, b))
            && match (our_ending, their_ending) {
                // Deliberate difference 5: our reader finds what is wrong in an element when
                // it has found its end; rxml as it reads. So ours may wait for more where
                // rxml refuses, and refuse where rxml waits for the bytes that tell it
                // (`<?` can only begin the processing instruction both refuse).
                (Ending::Open, Ending::Refused) | (Ending::Refused, Ending::Open) => true,
                (a, b) => a == b,
            }
    };
    if !agree(&theirs, their_ending) {
        // Deliberate differences 3 and 4, as in a stanza.
        (theirs, their_ending) = theirs_stream(&reference::normalise(data));
    }
    assert!(
        agree(&theirs, their_ending),
        "the readers differ on the stream\n ours: {our_ending:?} {ours:?}\n theirs: {their_ending:?} {theirs:?}\n input: {:?}",
        String::from_utf8_lossy(data)
    );
}
