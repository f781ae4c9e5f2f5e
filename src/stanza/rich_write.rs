//! The rich keys of a described stanza (a webhook reply or a `POST /v1/send` without
//! `stanza`) → the XEPs' child elements: attachments, replies, corrections, reactions,
//! receipts, markers, chat states, threads; show, status and priority on a presence.
//! Unknown keys are ignored; a known key of the wrong type is refused and named
//! ([`ReplyError::WrongType`]). Read-only keys (`stanza_id`, `delay`, `error`…) are ignored.

use std::borrow::Cow;

use minidom::rxml::xml_ncname;
use minidom::Element;
use serde_json::{Map, Value};

use super::fields::ReplyError;
use super::request::Quoted;
use super::rich_read::{
    CHAT_STATES, CHAT_STATES_NS, CORRECT_NS, FALLBACK_NS, MARKERS_NS, MAX_RICH_ENTRIES, NICK_NS,
    OOB_NS, REACTIONS_NS, RECEIPTS_NS, REPLY_NS, RETRACT_NS,
};
use super::COMPONENT_NS;
use crate::xml::scan::is_xml_text;
use crate::xml::set_attr;

/// The `<show/>` values of RFC 6121 §4.7.2.1.
const SHOWS: [&str; 4] = ["away", "chat", "dnd", "xa"];

/// Appends a described message's body and rich elements. `body` is the reply's own; it
/// becomes the attachment's URL when there is none, and is prefixed with the quote when
/// `fallback` is true with `reply` (the quote is `reply.quote`, else `quoted`, the body of
/// the message answered).
pub fn write_message(
    fields: &Map<String, Value>,
    body: Option<Cow<'_, str>>,
    quoted: Quoted<'_>,
    stanza: &mut Element,
) -> Result<(), ReplyError> {
    let oob = object(fields, "oob")?;
    let oob_url = string(fields, "oob_url")?;
    let oob_object_url = match oob {
        Some(oob) => Some(required(oob, "url", "oob.url")?),
        None => None,
    };
    let reply = object(fields, "reply")?;
    let fallback = flag(fields, "fallback")?;
    let mut quote = None;
    if let Some(reply) = reply {
        required(reply, "id", "reply.id")?;
        string(reply, "to").map_err(|e| renamed(e, "reply.to"))?;
        let own = string(reply, "quote").map_err(|e| renamed(e, "reply.quote"))?;
        if fallback {
            quote = own
                .map(Cow::Borrowed)
                .or_else(|| quoted.text())
                .filter(|q| !q.is_empty());
        }
    }
    let mut body = body.or_else(|| oob_object_url.or(oob_url).map(Cow::Borrowed));
    let mut fallback_end = None;
    if let Some(quote) = quote {
        let mut quoted_body = String::with_capacity(quote.len() + 8);
        for line in quote.lines() {
            quoted_body.push_str("> ");
            quoted_body.push_str(line);
            quoted_body.push('\n');
        }
        fallback_end = Some(quoted_body.chars().count());
        quoted_body.push_str(body.as_deref().unwrap_or_default());
        body = Some(Cow::Owned(quoted_body));
    }
    if let Some(body) = body {
        stanza.append_child(text_element("body", COMPONENT_NS, &body));
    }
    if let Some(url) = oob_url.filter(|url| Some(*url) != oob_object_url) {
        stanza.append_child(oob_element(url, None));
    }
    if let (Some(oob), Some(url)) = (oob, oob_object_url) {
        let desc = string(oob, "desc").map_err(|e| renamed(e, "oob.desc"))?;
        stanza.append_child(oob_element(url, desc));
    }
    if let Some(reply) = reply {
        let mut element = Element::bare("reply", REPLY_NS);
        if let Some(to) = string(reply, "to")? {
            set_attr(&mut element, xml_ncname!("to"), to);
        }
        set_attr(
            &mut element,
            xml_ncname!("id"),
            required(reply, "id", "reply.id")?,
        );
        stanza.append_child(element);
    }
    if let Some(end) = fallback_end {
        let mut range = Element::bare("body", FALLBACK_NS);
        set_attr(&mut range, xml_ncname!("start"), "0");
        set_attr(&mut range, xml_ncname!("end"), &end.to_string());
        let mut element = Element::bare("fallback", FALLBACK_NS);
        set_attr(&mut element, xml_ncname!("for"), REPLY_NS);
        element.append_child(range);
        stanza.append_child(element);
    }
    for (field, name, ns) in [
        ("replace", "replace", CORRECT_NS),
        ("retract", "retract", RETRACT_NS),
        ("received", "received", RECEIPTS_NS),
        ("displayed", "displayed", MARKERS_NS),
    ] {
        if let Some(id) = string(fields, field)? {
            stanza.append_child(with_id(name, ns, id));
        }
    }
    if let Some(reactions) = object(fields, "reactions")? {
        stanza.append_child(reactions_element(reactions)?);
    }
    if let Some(state) = string(fields, "state")? {
        let Some(state) = CHAT_STATES.into_iter().find(|s| *s == state) else {
            return Err(wrong(
                "state",
                "one of active, composing, paused, inactive, gone",
            ));
        };
        stanza.append_child(Element::bare(state, CHAT_STATES_NS));
    }
    if let Some(thread) = thread_element(fields)? {
        stanza.append_child(thread);
    }
    if let Some(subject) = string(fields, "subject")? {
        stanza.append_child(text_element("subject", COMPONENT_NS, subject));
    }
    if flag(fields, "receipt_request")? {
        stanza.append_child(Element::bare("request", RECEIPTS_NS));
    }
    if flag(fields, "markable")? {
        stanza.append_child(Element::bare("markable", MARKERS_NS));
    }
    write_nick(fields, stanza)
}

/// Appends a described presence's `show`, `status`, `priority` and `nick`.
pub fn write_presence(fields: &Map<String, Value>, stanza: &mut Element) -> Result<(), ReplyError> {
    if let Some(show) = string(fields, "show")? {
        if !SHOWS.contains(&show) {
            return Err(wrong("show", "one of away, chat, dnd, xa"));
        }
        stanza.append_child(text_element("show", COMPONENT_NS, show));
    }
    if let Some(status) = string(fields, "status")? {
        stanza.append_child(text_element("status", COMPONENT_NS, status));
    }
    match fields.get("priority") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_i64().is_some_and(|p| i8::try_from(p).is_ok()) => {
            let priority = n.as_i64().unwrap_or_default().to_string();
            stanza.append_child(text_element("priority", COMPONENT_NS, &priority));
        }
        Some(_) => return Err(wrong("priority", "an integer from -128 to 127")),
    }
    write_nick(fields, stanza)
}

fn write_nick(fields: &Map<String, Value>, stanza: &mut Element) -> Result<(), ReplyError> {
    if let Some(nick) = string(fields, "nick")? {
        stanza.append_child(text_element("nick", NICK_NS, nick));
    }
    Ok(())
}

fn reactions_element(reactions: &Map<String, Value>) -> Result<Element, ReplyError> {
    const EXPECTED: &str = "an array of at most 64 strings";
    let id = required(reactions, "id", "reactions.id")?;
    let list = match reactions.get("reactions") {
        None | Some(Value::Null) => return Err(ReplyError::MissingField("reactions.reactions")),
        Some(Value::Array(list)) if list.len() <= MAX_RICH_ENTRIES => list,
        Some(_) => return Err(wrong("reactions.reactions", EXPECTED)),
    };
    let mut element = with_id("reactions", REACTIONS_NS, id);
    for reaction in list {
        let Value::String(reaction) = reaction else {
            return Err(wrong("reactions.reactions", EXPECTED));
        };
        if !is_xml_text(reaction) {
            return Err(ReplyError::NotXmlText("reactions.reactions"));
        }
        element.append_child(text_element("reaction", REACTIONS_NS, reaction));
    }
    Ok(element)
}

/// `thread`: a plain id, or `{"id", "parent"}`.
fn thread_element(fields: &Map<String, Value>) -> Result<Option<Element>, ReplyError> {
    let (id, parent) = match fields.get("thread") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(_)) => (string(fields, "thread")?, None),
        Some(Value::Object(thread)) => (
            Some(required(thread, "id", "thread.id")?),
            string(thread, "parent").map_err(|e| renamed(e, "thread.parent"))?,
        ),
        Some(_) => return Err(wrong("thread", "a string or an object {id, parent}")),
    };
    let Some(id) = id else {
        return Ok(None);
    };
    let mut element = text_element("thread", COMPONENT_NS, id);
    if let Some(parent) = parent {
        set_attr(&mut element, xml_ncname!("parent"), parent);
    }
    Ok(Some(element))
}

fn oob_element(url: &str, desc: Option<&str>) -> Element {
    let mut x = Element::bare("x", OOB_NS);
    x.append_child(text_element("url", OOB_NS, url));
    if let Some(desc) = desc {
        x.append_child(text_element("desc", OOB_NS, desc));
    }
    x
}

fn with_id(name: &str, ns: &str, id: &str) -> Element {
    let mut element = Element::bare(name, ns);
    set_attr(&mut element, xml_ncname!("id"), id);
    element
}

/// An element holding `text`; an empty text is no child at all, as the element is read back
/// from what is written (`<body/>`).
fn text_element(name: &str, ns: &str, text: &str) -> Element {
    let element = Element::builder(name, ns);
    if text.is_empty() {
        element.build()
    } else {
        element.append(text.to_string()).build()
    }
}

/// A string field: absent or null is `None`; anything but a string is refused.
fn string<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, ReplyError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if !is_xml_text(value) => Err(ReplyError::NotXmlText(name)),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(wrong(name, "a string")),
    }
}

/// A string member of an object key that must be there; `path` names it in errors.
fn required<'a>(
    object: &'a Map<String, Value>,
    name: &'static str,
    path: &'static str,
) -> Result<&'a str, ReplyError> {
    string(object, name)
        .map_err(|e| renamed(e, path))?
        .ok_or(ReplyError::MissingField(path))
}

fn object<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a Map<String, Value>>, ReplyError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(wrong(name, "an object")),
    }
}

/// A `true`/`false` key; absent or null is `false`.
fn flag(fields: &Map<String, Value>, name: &'static str) -> Result<bool, ReplyError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(wrong(name, "true or false")),
    }
}

fn wrong(field: &'static str, expected: &'static str) -> ReplyError {
    ReplyError::WrongType { field, expected }
}

/// The same error, naming a member by its path (`reply.to`) instead of its bare name.
fn renamed(error: ReplyError, path: &'static str) -> ReplyError {
    match error {
        ReplyError::WrongType { expected, .. } => wrong(path, expected),
        ReplyError::NotXmlText(_) => ReplyError::NotXmlText(path),
        ReplyError::MissingField(_) => ReplyError::MissingField(path),
        other => other,
    }
}
