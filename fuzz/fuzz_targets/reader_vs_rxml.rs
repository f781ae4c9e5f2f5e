//! Why: the daemon reads the server's stream with its own reader (`stanza::stream` cuts it,
//! `stanza::parse` builds each `minidom::Element`, `stanza::scan` checks the characters)
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
//! `write_stanza` (what the webhook is sent) writes out the same. The deliberate differences,
//! each handled where it applies in `differential.rs`:
//! 1. An XML declaration before a stanza: rxml reads it as a document's; ours refuses it (a
//!    stanza carries none; the stream's comes before the header, where `stream.rs` skips
//!    it). Checked: ours refuses, and reads the element after it as rxml does.
//! 2. Whitespace before and after a stanza: ours is given the element alone, as the stream
//!    reader cuts it (it skips whitespace between elements, the servers' keepalives).
//! 3. A lone CR in an attribute value: XML's end-of-line handling (§2.11) makes it a line
//!    feed, then a space; rxml refuses it. Where the readers differ and the input holds a CR,
//!    theirs is read again with line ends normalised first, which XML says is the same text.
//! 4. Text between a stream's top-level elements (including references and CDATA): XML
//!    allows it in the stream element; XMPP does not, and ours refuses it. Checked: ours
//!    refuses at that point, with the same elements before it.
//! 5. Where a broken stream is refused: ours finds what is wrong in an element once it has
//!    found the element's end (the stream reader scans, then `parse_element` reads), rxml as
//!    it reads; so at the end of the bytes ours may still wait where rxml refused, or refuse
//!    where rxml waits for the byte that tells it (`<?`, `<!-` begin what both refuse). The
//!    elements before must be the same either way.
//! 6. minidom does not know the `xml` prefix in element names (`<xml:x/>`), which rxml, ours
//!    and the namespaces spec bind always: minidom is then told it.
//! 7. Token length: rxml refuses a name or attribute value over 8 KiB (`max_token_length`, its
//!    default, which tokio-xmpp's reader used); ours bounds only the element (`max_read_size`).
//!    Theirs reads with the limit raised to 1 GiB, so the grammar is compared at any length.
//! 8. Attributes given twice: minidom keeps the last, rxml's `Parser` and ours refuse (XML
//!    §3.1); theirs refuses when rxml does, so nothing to handle.
//! 9. Depth: an element deeper than `CAP` (256) is not built by minidom (its `Drop`,
//!    `PartialEq` and `write_stanza` recurse, and would overflow the fuzzer's stack near 5,000
//!    levels under ASan): both sides are compared by its start tag and depth, ours measured
//!    and dropped without recursion (`reference::depth`, `reference::dismantle`).
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
