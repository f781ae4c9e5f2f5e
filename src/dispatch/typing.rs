//! Typing notices (XEP-0085): a chat message whose answer takes `typing_after` gets a
//! "composing" notice from the address it was sent to, and the answer ends it with `<active/>`.

use minidom::rxml::xml_ncname;
use minidom::Element;

use crate::stanza::receipt::CHAT_STATES_NS;
use crate::stanza::{Head, Kind, COMPONENT_NS};
use crate::xml::set_attr;

/// Typing notices (XEP-0085) go only to chat messages with a body (`has_body`, as the
/// webhook request already found it: the body is not looked for twice).
pub(super) fn wants_typing_notice(inbound: &Head, has_body: bool) -> bool {
    has_body && inbound.kind() == Kind::Message && inbound.stanza_type() == Some("chat")
}

/// A standalone chat state notice from the bot address to the sender.
pub(super) fn chat_state(inbound: &Head, state: &str) -> Element {
    let mut notice = Element::bare("message", COMPONENT_NS);
    set_attr(&mut notice, xml_ncname!("from"), inbound.to());
    set_attr(&mut notice, xml_ncname!("to"), inbound.from());
    set_attr(&mut notice, xml_ncname!("type"), "chat");
    notice.append_child(Element::bare(state, CHAT_STATES_NS));
    notice
}

/// After a "composing" notice, the answer ends it: a chat reply carries `<active/>`,
/// anything else (an error, or nothing) is followed by a standalone `<active/>`.
pub(super) fn end_typing(inbound: &Head, stanzas: &mut Vec<Element>) {
    let reply = stanzas.iter_mut().find(|s| {
        s.name() == "message"
            && s.attr("type") == Some("chat")
            && s.attr("to") == Some(inbound.from())
    });
    match reply {
        Some(reply) if !reply.children().any(|c| c.has_ns(CHAT_STATES_NS)) => {
            reply.append_child(Element::bare("active", CHAT_STATES_NS));
        }
        Some(_) => {}
        None => stanzas.push(chat_state(inbound, "active")),
    }
}
