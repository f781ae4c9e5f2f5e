//! Opening one XEP-0114 connection: TCP, the `jabber:component:accept` stream header and the
//! handshake, with every way the server can say no told apart.

use std::io;

use minidom::Element;
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;

use super::socket::{ComponentSocket, Received};
use super::{ServerStreamError, XmppError};
use crate::config::ComponentConfig;
use crate::xml::stream::{Event, STREAM_NS};
use crate::xml::write::XmlSink;
use crate::xml::COMPONENT_NS;

/// The handshake value of XEP-0114: hex SHA-1 of the stream id followed by the secret.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let digest = Sha1::new()
        .chain_update(stream_id)
        .chain_update(secret)
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Connects, opens the stream and completes the handshake.
pub async fn connect(config: &ComponentConfig) -> Result<ComponentSocket, XmppError> {
    let domain = config.domain.clone();
    let deadline = config.timeout;
    match tokio::time::timeout(deadline, connect_inner(config)).await {
        Ok(result) => result,
        Err(_) => Err(XmppError::HandshakeTimedOut {
            domain,
            seconds: deadline.as_secs_f64(),
        }),
    }
}

async fn connect_inner(config: &ComponentConfig) -> Result<ComponentSocket, XmppError> {
    let domain = &config.domain;
    let address = format!("{}:{}", config.server_host, config.server_port);
    let io_error = |source| XmppError::HandshakeIo {
        domain: domain.clone(),
        source,
    };
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|source| XmppError::Tcp {
            address: address.clone(),
            source,
        })?;
    tcp.set_nodelay(true).map_err(io_error)?;
    let mut stream = ComponentSocket::new(
        tcp,
        config.max_read_size,
        config.max_depth,
        config.keepalive,
        config.timeout,
    );
    stream
        .write(stream_header(domain).as_bytes())
        .await
        .map_err(io_error)?;
    let stream_id = loop {
        match stream.event().await {
            Ok(Some(Event::Header { id })) => break id,
            Ok(None) => continue,
            Ok(Some(_)) | Err(XmppError::Closed | XmppError::ClosedAbruptly) => {
                return Err(XmppError::HandshakeClosed {
                    domain: domain.clone(),
                })
            }
            Err(error) => return Err(read_failed(error, domain)),
        }
    };
    let Some(stream_id) = stream_id else {
        // Without an id there is no handshake; the server will say why in a stream error.
        return Err(match stream.next().await {
            Ok(Some(Received::Element(element) | Received::TooDeep(element))) => {
                refusal(&element, domain)
            }
            Ok(None) | Err(_) => XmppError::HandshakeClosed {
                domain: domain.clone(),
            },
        });
    };
    let digest = handshake_digest(&stream_id, config.secret.expose());
    stream
        .write(format!("<handshake>{digest}</handshake>").as_bytes())
        .await
        .map_err(io_error)?;
    loop {
        match stream.next().await {
            Ok(Some(Received::Element(element))) if element.is("handshake", COMPONENT_NS) => {
                return Ok(stream)
            }
            Ok(Some(Received::Element(element) | Received::TooDeep(element))) => {
                return Err(refusal(&element, domain))
            }
            Ok(None) => continue,
            Err(XmppError::Closed | XmppError::ClosedAbruptly) => {
                return Err(XmppError::HandshakeClosed {
                    domain: domain.clone(),
                })
            }
            Err(error) => return Err(read_failed(error, domain)),
        }
    }
}

/// Our stream header: the component namespace, to our domain, as XEP-0114 shows it.
fn stream_header(domain: &str) -> String {
    let mut header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{COMPONENT_NS}' xmlns:stream='{STREAM_NS}' to='"
    );
    header.attribute_value(domain);
    header.push_str("'>");
    header
}

/// A read that failed during the handshake, as a handshake error naming the domain.
fn read_failed(error: XmppError, domain: &str) -> XmppError {
    let source = match error {
        XmppError::Io(source) => source,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    };
    XmppError::HandshakeIo {
        domain: domain.to_string(),
        source,
    }
}

/// What an element other than `<handshake/>` in answer to the handshake means.
fn refusal(element: &Element, domain: &str) -> XmppError {
    let domain = domain.to_string();
    match ServerStreamError::from_element(element) {
        Some(error) if error.condition == "not-authorized" => {
            XmppError::HandshakeRejected { domain }
        }
        Some(error) if error.condition == "conflict" => XmppError::Conflict { domain },
        Some(error) => XmppError::HandshakeStreamError { domain, error },
        None => XmppError::HandshakeStreamError {
            domain,
            error: ServerStreamError {
                condition: "unexpected-element".into(),
                text: Some(format!("<{}/> instead of <handshake/>", element.name())),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_is_hex_sha1_of_id_and_secret() {
        // XEP-0114 example 3: stream id 3BF96D32, secret "sesame" (prepended form).
        assert_eq!(
            handshake_digest("3BF96D32", "sesame"),
            sha1_hex("3BF96D32sesame")
        );
        assert_eq!(
            handshake_digest("", "abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    fn sha1_hex(text: &str) -> String {
        Sha1::digest(text)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn stream_errors_are_classified() {
        let parse = |xml: &str| -> Element { xml.parse().expect("xml") };
        let not_authorized = parse(
            "<error xmlns='http://etherx.jabber.org/streams'>\
             <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>",
        );
        assert!(matches!(
            refusal(&not_authorized, "bot.b"),
            XmppError::HandshakeRejected { .. }
        ));
        let conflict = parse(
            "<error xmlns='http://etherx.jabber.org/streams'>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Component already connected</text></error>",
        );
        assert!(matches!(
            refusal(&conflict, "bot.b"),
            XmppError::Conflict { .. }
        ));
        let other = ServerStreamError::from_element(&parse(
            "<error xmlns='http://etherx.jabber.org/streams'>\
             <host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></error>",
        ));
        assert_eq!(
            other.expect("stream error").to_string(),
            "host-unknown (no such host)"
        );
        assert_eq!(
            ServerStreamError::from_element(&parse("<message xmlns='jabber:component:accept'/>")),
            None
        );
    }
}
