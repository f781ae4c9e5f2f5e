//! Opening one XEP-0114 connection: TCP, the `jabber:component:accept` stream header and the
//! handshake, with every way the server can say no told apart.

use std::io;

use minidom::Element;
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;

pub use super::socket::ComponentStream;
use super::socket::{ReadError, Received};
use crate::config::ComponentConfig;
use crate::xml::stream::{Event, STREAM_NS};
use crate::xml::write::XmlSink;
use crate::xml::COMPONENT_NS;

const STREAM_ERRORS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// Why a connection could not be established.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {address}: {source}")]
    Tcp { address: String, source: io::Error },
    #[error("handshake rejected by the server for {domain}: check the secret")]
    HandshakeRejected { domain: String },
    #[error("the server refused {domain}: another connection for it is active (conflict)")]
    Conflict { domain: String },
    #[error("the server sent a stream error for {domain}: {error}")]
    StreamError { domain: String, error: StreamError },
    #[error("the server closed the stream during the handshake for {domain}")]
    Closed { domain: String },
    #[error("no answer to the handshake for {domain} within {seconds} s")]
    TimedOut { domain: String, seconds: f64 },
    #[error("I/O error during the handshake for {domain}: {source}")]
    Io { domain: String, source: io::Error },
}

impl ConnectError {
    /// Errors that retrying cannot fix: the process should stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ConnectError::HandshakeRejected { .. })
    }
}

/// A `<stream:error/>`: its defined condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub condition: String,
    pub text: Option<String>,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.text {
            Some(text) => write!(f, "{} ({text})", self.condition),
            None => f.write_str(&self.condition),
        }
    }
}

impl StreamError {
    /// Reads a `<stream:error/>` element; `None` for any other element.
    pub fn from_element(element: &Element) -> Option<StreamError> {
        if !element.is("error", STREAM_NS) {
            return None;
        }
        let mut condition = None;
        let mut text = None;
        for child in element.children().filter(|c| c.has_ns(STREAM_ERRORS_NS)) {
            match child.name() {
                "text" => text = Some(child.text()),
                name => condition = condition.or(Some(name.to_string())),
            }
        }
        Some(StreamError {
            condition: condition.unwrap_or_else(|| "undefined-condition".into()),
            text: text.filter(|t| !t.is_empty()),
        })
    }
}

/// The handshake value of XEP-0114: hex SHA-1 of the stream id followed by the secret.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let digest = Sha1::new()
        .chain_update(stream_id)
        .chain_update(secret)
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Connects, opens the stream and completes the handshake.
pub async fn connect(config: &ComponentConfig) -> Result<ComponentStream, ConnectError> {
    let domain = config.domain.clone();
    let deadline = config.timeout;
    match tokio::time::timeout(deadline, connect_inner(config)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::TimedOut {
            domain,
            seconds: deadline.as_secs_f64(),
        }),
    }
}

async fn connect_inner(config: &ComponentConfig) -> Result<ComponentStream, ConnectError> {
    let domain = &config.domain;
    let address = format!("{}:{}", config.server_host, config.server_port);
    let io_error = |source| ConnectError::Io {
        domain: domain.clone(),
        source,
    };
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|source| ConnectError::Tcp {
            address: address.clone(),
            source,
        })?;
    tcp.set_nodelay(true).map_err(io_error)?;
    let mut stream = ComponentStream::new(
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
            Ok(Event::Header { id }) => break id,
            Ok(_) | Err(ReadError::Footer | ReadError::Eof) => {
                return Err(ConnectError::Closed {
                    domain: domain.clone(),
                })
            }
            Err(ReadError::Silent) => continue,
            Err(error) => return Err(read_failed(error, domain)),
        }
    };
    let Some(stream_id) = stream_id else {
        // Without an id there is no handshake; the server will say why in a stream error.
        return Err(match stream.next().await {
            Ok(Received::Element(element) | Received::TooDeep(element)) => {
                refusal(&element, domain)
            }
            Err(_) => ConnectError::Closed {
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
            Ok(Received::Element(element)) if element.is("handshake", COMPONENT_NS) => {
                return Ok(stream)
            }
            Ok(Received::Element(element) | Received::TooDeep(element)) => {
                return Err(refusal(&element, domain))
            }
            Err(ReadError::Silent) => continue,
            Err(ReadError::Footer | ReadError::Eof) => {
                return Err(ConnectError::Closed {
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

fn read_failed(error: ReadError, domain: &str) -> ConnectError {
    let source = match error {
        ReadError::Io(source) => source,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    };
    ConnectError::Io {
        domain: domain.to_string(),
        source,
    }
}

/// What an element other than `<handshake/>` in answer to the handshake means.
fn refusal(element: &Element, domain: &str) -> ConnectError {
    let domain = domain.to_string();
    match StreamError::from_element(element) {
        Some(error) if error.condition == "not-authorized" => {
            ConnectError::HandshakeRejected { domain }
        }
        Some(error) if error.condition == "conflict" => ConnectError::Conflict { domain },
        Some(error) => ConnectError::StreamError { domain, error },
        None => ConnectError::StreamError {
            domain,
            error: StreamError {
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
            ConnectError::HandshakeRejected { .. }
        ));
        let conflict = parse(
            "<error xmlns='http://etherx.jabber.org/streams'>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Component already connected</text></error>",
        );
        assert!(matches!(
            refusal(&conflict, "bot.b"),
            ConnectError::Conflict { .. }
        ));
        let other = StreamError::from_element(&parse(
            "<error xmlns='http://etherx.jabber.org/streams'>\
             <host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></error>",
        ));
        assert_eq!(
            other.expect("stream error").to_string(),
            "host-unknown (no such host)"
        );
        assert_eq!(
            StreamError::from_element(&parse("<message xmlns='jabber:component:accept'/>")),
            None
        );
    }
}
