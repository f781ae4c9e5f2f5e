//! Two decisions about the small messages clients send around the real ones: which
//! received messages carry nothing but a notice (a XEP-0085 chat state, a XEP-0184 receipt,
//! a XEP-0333 chat marker), which `forward_chat_states = false` keeps from the webhook; and
//! the XEP-0184 receipt the component sends once the webhook has taken a message (a 2xx,
//! never before, never on a failure, never to a room).

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::reply::{Answer, WebhookOutcome};
use super::{Head, Kind, COMPONENT_NS};
use crate::xml::set_attr;

pub const CHAT_STATES_NS: &str = "http://jabber.org/protocol/chatstates";
pub const RECEIPTS_NS: &str = "urn:xmpp:receipts";
pub const CHAT_MARKERS_NS: &str = "urn:xmpp:chat-markers:0";

/// Children that say nothing by themselves, found beside notices: processing hints
/// (XEP-0334, `<no-store/>`), unique ids (XEP-0359), a delay stamp (XEP-0203).
const BOOKKEEPING_NS: [&str; 3] = ["urn:xmpp:hints", "urn:xmpp:sid:0", "urn:xmpp:delay"];

/// Whether `message` carries nothing but notices: at least one chat state, receipt
/// (`<received/>`) or chat marker (`<displayed/>`, `<received/>`, `<acknowledged/>`), and
/// besides them only bookkeeping (a `<thread>`, hints, ids, a delay). A body, a subject, an
/// attachment, an error or any other element makes it a message worth POSTing; so does an
/// empty message (it is not a notice either).
pub fn is_only_a_notice(message: &Element) -> bool {
    if message.name() != "message" || message.attr("type") == Some("error") {
        return false;
    }
    let mut notices = 0usize;
    for child in message.children() {
        if is_notice(child) {
            notices += 1;
        } else if !is_bookkeeping(child) {
            return false;
        }
    }
    notices > 0
}

fn is_notice(child: &Element) -> bool {
    let name = child.name();
    if child.has_ns(CHAT_STATES_NS) {
        return matches!(
            name,
            "active" | "composing" | "paused" | "inactive" | "gone"
        );
    }
    if child.has_ns(RECEIPTS_NS) {
        return name == "received";
    }
    child.has_ns(CHAT_MARKERS_NS) && matches!(name, "displayed" | "received" | "acknowledged")
}

fn is_bookkeeping(child: &Element) -> bool {
    child.is("thread", COMPONENT_NS) || BOOKKEEPING_NS.iter().any(|ns| child.has_ns(*ns))
}

/// Whether `message` asks for a XEP-0184 receipt that the component may give: it carries
/// `<request xmlns='urn:xmpp:receipts'/>` and an `id`, and it is neither a groupchat
/// message (XEP-0184 §5.3: no receipts in group chats) nor an error.
pub fn asks_for_receipt(message: &Element) -> bool {
    message.name() == "message"
        && message.attr("id").is_some_and(|id| !id.is_empty())
        && !matches!(message.attr("type"), Some("groupchat" | "error"))
        && message.children().any(|c| c.is("request", RECEIPTS_NS))
}

/// The receipt for `inbound`, a message that asked for one ([`asks_for_receipt`]), once
/// the webhook's `outcome` is known: only for a 2xx whose `answer` is no error (a reply the
/// daemon could not use sends an error instead), never for a message from a room nor one
/// whose id was too long to echo, and not when the webhook's answer carries the receipt
/// itself. `<message to=sender from=recipient><received xmlns='urn:xmpp:receipts' id=/>`.
pub fn receipt(inbound: &Head, outcome: &WebhookOutcome, answer: &Answer) -> Option<Element> {
    let taken =
        matches!(outcome, WebhookOutcome::Response { status, .. } if (200..300).contains(status));
    if !taken
        || answer.problem.is_some()
        || inbound.kind() != Kind::Message
        || inbound.is_from_room()
        || matches!(inbound.stanza_type(), Some("groupchat" | "error"))
    {
        return None;
    }
    let id = inbound.id().filter(|id| !id.is_empty())?;
    if answer.stanzas.iter().any(|s| carries_receipt(s, id)) {
        return None;
    }
    let mut message = Element::bare("message", COMPONENT_NS);
    set_attr(&mut message, xml_ncname!("from"), inbound.to());
    set_attr(&mut message, xml_ncname!("to"), inbound.from());
    let mut received = Element::bare("received", RECEIPTS_NS);
    set_attr(&mut received, xml_ncname!("id"), id);
    message.append_child(received);
    Some(message)
}

fn carries_receipt(stanza: &Element, id: &str) -> bool {
    stanza.name() == "message"
        && stanza
            .children()
            .any(|c| c.is("received", RECEIPTS_NS) && c.attr("id") == Some(id))
}

#[cfg(test)]
#[path = "receipt_tests.rs"]
mod tests;
