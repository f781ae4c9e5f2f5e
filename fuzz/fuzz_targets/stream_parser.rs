//! Why: everything the XMPP server sends after the stream header is read by tokio-xmpp's `XmlStream` and handed to `Inbound::new` / `local::route`; a hostile or broken server must not be able to make that path panic, hang or spin.
//!
//! The harness plays the server on one end of a `tokio::io::duplex`: it writes a valid
//! XEP-0114 stream header (no `version`, as Prosody and ejabberd send it) and then the fuzz
//! bytes, and closes its write side. The other end is opened exactly like
//! `xmpp::connection::connect` does (`initiate_stream` on a `BufStream`, then
//! `skip_features::<Element>()`) and read like `xmpp::session::serve` does: parse errors are
//! skipped, a hard error, the footer or the end of input stop it, a `<stream:error/>` stops
//! it, every other element goes to `Inbound::new`, then `route` (three `stanzas` settings)
//! and, for the webhook, `WebhookRequest::to_json`.
//!
//! "Must not hang" is checked, not just left to libFuzzer's timeout: the runtime's clock is
//! paused, so a reader that waits although all input and EOF are already there gets a soft
//! timeout at once (a failure here), and more items than input bytes means a livelock.
#![no_main]

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::Duration;

use component_http::stanza::local::{route, Route};
use component_http::stanza::request::WebhookRequest;
use component_http::stanza::{Inbound, Kind, COMPONENT_NS};
use component_http::xmpp::connection::StreamError;
use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;
use minidom::Element;
use tokio::io::{AsyncWriteExt, BufStream};
use tokio::runtime::Runtime;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};

const SERVER_HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' from='bot.localhost' id='abc'>";
/// A hard bound on the items read from one input, whatever the input.
const MAX_ITEMS: usize = 10_000;
const FORWARDED: [&[Kind]; 3] = [
    &[],
    &[Kind::Message],
    &[Kind::Message, Kind::Presence, Kind::Iq],
];

thread_local! {
    static RUNTIME: RefCell<Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime"),
    );
}

fuzz_target!(|data: &[u8]| {
    RUNTIME.with(|runtime| runtime.borrow().block_on(read_stream(data)));
});

async fn read_stream(data: &[u8]) {
    // Room for everything in both directions: neither side ever waits for the other to read.
    let (client, mut server) = tokio::io::duplex(SERVER_HEADER.len() + data.len() + 4096);
    server
        .write_all(SERVER_HEADER)
        .await
        .expect("in-memory write");
    server.write_all(data).await.expect("in-memory write");
    // EOF for the reader; `server` itself stays alive so the client's own header can be sent.
    server.shutdown().await.expect("in-memory shutdown");

    let header = StreamHeader {
        from: None,
        to: Some(Cow::Borrowed("bot.localhost")),
        id: None,
    };
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(30),
        response_timeout: Duration::from_secs(10),
    };
    let Ok(mut pending) =
        initiate_stream(BufStream::new(client), COMPONENT_NS, header, timeouts).await
    else {
        // The header is fixed and valid, but the parser may look past it into the fuzz bytes:
        // an error here is a failed connection, which the daemon retries. Not a crash.
        return;
    };
    assert_eq!(pending.take_header().id.as_deref(), Some("abc"));
    let mut stream: XmlStream<_, Element> = pending.skip_features();

    let mut items = 0usize;
    while let Some(item) = stream.next().await {
        items += 1;
        assert!(
            items <= MAX_ITEMS && items <= data.len() + 1,
            "{items} items from {} input bytes: the reader is spinning",
            data.len()
        );
        match item {
            Ok(element) => {
                if StreamError::from_element(&element).is_some() {
                    break; // the session ends on a stream error
                }
                handle(element);
            }
            Err(ReadError::ParseError(_)) => continue, // skipped, as in the session
            Err(ReadError::SoftTimeout) => {
                panic!("soft timeout although the whole input and EOF were available: a hang")
            }
            Err(ReadError::HardError(_) | ReadError::StreamFooterReceived) => break,
        }
    }
    drop(server);
}

fn handle(element: Element) {
    let Ok(inbound) = Inbound::new(element) else {
        return;
    };
    for forwarded in FORWARDED {
        match route(&inbound, forwarded) {
            Route::Webhook => {
                let json = WebhookRequest::new(&inbound).to_json();
                assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
            }
            Route::Local(stanzas) => {
                for stanza in &stanzas {
                    assert!(matches!(stanza.name(), "message" | "presence" | "iq"));
                }
            }
        }
    }
}
