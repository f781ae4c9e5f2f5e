//! The webhook's answer → the stanzas sent back: reply building from the JSON object, the
//! status table, and the guards (foreign `from`, loops, exactly one answer to an iq).

use minidom::rxml::xml_ncname;
use minidom::Element;
use serde_json::Value;

use super::attachment::{split_file, PendingFile};
use super::error::StanzaError;
use super::fields::{stanza_from_fields, Defaults, ReplyError, SendPolicy};
use super::request::Quoted;
use super::{normalised, Head, Kind, COMPONENT_NS};
use crate::xml::outgoing::{error_condition, OutgoingStanza};
use crate::xml::{set_attr, XmlError};

/// What came of one webhook call, stripped of everything HTTP-specific.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Response {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// No connection could be made, or it broke before a response.
    ConnectionFailed,
    /// No full response within the configured timeout.
    TimedOut,
    /// The response body was larger than the configured limit.
    ResponseTooLarge,
}

/// The stanzas to send for one webhook outcome, and why a fallback error was chosen.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub stanzas: Vec<Element>,
    /// Set when the webhook misbehaved: the daemon logs it as a warning.
    pub problem: Option<ReplyError>,
    /// A `file` to upload, then to send in its message after `stanzas` (the dispatch
    /// worker does the upload: it is I/O).
    pub file: Option<PendingFile>,
}

impl Answer {
    fn error(inbound: &Head, error: StanzaError) -> Answer {
        Answer {
            stanzas: error.reply_to(inbound).into_iter().collect(),
            ..Answer::default()
        }
    }
}

/// Builds the answer to `inbound` from the webhook's outcome, for the component whose
/// `policy` it is.
pub fn answer(inbound: &Head, outcome: &WebhookOutcome, policy: &SendPolicy<'_>) -> Answer {
    answer_quoting(inbound, Quoted::Nothing, outcome, policy)
}

/// [`answer`], where a reply with `fallback: true` quotes `quoted` (the received message's
/// body) unless its `reply` has a `quote` of its own.
pub fn answer_quoting(
    inbound: &Head,
    quoted: Quoted<'_>,
    outcome: &WebhookOutcome,
    policy: &SendPolicy<'_>,
) -> Answer {
    if !inbound.may_be_answered() {
        return Answer::default();
    }
    let mut answer = match outcome {
        WebhookOutcome::Response {
            status: 200,
            content_type,
            body,
        } if is_json_media_type(content_type.as_deref()) => {
            match reply_with_file(inbound, quoted, body, policy) {
                Ok((stanzas, file)) => Answer {
                    stanzas,
                    problem: None,
                    file,
                },
                Err(
                    problem @ (ReplyError::ForeignFrom { .. } | ReplyError::NotTheOccupant { .. }),
                ) => Answer {
                    problem: Some(problem),
                    ..Answer::error(inbound, StanzaError::NOT_ALLOWED)
                },
                Err(problem) => Answer {
                    problem: Some(problem),
                    ..Answer::error(inbound, StanzaError::INTERNAL_SERVER_ERROR)
                },
            }
        }
        WebhookOutcome::Response { status, .. } if (200..300).contains(status) => Answer::default(),
        WebhookOutcome::Response { status, .. } => {
            Answer::error(inbound, StanzaError::for_status(*status))
        }
        WebhookOutcome::ConnectionFailed => Answer::error(inbound, StanzaError::CONNECTION_FAILURE),
        WebhookOutcome::TimedOut => Answer::error(inbound, StanzaError::GATEWAY_TIMEOUT),
        WebhookOutcome::ResponseTooLarge => Answer {
            problem: Some(ReplyError::TooLarge),
            ..Answer::error(inbound, StanzaError::INTERNAL_SERVER_ERROR)
        },
    };
    if inbound.is_iq_request() && !answer.stanzas.iter().any(|s| answers_iq(s, inbound)) {
        answer.stanzas.push(empty_iq_result(inbound));
    }
    answer
}

/// `application/json`, with any parameters (`; charset=utf-8`) and in any case; also the
/// structured suffix `application/…+json`.
pub fn is_json_media_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// An empty `result` to an iq get/set.
pub fn empty_iq_result(inbound: &Head) -> Element {
    let mut iq = Element::bare("iq", COMPONENT_NS);
    set_attr(&mut iq, xml_ncname!("type"), "result");
    set_attr(&mut iq, xml_ncname!("from"), inbound.to());
    set_attr(&mut iq, xml_ncname!("to"), inbound.from());
    if let Some(id) = inbound.id() {
        set_attr(&mut iq, xml_ncname!("id"), id);
    }
    iq
}

/// Whether `stanza` is the answer to the iq `inbound`: a result or error with its id, to its
/// sender (RFC 6120 §8.2.3); one to anybody else answers nothing.
pub(crate) fn answers_iq(stanza: &Element, inbound: &Head) -> bool {
    stanza.name() == "iq"
        && matches!(stanza.attr("type"), Some("result" | "error"))
        && stanza.attr("id") == inbound.id()
        && stanza
            .attr("to")
            .is_some_and(|to| to == inbound.from() || normalised(to) == normalised(inbound.from()))
}

/// Builds the reply stanza from a 200 JSON body (docs/contract.md, "Response: webhook → reply");
/// `quoted` as in [`answer_quoting`].
pub fn reply_from_json(
    inbound: &Head,
    quoted: Quoted<'_>,
    body: &[u8],
    policy: &SendPolicy<'_>,
) -> Result<Element, ReplyError> {
    let fields = reply_fields(body)?;
    stanza_from_fields(&fields, &reply_defaults(inbound, quoted), policy)
}

/// The reply as [`reply_from_json`] builds it, split from its `file` when it has one
/// (stanza/attachment.rs): the stanzas to send at once, and the file to upload.
fn reply_with_file(
    inbound: &Head,
    quoted: Quoted<'_>,
    body: &[u8],
    policy: &SendPolicy<'_>,
) -> Result<(Vec<Element>, Option<PendingFile>), ReplyError> {
    let fields = reply_fields(body)?;
    let defaults = reply_defaults(inbound, quoted);
    let stanza = stanza_from_fields(&fields, &defaults, policy)?;
    split_file(&fields, stanza, &defaults, policy)
}

fn reply_fields(body: &[u8]) -> Result<serde_json::Map<String, Value>, ReplyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ReplyError::InvalidJson(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(ReplyError::NotAnObject);
    };
    Ok(fields)
}

fn reply_defaults<'a>(inbound: &'a Head, quoted: Quoted<'a>) -> Defaults<'a> {
    Defaults {
        kind: if inbound.kind() == Kind::Iq {
            Kind::Iq
        } else {
            Kind::Message
        },
        // A groupchat message is answered in its room.
        to: Some(if inbound.is_room_groupchat() {
            super::bare(inbound.from())
        } else {
            inbound.from()
        }),
        from: inbound.to(),
        iq_type: "result",
        iq_id: inbound.id(),
        quoted,
    }
}

/// RFC 6120 §8.3.3: a webhook's own error stanza may name anything, and the name becomes a
/// metric label, so anything else counts as `undefined-condition`.
const DEFINED_CONDITIONS: [&str; 22] = [
    "bad-request",
    "conflict",
    "feature-not-implemented",
    "forbidden",
    "gone",
    "internal-server-error",
    "item-not-found",
    "jid-malformed",
    "not-acceptable",
    "not-allowed",
    "not-authorized",
    "policy-violation",
    "recipient-unavailable",
    "redirect",
    "registration-required",
    "remote-server-not-found",
    "remote-server-timeout",
    "resource-constraint",
    "service-unavailable",
    "subscription-required",
    "undefined-condition",
    "unexpected-request",
];

/// Takes out of `stanzas` the errors to a stanza from one of the bot's rooms: a room
/// expels an occupant that sends it errors. Returns the conditions taken out.
pub fn keep_errors_from_rooms(stanzas: &mut Vec<Element>, inbound: &Head) -> Vec<String> {
    if !inbound.is_from_room() {
        return Vec::new();
    }
    let mut suppressed = Vec::new();
    stanzas.retain(|stanza| {
        let Some(condition) = error_condition(stanza) else {
            return true;
        };
        let condition = Some(condition)
            .filter(|name| DEFINED_CONDITIONS.contains(name))
            .unwrap_or("undefined-condition");
        suppressed.push(condition.to_string());
        false
    });
    suppressed
}

/// The answers to `inbound`, written, and why any of them could not be.
#[derive(Debug, Default)]
pub struct WrittenAnswers {
    pub stanzas: Vec<OutgoingStanza>,
    /// One per stanza that could not be written (each is dropped, or stood in for).
    pub problems: Vec<XmlError>,
}

/// Writes the answers to `inbound`, each within `max_size`. The first that cannot be written
/// is replaced by an `internal-server-error` to the sender, which fits (its `id` is bounded:
/// [`super::MAX_ECHOED_ID`]), so that the sender is never left without an answer; for an iq
/// get/set, only the answer to the iq is replaced, so it keeps exactly one.
pub fn write_answers(stanzas: Vec<Element>, inbound: &Head, max_size: usize) -> WrittenAnswers {
    let mut written = WrittenAnswers {
        stanzas: Vec::with_capacity(stanzas.len()),
        problems: Vec::new(),
    };
    let mut replaced = false;
    for stanza in stanzas {
        match OutgoingStanza::write(&stanza, max_size) {
            Ok(text) => written.stanzas.push(text),
            Err(error) => {
                written.problems.push(error);
                if replaced || (inbound.is_iq_request() && !answers_iq(&stanza, inbound)) {
                    continue;
                }
                let stand_in = StanzaError::UNWRITABLE_REPLY.reply_to(inbound);
                if let Some(Ok(text)) = stand_in.map(|e| OutgoingStanza::write(&e, max_size)) {
                    written.stanzas.push(text);
                    replaced = true;
                }
            }
        }
    }
    written
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "room_reply_tests.rs"]
mod room_tests;
