//! The socket of one component connection, with the stream reader over it: what the server
//! sends is read into [`StreamReader`]'s buffer and comes out as events; what we send is
//! written straight to the socket. Silence is watched here, as the session's keepalive needs.

use std::io;
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::XmppError;
use crate::deadline::Deadline;
use crate::xml::stream::{Event, StreamReader};
use crate::xml::{XmlError, COMPONENT_NS};

/// Room made in the read buffer before each read.
const READ_SIZE: usize = 64 * 1024;

/// A top-level element read from the server.
#[derive(Debug)]
pub enum Received {
    Element(Element),
    /// An element nested past `max_depth`: its start tag alone, to answer its sender.
    TooDeep(Element),
}

/// An open component connection.
pub struct ComponentSocket {
    socket: TcpStream,
    reader: StreamReader,
    last_read: Instant,
    /// Since when the bytes read end in an unfinished element (`None`: they do not). The
    /// server sends each stanza whole: one left unfinished for `response` is a broken stream.
    unfinished_since: Option<Instant>,
    /// Silence that asks for a ping (`keepalive`), and then, unanswered, ends the connection
    /// (`timeout`).
    idle: Duration,
    response: Duration,
    pinged: bool,
    /// Times each read: one timer moved forward, not a new one per read.
    silence: Deadline,
}

impl ComponentSocket {
    pub fn new(
        socket: TcpStream,
        max_read_size: usize,
        max_depth: usize,
        idle: Duration,
        response: Duration,
    ) -> ComponentSocket {
        ComponentSocket {
            socket,
            reader: StreamReader::new(COMPONENT_NS, max_read_size, max_depth),
            last_read: Instant::now(),
            unfinished_since: None,
            idle,
            response,
            pinged: false,
            silence: Deadline::new(),
        }
    }

    /// The next element, or `None` when the server was silent for the keepalive time (time
    /// to ping it); [`XmppError::Closed`] for the end of the stream. Cancel-safe: what was
    /// read stays in the buffer.
    pub async fn next(&mut self) -> Result<Option<Received>, XmppError> {
        match self.event().await? {
            None => Ok(None),
            Some(Event::Element(element)) => Ok(Some(Received::Element(element))),
            Some(Event::TooDeep(head)) => Ok(Some(Received::TooDeep(head))),
            Some(Event::Footer) => Err(XmppError::Closed),
            Some(Event::Header { .. }) => Err(XmppError::Unreadable(XmlError::Malformed(
                "a second stream header".into(),
            ))),
        }
    }

    /// The next event, or `None` when the server was silent for the keepalive time.
    /// Cancel-safe.
    pub async fn event(&mut self) -> Result<Option<Event>, XmppError> {
        loop {
            if let Some(event) = self.reader.next_event()? {
                self.unfinished_since = None;
                return Ok(Some(event));
            }
            let unfinished = match self.reader.pending() {
                0 => None,
                _ => Some(*self.unfinished_since.get_or_insert(self.last_read)),
            };
            let silence = self.last_read
                + match self.pinged {
                    false => self.idle,
                    true => self.idle + self.response,
                };
            let deadline = unfinished.map_or(silence, |since| silence.min(since + self.response));
            let buffer = self.reader.buffer();
            if buffer.capacity() - buffer.len() < READ_SIZE / 4 {
                buffer.reserve(READ_SIZE);
            }
            match self
                .silence
                .limit(deadline, self.socket.read_buf(buffer))
                .await
            {
                Some(Ok(0)) => return Err(XmppError::ClosedAbruptly),
                Some(Ok(_)) => {
                    self.last_read = Instant::now();
                    self.pinged = false;
                }
                Some(Err(error)) => return Err(XmppError::Io(error)),
                None if unfinished.is_some_and(|since| Instant::now() >= since + self.response) => {
                    return Err(XmppError::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the server left an element unfinished for {:.0} s ({} bytes pending)",
                            self.response.as_secs_f64(),
                            self.reader.pending()
                        ),
                    )))
                }
                None if !self.pinged => {
                    self.pinged = true;
                    return Ok(None);
                }
                None => {
                    return Err(XmppError::Io(io::Error::new(
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A connection to a fake server that sends `bytes` after the stream header, then
    /// nothing (but keeps the connection open).
    async fn stream_after(bytes: &'static [u8], response: Duration) -> ComponentSocket {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            let (mut server, _) = listener.accept().await.expect("a connection");
            let header = b"<stream:stream xmlns='jabber:component:accept' \
                           xmlns:stream='http://etherx.jabber.org/streams' id='s1'>";
            server.write_all(header).await.expect("header sent");
            server.write_all(bytes).await.expect("bytes sent");
            // Held open: what the component sees is a server gone quiet mid-element.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let socket = TcpStream::connect(address).await.expect("connected");
        let mut stream =
            ComponentSocket::new(socket, 1 << 20, 64, Duration::from_secs(60), response);
        assert!(matches!(
            stream.event().await,
            Ok(Some(Event::Header { .. }))
        ));
        stream
    }

    #[tokio::test]
    async fn an_element_left_unfinished_is_a_read_error_after_the_timeout() {
        for unfinished in [
            &b"<a/ >"[..],
            b"<message from='a@b' id='unbalanced>",
            b"<message from='a@b'><body>never closed",
        ] {
            let mut stream = stream_after(unfinished, Duration::from_millis(300)).await;
            let started = Instant::now();
            let error = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("not a silent stall")
                .expect_err("a read error");
            assert!(
                matches!(&error, XmppError::Io(e) if e.kind() == io::ErrorKind::TimedOut
                    && e.to_string().contains("unfinished")),
                "{error}"
            );
            assert!(started.elapsed() >= Duration::from_millis(300));
        }
    }

    #[tokio::test]
    async fn a_quiet_stream_between_elements_is_only_silent() {
        let mut stream = stream_after(b"<presence from='a@b'/>", Duration::from_millis(100)).await;
        assert!(matches!(
            stream.next().await,
            Ok(Some(Received::Element(_)))
        ));
        // Nothing pending: no unfinished-element error, only the keepalive's silence (60 s).
        let quiet = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
        assert!(quiet.is_err(), "still waiting: {quiet:?}");
    }
}
