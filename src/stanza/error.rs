//! Stanza errors (RFC 6120 §8.3): the HTTP status table of the contract and the error stanza
//! sent back to a sender.

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::{Head, COMPONENT_NS};
use crate::xml::set_attr;

const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// One stanza error: its type, defined condition and optional human text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StanzaError {
    pub error_type: &'static str,
    pub condition: &'static str,
    pub text: Option<&'static str>,
}

impl StanzaError {
    const fn new(error_type: &'static str, condition: &'static str) -> StanzaError {
        StanzaError {
            error_type,
            condition,
            text: None,
        }
    }

    const fn with_text(self, text: &'static str) -> StanzaError {
        StanzaError {
            text: Some(text),
            ..self
        }
    }

    pub const CONNECTION_FAILURE: StanzaError =
        StanzaError::new("cancel", "remote-server-timeout").with_text("Connection failure");
    pub const GATEWAY_TIMEOUT: StanzaError =
        StanzaError::new("wait", "remote-server-timeout").with_text("Gateway timeout");
    pub const INTERNAL_SERVER_ERROR: StanzaError =
        StanzaError::new("cancel", "internal-server-error");
    pub const NOT_ALLOWED: StanzaError = StanzaError::new("cancel", "not-allowed");
    pub const SERVICE_UNAVAILABLE: StanzaError = StanzaError::new("cancel", "service-unavailable");
    pub const RATE_LIMITED: StanzaError = StanzaError::new("wait", "resource-constraint");
    /// `max_in_flight_per_sender` reached.
    pub const SENDER_BUSY: StanzaError = StanzaError::new("wait", "resource-constraint")
        .with_text("Too many stanzas in flight from this sender");
    /// `max_queued_per_conversation` reached.
    pub const CONVERSATION_FULL: StanzaError = StanzaError::new("wait", "resource-constraint")
        .with_text("Too many stanzas waiting in this conversation");
    pub const TOO_LARGE: StanzaError =
        StanzaError::new("modify", "policy-violation").with_text("Stanza too large");
    pub const TOO_DEEP: StanzaError =
        StanzaError::new("modify", "policy-violation").with_text("Stanza nested too deeply");
    /// Stands in for an answer that cannot be written (larger than `max_outgoing_size`).
    pub const UNWRITABLE_REPLY: StanzaError = StanzaError::new("cancel", "internal-server-error")
        .with_text("The reply could not be sent");
    pub const SHUTTING_DOWN: StanzaError =
        StanzaError::new("wait", "remote-server-timeout").with_text("Component shutting down");

    /// The contract's HTTP status → stanza error table (for statuses that are not a reply).
    pub fn for_status(status: u16) -> StanzaError {
        match status {
            400 => StanzaError::new("modify", "bad-request"),
            401 => StanzaError::new("auth", "not-authorized"),
            402 => StanzaError::new("auth", "forbidden").with_text("Payment required"),
            403 => StanzaError::new("auth", "forbidden"),
            404 => StanzaError::new("cancel", "item-not-found"),
            410 => StanzaError::new("cancel", "gone"),
            500 => StanzaError::INTERNAL_SERVER_ERROR,
            501 => StanzaError::new("cancel", "feature-not-implemented"),
            502 => StanzaError::new("cancel", "remote-server-timeout").with_text("Bad gateway"),
            503 => StanzaError::new("wait", "remote-server-timeout")
                .with_text("Service temporarily unavailable"),
            504 => StanzaError::GATEWAY_TIMEOUT,
            _ => StanzaError::SERVICE_UNAVAILABLE,
        }
    }

    /// The `<error/>` element itself.
    pub fn element(&self) -> Element {
        let mut error = Element::bare("error", COMPONENT_NS);
        set_attr(&mut error, xml_ncname!("type"), self.error_type);
        error.append_child(Element::bare(self.condition, STANZAS_NS));
        if let Some(text) = self.text {
            error.append_child(Element::builder("text", STANZAS_NS).append(text).build());
        }
        error
    }

    /// The error stanza answering `inbound`: same kind and `id`, `to` and `from` swapped,
    /// `type='error'`, only the `<error/>` child. `None` when the stanza may not be
    /// answered (it is itself an error, or an iq result).
    pub fn reply_to(&self, inbound: &Head) -> Option<Element> {
        if !inbound.may_be_answered() {
            return None;
        }
        let mut stanza = Element::bare(inbound.kind().as_str(), COMPONENT_NS);
        set_attr(&mut stanza, xml_ncname!("from"), inbound.to());
        set_attr(&mut stanza, xml_ncname!("to"), inbound.from());
        set_attr(&mut stanza, xml_ncname!("type"), "error");
        if let Some(id) = inbound.id() {
            set_attr(&mut stanza, xml_ncname!("id"), id);
        }
        stanza.append_child(self.element());
        Some(stanza)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::Inbound;
    use crate::xml::write::write_stanza;

    fn inbound(text: &str) -> Inbound {
        Inbound::from_test_xml(text)
    }

    #[test]
    fn status_table_matches_the_contract() {
        let table: &[(u16, &str, &str, Option<&str>)] = &[
            (400, "modify", "bad-request", None),
            (401, "auth", "not-authorized", None),
            (402, "auth", "forbidden", Some("Payment required")),
            (403, "auth", "forbidden", None),
            (404, "cancel", "item-not-found", None),
            (410, "cancel", "gone", None),
            (500, "cancel", "internal-server-error", None),
            (501, "cancel", "feature-not-implemented", None),
            (502, "cancel", "remote-server-timeout", Some("Bad gateway")),
            (
                503,
                "wait",
                "remote-server-timeout",
                Some("Service temporarily unavailable"),
            ),
            (
                504,
                "wait",
                "remote-server-timeout",
                Some("Gateway timeout"),
            ),
            (418, "cancel", "service-unavailable", None),
            (302, "cancel", "service-unavailable", None),
        ];
        for &(status, error_type, condition, text) in table {
            assert_eq!(
                StanzaError::for_status(status),
                StanzaError {
                    error_type,
                    condition,
                    text
                },
                "status {status}"
            );
        }
    }

    #[test]
    fn error_reply_swaps_addresses_and_keeps_kind_and_id() {
        let original = inbound(
            "<message from='alice@example.com/phone' to='echo@bot.example.com' id='m1' \
             type='chat' xml:lang='en'><body>hi</body></message>",
        );
        let reply = StanzaError::for_status(503)
            .reply_to(&original)
            .expect("answerable");
        assert_eq!(
            write_stanza(&reply),
            "<message from='echo@bot.example.com' id='m1' to='alice@example.com/phone' \
             type='error'><error type='wait'><remote-server-timeout \
             xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text \
             xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Service temporarily unavailable</text>\
             </error></message>"
        );
    }

    #[test]
    fn iq_error_keeps_the_iq_kind() {
        let original =
            inbound("<iq from='a@b/c' to='bot.b' id='q1' type='get'><x xmlns='u'/></iq>");
        let reply = StanzaError::SERVICE_UNAVAILABLE
            .reply_to(&original)
            .expect("answerable");
        assert_eq!(
            write_stanza(&reply),
            "<iq from='bot.b' id='q1' to='a@b/c' type='error'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        );
    }

    #[test]
    fn errors_are_never_answered_with_errors() {
        let original = inbound("<message from='a@b/c' to='bot.b' type='error'/>");
        assert_eq!(StanzaError::CONNECTION_FAILURE.reply_to(&original), None);
    }
}
