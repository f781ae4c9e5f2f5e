//! A received stanza → the JSON object POSTed to the webhook. This struct is the wire
//! format promised to webhook authors: its five base fields never change meaning.

use serde::Serialize;

use super::xml::write_stanza;
use super::Inbound;

/// The webhook request body (CONTRACT.md, "Request: stanza → webhook").
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
        }
    }

    /// The JSON body, serialised in one pass.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising borrowed strings into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::xml::parse_stanza;
    use serde_json::{json, Value};

    fn request_for(xml: &str) -> Value {
        let inbound = Inbound::new(parse_stanza(xml).expect("valid xml")).expect("a stanza");
        serde_json::from_slice(&WebhookRequest::new(&inbound).to_json()).expect("valid json")
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
}
