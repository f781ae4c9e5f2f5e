//! The `file` field of a webhook reply or a `POST /v1/send` (`{"name", "content_type",
//! "data": "<base64>"}`), read and checked here without I/O: the upload itself (XEP-0363)
//! happens at the edge (`crate::upload`), which then fills in the message this module
//! prepared with the file's URL as body and as an XEP-0066 `jabber:x:oob` URL. When the bot
//! also gave a `body`, that message goes first, as it was described, and the file follows
//! in a message of its own.

use base64::Engine;
use minidom::Element;
use serde_json::{Map, Value};

use super::error::StanzaError;
use super::fields::{stanza_from_fields, Defaults, ReplyError, SendPolicy};
use super::{Kind, COMPONENT_NS};
use crate::xml::scan::is_xml_text;

/// XEP-0066 out-of-band data.
pub const OOB_NS: &str = "jabber:x:oob";
/// The longest file name accepted, in bytes (what file systems take).
pub const MAX_FILE_NAME: usize = 255;
/// The longest media type accepted, in bytes.
const MAX_CONTENT_TYPE: usize = 255;

/// The error a sender gets when the bot's file is larger than the limits.
pub const FILE_TOO_LARGE: StanzaError = StanzaError {
    error_type: "modify",
    condition: "not-acceptable",
    text: Some("The file is too large"),
};
/// The error a sender gets when the bot's file could not be uploaded.
pub const UPLOAD_FAILED: StanzaError = StanzaError {
    error_type: "wait",
    condition: "remote-server-timeout",
    text: Some("The file could not be uploaded"),
};

/// A file to upload, checked: its name, media type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Why a `file` field was refused; each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("field 'file' must be an object {{\"name\", \"content_type\", \"data\"}}")]
    NotAnObject,
    #[error("field 'file.{0}' is required")]
    Missing(&'static str),
    #[error("field 'file.{0}' must be a string")]
    NotAString(&'static str),
    #[error(
        "field 'file.name' must be 1 to {MAX_FILE_NAME} bytes, without '/' or control characters"
    )]
    BadName,
    #[error("field 'file.content_type' is not a media type such as image/png")]
    BadContentType,
    #[error("field 'file.data' is not base64: {0}")]
    NotBase64(String),
    #[error("field 'file' is only for a message, not a {0}")]
    NotAMessage(String),
}

/// The file to upload and the message to send once it is: the URL becomes its body and its
/// `jabber:x:oob` URL ([`PendingFile::message_with_url`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingFile {
    pub attachment: Attachment,
    message: Element,
}

impl PendingFile {
    /// The message carrying the uploaded file's `url`.
    pub fn message_with_url(&self, url: &str) -> Element {
        let mut message = self.message.clone();
        message.append_child(
            Element::builder("body", COMPONENT_NS)
                .append(url.to_string())
                .build(),
        );
        message.append_child(
            Element::builder("x", OOB_NS)
                .append(Element::builder("url", OOB_NS).append(url.to_string()))
                .build(),
        );
        message
    }

    /// The message as it will be sent, without the URL yet (for its address and id).
    pub fn message(&self) -> &Element {
        &self.message
    }

    /// Sets an attribute of the message (the API's id).
    pub fn message_mut(&mut self) -> &mut Element {
        &mut self.message
    }
}

/// Reads `fields["file"]`: `None` when absent (or null). The bytes are decoded here; the
/// size limits are the uploader's (they depend on the service).
pub fn attachment(fields: &Map<String, Value>) -> Result<Option<Attachment>, AttachmentError> {
    let file = match fields.get("file") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(file)) => file,
        Some(_) => return Err(AttachmentError::NotAnObject),
    };
    let name = string(file, "name")?.ok_or(AttachmentError::Missing("name"))?;
    if !is_file_name(name) {
        return Err(AttachmentError::BadName);
    }
    let content_type = string(file, "content_type")?.unwrap_or("application/octet-stream");
    if !is_media_type(content_type) {
        return Err(AttachmentError::BadContentType);
    }
    let data = string(file, "data")?.ok_or(AttachmentError::Missing("data"))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| AttachmentError::NotBase64(e.to_string()))?;
    Ok(Some(Attachment {
        name: name.to_string(),
        content_type: content_type.to_string(),
        data,
    }))
}

/// 1 to [`MAX_FILE_NAME`] bytes, no `/`, backslash or control character: a name the
/// upload services take as one path segment.
pub fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && is_xml_text(name)
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

fn string<'a>(
    file: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, AttachmentError> {
    match file.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(AttachmentError::NotAString(name)),
    }
}

/// `type/subtype` with optional parameters, printable ASCII, as a `Content-Type` header
/// and the slot request's attribute take it.
pub fn is_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    value.len() <= MAX_CONTENT_TYPE
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(kind, sub)| token(kind) && token(sub))
}

/// Splits a described stanza that carries a `file`: the stanzas to send at once, and the
/// file with the message that will carry its URL. Without `file` (or with `stanza`, which
/// wins over every key), `stanza` alone. With a `body`, the stanza as described goes first
/// and the file follows in a message of its own, to the same address, from the same JID,
/// of the same type; without one, the described stanza itself carries the file.
pub fn split_file(
    fields: &Map<String, Value>,
    stanza: Element,
    defaults: &Defaults<'_>,
    policy: &SendPolicy<'_>,
) -> Result<(Vec<Element>, Option<PendingFile>), ReplyError> {
    if fields.get("stanza").is_some_and(|raw| !raw.is_null()) {
        return Ok((vec![stanza], None));
    }
    let Some(attachment) = attachment(fields)? else {
        return Ok((vec![stanza], None));
    };
    if stanza.name() != Kind::Message.as_str() {
        return Err(AttachmentError::NotAMessage(stanza.name().to_string()).into());
    }
    if stanza.get_child("body", COMPONENT_NS).is_none() {
        let pending = PendingFile {
            attachment,
            message: stanza,
        };
        return Ok((Vec::new(), Some(pending)));
    }
    let mut bare = Map::new();
    bare.insert("kind".into(), Value::from("message"));
    for name in ["to", "from", "type"] {
        if let Some(value) = stanza.attr(name) {
            bare.insert(name.into(), Value::from(value));
        }
    }
    let message = stanza_from_fields(&bare, defaults, policy)?;
    Ok((
        vec![stanza],
        Some(PendingFile {
            attachment,
            message,
        }),
    ))
}

#[cfg(test)]
#[path = "attachment_tests.rs"]
mod tests;
