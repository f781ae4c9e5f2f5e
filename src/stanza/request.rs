//! A received stanza → the JSON object POSTed to the webhook. [`WebhookRequest`] is the wire
//! format promised to webhook authors (its five base fields never change meaning);
//! [`request_body`] writes the same JSON in one pass, the stanza's XML escaped straight into
//! its JSON string, with no intermediate text.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::rich_read::{read_rich, RichKeys};
use super::{Inbound, Kind};
use crate::xml::scan::escape_with;
use crate::xml::write::{write_element, write_stanza, xml_entity, XmlSink};
use crate::xml::COMPONENT_NS;

/// The webhook request body (docs/contract.md, "Request: stanza → webhook").
#[derive(Debug, Serialize, PartialEq)]
pub struct WebhookRequest<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub kind: &'static str,
    /// The full stanza as XML text, as received.
    pub stanza: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub stanza_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// The rich keys (docs/contract.md, "Rich messages"), each only when present.
    #[serde(flatten)]
    pub rich: RichKeys<'a>,
}

impl<'a> WebhookRequest<'a> {
    pub fn new(inbound: &'a Inbound) -> WebhookRequest<'a> {
        WebhookRequest {
            to: inbound.to(),
            from: inbound.from(),
            kind: inbound.kind().as_str(),
            stanza: write_stanza(inbound.element()),
            body: inbound.body(),
            stanza_type: inbound.stanza_type(),
            id: inbound.id(),
            rich: read_rich(inbound, None),
        }
    }

    /// The JSON body, serialised in one pass.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising borrowed strings into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What a reply with `fallback: true` quotes when its `reply` has no `quote` (XEP-0461): the
/// body of the message the webhook answers, found only when a reply asks for it, so that
/// no call keeps a second copy of its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Quoted<'a> {
    /// Nothing to quote (an API send, a stanza that is not a message).
    #[default]
    Nothing,
    /// This text.
    Text(&'a str),
    /// The `body` field of this webhook request JSON, as [`request_body`] wrote it.
    Request(&'a [u8]),
}

impl<'a> Quoted<'a> {
    /// The text to quote, if any.
    pub fn text(self) -> Option<Cow<'a, str>> {
        /// The one field of a request that is read back.
        #[derive(Deserialize)]
        struct Body {
            body: Option<String>,
        }
        match self {
            Quoted::Nothing => None,
            Quoted::Text(text) => Some(Cow::Borrowed(text)),
            Quoted::Request(json) => serde_json::from_slice::<Body>(json)
                .ok()?
                .body
                .map(Cow::Owned),
        }
    }
}

/// The fields a stanza from a room adds to the webhook request (docs/contract.md, "Group
/// chats"), made by [`crate::room`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomFields {
    /// The room's bare JID.
    pub room: String,
    /// The sender's nick in the room; `None` for what the room itself sends.
    pub nick: Option<String>,
    /// Its XEP-0421 occupant id, when the stanza carries one.
    pub occupant_id: Option<String>,
    /// Its real JID, when the room showed it.
    pub occupant_jid: Option<String>,
    /// Whether the message is for the bot: a private message always is; a groupchat one
    /// names it. `None` for a presence.
    pub mentioned: Option<bool>,
}

/// A webhook request body, with what the dispatcher checks and shows about it.
#[derive(Debug)]
pub struct RequestBody {
    /// The JSON object, as [`WebhookRequest`] serialises it.
    pub json: Vec<u8>,
    /// The length of the `stanza` XML text (what `max_stanza_size` bounds).
    pub stanza_len: usize,
    pub has_body: bool,
}

/// The JSON body POSTed for `inbound`: the base fields of [`WebhookRequest`], in its order,
/// then those of `room` when it came from one of the bot's rooms, then the rich keys.
pub fn request_body(inbound: &Inbound, room: Option<&RoomFields>) -> RequestBody {
    let body = match inbound.kind() {
        Kind::Message => inbound.body_element(),
        _ => None,
    };
    // A large message is mostly its body, which the JSON holds twice (in `stanza` and in
    // `body`): room for both at once spares the copies of growing into it.
    let body_len: usize = body.map_or(0, |b| b.texts().map(str::len).sum());
    let mut json = JsonString {
        out: Vec::with_capacity(512 + 2 * body_len),
        xml_len: 0,
    };
    json.field("{\"to\":", inbound.to());
    json.field(",\"from\":", inbound.from());
    json.field(",\"kind\":", inbound.kind().as_str());
    json.out.extend_from_slice(b",\"stanza\":\"");
    write_element(inbound.element(), COMPONENT_NS, &mut json);
    json.out.push(b'"');
    let stanza_len = json.xml_len;
    if let Some(body) = body {
        json.out.extend_from_slice(b",\"body\":\"");
        for text in body.texts() {
            json.escape(text, None);
        }
        json.out.push(b'"');
    }
    if let Some(stanza_type) = inbound.stanza_type() {
        json.field(",\"type\":", stanza_type);
    }
    if let Some(id) = inbound.id() {
        json.field(",\"id\":", id);
    }
    if let Some(room) = room {
        json.room(room);
    }
    read_rich(inbound, room.map(|room| room.room.as_str())).write_json(&mut json);
    json.out.push(b'}');
    // It may wait long for a worker: keep no spare capacity.
    json.out.shrink_to_fit();
    RequestBody {
        json: json.out,
        stanza_len,
        has_body: body.is_some(),
    }
}

/// Text going into a JSON string; for XML text (`xml: Some(in_attribute)`), escaped for XML
/// first, in the same pass. `xml_len` counts the XML text written.
pub(super) struct JsonString {
    pub(super) out: Vec<u8>,
    xml_len: usize,
}

impl JsonString {
    fn room(&mut self, room: &RoomFields) {
        self.field(",\"room\":", &room.room);
        if let Some(nick) = &room.nick {
            self.field(",\"occupant\":{\"nick\":", nick);
            if let Some(id) = &room.occupant_id {
                self.field(",\"id\":", id);
            }
            if let Some(jid) = &room.occupant_jid {
                self.field(",\"jid\":", jid);
            }
            self.out.push(b'}');
        }
        if let Some(mentioned) = room.mentioned {
            self.out.extend_from_slice(if mentioned {
                b",\"mentioned\":true"
            } else {
                b",\"mentioned\":false"
            });
        }
    }

    pub(super) fn field(&mut self, name: &str, value: &str) {
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'"');
        self.escape(value, None);
        self.out.push(b'"');
    }

    fn escape(&mut self, text: &str, xml: Option<bool>) {
        let mut entities_len = 0;
        let escape = |byte| match xml.and_then(|in_attribute| xml_entity(byte, in_attribute)) {
            Some(entity) => {
                entities_len += entity.len() - 1;
                Some(entity)
            }
            None => json_escape(byte),
        };
        let out = &mut self.out;
        escape_with(text, escape, |piece| {
            out.extend_from_slice(piece.as_bytes())
        });
        if xml.is_some() {
            self.xml_len += text.len() + entities_len;
        }
    }
}

/// How JSON writes `byte` inside a string, when not as itself.
fn json_escape(byte: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    match byte {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        0..=0x1F => Some(CONTROL[usize::from(byte)]),
        _ => None,
    }
}

impl XmlSink for JsonString {
    fn markup(&mut self, markup: &str) {
        // Names and markup hold no quote, backslash or control character.
        self.out.extend_from_slice(markup.as_bytes());
        self.xml_len += markup.len();
    }

    fn text(&mut self, text: &str) {
        self.escape(text, Some(false));
    }

    fn attribute_value(&mut self, value: &str) {
        self.escape(value, Some(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The one-pass body, checked against serde's serialisation of [`WebhookRequest`].
    fn request_for(xml: &str) -> Value {
        let inbound = Inbound::from_test_xml(xml);
        let body = request_body(&inbound, None);
        let request = WebhookRequest::new(&inbound);
        assert_eq!(body.stanza_len, request.stanza.len(), "{xml}");
        assert_eq!(body.has_body, request.body.is_some(), "{xml}");
        assert_eq!(
            String::from_utf8(body.json).expect("utf-8"),
            String::from_utf8(request.to_json()).expect("utf-8"),
            "{xml}"
        );
        serde_json::from_slice(&request.to_json()).expect("valid json")
    }

    #[test]
    fn one_pass_body_escapes_for_xml_and_json_at_once() {
        let xml = "<message to='a@bot.b' from='c@d/\u{e9}\\\"' id='&quot;&#9;&#10;&#13;'>\
                   <body xml:lang='en'>no</body><body>tab\tline\r\nback\\slash \"q\" &amp; &lt;&gt; \u{2028}</body>\
                   <x xmlns='urn:a&amp;b' xmlns:p='urn:p' p:attr='v\\'>&apos;\u{1F389}</x></message>";
        let request = request_for(xml);
        // A literal CR LF is one line feed to an XML parser.
        assert_eq!(
            request["body"],
            "tab\tline\nback\\slash \"q\" & <> \u{2028}"
        );
        assert_eq!(request["id"], "\"\t\n\r");
        for xml in [
            "<presence from='a@b/c'/>",
            "<iq from='a@b/c' to='bot.b' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<message from='a@b/c'><body/></message>",
            "<message from='a@b/c'><body>a<![CDATA[<b>]]>c</body></message>",
        ] {
            request_for(xml);
        }
    }

    #[test]
    fn message_request_has_the_five_fields() {
        let xml = "<message to='foobar@bot.example.com' from='alice@example.com/phone' \
                   type='chat' id='m1' xml:lang='en'><body>Hello</body></message>";
        assert_eq!(
            request_for(xml),
            json!({
                "to": "foobar@bot.example.com",
                "from": "alice@example.com/phone",
                "kind": "message",
                "stanza": "<message from='alice@example.com/phone' id='m1' \
                           to='foobar@bot.example.com' type='chat' xml:lang='en'>\
                           <body>Hello</body></message>",
                "body": "Hello",
                "type": "chat",
                "id": "m1",
            })
        );
    }

    #[test]
    fn stanza_keeps_unknown_extensions_in_order() {
        let xml = "<message to='a@bot.b' from='c@d/e'><thread>t1</thread>\
                   <x xmlns='urn:example:custom' v='1'><deep>é &amp; ü</deep></x>\
                   <body>b</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
        let request = request_for(xml);
        assert_eq!(
            request["stanza"],
            "<message from='c@d/e' to='a@bot.b'><thread>t1</thread>\
             <x xmlns='urn:example:custom' v='1'><deep>é &amp; ü</deep></x>\
             <body>b</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        );
    }

    #[test]
    fn presence_and_iq_have_no_body() {
        let presence = request_for("<presence to='bot.b' from='c@d/e' type='subscribe'/>");
        assert_eq!(presence["kind"], "presence");
        assert_eq!(presence.get("body"), None);
        assert_eq!(presence["type"], "subscribe");
        let iq = request_for(
            "<iq to='bot.b' from='c@d/e' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>",
        );
        assert_eq!(iq["kind"], "iq");
        assert_eq!(iq["id"], "q");
        assert_eq!(iq.get("body"), None);
    }

    #[test]
    fn unicode_and_large_bodies_pass_through() {
        let body = "héllo wörld 🎉 ".repeat(1500);
        let xml = format!("<message to='a@bot.b' from='c@d/e'><body>{body}</body></message>");
        let request = request_for(&xml);
        assert_eq!(request["body"], body.as_str());
        assert!(request["stanza"].as_str().expect("text").contains(&body));
    }

    #[test]
    fn the_quote_is_the_body_read_back_from_the_request() {
        let quoted = |xml: &str| {
            let inbound = Inbound::from_test_xml(xml);
            let json = request_body(&inbound, None).json;
            let text = Quoted::Request(&json).text().map(Cow::into_owned);
            assert_eq!(text, inbound.body(), "{xml}");
            text
        };
        let tricky = "<message to='a@bot.b' from='c@d/e'><body xml:lang='de'>hallo</body>\
                      <body>\"a\" &amp; &lt;b&gt;\\\n\u{1F389}</body><x xmlns='urn:x'/></message>";
        assert_eq!(quoted(tricky).as_deref(), Some("\"a\" & <b>\\\n\u{1F389}"));
        let none = "<message to='a@bot.b' from='c@d/e'><x xmlns='urn:x'>body</x></message>";
        assert_eq!(quoted(none), None);
        assert_eq!(quoted("<presence to='a@bot.b' from='c@d/e'/>"), None);
        // A request that is not what request_body writes quotes nothing (never a panic).
        assert_eq!(Quoted::Request(b"[1, 2").text(), None);
    }

    #[test]
    fn a_room_message_adds_the_room_fields() {
        let inbound = Inbound::from_test_xml(
            "<message to='bot.b/EchoBot' from='lobby@c.b/alice \"x\"' type='groupchat' id='g'>\
             <body>EchoBot: hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='lobby@c.b' id='s1'/>\
             </message>",
        );
        let fields = RoomFields {
            room: "lobby@c.b".into(),
            nick: Some("alice \"x\"".into()),
            occupant_id: Some("o1".into()),
            occupant_jid: None,
            mentioned: Some(true),
        };
        let body = request_body(&inbound, Some(&fields));
        let json: Value = serde_json::from_slice(&body.json).expect("valid json");
        assert_eq!(json["room"], "lobby@c.b");
        assert_eq!(json["occupant"], json!({"nick": "alice \"x\"", "id": "o1"}));
        assert_eq!(json["mentioned"], true);
        assert_eq!(json["stanza_id"], "s1");
        assert_eq!(json["body"], "EchoBot: hi");
        let presence = RoomFields {
            nick: None,
            mentioned: None,
            ..fields
        };
        let body = request_body(&inbound, Some(&presence));
        let json: Value = serde_json::from_slice(&body.json).expect("valid json");
        assert_eq!(json.get("occupant"), None);
        assert_eq!(json.get("mentioned"), None);
    }
}
