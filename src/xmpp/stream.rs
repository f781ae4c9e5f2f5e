//! The socket of one component connection, with the stream reader over it: what the server
//! sends is read into [`StreamReader`]'s buffer and comes out as events; what we send is
//! written straight to the socket. Silence is watched here, as the session's keepalive needs.

use std::io;
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::stanza::stream::{Event, StreamReadError, StreamReader};
use crate::stanza::COMPONENT_NS;

/// Room made in the read buffer before each read.
const READ_SIZE: usize = 64 * 1024;

/// Why nothing was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The server was silent for the keepalive time: time to ping it.
    #[error("no data from the server for a while")]
    Silent,
    #[error("the server closed the stream")]
    Footer,
    #[error("the server closed the connection without closing the stream")]
    Eof,
    #[error("the server's stream cannot be read: {0}")]
    Unreadable(#[from] StreamReadError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// An open component connection.
pub struct ComponentStream {
    socket: TcpStream,
    reader: StreamReader,
    last_read: Instant,
    /// Silence that asks for a ping (`keepalive`), and then, unanswered, ends the connection
    /// (`timeout`).
    idle: Duration,
    response: Duration,
    pinged: bool,
    /// Times each read: one timer moved forward, not a new one per read.
    silence: Deadline,
}

impl ComponentStream {
    pub fn new(
        socket: TcpStream,
        max_read_size: usize,
        idle: Duration,
        response: Duration,
    ) -> ComponentStream {
        ComponentStream {
            socket,
            reader: StreamReader::new(COMPONENT_NS, max_read_size),
            last_read: Instant::now(),
            idle,
            response,
            pinged: false,
            silence: Deadline::new(),
        }
    }

    /// The next element; [`ReadError::Footer`] for the end of the stream. Cancel-safe: what
    /// was read stays in the buffer.
    pub async fn next(&mut self) -> Result<Element, ReadError> {
        match self.event().await? {
            Event::Element(element) => Ok(element),
            Event::Footer => Err(ReadError::Footer),
            Event::Header { .. } => Err(ReadError::Unreadable(StreamReadError::Malformed(
                crate::stanza::parse::Malformed("a second stream header".into()),
            ))),
        }
    }

    /// The next event. Cancel-safe.
    pub async fn event(&mut self) -> Result<Event, ReadError> {
        loop {
            if let Some(event) = self.reader.next_event()? {
                return Ok(event);
            }
            let deadline = self.last_read
                + match self.pinged {
                    false => self.idle,
                    true => self.idle + self.response,
                };
            let buffer = self.reader.buffer();
            if buffer.capacity() - buffer.len() < READ_SIZE / 4 {
                buffer.reserve(READ_SIZE);
            }
            match self
                .silence
                .limit(deadline, self.socket.read_buf(buffer))
                .await
            {
                Some(Ok(0)) => return Err(ReadError::Eof),
                Some(Ok(_)) => {
                    self.last_read = Instant::now();
                    self.pinged = false;
                }
                Some(Err(error)) => return Err(ReadError::Io(error)),
                None if !self.pinged => {
                    self.pinged = true;
                    return Err(ReadError::Silent);
                }
                None => {
                    return Err(ReadError::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "nothing from the server for {:.0} s",
                            (self.idle + self.response).as_secs_f64()
                        ),
                    )))
                }
            }
        }
    }

    /// Writes all of `bytes` to the socket. Needs only `&self`, so a burst can be written
    /// while the stream is otherwise borrowed.
    pub async fn write(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.socket.writable().await?;
            match self.socket.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => bytes = &bytes[written..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Closes the stream (`</stream:stream>`) and our side of the connection.
    pub async fn close(&mut self) -> io::Result<()> {
        self.write(b"</stream:stream>").await?;
        self.socket.shutdown().await
    }
}
