//! Finding, 32 and eight bytes at a time, the few bytes that XML or JSON must escape (and
//! walking text from one to the next, for both escapers), and the characters XML does not
//! allow: every body byte passes through here at least twice (the request's `stanza` and
//! `body`, the reply's text), so a byte-by-byte loop showed at the top of the profile with
//! 200 kB bodies.

/// Bytes looked at together by the fast scans: LLVM turns a branch-free fold over 32 bytes
/// into SIMD compares (SSE2 on any x86-64). On long text it beats both the eight-byte words
/// below, which still serve the shorter rest, and 16-byte blocks (bench/README.md, "Why the
/// code is shaped so").
const BLOCK: usize = 32;

/// How many bytes from the start of `bytes`, in whole blocks, hold no byte `suspect` flags.
/// `suspect` must be branch-free (`|`, not `||`) for the fold to become SIMD.
fn clean_blocks(bytes: &[u8], suspect: impl Fn(u8) -> bool) -> usize {
    let mut clean = 0;
    for block in bytes.chunks_exact(BLOCK) {
        if block.iter().fold(false, |any, &byte| any | suspect(byte)) {
            break;
        }
        clean += BLOCK;
    }
    clean
}

/// A control character, or the first byte of U+FFFE/U+FFFF: what [`is_xml_text`] looks at.
fn may_be_forbidden(byte: u8) -> bool {
    (byte < 0x20) | (byte == 0xEF)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Non-zero when some byte of `word` is below `limit` (at most 0x80).
fn any_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// Non-zero when some byte of `word` equals `byte`.
fn any_equal(word: u64, byte: u8) -> u64 {
    any_below(word ^ (ONES * u64::from(byte)), 1)
}

fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at + 8)?;
    let array: [u8; 8] = chunk.try_into().ok()?;
    Some(u64::from_le_bytes(array))
}

/// Whether `byte` may need escaping in XML text, an XML attribute or a JSON string:
/// a control character, `&`, `<`, `>`, `'`, `"` or `\`. Written without branches, so that
/// `clean_blocks` becomes SIMD.
pub fn is_special(byte: u8) -> bool {
    (byte < 0x20)
        | (byte == b'&')
        | (byte == b'<')
        | (byte == b'>')
        | (byte == b'\'')
        | (byte == b'"')
        | (byte == b'\\')
}

/// How many bytes at the start of `bytes` are not [`is_special`].
pub fn plain_len(bytes: &[u8]) -> usize {
    let mut at = clean_blocks(bytes, is_special);
    while let Some(word) = word_at(bytes, at) {
        let special = any_below(word, 0x20)
            | any_equal(word, b'&')
            | any_equal(word, b'<')
            | any_equal(word, b'>')
            | any_equal(word, b'\'')
            | any_equal(word, b'"')
            | any_equal(word, b'\\');
        if special != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..].iter().take_while(|&&b| !is_special(b)).count()
}

/// Walks `text`, handing `out` its runs of plain text and, for each [`is_special`] byte that
/// `escape` maps to a replacement, the replacement instead of the byte. Every special byte
/// is ASCII, so the runs are whole characters.
pub fn escape_with(
    text: &str,
    mut escape: impl FnMut(u8) -> Option<&'static str>,
    mut out: impl FnMut(&str),
) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        at += plain_len(&bytes[at..]);
        let Some(&byte) = bytes.get(at) else { break };
        if let Some(replacement) = escape(byte) {
            out(&text[start..at]);
            out(replacement);
            start = at + 1;
        }
        at += 1;
    }
    out(&text[start..]);
}

/// Whether `text` holds only characters XML 1.0 allows: no control character but tab, line
/// feed and carriage return, and neither U+FFFE nor U+FFFF (UTF-8 `EF BF BE`/`EF BF BF`;
/// a `str` holds no surrogates).
pub fn is_xml_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    loop {
        at += clean_blocks(&bytes[at..], may_be_forbidden);
        while let Some(word) = word_at(bytes, at) {
            if any_below(word, 0x20) | any_equal(word, 0xEF) != 0 {
                break;
            }
            at += 8;
        }
        let Some(&byte) = bytes.get(at) else {
            return true;
        };
        match byte {
            b'\t' | b'\n' | b'\r' => {}
            0..=0x1F => return false,
            0xEF if bytes.get(at + 1) == Some(&0xBF)
                && matches!(bytes.get(at + 2), Some(0xBE | 0xBF)) =>
            {
                return false
            }
            _ => {}
        }
        at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escaped set spelled out again, apart from the code under test.
    fn plain_len_slowly(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .take_while(|&&b| !(b < 0x20 || matches!(b, b'&' | b'<' | b'>' | b'\'' | b'"' | b'\\')))
            .count()
    }

    fn is_xml_text_slowly(text: &str) -> bool {
        text.chars().all(|c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        })
    }

    /// Every ASCII byte and some multi-byte characters, at every offset around the
    /// eight-byte words and the 32-byte blocks (the first, second and third block).
    fn samples() -> Vec<String> {
        let mut inserts: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        inserts.extend(
            [
                "é", "€", "🎉", "\u{FFFD}", "\u{FFFE}", "\u{FFFF}", "\u{E000}", "\u{D7FF}",
            ]
            .map(String::from),
        );
        let mut samples = Vec::new();
        for insert in &inserts {
            for offset in 0..(2 * BLOCK + 10) {
                let mut text = "abcdefghijklmnopqrstuvwxyz".repeat(3)[..offset].to_string();
                text.push_str(insert);
                text.push_str("tail after it, long enough");
                samples.push(text);
            }
        }
        samples
    }

    #[test]
    fn plain_len_stops_where_a_byte_needs_escaping() {
        for text in samples() {
            assert_eq!(
                plain_len(text.as_bytes()),
                plain_len_slowly(text.as_bytes()),
                "{text:?}"
            );
        }
        assert_eq!(plain_len(b""), 0);
        assert_eq!(plain_len("héllo wörld 🎉".repeat(100).as_bytes()), 1800);
    }

    #[test]
    fn xml_text_is_checked_as_the_xml_char_production_says() {
        for text in samples() {
            assert_eq!(is_xml_text(&text), is_xml_text_slowly(&text), "{text:?}");
        }
        assert!(is_xml_text(""));
        assert!(is_xml_text("tab\there\r\n"));
        assert!(!is_xml_text("bell\u{7}"));
        assert!(!is_xml_text("\u{FFFF}"));
        assert!(is_xml_text("\u{FFFD}\u{10FFFF}"));
    }
}
