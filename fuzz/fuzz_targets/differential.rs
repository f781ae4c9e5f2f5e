//! The property `reader_vs_rxml` checks (and `tests/reader_differential.rs` checks on the
//! corpus and generated inputs): the project's own XML reader and rxml + minidom accept and
//! refuse the same bytes and build the same elements, but for the deliberate differences
//! listed in `reader_vs_rxml.rs`, each handled here where it applies.

use component_http::config::DEFAULT_MAX_DEPTH;
use component_http::xml::parse::parse_element;
use component_http::xml::scan::is_xml_text;
use component_http::xml::scope::Scope;
use component_http::xml::stream::{Event, StreamReader};
use component_http::xml::write::write_stanza;
use component_http::xml::COMPONENT_NS;
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
#[derive(Debug, Clone)]
pub enum Read {
    Element(Element),
    /// Deeper than [`CAP`]: its start tag alone, and how deep it nests.
    Deep {
        head: Element,
        depth: usize,
    },
    /// Past the reader's `max_depth`: refused unread, its start tag alone
    /// (`Event::TooDeep`).
    TooDeep(Element),
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

/// The depth limits our reader is run with, besides none: the daemon's default, and a small
/// one that moves with the input, so that the limit's edge is crossed often.
fn limits(data: &[u8]) -> [usize; 2] {
    [DEFAULT_MAX_DEPTH, 1 + data.len() % 8]
}

/// `value`'s `Debug`, cut to a few kB: a failure message must stay readable with a 250 kB
/// input (libFuzzer saves the whole input anyway).
fn brief(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(2000) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

pub fn check(data: &[u8]) {
    check_stanza(data);
    check_stream(data);
}

/// Ours and theirs alike, an element being the same when it is equal and writes out the same.
fn same(ours: &Read, theirs: &Read) -> bool {
    match (ours, theirs) {
        (Read::Element(a), Read::Element(b)) => a == b && write_stanza(a) == write_stanza(b),
        (Read::Deep { head: a, depth: m }, Read::Deep { head: b, depth: n }) => a == b && m == n,
        (Read::TooDeep(a), Read::TooDeep(b)) => a == b,
        (Read::Refused(_), Read::Refused(_)) => true,
        _ => false,
    }
}

/// What a reader with the depth limit `limit` must make of an element `read` without one:
/// past the limit, `past` of its start tag (the stream reader's `TooDeep`, or `Refused`).
fn limited(read: &Read, limit: usize, past: fn(Element) -> Read) -> Read {
    match read {
        Read::Element(element) if reference::depth(element) > limit => {
            past(reference::head(element))
        }
        Read::Deep { head, depth } if *depth > limit => past(head.clone()),
        other => other.clone(),
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
    Read::Deep { head, depth }
}

/// `parse_element` on a top-level element's text, as `stream.rs` calls it: on text with only
/// characters XML allows, in the component namespace.
fn ours_stanza(text: &str, max_depth: usize) -> Read {
    if !is_xml_text(text) {
        return Read::Refused("a character XML does not allow".into());
    }
    match parse_element(text, &mut Scope::new(COMPONENT_NS), max_depth) {
        Ok(element) => ours_built(element),
        Err(error) => Read::Refused(error.to_string()),
    }
}

/// minidom's element for `bytes` (rxml found one element there, `depth` deep), or its start
/// tag alone when deeper than [`CAP`].
fn theirs_element(bytes: &[u8], depth: usize, stream: bool) -> Read {
    let deep = depth > CAP;
    let built = reference::build(bytes, COMPONENT_NS, stream, false, deep)
        // Deliberate difference 7: minidom does not know the `xml` prefix on element names.
        .or_else(|_| reference::build(bytes, COMPONENT_NS, stream, true, deep));
    match built {
        Ok(head) if deep => Read::Deep { head, depth },
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

/// The document `data` as rxml and minidom read it, where its root element lies (what our
/// reader is given: the stream reader skips what is around an element), and whether an XML
/// declaration came first.
fn theirs_stanza(data: &[u8]) -> (Read, Option<(usize, usize)>, bool) {
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
            document.declaration.is_some(),
        ),
        (End::Refused(error), _) => (Read::Refused(error.clone()), None, false),
        (end, _) => (Read::Refused(format!("{end:?}")), None, false),
    }
}

fn check_stanza(data: &[u8]) {
    let (mut theirs, _, _) = theirs_stanza(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(
            matches!(theirs, Read::Refused(_)),
            "rxml read what is not UTF-8: {}",
            brief(&theirs)
        );
        return;
    };
    // Deliberate difference 2: whitespace around the element is the stream reader's to skip.
    let mut given = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let mut ours = ours_stanza(given, usize::MAX);
    let mut read;
    if !same(&ours, &theirs) {
        // Deliberate differences 3 and 4: rxml refuses a lone CR in an attribute value and
        // a character reference of more than eight digits; it reads the same text without.
        // And (2) rxml refuses whitespace before the root, which XML allows.
        read = reference::normalise(data);
        let blank = read
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        read.drain(..blank.count());
        let (normalised, root, declaration) = theirs_stanza(&read);
        theirs = normalised;
        if let (true, Some((start, end))) = (declaration, root) {
            // Deliberate difference 1: a stanza carries no XML declaration (the stream's
            // comes before its header, where `stream.rs` skips it). Ours refuses it, and
            // must read the element after it as rxml does.
            assert!(
                matches!(ours, Read::Refused(_)),
                "an XML declaration was read as part of a stanza: {}",
                brief(&text)
            );
            given = std::str::from_utf8(&read[start..end]).expect("rxml read UTF-8");
            ours = ours_stanza(given, usize::MAX);
        }
    }
    assert!(
        same(&ours, &theirs),
        "the readers differ on one element\n ours: {}\n theirs: {}\n input: {}",
        brief(&ours),
        brief(&theirs),
        brief(&text)
    );
    // Deliberate difference 10: with a depth limit, ours refuses what nests deeper.
    for limit in limits(data) {
        let ours = ours_stanza(given, limit);
        let theirs = limited(&theirs, limit, |_| Read::Refused("too deep".into()));
        assert!(
            same(&ours, &theirs),
            "the readers differ with max_depth {limit}\n ours: {}\n theirs: {}\n input: {}",
            brief(&ours),
            brief(&theirs),
            brief(&text)
        );
    }
}

/// The input after [`HEADER`], read as the session reads it with `max_depth` (elements until
/// the footer, a read error or the end of the bytes).
fn ours_stream(data: &[u8], max_depth: usize) -> (Vec<Read>, Ending) {
    let mut reader = StreamReader::new(COMPONENT_NS, usize::MAX, max_depth);
    reader.buffer().extend_from_slice(HEADER);
    reader.buffer().extend_from_slice(data);
    assert_eq!(reader.next_event(), Ok(Some(Event::Header { id: None })));
    let mut elements = Vec::new();
    loop {
        match reader.next_event() {
            Ok(Some(Event::Element(element))) => elements.push(ours_built(element)),
            Ok(Some(Event::TooDeep(head))) => elements.push(Read::TooDeep(head)),
            Ok(Some(Event::Footer)) => return (elements, Ending::Footer),
            Ok(Some(other)) => panic!("a second header: {other:?}"),
            Ok(None) => return (elements, Ending::Open),
            Err(_) => return (elements, Ending::Refused),
        }
        assert!(elements.len() <= data.len(), "the reader is spinning");
    }
}

/// A stream as rxml read it, each top-level element built by minidom.
#[derive(Debug)]
struct Theirs {
    elements: Vec<Read>,
    ending: Ending,
    /// When the element after `elements` was refused after its start tag (by rxml as it
    /// read, or by minidom once rxml had read it whole, nesting that deep): that start tag,
    /// and its depth if rxml read it whole.
    refused_inside: Option<(Element, Option<usize>)>,
}

/// Whether the element's name as written (up to a space, `>` or `/`) is the header's.
fn is_second_header(element: &[u8]) -> bool {
    let name = element[1..]
        .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/'))
        .next();
    name == Some(b"stream:stream")
}

fn theirs_stream(data: &[u8]) -> Theirs {
    let bytes = [HEADER, data].concat();
    let document = reference::survey(&bytes, true);
    let mut theirs = Theirs {
        elements: Vec::new(),
        ending: match document.end {
            End::Closed => Ending::Footer,
            End::Open => Ending::Open,
            End::Refused(_) => Ending::Refused,
        },
        refused_inside: None,
    };
    for span in &document.elements {
        if document.text_at_top.is_some_and(|text| text < span.start) {
            // Deliberate difference 5: text between top-level elements is not XMPP; XML
            // allows it as the stream element's content.
            theirs.ending = Ending::Refused;
            break;
        }
        if is_second_header(&bytes[span.start..]) {
            // Deliberate difference 11: a second stream header is refused at once (the
            // server restarted the stream); to XML it is an element like another.
            theirs.ending = Ending::Refused;
            break;
        }
        let Some(end) = span.end else {
            if theirs.ending == Ending::Refused {
                let head = theirs_element(&bytes[span.start..], CAP + 1, true);
                if let Read::Deep { head, .. } = head {
                    theirs.refused_inside = Some((head, None));
                }
            }
            break;
        };
        let read = theirs_element(&bytes[span.start..end], span.depth, true);
        if let Read::Refused(_) = read {
            theirs.ending = Ending::Refused;
            let head = theirs_element(&bytes[span.start..end], CAP + 1, true);
            if let Read::Deep { head, .. } = head {
                theirs.refused_inside = Some((head, Some(span.depth)));
            }
            break;
        }
        theirs.elements.push(read);
    }
    if document.text_at_top.is_some() {
        theirs.ending = Ending::Refused;
    }
    theirs
}

/// Whether ours, read with `limit`, is what `theirs` says it must be.
fn agree(ours: &(Vec<Read>, Ending), theirs: &Theirs, limit: usize) -> bool {
    let (ours, our_ending) = ours;
    let expected: Vec<Read> = theirs
        .elements
        .iter()
        .map(|read| limited(read, limit, Read::TooDeep))
        .collect();
    let before =
        ours.len() >= expected.len() && ours.iter().zip(&expected).all(|(a, b)| same(a, b));
    if let Some((head, depth)) = &theirs.refused_inside {
        if ours.len() > expected.len() && depth.map_or(true, |depth| depth > limit) {
            // Deliberate difference 10: an element past the limit is skipped unread. Where
            // rxml or minidom found it malformed (and stop there), ours may have found it
            // too deep first (it scans for the end, counting levels; it never reads the
            // inside): refused either way. Ours answers its sender and reads on; what comes
            // after is not compared. Where rxml read it whole, it must be deeper than the
            // limit.
            return before && same(&ours[expected.len()], &Read::TooDeep(head.clone()));
        }
    }
    before
        && ours.len() == expected.len()
        && match (*our_ending, theirs.ending) {
            // Deliberate difference 6: our reader finds what is wrong in an element when it
            // has found its end; rxml as it reads. So ours may wait for more where rxml
            // refuses, and refuse where rxml waits for the bytes that tell it (`<?` can
            // only begin the processing instruction both refuse).
            (Ending::Open, Ending::Refused) | (Ending::Refused, Ending::Open) => true,
            (a, b) => a == b,
        }
}

fn check_stream(data: &[u8]) {
    let mut theirs = theirs_stream(data);
    let mut normalised = false;
    for limit in [usize::MAX, limits(data)[0], limits(data)[1]] {
        let ours = ours_stream(data, limit);
        if !agree(&ours, &theirs, limit) && !normalised {
            // Deliberate differences 3 and 4, as in a stanza.
            theirs = theirs_stream(&reference::normalise(data));
            normalised = true;
        }
        assert!(
            agree(&ours, &theirs, limit),
            "the readers differ on the stream, max_depth {limit}\n ours: {}\n theirs: {}\n input: {}",
            brief(&ours),
            brief(&theirs),
            brief(&String::from_utf8_lossy(data))
        );
    }
}
