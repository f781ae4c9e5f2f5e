//! Just enough XML for the synthetic peers: cut `<message>` stanzas out of a byte stream,
//! read an attribute of the start tag, and the body. No parser, no allocation per stanza:
//! the peers must cost far less than the daemon they measure. Every stanza here is one the
//! benchmark itself or a well-behaved server wrote, so the shortcuts are safe.

use std::io;
use std::ops::Range;

use tokio::io::{AsyncRead, AsyncReadExt};

const START: &[u8] = b"<message";
const END: &[u8] = b"</message>";
/// Bytes consumed are dropped from the buffer once there are this many.
const COMPACT_AT: usize = 256 * 1024;

/// A growing read buffer from which whole `<message>` stanzas are taken one by one; any
/// other element (stream header, iq, presence) is skipped.
pub struct Scanner {
    buf: Vec<u8>,
    /// Everything before this is consumed.
    pos: usize,
    /// Where to resume looking for `</message>` in a stanza not yet complete.
    resume: usize,
}

impl Scanner {
    pub fn new(leftover: Vec<u8>) -> Scanner {
        Scanner {
            buf: leftover,
            pos: 0,
            resume: 0,
        }
    }

    /// The next complete `<message>` stanza, as a range of [`Scanner::bytes`].
    pub fn next_message(&mut self) -> Option<Range<usize>> {
        let Some(start) = find(&self.buf, START, self.pos) else {
            // Keep a tail that may hold the beginning of "<message".
            self.pos = self.pos.max(self.buf.len().saturating_sub(START.len()));
            return None;
        };
        self.pos = start;
        let gt = find(&self.buf, b">", start)?;
        let end = if self.buf[gt - 1] == b'/' {
            gt + 1
        } else {
            match find(&self.buf, END, self.resume.max(gt)) {
                Some(at) => at + END.len(),
                None => {
                    self.resume = self.buf.len().saturating_sub(END.len()).max(gt);
                    return None;
                }
            }
        };
        self.pos = end;
        self.resume = end;
        Some(start..end)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Reads more bytes; `Ok(0)` at end of stream.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, read: &mut R) -> io::Result<usize> {
        if self.pos == self.buf.len() || self.pos >= COMPACT_AT {
            self.buf.drain(..self.pos);
            self.resume = self.resume.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.reserve(64 * 1024);
        read.read_buf(&mut self.buf).await
    }
}

/// The first `needle` in `hay` at or after `from`.
pub fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= hay.len() {
        let offset = hay[at..].iter().position(|&b| b == first)?;
        at += offset;
        if hay.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// The start tag of a stanza (up to its first `>`).
pub fn start_tag(stanza: &[u8]) -> &[u8] {
    let end = find(stanza, b">", 0).map_or(stanza.len(), |gt| gt + 1);
    &stanza[..end]
}

/// The raw value of attribute `name` in a start tag, quoted with `'` or `"`.
pub fn attr<'a>(tag: &'a [u8], name: &str) -> Option<&'a [u8]> {
    for quote in [b'\'', b'"'] {
        let mut pattern = Vec::with_capacity(name.len() + 3);
        pattern.push(b' ');
        pattern.extend_from_slice(name.as_bytes());
        pattern.push(b'=');
        pattern.push(quote);
        if let Some(at) = find(tag, &pattern, 0) {
            let value_start = at + pattern.len();
            let len = tag[value_start..].iter().position(|&b| b == quote)?;
            return Some(&tag[value_start..value_start + len]);
        }
    }
    None
}

/// The number in a JID such as `user17@localhost/r` after `prefix` (`user`).
pub fn slot_of(jid: &[u8], prefix: &str) -> Option<u32> {
    let digits = jid.strip_prefix(prefix.as_bytes())?;
    let len = digits.iter().position(|&b| b == b'@')?;
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

/// The raw (still escaped) text of the stanza's `<body>`, if any.
pub fn body(stanza: &[u8]) -> Option<&[u8]> {
    let open = find(stanza, b"<body", 0)?;
    let text_start = find(stanza, b">", open)? + 1;
    let close = find(stanza, b"</body>", text_start)?;
    Some(&stanza[text_start..close])
}

/// Standard base64 (for SASL PLAIN).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
