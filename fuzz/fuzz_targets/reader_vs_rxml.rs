//! Why: the daemon reads the server's stream with its own reader (`xml::stream` cuts it,
//! `xml::parse` builds each `minidom::Element`, `xml::scan` checks the characters)
//! instead of rxml, for speed. This target holds it to what rxml and minidom make of the same
//! bytes, so that the speed costs no correctness.
//!
//! Every input is read two ways, each by both readers:
//! - as one stanza's text: ours is `parse_element` in the component namespace on text that
//!   passed `is_xml_text` (as `stream.rs` calls it); theirs is rxml's namespace-checking
//!   `Parser` over the whole text as a document, and minidom's `TreeBuilder` over rxml's
//!   `RawParser` for the element (what `Element::from_reader_with_prefixes` does, checked
//!   equal to it) with the default namespace `jabber:component:accept`;
//! - as a stream after a component stream header: ours is a `StreamReader` fed the header and
//!   the input, read until the footer, an error or the end of the bytes; theirs is rxml's
//!   `Parser` over the same bytes, each top-level element built by minidom with the header's
//!   prefixes.
//!
//! Both must accept or refuse alike and, when both accept, build equal elements (`==`) that
//! `write_stanza` (what the webhook is sent) writes out the same. Ours is also run with
//! `max_depth` (the default, 64, and 1 to 8 as the input's length says) and without.
//!
//! The deliberate differences, each handled where it applies in `differential.rs`:
//! 1. An XML declaration before a stanza: rxml reads it as a document's; ours refuses it (a
//!    stanza carries none; the stream's comes before the header, where `stream.rs` skips it
//!    unread). Checked: ours refuses, and reads the element after it as rxml does.
//! 2. Whitespace before and after a stanza: ours is given the element alone, as the stream
//!    reader cuts it (it skips whitespace between elements, the servers' keepalives). rxml
//!    refuses whitespace at the very start of a document, which XML allows before the root
//!    when there is no declaration: where the readers differ, theirs reads it without.
//! 3. A lone CR in an attribute value: XML's end-of-line handling (§2.11) makes it a line
//!    feed, then a space; rxml refuses it.
//! 4. A character reference of more than eight digits (`&#0000000065;`): XML sets no limit;
//!    rxml refuses it. For 3 and 4, where the readers differ, theirs reads the input again
//!    with line ends normalised and leading zeros dropped (outside CDATA), the same text.
//! 5. Text between a stream's top-level elements (references and CDATA too): XML allows it
//!    in the stream element; XMPP does not, and ours refuses it. Checked: ours refuses at
//!    that point, with the same elements before it.
//! 6. Where a broken stream is refused: ours finds what is wrong in an element once it has
//!    found the element's end (the stream reader scans, then `parse_element` reads), rxml as
//!    it reads; so at the end of the bytes ours may still wait where rxml refused, or refuse
//!    where rxml waits for the byte that tells it (`<?`, `<!-` begin what both refuse). The
//!    elements before must be the same either way.
//! 7. minidom does not know the `xml` prefix in element names (`<xml:x/>`), which rxml, ours
//!    and the namespaces spec bind always: minidom is then told it.
//! 8. Token length: rxml refuses a name or attribute value over 8 KiB (`max_token_length`, its
//!    default, which tokio-xmpp's reader and `parse_stanza` use); ours bounds only the
//!    element (`max_read_size`). Theirs reads with the limit raised to 1 GiB.
//! 9. An attribute given twice: minidom keeps the last, rxml's `Parser` and ours refuse it
//!    (XML §3.1); theirs refuses when rxml does. But rxml lets `xmlns` (the default
//!    namespace) twice in one tag pass, which is the same error: theirs refuses it too.
//! 10. Depth: with `max_depth`, `parse_element` refuses what nests deeper, and the stream
//!    reader skips such a stanza unread (`Event::TooDeep`, its start tag alone): theirs, with
//!    its depth measured, must say the same. Not reading it, ours cannot see what is wrong
//!    inside: where rxml finds a stanza malformed (and ends there), ours may find it too
//!    deep first; its start tag must be the same, and what follows is not compared.
//! 11. A second stream header (`<stream:stream` at the top of the stream) is refused at
//!    once; to XML it is an element like another.
//!
//! Not a difference but a bound of the harness: minidom's `Element` is dropped, compared and
//! written recursively; with the cap lifted, this target's 8 MiB stack overflowed between
//! 6,500 and 7,000 levels. Neither side builds a whole tree deeper than `CAP` (256) here,
//! whatever `-max_len`: rxml's `Parser` measures the depth first, without recursion, and a
//! deeper element is compared by its start tag and depth, ours measured and dropped a node
//! at a time.
//!
//! Comments, processing instructions and DOCTYPE are refused by both readers, as are
//! undeclared prefixes, `xmlns:p=''`, non-UTF-8 and characters XML forbids: no difference.
#![no_main]

mod differential;
mod reference;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    differential::check(data);
});
