//! Raw client-to-server probes that tell the harness a server is ready for the test client:
//! a new stream is offered SASL mechanisms, and a registered user can really log in (after
//! a kill -9, ejabberd can come back without its last registrations; slixmpp then gives up
//! with "No appropriate login method").

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use base64::Engine;

/// Whether the c2s listener on `port` offers a new stream for `host` a SASL mechanism the
/// test client uses (PLAIN or SCRAM-SHA-1).
pub fn offers_sasl(port: u16, host: &str) -> bool {
    let Some((mut stream, features)) = open(port, host) else {
        return false;
    };
    let _ = stream.write_all(b"</stream:stream>");
    ["PLAIN", "SCRAM-SHA-1"]
        .iter()
        .any(|name| features.contains(&format!("<mechanism>{name}</mechanism>")))
}

/// Whether `user@host` logs in with `password` (SASL PLAIN) on the c2s listener on `port`:
/// `None` when the server gave no answer either way.
pub fn logs_in(port: u16, host: &str, user: &str, password: &str) -> Option<bool> {
    let (mut stream, _features) = open(port, host)?;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    let auth = format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{credentials}</auth>"
    );
    stream.write_all(auth.as_bytes()).ok()?;
    let answer = read_until(&mut stream, &["<success", "<failure"]);
    let _ = stream.write_all(b"</stream:stream>");
    answer.map(|text| text.contains("<success"))
}

/// Connects and opens a stream; the stream and its features.
fn open(port: u16, host: &str) -> Option<(TcpStream, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{host}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    );
    stream.write_all(header.as_bytes()).ok()?;
    let features = read_until(&mut stream, &["</stream:features>"])?;
    Some((stream, features))
}

/// Reads until the text holds one of `ends` (within 64 KiB and the read timeout).
fn read_until(stream: &mut TcpStream, ends: &[&str]) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&seen);
        if ends.iter().any(|end| text.contains(end)) {
            return Some(text.into_owned());
        }
    }
    None
}
