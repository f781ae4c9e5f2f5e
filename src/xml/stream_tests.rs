//! The stream reader under hostile shapes: nesting past `max_depth` (refused unread, the
//! stream going on), a second stream header, thousands of attributes and namespace
//! declarations, and a prefixed chain, each at or past the size a server lets through.

use minidom::Element;

use super::*;
use crate::config::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_READ_SIZE};
use crate::xml::COMPONENT_NS;

const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
                      xmlns:stream='http://etherx.jabber.org/streams' id='s1'>";

/// The events after the header, `input` fed `chunk` bytes at a time, up to the first error.
fn events(input: &str, chunk: usize, max_depth: usize) -> Vec<Result<Event, XmlError>> {
    let mut reader = StreamReader::new(COMPONENT_NS, DEFAULT_MAX_READ_SIZE, max_depth);
    let mut out = Vec::new();
    for piece in [HEADER.as_bytes(), input.as_bytes()]
        .concat()
        .chunks(chunk.max(1))
    {
        reader.buffer().extend_from_slice(piece);
        loop {
            match reader.next_event() {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error));
                    return out.split_off(1);
                }
            }
        }
    }
    out.split_off(1)
}

/// `<a xmlns='urn:x'><a>…</a></a>`, `depth` levels inside a message.
fn nested_message(depth: usize) -> String {
    format!(
        "<message from='mallory@example.org/x' to='echo@bot.b' id='deep' type='chat'>\
         <a xmlns='urn:x'>{}{}</a></message>",
        "<a>".repeat(depth - 2),
        "</a>".repeat(depth - 2),
    )
}

fn depth_of(element: &Element) -> usize {
    // Iterative: the point is elements too deep for recursion.
    let mut deepest = 0;
    let mut stack = vec![(element, 1)];
    while let Some((element, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        stack.extend(element.children().map(|child| (child, depth + 1)));
    }
    deepest
}

#[test]
fn a_stanza_at_the_depth_limit_is_read_whole() {
    let events = events(
        &nested_message(DEFAULT_MAX_DEPTH),
        usize::MAX,
        DEFAULT_MAX_DEPTH,
    );
    match events.as_slice() {
        [Ok(Event::Element(element))] => assert_eq!(depth_of(element), DEFAULT_MAX_DEPTH),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stanza_past_the_depth_limit_is_refused_unread_and_the_stream_goes_on() {
    for depth in [DEFAULT_MAX_DEPTH + 1, 8_000, 100_000] {
        let input = format!(
            "{}<message from='alice@example.org/r' to='echo@bot.b' id='next'><body>hi</body></message>",
            nested_message(depth)
        );
        for chunk in [usize::MAX, 4096, 7] {
            if depth == 100_000 && chunk == 7 {
                continue; // byte-size pieces of 1 MB: slow in debug, and 7 covers the splits
            }
            let events = events(&input, chunk, DEFAULT_MAX_DEPTH);
            let [Ok(Event::TooDeep(head)), Ok(Event::Element(next))] = events.as_slice() else {
                panic!("depth {depth}, pieces of {chunk}: {events:?}");
            };
            assert_eq!(head.name(), "message");
            assert_eq!(head.attr("from"), Some("mallory@example.org/x"));
            assert_eq!(head.attr("id"), Some("deep"));
            assert_eq!(head.children().count(), 0, "the content is not built");
            assert_eq!(next.attr("id"), Some("next"));
        }
    }
}

#[test]
fn the_parser_refuses_what_the_scan_would_let_through_too_deep() {
    let mut scope = Scope::new(COMPONENT_NS);
    let text = nested_message(10);
    assert!(parse_element(&text, &mut scope, 10).is_ok());
    assert!(parse_element(&text, &mut scope, 9).is_err());
}

#[test]
fn a_second_stream_header_is_refused_at_once() {
    let input = "<presence from='a@b'/><stream:stream xmlns='jabber:component:accept' \
                 xmlns:stream='http://etherx.jabber.org/streams' id='s2'>";
    for chunk in [usize::MAX, 1] {
        let events = events(input, chunk, DEFAULT_MAX_DEPTH);
        assert!(matches!(events[0], Ok(Event::Element(_))), "{events:?}");
        assert!(
            matches!(&events[1], Err(XmlError::Malformed(why)) if why.contains("second stream header")),
            "{events:?}"
        );
    }
    // An element whose name only starts like the header's is an element.
    let events = events(
        "<stream:streams xmlns:stream='urn:x' from='a@b'/>",
        usize::MAX,
        DEFAULT_MAX_DEPTH,
    );
    assert!(
        matches!(events.as_slice(), [Ok(Event::Element(_))]),
        "{events:?}"
    );
}

#[test]
fn thousands_of_attributes_and_declarations_are_read() {
    // Each shape is about the size Prosody lets through to a component (512 KiB at most).
    let attributes: String = (0..5_000).map(|n| format!(" a{n}='{n}'")).collect();
    let declarations: String = (0..2_000)
        .map(|n| format!(" xmlns:p{n}='urn:example:{n}'"))
        .collect();
    let prefixed: String = (0..10_000)
        .map(|n| format!(" xmlns:q{n}='urn:q:{n}' q{n}:a='{n}'"))
        .collect();
    let chain: String = (0..3_000)
        .map(|n| format!("<c{n}:x xmlns:c{n}='urn:chain:{n}'>"))
        .collect();
    let chain_end: String = (0..3_000).rev().map(|n| format!("</c{n}:x>")).collect();
    for (shape, stanza) in [
        (
            "5,000 attributes",
            format!("<message from='a@b'{attributes}/>"),
        ),
        (
            "2,000 declarations",
            format!("<message from='a@b'><x{declarations}/></message>"),
        ),
        (
            "10,000 prefixed attributes",
            format!("<message from='a@b'><x{prefixed}/></message>"),
        ),
        (
            "a 3,000-deep prefixed chain",
            format!("<message from='a@b'>{chain}{chain_end}</message>"),
        ),
    ] {
        let events = events(&stanza, usize::MAX, DEFAULT_MAX_DEPTH);
        match (shape, events.as_slice()) {
            ("a 3,000-deep prefixed chain", [Ok(Event::TooDeep(head))]) => {
                assert_eq!(head.attr("from"), Some("a@b"));
            }
            (_, [Ok(Event::Element(element))]) => {
                let attrs = element.attrs().len()
                    + element.children().map(|c| c.attrs().len()).sum::<usize>();
                assert!(attrs >= 1, "{shape}");
            }
            _ => panic!("{shape}: {events:?}"),
        }
    }
}
