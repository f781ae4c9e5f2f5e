//! Why: every stanza goes through parse → `Inbound` → JSON body, and the body carries the stanza "as received" — so none of it may panic, the body must be JSON, and `write_stanza` must invert `parse_stanza`.
//!
//! Input: arbitrary bytes; non-UTF-8 is skipped (the stream reader only yields text). For a
//! stanza that parses: `write_stanza` output re-parses to an equal `Element`; for one that is
//! also an `Inbound`, `WebhookRequest::to_json` parses back with serde_json and its fields
//! agree with the stanza, and `request_body` (the one-pass writer the daemon POSTs) is the
//! same JSON byte for byte.
#![no_main]

use component_http::stanza::request::{request_body, WebhookRequest};
use component_http::xml::document::parse_stanza;
use component_http::xml::write::write_stanza;
use component_http::stanza::Inbound;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(element) = parse_stanza(text, component_http::config::DEFAULT_MAX_DEPTH) else {
        return;
    };

    // Written back as received: the text re-parses to the very same element.
    let written = write_stanza(&element);
    match parse_stanza(&written, component_http::config::DEFAULT_MAX_DEPTH) {
        Ok(reparsed) => assert!(
            reparsed == element,
            "write_stanza changed the stanza\n input: {text:?}\n wrote: {written:?}\n reparsed: {:?}",
            write_stanza(&reparsed)
        ),
        Err(error) => panic!(
            "write_stanza output does not parse ({error})\n input: {text:?}\n wrote: {written:?}"
        ),
    }

    let Ok(inbound) = Inbound::new(element) else {
        return;
    };
    let request = WebhookRequest::new(&inbound);
    let json = request.to_json();
    let one_pass = request_body(&inbound, None);
    assert!(
        one_pass.json == json,
        "request_body differs from serde's JSON\n input: {text:?}\n one pass: {:?}\n serde: {:?}",
        String::from_utf8_lossy(&one_pass.json),
        String::from_utf8_lossy(&json)
    );
    assert_eq!(one_pass.stanza_len, written.len());
    assert_eq!(one_pass.has_body, request.body.is_some());
    let value: Value = match serde_json::from_slice(&json) {
        Ok(value) => value,
        Err(error) => panic!("request body is not JSON ({error}): {json:?}"),
    };
    // The body says what the stanza says.
    assert_eq!(value["stanza"].as_str(), Some(written.as_str()));
    assert_eq!(value["from"].as_str(), Some(inbound.from()));
    assert_eq!(value["to"].as_str(), Some(inbound.to()));
    assert_eq!(value["kind"].as_str(), Some(inbound.kind().as_str()));
    assert_eq!(value.get("id").and_then(Value::as_str), inbound.id());
    assert_eq!(
        value.get("type").and_then(Value::as_str),
        inbound.stanza_type()
    );
    assert_eq!(
        value.get("body").and_then(Value::as_str),
        inbound.body().as_deref()
    );
});
