//! One top-level element's XML text, as the stream reader cut it out, → `minidom::Element`:
//! tags, attributes, namespaces, entities and CDATA, with runs of text found by `memchr`
//! rather than lexed a byte at a time (with large bodies, rxml's lexer was the daemon's
//! largest cost: bench/README.md, step 6edf13f). The `Element` is the one rxml and minidom
//! built: `parse_tests.rs` checks both readers against each other.

use memchr::{memchr, memchr2, memchr3, memmem};
use minidom::rxml::{Namespace, NcName};
use minidom::Element;

use super::scope::{check_ncname, malformed, Attribute, Scope};
use super::XmlError;

/// A start tag: its name as written, attributes, whether it closes itself (`/>`), and where
/// it ends (just past `>`).
#[derive(Debug)]
pub struct StartTag<'a> {
    pub name: &'a str,
    pub attributes: Vec<Attribute<'a>>,
    pub empty: bool,
    pub end: usize,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

pub(crate) fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|&b| is_space(b)) {
        at += 1;
    }
    at
}

/// Where a name starting at `at` ends.
fn name_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|&b| !is_space(b) && !matches!(b, b'=' | b'>' | b'/' | b'<' | b'\'' | b'"'))
    {
        at += 1;
    }
    at
}

/// Reads the start tag at `at` (its `<`) of `text`, which must hold all of it.
pub fn start_tag(text: &str, at: usize) -> Result<StartTag<'_>, XmlError> {
    let bytes = text.as_bytes();
    let name_start = at + 1;
    let mut at = name_end(bytes, name_start);
    let name = &text[name_start..at];
    if name.is_empty() {
        return malformed("a tag without a name");
    }
    let mut attributes = Vec::new();
    loop {
        let spaced = at;
        at = skip_space(bytes, at);
        match bytes.get(at) {
            Some(b'>') => {
                return Ok(StartTag {
                    name,
                    attributes,
                    empty: false,
                    end: at + 1,
                })
            }
            Some(b'/') if bytes.get(at + 1) == Some(&b'>') => {
                return Ok(StartTag {
                    name,
                    attributes,
                    empty: true,
                    end: at + 2,
                })
            }
            Some(_) if at == spaced => {
                return malformed(format!("<{name}>: no space before an attribute"))
            }
            Some(_) => {}
            None => return malformed(format!("<{name}> is not closed")),
        }
        let attribute_start = at;
        at = name_end(bytes, at);
        let attribute = &text[attribute_start..at];
        at = skip_space(bytes, at);
        if attribute.is_empty() || bytes.get(at) != Some(&b'=') {
            return malformed(format!("<{name}>: an attribute without a value"));
        }
        at = skip_space(bytes, at + 1);
        let quote = match bytes.get(at) {
            Some(&quote @ (b'\'' | b'"')) => quote,
            _ => return malformed(format!("<{name}>: an attribute value without quotes")),
        };
        let Some(length) = memchr(quote, &bytes[at + 1..]) else {
            return malformed(format!("<{name}>: an attribute value is not closed"));
        };
        let raw = &text[at + 1..at + 1 + length];
        attributes.push(Attribute {
            name: attribute,
            value: decode(raw, true)?,
        });
        at += length + 2;
    }
}

/// Decodes the references in character data or an attribute value, and normalises line ends
/// (and, in an attribute value, tabs and line feeds, which become spaces).
pub fn decode(raw: &str, in_attribute: bool) -> Result<String, XmlError> {
    let bytes = raw.as_bytes();
    let special = if in_attribute {
        memchr3(b'&', b'<', b'\r', bytes).is_some() || memchr2(b'\t', b'\n', bytes).is_some()
    } else {
        memchr2(b'&', b'\r', bytes).is_some()
    };
    if !in_attribute && memchr(b']', bytes).is_some() && memmem::find(bytes, b"]]>").is_some() {
        return malformed("']]>' in character data");
    }
    if !special {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest
        .bytes()
        .position(|b| matches!(b, b'&' | b'<' | b'\r' | b'\t' | b'\n'))
    {
        out.push_str(&rest[..at]);
        let byte = rest.as_bytes()[at];
        rest = &rest[at + 1..];
        match byte {
            b'&' => {
                let Some(end) = rest.find(';') else {
                    return malformed("'&' without ';'");
                };
                out.push(reference(&rest[..end])?);
                rest = &rest[end + 1..];
            }
            b'<' => return malformed("'<' in an attribute value"),
            b'\r' => {
                rest = rest.strip_prefix('\n').unwrap_or(rest);
                out.push(if in_attribute { ' ' } else { '\n' });
            }
            _ if in_attribute => out.push(' '),
            _ => out.push(char::from(byte)),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The character an entity or character reference (`lt`, `#38`, `#x26`) stands for.
fn reference(name: &str) -> Result<char, XmlError> {
    let code = match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "apos" => return Ok('\''),
        "quot" => return Ok('"'),
        _ => match name.strip_prefix("#x") {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            Some(_) => None,
            None => match name.strip_prefix('#') {
                Some(digits)
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    digits.parse().ok()
                }
                _ => return malformed(format!("unknown entity '&{name};'")),
            },
        },
    };
    match code.and_then(char::from_u32) {
        Some(c) if matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..) => {
            Ok(c)
        }
        _ => malformed(format!("'&{name};' is not a character XML allows")),
    }
}

/// An element being read: it, its name as written in its start tag, and how many namespace
/// bindings were in force before it.
struct OpenElement<'a> {
    element: Element,
    tag: &'a str,
    scope_len: usize,
}

/// Builds the element whose text is all of `text` (from its `<` to its end tag's `>`), in
/// `scope`, which is left as it was, refusing elements nested more than `max_depth` deep
/// (the element itself is level 1) before it builds them. `text` must already be known to
/// hold only characters XML allows.
pub fn parse_element(text: &str, scope: &mut Scope, max_depth: usize) -> Result<Element, XmlError> {
    let bytes = text.as_bytes();
    let mut stack: Vec<OpenElement<'_>> = Vec::new();
    let mut at = 0;
    loop {
        if bytes.get(at) != Some(&b'<') {
            let end = memchr(b'<', &bytes[at..]).map_or(bytes.len(), |n| at + n);
            let Some(open) = stack.last_mut() else {
                return malformed("text outside the element");
            };
            open.element.append_text(decode(&text[at..end], false)?);
            at = end;
            if at == bytes.len() {
                return malformed(format!("<{}> is not closed", open.tag));
            }
            continue;
        }
        match bytes.get(at + 1) {
            Some(b'/') => {
                let Some(length) = memchr(b'>', &bytes[at..]) else {
                    return malformed("an end tag is not closed");
                };
                let tag = text[at + 2..at + length].trim_end_matches([' ', '\t', '\n', '\r']);
                at += length + 1;
                let Some(open) = stack.pop() else {
                    return malformed(format!("</{tag}> without a start tag"));
                };
                if open.tag != tag {
                    return malformed(format!("</{tag}> closes <{}>", open.tag));
                }
                scope.truncate(open.scope_len);
                if let Some(done) = finish(&mut stack, open.element, at == bytes.len()) {
                    return done;
                }
            }
            Some(b'!') if text[at..].starts_with("<![CDATA[") => {
                let Some(open) = stack.last_mut() else {
                    return malformed("CDATA outside the element");
                };
                let start = at + "<![CDATA[".len();
                let Some(length) = memmem::find(&bytes[start..], b"]]>") else {
                    return malformed("a CDATA section is not closed");
                };
                let raw = &text[start..start + length];
                if !raw.is_empty() {
                    open.element.append_text(if raw.contains('\r') {
                        raw.replace("\r\n", "\n").replace('\r', "\n")
                    } else {
                        raw.to_string()
                    });
                }
                at = start + length + 3;
            }
            Some(b'!') => return malformed("comments and document types are not allowed"),
            Some(b'?') => return malformed("processing instructions are not allowed"),
            _ => {
                if stack.len() >= max_depth {
                    return malformed(format!("nested more than {max_depth} deep"));
                }
                let tag = start_tag(text, at)?;
                let scope_len = scope.len();
                scope.declare(&tag.attributes)?;
                let (name, empty) = (tag.name, tag.empty);
                at = tag.end;
                let element = build(tag, scope)?;
                if !empty {
                    stack.push(OpenElement {
                        element,
                        tag: name,
                        scope_len,
                    });
                    continue;
                }
                scope.truncate(scope_len);
                if let Some(done) = finish(&mut stack, element, at == bytes.len()) {
                    return done;
                }
            }
        }
    }
}

/// The element whose start tag begins `text`, with its attributes but none of its content:
/// what is kept of a stanza refused unread (nested too deeply), to answer its sender.
pub fn parse_start_tag(text: &str, scope: &mut Scope) -> Result<Element, XmlError> {
    let tag = start_tag(text, 0)?;
    let scope_len = scope.len();
    scope.declare(&tag.attributes)?;
    let element = build(tag, scope);
    scope.truncate(scope_len);
    element
}

/// A closed element goes into its parent (`None`: read on); the outermost one is the result
/// when the text ends with it.
fn finish(
    stack: &mut [OpenElement<'_>],
    element: Element,
    at_end: bool,
) -> Option<Result<Element, XmlError>> {
    match stack.last_mut() {
        Some(parent) => {
            parent.element.append_child(element);
            None
        }
        None if at_end => Some(Ok(element)),
        None => Some(malformed("more after the element")),
    }
}

/// The element a start tag opens, its names resolved in `scope` (which holds its own
/// declarations already).
fn build(tag: StartTag<'_>, scope: &Scope) -> Result<Element, XmlError> {
    let (prefix, local) = split_name(tag.name)?;
    let Some(namespace) = scope.lookup(prefix) else {
        return malformed(format!(
            "<{}>: the prefix '{prefix}' is not declared",
            tag.name
        ));
    };
    let mut element = Element::bare(local.as_str(), namespace);
    for attribute in tag.attributes {
        let (prefix, name) = split_name(attribute.name)?;
        let namespace = match prefix {
            "" if name.as_str() == "xmlns" => continue,
            "xmlns" => continue,
            "" => Namespace::NONE,
            "xml" => Namespace::XML,
            _ => match scope.lookup(prefix) {
                Some(namespace) => Namespace::from(namespace.to_string()),
                None => {
                    return malformed(format!(
                        "<{}>: the prefix '{prefix}' is not declared",
                        tag.name
                    ))
                }
            },
        };
        if element
            .attrs_mut()
            .insert(namespace, name, attribute.value)
            .is_some()
        {
            return malformed(format!(
                "<{}>: the attribute '{}' twice",
                tag.name, attribute.name
            ));
        }
    }
    Ok(element)
}

/// `prefix:local` → (`prefix`, `local`), each checked once (so `:local` is refused); an
/// unprefixed name has the prefix `""`.
fn split_name(name: &str) -> Result<(&str, NcName), XmlError> {
    let (prefix, local) = name.split_once(':').unwrap_or(("", name));
    if name.len() > local.len() {
        check_ncname(prefix)?;
    }
    match NcName::try_from(local) {
        Ok(local) => Ok((prefix, local)),
        Err(_) => malformed(format!("'{local}' is not a valid name")),
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
