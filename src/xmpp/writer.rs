//! Writing stanzas on a live component stream: a burst of stanzas already written as text
//! (by whoever made them, see [`OutgoingStanza`]) goes straight to the socket, up to 64 KiB a
//! write; and the keepalive ping.

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::socket::ComponentSocket;
use super::XmppError;
use crate::handle::ComponentHandle;
use crate::xml::outgoing::OutgoingStanza;
use crate::xml::set_attr;
use crate::xml::COMPONENT_NS;

/// The id of our own keepalive pings (sent to our own domain, so every server routes them).
pub const KEEPALIVE_ID: &str = "component-http-keepalive";

/// Text written to the socket at once, at most (unless one stanza is longer): small stanzas
/// go out together, large ones do not pile up in memory.
const WRITE_SIZE: usize = 64 * 1024;

/// Writes `stanzas`, small ones together; each is removed once the write holding it
/// succeeded, so after a failure the rest are still there to be sent on the next connection.
pub async fn write_all(
    stream: &ComponentSocket,
    stanzas: &mut Vec<OutgoingStanza>,
    handle: &ComponentHandle,
) -> Result<(), XmppError> {
    let mut joined = Vec::new();
    while !stanzas.is_empty() {
        // The stanzas of this write: as many as fit in WRITE_SIZE, and at least one.
        let mut size = stanzas[0].text().len();
        let mut count = 1;
        while let Some(next) = stanzas.get(count) {
            if size + next.text().len() > WRITE_SIZE {
                break;
            }
            size += next.text().len();
            count += 1;
        }
        let text = if count == 1 {
            stanzas[0].text().as_bytes()
        } else {
            joined.clear();
            joined.reserve(size);
            for stanza in &stanzas[..count] {
                joined.extend_from_slice(stanza.text().as_bytes());
            }
            &joined[..]
        };
        stream.write(text).await.map_err(XmppError::WriteFailed)?;
        for stanza in stanzas.drain(..count) {
            stanza.mark_written();
            if let Some(condition) = stanza.error_condition() {
                handle.metrics().error_sent(condition);
            }
        }
    }
    Ok(())
}

/// An XEP-0199 ping from our domain to our domain: the server routes it back to us, which
/// proves the whole path alive and resets both sides' idle timers.
pub async fn send_keepalive(
    stream: &ComponentSocket,
    handle: &ComponentHandle,
) -> Result<(), XmppError> {
    let domain = handle.domain();
    let mut ping = Element::bare("iq", COMPONENT_NS);
    for (name, value) in [
        (xml_ncname!("type"), "get"),
        (xml_ncname!("id"), KEEPALIVE_ID),
        (xml_ncname!("from"), domain),
        (xml_ncname!("to"), domain),
    ] {
        set_attr(&mut ping, name, value);
    }
    ping.append_child(Element::bare("ping", "urn:xmpp:ping"));
    tracing::debug!("{domain}: keepalive ping");
    let Some(ping) = handle.write(&ping) else {
        return Ok(()); // not for a domain the configuration accepted
    };
    write_all(stream, &mut vec![ping], handle).await
}
