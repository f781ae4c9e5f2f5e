//! A stanza on its way to the server, already written as the text the component stream
//! carries. Whoever makes a stanza writes it (a dispatch worker, the API), so what waits in the
//! outbox is one string per stanza, not an element tree, and the session only copies bytes.
//! A stanza may carry a [`Written`] signal, which the session raises once the write holding
//! it has succeeded: the delivery log waits for it before it calls a delivery done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minidom::Element;

use super::write::append_stanza;
use super::XmlError;

/// Room reserved for a stanza's text before it is written: most replies fit, so the text is
/// not grown piece by piece.
const TYPICAL_STANZA: usize = 256;

/// One stanza written for the component stream, with the error condition it carries (counted
/// in the metrics once it is sent).
#[derive(Debug, Clone)]
pub struct OutgoingStanza {
    text: Box<str>,
    error_condition: Option<Box<str>>,
    written: Option<Written>,
}

/// Two stanzas are the same when their text is: the signal is not part of the stanza.
impl PartialEq for OutgoingStanza {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.error_condition == other.error_condition
    }
}

impl Eq for OutgoingStanza {}

/// Raised once the stanza holding it has been written to the server's socket (the kernel
/// has it: a process killed after that still sends it). Shared by the stanza and whoever
/// waits; when the stanza is dropped unwritten, the waiter is the last holder
/// ([`Written::abandoned`]).
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<AtomicBool>);

impl Written {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Unwritten, and no stanza holds it any more: it never will be written.
    pub fn abandoned(&self) -> bool {
        !self.is_set() && Arc::strong_count(&self.0) == 1
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl OutgoingStanza {
    /// Writes `stanza` as [`append_stanza`] does; a stanza holding a character XML does not
    /// allow, or longer than `max_size` bytes written (`max_outgoing_size`), is refused: the
    /// server would close the stream on it.
    pub fn write(stanza: &Element, max_size: usize) -> Result<OutgoingStanza, XmlError> {
        let mut text = String::with_capacity(TYPICAL_STANZA);
        append_stanza(stanza, &mut text)?;
        if text.len() > max_size {
            return Err(XmlError::TooLarge {
                length: text.len(),
                max: max_size,
            });
        }
        Ok(OutgoingStanza {
            text: text.into_boxed_str(),
            error_condition: error_condition(stanza).map(Into::into),
            written: None,
        })
    }

    /// `written` is raised once this stanza has been written to the server.
    pub fn signal_when_written(&mut self, written: Written) {
        self.written = Some(written);
    }

    /// Called by the session once the write holding this stanza has succeeded.
    pub fn mark_written(&self) {
        if let Some(written) = &self.written {
            written.set();
        }
    }

    /// The stanza's XML text, as it goes on the stream.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// For an error stanza, its defined condition (`item-not-found`, ...): the first child of
    /// `<error/>` that is not `<text/>`, or `undefined-condition` when there is none.
    pub fn error_condition(&self) -> Option<&str> {
        self.error_condition.as_deref()
    }
}

/// For an error stanza, its defined condition (see [`OutgoingStanza::error_condition`]);
/// `None` for any other stanza.
pub fn error_condition(stanza: &Element) -> Option<&str> {
    if stanza.attr("type") != Some("error") {
        return None;
    }
    let error = stanza.children().find(|child| child.name() == "error");
    let condition = error.and_then(|e| e.children().find(|c| c.name() != "text"));
    Some(condition.map_or("undefined-condition", Element::name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::document::parse_stanza;

    const MAX: usize = crate::config::DEFAULT_MAX_OUTGOING_SIZE;

    fn written(text: &str) -> OutgoingStanza {
        let stanza = parse_stanza(text, crate::config::DEFAULT_MAX_DEPTH).expect("a stanza");
        OutgoingStanza::write(&stanza, MAX).expect("writable")
    }

    #[test]
    fn a_stanza_is_written_as_the_stream_carries_it() {
        let stanza = written(
            "<message xmlns='jabber:client' to='a@b' from='bot.example' type='chat'>\
             <body>x &amp; &lt;y&gt;</body><active xmlns='http://jabber.org/protocol/chatstates'/>\
             </message>",
        );
        assert_eq!(
            stanza.text(),
            "<message from='bot.example' to='a@b' type='chat'><body>x &amp; &lt;y&gt;</body>\
             <active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        );
        assert_eq!(stanza.error_condition(), None);
    }

    #[test]
    fn an_error_stanza_names_its_condition() {
        let stanza = written(
            "<iq type='error' id='1' to='a@b/c' from='bot.example'>\
             <error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
        assert_eq!(stanza.error_condition(), Some("item-not-found"));
        let bare = written("<message type='error' to='a@b'><error type='wait'/></message>");
        assert_eq!(bare.error_condition(), Some("undefined-condition"));
        let without_error = written("<message type='error' to='a@b'/>");
        assert_eq!(without_error.error_condition(), Some("undefined-condition"));
    }

    #[test]
    fn a_stanza_with_a_character_xml_forbids_is_refused() {
        let mut stanza = parse_stanza(
            "<message to='a@b'><body/></message>",
            crate::config::DEFAULT_MAX_DEPTH,
        )
        .expect("a stanza");
        if let Some(body) = stanza.get_child_mut("body", crate::xml::COMPONENT_NS) {
            body.append_text_node("bell \u{7}");
        }
        assert_eq!(
            OutgoingStanza::write(&stanza, MAX),
            Err(XmlError::NotXmlText)
        );
    }

    #[test]
    fn its_signal_is_raised_once_written_and_abandoned_when_dropped_unwritten() {
        let signal = Written::default();
        let mut stanza = written("<message to='a@b'/>");
        stanza.signal_when_written(signal.clone());
        assert!(!signal.is_set() && !signal.abandoned());
        stanza.mark_written();
        assert!(signal.is_set());
        drop(stanza);
        assert!(!signal.abandoned(), "written, then dropped: not abandoned");

        let signal = Written::default();
        let mut stanza = written("<message to='a@b'/>");
        stanza.signal_when_written(signal.clone());
        let copy = stanza.clone();
        drop(stanza);
        assert!(!signal.abandoned(), "a copy still holds it");
        drop(copy);
        assert!(signal.abandoned());
    }

    #[test]
    fn a_long_stanza_is_written_whole() {
        let body = "word ".repeat(10_000);
        let stanza = written(&format!("<message to='a@b'><body>{body}</body></message>"));
        assert_eq!(
            stanza.text(),
            format!("<message to='a@b'><body>{body}</body></message>")
        );
    }
}
