//! Why: everything the XMPP server sends after the stream header is cut and read by
//! `xml::stream::StreamReader` and handed to `Inbound::new` / `local::route`; a hostile or
//! broken server must not be able to make that path panic, hang or spin, and the reader must
//! build what rxml and minidom (the reader it replaced) build.
//!
//! The first input byte chooses the size of the pieces the rest arrives in (1 to 256 bytes),
//! as the socket may cut it anywhere. Reading goes on like the session's: a stream error, the
//! footer or a read error end it, every other element goes to `Inbound::new`, then `route`
//! (three `stanzas` settings) and, for the webhook, `WebhookRequest::to_json`.
//!
//! Checked on every input: the events are the same whatever the pieces; no more events than
//! input bytes (no spinning); and each element read, written out (`write_stanza`, what the
//! webhook is sent), is well-formed and read back by rxml into what writes out the same.
//! (The readers are compared on the same input text in `src/stanza/parse_tests.rs`.)
#![no_main]

use component_http::stanza::local::{route, Route};
use component_http::stanza::request::WebhookRequest;
use component_http::xml::stream::{Event, StreamReader};
use component_http::xml::write::write_stanza;
use component_http::stanza::{Inbound, Kind, COMPONENT_NS};
use component_http::xmpp::ServerStreamError;
use libfuzzer_sys::fuzz_target;
use minidom::Element;

const SERVER_HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' from='bot.localhost' id='abc'>";
const FORWARDED: [&[Kind]; 3] = [
    &[],
    &[Kind::Message],
    &[Kind::Message, Kind::Presence, Kind::Iq],
];

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let whole = read(data, usize::MAX);
    let pieces = read(data, usize::from(piece) + 1);
    assert_eq!(whole, pieces, "the events depend on how the input was cut");
    for event in whole.events {
        if let Event::Element(element) = event {
            if ServerStreamError::from_element(&element).is_some() {
                break; // the session ends on a stream error
            }
            handle(element);
        }
    }
});

#[derive(Debug, PartialEq)]
struct Read {
    events: Vec<Event>,
    failed: bool,
}

fn read(data: &[u8], piece: usize) -> Read {
    let mut reader = StreamReader::new(COMPONENT_NS, 1 << 20, component_http::config::DEFAULT_MAX_DEPTH);
    let mut events = Vec::new();
    let input = [SERVER_HEADER, data].concat();
    for chunk in input.chunks(piece) {
        reader.buffer().extend_from_slice(chunk);
        loop {
            match reader.next_event() {
                Ok(Some(event)) => {
                    let end = matches!(event, Event::Footer);
                    events.push(event);
                    assert!(events.len() <= input.len(), "the reader is spinning");
                    if end {
                        return Read {
                            events,
                            failed: false,
                        };
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    return Read {
                        events,
                        failed: true,
                    }
                }
            }
        }
    }
    Read {
        events,
        failed: false,
    }
}

fn handle(element: Element) {
    let written = write_stanza(&element);
    let mut bytes = written.as_bytes();
    match Element::from_reader_with_prefixes(&mut bytes, Some(COMPONENT_NS.to_string())) {
        Ok(theirs) => assert_eq!(written, write_stanza(&theirs), "rxml reads it otherwise"),
        Err(error) => panic!("written out, it is not well-formed: {error}: {written}"),
    }
    let Ok(inbound) = Inbound::new(element) else {
        return;
    };
    // The stream header's domain: senders on it are the loop guard's.
    let guarded = [String::from("bot.localhost")];
    for forwarded in FORWARDED {
        match route(&inbound, forwarded, &guarded) {
            Route::Webhook => {
                let json = WebhookRequest::new(&inbound).to_json();
                assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
            }
            Route::Local(stanzas) => {
                for stanza in &stanzas {
                    assert!(matches!(stanza.name(), "message" | "presence" | "iq"));
                }
            }
            // The loop guard: a sender on our own domain, dropped unanswered.
            Route::OwnDomain => {}
        }
    }
}
