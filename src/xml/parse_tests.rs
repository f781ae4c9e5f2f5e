//! The stream reader against rxml and minidom, the reader it replaced: for every stanza here
//! both build an element that writes out the same (`write_stanza`, which is what the webhook
//! is sent) with the same body text, and every malformed input is refused by both.

use minidom::Element;

use crate::config::DEFAULT_MAX_DEPTH;
use crate::xml::stream::{Event, StreamReader};
use crate::xml::write::write_stanza;
use crate::xml::XmlError;
use crate::xml::COMPONENT_NS;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
                      xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='bot.b'>";

/// Every event of `input` (after the header), fed to the reader `chunk` bytes at a time.
fn read(input: &str, chunk: usize) -> Result<Vec<Event>, XmlError> {
    let mut reader = StreamReader::new(COMPONENT_NS, 1 << 20, DEFAULT_MAX_DEPTH);
    let mut events = Vec::new();
    for piece in [HEADER.as_bytes(), input.as_bytes()]
        .concat()
        .chunks(chunk.max(1))
    {
        reader.buffer().extend_from_slice(piece);
        while let Some(event) = reader.next_event()? {
            events.push(event);
        }
    }
    assert_eq!(
        events.first(),
        Some(&Event::Header {
            id: Some("s1".into())
        })
    );
    Ok(events.split_off(1))
}

/// The one element of `stanza`, read by the stream reader whole and a byte at a time.
fn ours(stanza: &str) -> Result<Element, XmlError> {
    let whole = read(stanza, usize::MAX)?;
    let bytewise = read(stanza, 1)?;
    assert_eq!(whole, bytewise, "{stanza}");
    match <[Event; 1]>::try_from(whole) {
        Ok([Event::Element(element)]) => Ok(element),
        other => panic!("{stanza}: {other:?}"),
    }
}

/// The same element as rxml and minidom read it.
fn theirs(stanza: &str) -> Option<Element> {
    let mut bytes = stanza.as_bytes();
    let prefixes = [
        (None, COMPONENT_NS.to_string()),
        (
            Some("stream".to_string()),
            "http://etherx.jabber.org/streams".to_string(),
        ),
    ];
    let element = Element::from_reader_with_prefixes(
        &mut bytes,
        prefixes
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .ok()?;
    bytes.is_empty().then_some(element)
}

/// `stanza` is refused by rxml and, as a malformed stream, by the stream reader.
fn refused_by_both(stanza: &str) {
    assert!(theirs(stanza).is_none(), "rxml read {stanza}");
    refused_by_ours(stanza);
}

/// The stream reader refuses `stanza` as malformed. The footer goes after it: an element left
/// open is known malformed only when its parent closes.
fn refused_by_ours(stanza: &str) {
    let input = format!("{stanza}</stream:stream>");
    assert!(
        matches!(read(&input, usize::MAX), Err(XmlError::Malformed(_))),
        "read {stanza}"
    );
}

/// The first `<body>`'s text, as both readers built it.
fn body(element: &Element) -> Option<String> {
    element.get_child("body", COMPONENT_NS).map(Element::text)
}

#[test]
fn both_readers_build_the_same_stanzas() {
    let cases = [
        "<message from='a@b/c' to='bot.b' type='chat' id='1'><body>hi</body></message>",
        "<message from=\"a@b/c\" to = \"bot.b\"  ><body>double quotes, spaces</body></message >",
        "<presence from='a@b/c'/>",
        "<presence from='a@b/c' />",
        "<iq from='a@b/c' to='bot.b' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>",
        "<message from='a@b'><body>a &amp; b &lt;c&gt; &apos;d&apos; &quot;e&quot; &#233;&#x1F389;</body></message>",
        "<message from='a@b' id='&#9;tab&#10;lf&#13;cr &amp;'><body>x</body></message>",
        "<message from='a@b' id='lit\ttab\nlf\r\ncrlf'><body>x</body></message>",
        "<message from='a@b'><body>crlf\r\nand cr\rand lf\n</body></message>",
        "<message from='a@b'><body>a<![CDATA[<b> & \r\n]]>c</body></message>",
        "<message from='a@b'><body><![CDATA[]]></body></message>",
        "<message from='a@b'><body></body></message>",
        "<message from='a@b'>\n  <body xml:lang='en'>hello</body>\n  <body>plain</body>\n</message>",
        "<message from='a@b'><x xmlns='urn:x' xmlns:p='urn:p' p:attr='v' attr='w'><p:y><z/></p:y></x></message>",
        "<message from='a@b'><p:x xmlns:p='urn:p'><y/></p:x><y/></message>",
        "<message from='a@b'><x xmlns=''><y/></x></message>",
        "<message from='a@b'><x xmlns='urn:a'><y xmlns='urn:b'/><z/></x><w/></message>",
        "<message from='a@b' xmlns:q='urn:q' q:a='1' a='2'/>",
        "<message from='a@b' xml:lang='de'><body>greater > than, ]] and ]></body></message>",
        "<message from='a@b'><body>\u{e9}\u{4e2d}\u{1F389} \u{2028}</body></message>",
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        "<handshake/>",
        "<message from='a@b'><body attr='a > b'>x</body></message>",
        "<message from='a@b'><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>a<b>b</b>c</p></body></html></message>",
    ];
    for stanza in cases {
        let theirs = theirs(stanza).unwrap_or_else(|| panic!("rxml refused {stanza}"));
        let ours = ours(stanza).unwrap_or_else(|e| panic!("refused {stanza}: {e}"));
        assert_eq!(write_stanza(&ours), write_stanza(&theirs), "{stanza}");
        assert_eq!(body(&ours), body(&theirs), "{stanza}");
        assert_eq!(ours.ns(), theirs.ns(), "{stanza}");
    }
    let large = format!(
        "<message from='a@b'><body>{}</body></message>",
        "x &amp; \u{e9}\r\n".repeat(30_000)
    );
    let theirs = theirs(&large).expect("rxml reads it");
    assert_eq!(
        write_stanza(&ours(&large).expect("read")),
        write_stanza(&theirs)
    );
}

#[test]
fn both_readers_refuse_what_is_not_well_formed() {
    let cases = [
        "<message from='a@b'><body>x</message>",
        "<message from='a@b'><body>x</bodyx></message>",
        "<message from='a@b'from2='c'/>",
        "<message from=a@b/>",
        "<message from='a@b'><body>&nbsp;</body></message>",
        "<message from='a@b'><body>&#0;</body></message>",
        "<message from='a@b'><body>&#xD800;</body></message>",
        "<message from='a@b'><body>a & b</body></message>",
        "<message from='a<b'/>",
        "<message from='a@b'><p:x/></message>",
        "<message from='a@b' p:a='1'/>",
        "<message from='a@b'><body>bell \u{7}</body></message>",
        "<message from='a@b'><body>a ]]> b</body></message>",
        "<message from='a@b'><!-- comment --></message>",
        "<message from='a@b'><?pi x?></message>",
        "<message from='a@b'><x xmlns:p=''/></message>",
        "<message from='a@b'><1x/></message>",
    ];
    for stanza in cases {
        refused_by_both(stanza);
    }
}

/// Where the readers differ, this one follows XML 1.0 (Prosody's expat and ejabberd's
/// fast_xml do too): a lone carriage return in an attribute value is a space (§2.11,
/// §3.3.3; rxml refused it), and an attribute given twice is an error (§3.1; rxml and
/// minidom kept the last).
#[test]
fn where_the_readers_differ_xml_decides() {
    let element = ours("<message from='a@b' id='x\ry'/>").expect("read");
    assert_eq!(element.attr("id"), Some("x y"));
    for twice in [
        "<message from='a@b' from='c@d'/>",
        "<message from='a@b' xmlns:q='urn:q' xmlns:r='urn:q' q:a='1' r:a='2'/>",
    ] {
        assert!(theirs(twice).is_some(), "{twice}");
        let input = format!("{twice}</stream:stream>");
        assert!(read(&input, usize::MAX).is_err(), "{twice}");
    }
}

#[test]
fn the_stream_is_cut_into_elements_whatever_the_pieces() {
    let input = "  <message from='a@b'><body>one</body></message>\n \
                 <presence from='a@b'/><iq from='a@b' type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>\
                 </stream:stream>";
    let whole = read(input, usize::MAX).expect("read");
    for chunk in [1, 2, 3, 7, 40] {
        assert_eq!(read(input, chunk).expect("read"), whole, "{chunk}");
    }
    let names: Vec<_> = whole
        .iter()
        .map(|event| match event {
            Event::Element(element) => element.name().to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["message", "presence", "iq", "Footer"]);
}

#[test]
fn an_element_larger_than_the_bound_is_refused_before_it_ends() {
    let mut reader = StreamReader::new(COMPONENT_NS, 100, DEFAULT_MAX_DEPTH);
    reader.buffer().extend_from_slice(HEADER.as_bytes());
    assert!(matches!(
        reader.next_event(),
        Ok(Some(Event::Header { .. }))
    ));
    reader
        .buffer()
        .extend_from_slice(b"<message from='a@b'><body>");
    assert_eq!(reader.next_event(), Ok(None));
    reader.buffer().extend_from_slice(&[b'x'; 100]);
    assert_eq!(reader.next_event(), Err(XmlError::ReadTooLarge(100)));
}

#[test]
fn text_between_elements_and_a_second_header_are_refused() {
    assert!(read("<presence from='a@b'/>hello", usize::MAX).is_err());
    assert!(read("<?xml version='1.0'?>", usize::MAX).is_err());
    assert!(read("</stream:other>", usize::MAX).is_err());
}

/// Namespaces in XML §3: the prefix `xml` may be declared, to its own namespace only, and
/// neither another prefix nor the default namespace may be bound to that namespace. rxml
/// reads it so; found by the `reader_vs_rxml` fuzz target (ours refused the first).
#[test]
fn the_xml_prefix_may_be_declared_and_its_namespace_bound_to_no_other() {
    let declared = "<message from='a@b' xmlns:xml='http://www.w3.org/XML/1998/namespace'>\
                    <xml:x xml:lang='de'/></message>";
    let rxml = theirs(declared).expect("rxml reads it");
    let element = ours(declared).unwrap_or_else(|e| panic!("refused {declared}: {e}"));
    assert_eq!(element, rxml);
    assert_eq!(write_stanza(&element), write_stanza(&rxml));
    for misbound in [
        "<message from='a@b' xmlns:xml='urn:other'/>",
        "<message from='a@b' xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
        "<message from='a@b'><x xmlns='http://www.w3.org/XML/1998/namespace'/></message>",
    ] {
        refused_by_both(misbound);
    }
}

/// Text on both sides of a CDATA section is one text node, as minidom builds it: the
/// elements are equal (`==`), not only written out the same. Found by `reader_vs_rxml`.
#[test]
fn text_around_cdata_is_one_text_node() {
    for stanza in [
        "<message from='a@b'><body>a<![CDATA[<b> & \r\n]]>c</body></message>",
        "<message from='a@b'><body><![CDATA[x]]><![CDATA[y]]>&amp;z</body></message>",
    ] {
        let element = ours(stanza).unwrap_or_else(|e| panic!("refused {stanza}: {e}"));
        assert_eq!(element, theirs(stanza).expect("rxml reads it"), "{stanza}");
    }
}

/// A name whose prefix is empty (`:to`) is not a qualified name (Namespaces in XML §4); it
/// was read as `to`. Found by `reader_vs_rxml`.
#[test]
fn a_name_with_an_empty_prefix_is_refused() {
    for stanza in [
        "<presence :to='echo@bot.b' from='a@b'/>",
        "<:presence from='a@b'/>",
        "<message from='a@b'><:body>x</:body></message>",
    ] {
        refused_by_both(stanza);
    }
}

/// An empty element is a level too: a stanza whose deepest element is an empty one just past
/// `max_depth` is refused as one too-deep stanza (its sender answered, the stream read on),
/// not found too deep only by `parse_element`, which failed the whole stream. Found by
/// `reader_vs_rxml`.
#[test]
fn an_empty_element_past_the_depth_limit_makes_its_stanza_too_deep() {
    let deep = format!(
        "<message from='a@b' id='deep'>{}<leaf/>{}</message>\
         <message from='a@b' id='next'/>",
        "<a>".repeat(DEFAULT_MAX_DEPTH - 1),
        "</a>".repeat(DEFAULT_MAX_DEPTH - 1),
    );
    for chunk in [usize::MAX, 1] {
        let events = read(&deep, chunk).unwrap_or_else(|e| panic!("pieces of {chunk}: {e}"));
        let [Event::TooDeep(head), Event::Element(next)] = events.as_slice() else {
            panic!("pieces of {chunk}: {events:?}");
        };
        assert_eq!(head.attr("id"), Some("deep"));
        assert_eq!(next.attr("id"), Some("next"));
    }
}

/// Whether rxml's namespace-checking `Parser` refuses `text` (minidom reads it with the
/// laxer `RawParser`).
fn rxml_refuses(text: &str) -> bool {
    let mut reader = minidom::rxml::Reader::new(text.as_bytes());
    loop {
        match reader.read() {
            Ok(Some(_)) => continue,
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// A namespace declaration is an attribute: given twice in one start tag, it is an error
/// (XML §3.1), as rxml's `Parser` says; ours, like minidom, kept the last. Found by
/// `reader_vs_rxml`.
#[test]
fn a_prefix_declared_twice_in_one_tag_is_refused() {
    for stanza in [
        "<message from='a@b'><x xmlns:p='urn:a' xmlns:p='urn:b'/></message>",
        "<message from='a@b'><x xmlns:p='urn:a' xmlns:q='urn:q' xmlns:p='urn:a'/></message>",
        "<message from='a@b' xmlns:xml='http://www.w3.org/XML/1998/namespace' \
         xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
        // rxml's Parser lets this one pass; XML §3.1 does not.
        "<message from='a@b'><x xmlns='urn:a' xmlns='urn:b'/></message>",
    ] {
        assert!(
            rxml_refuses(stanza) || stanza.contains("xmlns='urn:a' xmlns="),
            "rxml read {stanza}"
        );
        refused_by_ours(stanza);
    }
    // The same prefix again on a child is a new declaration, not a second one.
    let nested = "<message from='a@b'><x xmlns:p='urn:a'><p:y xmlns:p='urn:b'/></x></message>";
    assert_eq!(
        ours(nested).expect("read"),
        theirs(nested).expect("rxml reads it")
    );
}

/// An element in the XML namespace (`<xml:x/>`; the prefix is always bound) is written with
/// that prefix, declared for readers that do not know it (minidom), and not as
/// `xmlns='http://www.w3.org/XML/1998/namespace'`, which XML forbids and rxml refuses.
/// Found by the `stream_parser` fuzz target once `reader_vs_rxml`'s tokens were in the
/// dictionary.
#[test]
fn an_element_in_the_xml_namespace_is_written_back_well_formed() {
    let stanza = "<message from='a@b'><xml:x xml:lang='en'><y/>t</xml:x></message>";
    let element = ours(stanza).expect("read");
    let written = write_stanza(&element);
    assert_eq!(
        written,
        "<message from='a@b'><xml:x xmlns:xml='http://www.w3.org/XML/1998/namespace' \
         xml:lang='en'><y/>t</xml:x></message>"
    );
    assert_eq!(theirs(&written).as_ref(), Some(&element), "{written}");
}
