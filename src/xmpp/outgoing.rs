//! Writing stanzas on a live component stream: a burst is serialised by our own writer
//! (escaping a word at a time, refusing characters XML forbids) and written straight to the
//! socket, up to 64 KiB a write.

use std::io;

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::connection::ComponentStream;
use crate::handle::ComponentHandle;
use crate::stanza::xml::{append_stanza, set_attr};
use crate::stanza::COMPONENT_NS;

/// The id of our own keepalive pings (sent to our own domain, so every server routes them).
pub const KEEPALIVE_ID: &str = "component-http-keepalive";

/// Writing to the server's socket failed: the connection is lost.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct WriteError(#[from] io::Error);

/// Text written to the socket at once, at most (unless one stanza is longer): small stanzas
/// go out together, large ones do not pile up in memory.
const WRITE_SIZE: usize = 64 * 1024;

/// Writes `stanzas`, small ones together; each is removed once the write holding it
/// succeeded, so after a failure the rest are still there to be sent on the next connection.
/// A stanza that cannot be XML is dropped, counted and logged, and the rest still goes.
pub async fn write_all(
    stream: &ComponentStream,
    stanzas: &mut Vec<Element>,
    handle: &ComponentHandle,
) -> Result<(), WriteError> {
    let mut text = String::new();
    let mut index = 0;
    while index < stanzas.len() {
        match append_stanza(&stanzas[index], &mut text) {
            Ok(()) => {
                count_error_sent(&stanzas[index], handle);
                index += 1;
            }
            Err(error) => {
                tracing::error!(
                    "{}: dropped a stanza that cannot be written: {error}",
                    handle.domain
                );
                handle.metrics.dropped_replies.inc();
                stanzas.remove(index);
            }
        }
        if text.len() >= WRITE_SIZE || index == stanzas.len() {
            stream.write(text.as_bytes()).await?;
            text.clear();
            stanzas.drain(..index);
            index = 0;
        }
    }
    Ok(())
}

/// An XEP-0199 ping from our domain to our domain: the server routes it back to us, which
/// proves the whole path alive and resets both sides' idle timers.
pub async fn send_keepalive(
    stream: &ComponentStream,
    handle: &ComponentHandle,
) -> Result<(), WriteError> {
    let domain = handle.domain.as_str();
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
    write_all(stream, &mut vec![ping], handle).await
}

/// Counts an error stanza by its condition, for the metrics.
fn count_error_sent(stanza: &Element, handle: &ComponentHandle) {
    if stanza.attr("type") == Some("error") {
        let error = stanza.children().find(|child| child.name() == "error");
        let condition = error.and_then(|e| e.children().find(|c| c.name() != "text"));
        handle.metrics.error_sent(
            condition
                .map(Element::name)
                .unwrap_or("undefined-condition"),
        );
    }
}
