//! The component stream as the server sends it, cut into what a session handles: the
//! stream header, each top-level element (built by [`super::parse`]) and the footer. The
//! reader owns the bytes read so far; finding where an element ends resumes where the last
//! look stopped, so a 200 kB stanza arriving in pieces is scanned once.

use memchr::{memchr, memchr3, memmem};
use minidom::Element;

use super::parse::{parse_element, parse_start_tag, skip_space, start_tag};
use super::scan::is_xml_text;
use super::scope::Scope;
use super::XmlError;

pub const STREAM_NS: &str = "http://etherx.jabber.org/streams";

/// What the server sent next.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// `<stream:stream …>`, with its `id` (what the handshake hashes).
    Header {
        id: Option<String>,
    },
    Element(Element),
    /// A top-level element nested more than `max_depth` deep: its start tag alone (no
    /// content), so that its sender can be answered. Its content was only scanned for its
    /// end, never built.
    TooDeep(Element),
    /// `</stream:stream>`.
    Footer,
}

/// Reads a component stream from the bytes put in [`StreamReader::buffer`].
#[derive(Debug)]
pub struct StreamReader {
    buf: Vec<u8>,
    /// Everything before is handled.
    start: usize,
    /// Where the look for the end of the element at `start` goes on, and its depth there.
    scanned: usize,
    depth: usize,
    /// Whether the element at `start` went deeper than `max_depth` (it is skipped).
    too_deep: bool,
    max_depth: usize,
    /// The default namespace and the prefixes the header declared.
    scope: Scope,
    /// The header's tag as written (`stream:stream`), once it came.
    header: Option<String>,
    max_size: usize,
}

impl StreamReader {
    /// A reader for a stream whose default namespace is `namespace`, refusing elements larger
    /// than `max_size` bytes and skipping those nested more than `max_depth` deep.
    pub fn new(namespace: &str, max_size: usize, max_depth: usize) -> StreamReader {
        StreamReader {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            depth: 0,
            too_deep: false,
            max_depth,
            scope: Scope::new(namespace),
            header: None,
            max_size,
        }
    }

    /// Where bytes read from the connection go: append them.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        &mut self.buf
    }

    /// Bytes read but not yet handled.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next event, or `None` until more bytes are in the buffer.
    pub fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        loop {
            if self.scanned == self.start {
                // Whitespace between elements: the server's own keepalives.
                self.start = skip_space(&self.buf, self.start);
                self.scanned = self.start;
            }
            let rest = &self.buf[self.start..];
            let (Some(&first), Some(&second)) = (rest.first(), rest.get(1)) else {
                return Ok(None);
            };
            if first != b'<' {
                return Err(malformed("text between elements"));
            }
            match second {
                b'?' if self.header.is_none() => {
                    // The XML declaration.
                    let Some(end) = memmem::find(rest, b"?>") else {
                        return self.wait();
                    };
                    self.consume(end + 2);
                }
                b'/' => {
                    let Some(end) = memchr(b'>', rest) else {
                        return self.wait();
                    };
                    let tag = text(&rest[2..end])?.trim_end();
                    if self.header.as_deref() != Some(tag) {
                        return Err(malformed(format!("</{tag}> at the top of the stream")));
                    }
                    self.consume(end + 1);
                    return Ok(Some(Event::Footer));
                }
                b'?' | b'!' => return Err(malformed("a declaration or comment in the stream")),
                _ if self.header.is_none() => {
                    let Some(end) = tag_end(rest, 0)? else {
                        return self.wait();
                    };
                    let id = self.open(end)?;
                    return Ok(Some(Event::Header { id }));
                }
                _ => {
                    let Some(end) = self.element_end()? else {
                        return self.wait();
                    };
                    let text = text(&self.buf[self.start..end])?;
                    let event = if self.too_deep {
                        Event::TooDeep(parse_start_tag(text, &mut self.scope)?)
                    } else {
                        Event::Element(parse_element(text, &mut self.scope, self.max_depth)?)
                    };
                    self.consume(end - self.start);
                    return Ok(Some(event));
                }
            }
        }
    }

    /// Nothing whole yet: fine while the part read is within bounds.
    fn wait(&self) -> Result<Option<Event>, XmlError> {
        if self.pending() > self.max_size {
            return Err(XmlError::ReadTooLarge(self.max_size));
        }
        Ok(None)
    }

    fn consume(&mut self, length: usize) {
        self.start += length;
        self.scanned = self.start;
        self.depth = 0;
        self.too_deep = false;
    }

    /// Reads the stream header, `end` bytes at `start`: its namespaces hold for the stream.
    fn open(&mut self, end: usize) -> Result<Option<String>, XmlError> {
        let text = text(&self.buf[self.start..self.start + end])?;
        let tag = start_tag(text, 0)?;
        if tag.empty {
            return Err(malformed("the stream header closes itself"));
        }
        self.scope.declare(&tag.attributes)?;
        let resolved = tag
            .name
            .split_once(':')
            .map_or(Some(""), |(prefix, local)| {
                (local == "stream").then_some(prefix)
            });
        if resolved.and_then(|prefix| self.scope.lookup(prefix)) != Some(STREAM_NS) {
            return Err(malformed(format!(
                "<{}> instead of the stream header",
                tag.name
            )));
        }
        let id = tag
            .attributes
            .iter()
            .find(|attribute| attribute.name == "id")
            .map(|attribute| attribute.value.clone());
        self.header = Some(tag.name.to_string());
        self.consume(end);
        Ok(id)
    }

    /// Where the element at `start` ends, once all of it is in the buffer.
    fn element_end(&mut self) -> Result<Option<usize>, XmlError> {
        let bytes = &self.buf;
        let mut at = self.scanned;
        loop {
            if self.depth > 0 {
                match memchr(b'<', &bytes[at..]) {
                    Some(skip) => at += skip,
                    None => {
                        self.scanned = bytes.len();
                        return Ok(None);
                    }
                }
            }
            // A tag starts at `at`; if it is not all there, look again from here.
            self.scanned = at;
            match bytes.get(at + 1) {
                None => return Ok(None),
                Some(b'/') => {
                    let Some(length) = memchr(b'>', &bytes[at..]) else {
                        return Ok(None);
                    };
                    at += length + 1;
                    self.depth -= 1;
                }
                Some(b'!') => {
                    const CDATA: &[u8] = b"<![CDATA[";
                    let available = &bytes[at..bytes.len().min(at + CDATA.len())];
                    if !CDATA.starts_with(available) {
                        return Err(malformed("comments and document types are not allowed"));
                    }
                    let Some(length) = (available.len() == CDATA.len())
                        .then(|| memmem::find(&bytes[at + CDATA.len()..], b"]]>"))
                        .flatten()
                    else {
                        return Ok(None);
                    };
                    at += CDATA.len() + length + 3;
                }
                Some(b'?') => return Err(malformed("processing instructions are not allowed")),
                Some(_) => {
                    let Some(length) = tag_end(bytes, at)? else {
                        return Ok(None);
                    };
                    if at == self.start
                        && self.header.as_deref().is_some_and(|header| {
                            bytes[at + 1..].starts_with(header.as_bytes())
                                && bytes
                                    .get(at + 1 + header.len())
                                    .is_some_and(|&b| !is_name_byte(b))
                        })
                    {
                        return Err(malformed("a second stream header"));
                    }
                    // Only counted from here on: the element is not built. An empty element
                    // is a level too, as `parse_element` counts it.
                    self.too_deep |= self.depth + 1 > self.max_depth;
                    if bytes[at + length - 2] != b'/' {
                        self.depth += 1;
                    }
                    at += length;
                }
            }
            if self.depth == 0 {
                self.scanned = at;
                return Ok(Some(at));
            }
        }
    }
}

/// The length of the start tag at `at`, up to and with its `>` (not one inside quotes).
fn tag_end(bytes: &[u8], at: usize) -> Result<Option<usize>, XmlError> {
    let mut look = at + 1;
    loop {
        let Some(skip) = memchr3(b'>', b'\'', b'"', &bytes[look..]) else {
            return Ok(None);
        };
        look += skip;
        let quote = bytes[look];
        if quote == b'>' {
            return Ok(Some(look + 1 - at));
        }
        let Some(length) = memchr(quote, &bytes[look + 1..]) else {
            return Ok(None);
        };
        look += length + 2;
    }
}

/// Whether `byte` can stand in a tag's name (after its first character).
fn is_name_byte(byte: u8) -> bool {
    !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')
}

/// Bytes as text: UTF-8, and only characters XML allows.
fn text(bytes: &[u8]) -> Result<&str, XmlError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if is_xml_text(text) => Ok(text),
        Ok(_) => Err(malformed("a character XML does not allow")),
        Err(_) => Err(malformed("not UTF-8")),
    }
}

fn malformed(why: impl Into<Box<str>>) -> XmlError {
    XmlError::Malformed(why.into())
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
