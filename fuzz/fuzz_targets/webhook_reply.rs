//! Why: the webhook's reply is untrusted input that becomes stanzas on the server connection, so `reply::answer` must hold the contract's guards for any body, status and media type.
//!
//! Input layout (kept byte-oriented so seeds stay readable text):
//! - byte 0: the outcome: `< 0x80` → HTTP 200, else a status from `STATUSES`, and the last
//!   three values → connection failure, timeout, response too large;
//! - byte 1: the Content-Type, one of `CONTENT_TYPES`;
//! - the rest: `stanza text` NUL `JSON bytes`. Without a NUL it is all JSON and the
//!   received stanza is the fixed `DEFAULT_STANZA`; a stanza text that is not an inbound
//!   stanza also falls back to it.
//!
//! The server only routes to a component stanzas addressed to its domain, so a fuzzed
//! stanza whose `to` is not on `DOMAIN` gets `to='echo@bot.example.com'` (a precondition,
//! not a property under test).
//!
//! Invariants checked on the answer:
//! 1. nothing is sent in answer to a stanza with `type='error'` (nor to an iq result/error);
//! 2. every stanza sent has a `from` on the component's domain;
//! 3. an iq get/set gets exactly one iq `result`/`error` carrying its id and addressed to its
//!    sender (docs/contract.md: one to anybody else answers nothing, so the daemon still adds
//!    the sender's own answer);
//! 4. every stanza sent can be written by the stream's writer (`xml::append_stanza`, which
//!    drops a stanza holding a character XML forbids) and that XML reads back through rxml
//!    as the same element.
#![no_main]

use component_http::stanza::reply::{answer, WebhookOutcome};
use component_http::xml::document::parse_stanza;
use component_http::xml::set_attr;
use component_http::xml::write::append_stanza;
use component_http::stanza::{is_on_domain, normalised, Inbound, COMPONENT_NS};
use libfuzzer_sys::fuzz_target;
use minidom::rxml::xml_ncname;
use minidom::Element;

const DOMAIN: &str = "bot.example.com";
const DEFAULT_STANZA: &str = "<message from='alice@example.com/phone' \
    to='echo@bot.example.com' type='chat' id='m1'><body>hi</body></message>";

/// The component sits in one room, so that replies to it (and fuzzed `to`s naming it) take
/// the group-chat rules: a `from` filled in or refused, an origin-id added.
#[derive(Debug)]
struct OneRoom;

impl component_http::stanza::fields::JoinedRooms for OneRoom {
    fn occupant_address(&self, room: &str) -> Option<String> {
        room.eq_ignore_ascii_case("room@conference.example.com")
            .then(|| "bot.example.com/Bot".to_string())
    }

    fn new_origin_id(&self) -> String {
        "chttp-0-1".to_string()
    }
}

const STATUSES: &[u16] = &[
    200, 201, 202, 204, 206, 299, 0, 100, 199, 300, 301, 302, 304, 400, 401, 402, 403, 404, 405,
    410, 418, 429, 500, 501, 502, 503, 504, 599, 600, 65535,
];
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("Application/JSON ; charset=UTF-8"),
    Some("application/activity+json"),
    Some("application/jsonx"),
    Some("text/json"),
    Some("text/plain"),
    Some(""),
    None,
];

fuzz_target!(|data: &[u8]| {
    let [outcome_byte, content_type_byte, rest @ ..] = data else {
        return;
    };
    let (stanza_text, json) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (&b""[..], rest),
    };
    let inbound = inbound_from(stanza_text);
    let content_type = CONTENT_TYPES[usize::from(*content_type_byte) % CONTENT_TYPES.len()];
    let outcome = match *outcome_byte {
        0xFD => WebhookOutcome::ConnectionFailed,
        0xFE => WebhookOutcome::TimedOut,
        0xFF => WebhookOutcome::ResponseTooLarge,
        byte => WebhookOutcome::Response {
            status: if byte < 0x80 {
                200
            } else {
                STATUSES[usize::from(byte - 0x80) % STATUSES.len()]
            },
            content_type: content_type.map(str::to_string),
            body: json.to_vec(),
        },
    };

    let policy = component_http::stanza::fields::SendPolicy {
        domain: DOMAIN,
        max_depth: component_http::config::DEFAULT_MAX_DEPTH,
        rooms: &OneRoom,
    };
    let answer = answer(&inbound, &outcome, &policy);

    // 1. Loop guard.
    if inbound.stanza_type() == Some("error") || !inbound.may_be_answered() {
        assert!(
            answer.stanzas.is_empty(),
            "answered a stanza that may not be answered: {:?}",
            answer.stanzas
        );
    }
    for stanza in &answer.stanzas {
        // 2. Never a foreign `from`.
        let from = stanza.attr("from").unwrap_or_default();
        assert!(
            is_on_domain(from, DOMAIN),
            "reply from {from:?}, not on {DOMAIN}: {stanza:?}"
        );
        // 4. The stream can write it, and what it writes reads back the same.
        check_stream_encoding(stanza);
    }
    // 3. Exactly one answer to an iq get/set, counted where the sender sees it.
    if inbound.is_iq_request() {
        let answers = answer
            .stanzas
            .iter()
            .filter(|s| {
                s.name() == "iq"
                    && s.has_ns(COMPONENT_NS)
                    && matches!(s.attr("type"), Some("result" | "error"))
                    && s.attr("id") == inbound.id()
                    && s
                        .attr("to")
                        .is_some_and(|to| normalised(to) == normalised(inbound.from()))
            })
            .count();
        assert_eq!(
            answers, 1,
            "iq get/set answered {answers} times: {:?}",
            answer.stanzas
        );
    }
});

/// The fuzzed stanza when it is an inbound stanza (moved onto our domain), else the default.
fn inbound_from(text: &[u8]) -> Inbound {
    let fuzzed = std::str::from_utf8(text)
        .ok()
        .and_then(|text| parse_stanza(text, component_http::config::DEFAULT_MAX_DEPTH).ok())
        .map(|mut element| {
            if !is_on_domain(element.attr("to").unwrap_or_default(), DOMAIN) {
                set_attr(&mut element, xml_ncname!("to"), "echo@bot.example.com");
            }
            element
        })
        .and_then(|element| Inbound::new(element).ok());
    fuzzed.unwrap_or_else(|| {
        Inbound::new(parse_stanza(DEFAULT_STANZA, component_http::config::DEFAULT_MAX_DEPTH).expect("valid default")).expect("a stanza")
    })
}

/// Writes `stanza` the way the session does on the component stream (`append_stanza`), then
/// reads the text back with rxml.
fn check_stream_encoding(stanza: &Element) {
    let mut out = String::new();
    if let Err(e) = append_stanza(stanza, &mut out) {
        panic!("the stream writer refuses this reply ({e}), so it is dropped: {stanza:?}");
    }
    let reread = Element::from_reader_with_prefixes(out.as_bytes(), Some(COMPONENT_NS.to_string()))
        .unwrap_or_else(|e| panic!("written reply does not parse ({e}): {out:?}"));
    assert!(
        reread == *stanza,
        "written reply reads back differently: {stanza:?}\n wrote: {out:?}"
    );
}
