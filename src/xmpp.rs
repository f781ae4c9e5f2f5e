//! The XMPP edge: XEP-0114 connections to the server ([`handshake`]) over a socket read and
//! written by [`socket`], and the life of one connected stream ([`session`]), which writes
//! its stanzas through [`writer`]. Every way this edge fails is one [`XmppError`].

pub mod handshake;
pub mod session;
pub mod socket;
pub mod writer;

use std::io;

use minidom::Element;

use crate::xml::stream::STREAM_NS;
use crate::xml::XmlError;

const STREAM_ERRORS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// Why a connection to the server could not be opened, or why an open one ended (other than
/// by shutdown). The handshake's failures name the domain; a live stream's are logged with it.
#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    #[error("cannot connect to {address}: {source}")]
    Tcp { address: String, source: io::Error },
    #[error("handshake rejected by the server for {domain}: check the secret")]
    HandshakeRejected { domain: String },
    #[error("the server refused {domain}: another connection for it is active (conflict)")]
    Conflict { domain: String },
    #[error("the server sent a stream error for {domain}: {error}")]
    HandshakeStreamError {
        domain: String,
        error: ServerStreamError,
    },
    #[error("the server closed the stream during the handshake for {domain}")]
    HandshakeClosed { domain: String },
    #[error("no answer to the handshake for {domain} within {seconds} s")]
    HandshakeTimedOut { domain: String, seconds: f64 },
    #[error("I/O error during the handshake for {domain}: {source}")]
    HandshakeIo { domain: String, source: io::Error },
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    #[error("the server's stream cannot be read: {0}")]
    Unreadable(#[from] XmlError),
    #[error("connection lost while writing: {0}")]
    WriteFailed(io::Error),
    #[error("the server closed the stream")]
    Closed,
    #[error("the server closed the connection without closing the stream")]
    ClosedAbruptly,
    #[error("stream error from the server: {0}")]
    StreamError(ServerStreamError),
}

impl XmppError {
    /// Errors that retrying cannot fix: the process should stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, XmppError::HandshakeRejected { .. })
    }
}

/// A `<stream:error/>` the server sent: its defined condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStreamError {
    pub condition: String,
    pub text: Option<String>,
}

impl std::fmt::Display for ServerStreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.text {
            Some(text) => write!(f, "{} ({text})", self.condition),
            None => f.write_str(&self.condition),
        }
    }
}

impl ServerStreamError {
    /// Reads a `<stream:error/>` element; `None` for any other element.
    pub fn from_element(element: &Element) -> Option<ServerStreamError> {
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
        Some(ServerStreamError {
            condition: condition.unwrap_or_else(|| "undefined-condition".into()),
            text: text.filter(|t| !t.is_empty()),
        })
    }
}
