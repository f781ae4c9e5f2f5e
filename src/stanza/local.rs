//! What the component answers by itself, without the webhook: the always-online contact's
//! presence, XEP-0199 ping, XEP-0030 disco#info, and errors for what nobody handles; and
//! the loop guard, which keeps stanzas from the component's own domains from the webhook.

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::error::StanzaError;
use super::reply::empty_iq_result;
use super::{bare, Inbound, Kind, COMPONENT_NS};
use crate::xml::set_attr;

const PING_NS: &str = "urn:xmpp:ping";
const DISCO_INFO_NS: &str = "http://jabber.org/protocol/disco#info";

/// Where a received stanza goes.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// POST it to the webhook.
    Webhook,
    /// Send these stanzas back (possibly none) and do nothing else.
    Local(Vec<Element>),
    /// A stanza for the webhook whose sender is on one of `guarded` domains (the domains
    /// this process serves): drop it, unanswered. A webhook that answers an address on its
    /// own domain (or the domain of another component of this process) would otherwise be
    /// sent its answer, answer that, and so on for ever; an error in answer would go back
    /// to our own domain as well. What the component answers itself ends by itself (an
    /// error or a result is never answered), so it is not guarded.
    OwnDomain,
}

/// Stanzas of a forwarded kind go to the webhook, unless their sender is on one of
/// `guarded` domains (empty: `forward_from_own_domains`); the rest are answered here.
pub fn route(inbound: &Inbound, forwarded: &[Kind], guarded: &[String]) -> Route {
    if forwarded.contains(&inbound.kind()) {
        let sender = domain_of(inbound.from());
        if guarded.iter().any(|own| own.eq_ignore_ascii_case(sender)) {
            return Route::OwnDomain;
        }
        return Route::Webhook;
    }
    Route::Local(match inbound.kind() {
        Kind::Presence => presence_answer(inbound),
        Kind::Iq => iq_answer(inbound).into_iter().collect(),
        Kind::Message => StanzaError::SERVICE_UNAVAILABLE
            .reply_to(inbound)
            .into_iter()
            .collect(),
    })
}

/// The domain of an address (`node@domain/resource`; the resource may hold any character,
/// the bare part not another '@' or '/'), without the trailing dot a fully qualified name
/// may carry. The server stamps `from` itself, so no other normalisation is needed.
fn domain_of(jid: &str) -> &str {
    let bare = jid.split_once('/').map_or(jid, |(bare, _)| bare);
    let domain = bare.rsplit_once('@').map_or(bare, |(_, domain)| domain);
    domain.strip_suffix('.').unwrap_or(domain)
}

/// The always-online contact: from `<bare JID>/default`, accept every subscription.
fn presence_answer(inbound: &Inbound) -> Vec<Element> {
    let from = format!("{}/default", bare(inbound.to()));
    let presence = |presence_type: Option<&str>| {
        let mut stanza = Element::bare("presence", COMPONENT_NS);
        set_attr(&mut stanza, xml_ncname!("from"), &from);
        set_attr(&mut stanza, xml_ncname!("to"), inbound.from());
        if let Some(value) = presence_type {
            set_attr(&mut stanza, xml_ncname!("type"), value);
        }
        stanza
    };
    match inbound.stanza_type() {
        Some("probe") => vec![presence(None)],
        Some("subscribe") => vec![presence(Some("subscribed")), presence(None)],
        Some("unsubscribe") => vec![presence(Some("unavailable"))],
        _ => Vec::new(),
    }
}

/// Ping and disco#info get their answer; any other get/set is `service-unavailable`.
fn iq_answer(inbound: &Inbound) -> Option<Element> {
    if !inbound.is_iq_request() {
        return None;
    }
    let payload = inbound.element().children().next();
    let is_get = inbound.stanza_type() == Some("get");
    match payload {
        Some(child) if is_get && child.is("ping", PING_NS) => Some(empty_iq_result(inbound)),
        Some(child) if is_get && child.is("query", DISCO_INFO_NS) => {
            let mut result = empty_iq_result(inbound);
            result.append_child(disco_info(inbound, child.attr("node")));
            Some(result)
        }
        _ => StanzaError::SERVICE_UNAVAILABLE.reply_to(inbound),
    }
}

fn disco_info(inbound: &Inbound, node: Option<&str>) -> Element {
    let mut query = Element::bare("query", DISCO_INFO_NS);
    if let Some(node) = node {
        set_attr(&mut query, xml_ncname!("node"), node);
    }
    let is_domain = !inbound.to().contains('@');
    let (category, identity_type) = if is_domain {
        ("component", "generic")
    } else {
        ("client", "bot")
    };
    let mut identity = Element::bare("identity", DISCO_INFO_NS);
    set_attr(&mut identity, xml_ncname!("category"), category);
    set_attr(&mut identity, xml_ncname!("type"), identity_type);
    set_attr(&mut identity, xml_ncname!("name"), "component-http");
    query.append_child(identity);
    for var in [DISCO_INFO_NS, PING_NS] {
        let mut feature = Element::bare("feature", DISCO_INFO_NS);
        set_attr(&mut feature, xml_ncname!("var"), var);
        query.append_child(feature);
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::write::write_stanza;

    fn local(xml: &str, forwarded: &[Kind]) -> Vec<String> {
        routed(xml, forwarded, &["bot.example.com".into(), "bot.b".into()])
    }

    fn routed(xml: &str, forwarded: &[Kind], guarded: &[String]) -> Vec<String> {
        let inbound = Inbound::from_test_xml(xml);
        match route(&inbound, forwarded, guarded) {
            Route::Local(stanzas) => stanzas.iter().map(write_stanza).collect(),
            Route::Webhook => vec!["webhook".into()],
            Route::OwnDomain => vec!["dropped".into()],
        }
    }

    const MESSAGES: &[Kind] = &[Kind::Message];

    #[test]
    fn probe_gets_available_presence_from_default_resource() {
        assert_eq!(
            local(
                "<presence from='alice@example.com' to='echo@bot.example.com' type='probe'/>",
                MESSAGES
            ),
            ["<presence from='echo@bot.example.com/default' to='alice@example.com'/>"]
        );
    }

    #[test]
    fn subscribe_is_accepted_then_available() {
        assert_eq!(
            local("<presence from='alice@example.com' to='echo@bot.example.com' type='subscribe'/>", MESSAGES),
            [
                "<presence from='echo@bot.example.com/default' to='alice@example.com' type='subscribed'/>",
                "<presence from='echo@bot.example.com/default' to='alice@example.com'/>",
            ]
        );
    }

    #[test]
    fn unsubscribe_gets_unavailable_and_others_nothing() {
        assert_eq!(
            local(
                "<presence from='a@b' to='echo@bot.b' type='unsubscribe'/>",
                MESSAGES
            ),
            ["<presence from='echo@bot.b/default' to='a@b' type='unavailable'/>"]
        );
        assert!(local("<presence from='a@b/c' to='echo@bot.b'/>", MESSAGES).is_empty());
        assert!(local(
            "<presence from='a@b' to='echo@bot.b' type='subscribed'/>",
            MESSAGES
        )
        .is_empty());
    }

    #[test]
    fn forwarded_kinds_go_to_the_webhook() {
        let all = &[Kind::Message, Kind::Presence, Kind::Iq];
        assert_eq!(
            local("<presence from='a@b' to='e@bot.b' type='probe'/>", all),
            ["webhook"]
        );
        assert_eq!(
            local("<iq from='a@b/c' to='bot.b' type='get' id='1'/>", all),
            ["webhook"]
        );
        assert_eq!(
            local("<message from='a@b/c' to='bot.b'/>", MESSAGES),
            ["webhook"]
        );
    }

    #[test]
    fn ping_gets_an_empty_result() {
        assert_eq!(
            local(
                "<iq from='a@b/c' to='bot.b' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
                MESSAGES
            ),
            ["<iq from='bot.b' id='p1' to='a@b/c' type='result'/>"]
        );
    }

    #[test]
    fn disco_info_lists_identity_and_features() {
        let answer = local(
            "<iq from='a@b/c' to='bot.b' type='get' id='d1'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            MESSAGES,
        );
        assert_eq!(
            answer,
            ["<iq from='bot.b' id='d1' to='a@b/c' type='result'>\
              <query xmlns='http://jabber.org/protocol/disco#info'>\
              <identity category='component' name='component-http' type='generic'/>\
              <feature var='http://jabber.org/protocol/disco#info'/>\
              <feature var='urn:xmpp:ping'/></query></iq>"]
        );
    }

    #[test]
    fn other_iq_requests_are_service_unavailable_and_results_ignored() {
        assert_eq!(
            local("<iq from='a@b/c' to='bot.b' type='set' id='s1'><query xmlns='jabber:iq:roster'/></iq>", MESSAGES),
            ["<iq from='bot.b' id='s1' to='a@b/c' type='error'><error type='cancel'>\
              <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"]
        );
        assert!(local(
            "<iq from='a@b/c' to='bot.b' type='result' id='r1'/>",
            MESSAGES
        )
        .is_empty());
        assert!(local(
            "<iq from='a@b/c' to='bot.b' type='error' id='r1'/>",
            MESSAGES
        )
        .is_empty());
    }

    #[test]
    fn unforwarded_message_is_service_unavailable() {
        assert_eq!(
            local("<message from='a@b/c' to='e@bot.b' id='m'/>", &[Kind::Iq]),
            [
                "<message from='e@bot.b' id='m' to='a@b/c' type='error'><error type='cancel'>\
              <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
            ]
        );
    }

    #[test]
    fn stanzas_from_our_own_domains_are_not_for_the_webhook() {
        let guarded = ["bot.b".to_string(), "other.b".to_string()];
        let all = &[Kind::Message, Kind::Presence, Kind::Iq];
        for from in [
            "echo@bot.b",
            "echo@bot.b/r",
            "bot.b",
            "bot.b/r@x",
            "x@other.b",
            "x@OTHER.B",
            "x@bot.b./r",
        ] {
            let xml = format!("<message from='{from}' to='echo@bot.b'><body>hi</body></message>");
            assert_eq!(routed(&xml, all, &guarded), ["dropped"], "{from}");
        }
        for from in [
            "a@b",
            "bot.b@example.com",
            "a@example.com/bot.b",
            "a@example.com/x@bot.b",
            "a@sub.bot.b",
            "a@bot.b.evil",
        ] {
            let xml = format!("<message from='{from}' to='echo@bot.b'><body>hi</body></message>");
            assert_eq!(routed(&xml, all, &guarded), ["webhook"], "{from}");
        }
        // Errors from our own domain are dropped as well (never answered anyway).
        assert_eq!(
            routed(
                "<message from='e@bot.b' to='f@bot.b' type='error'/>",
                all,
                &guarded
            ),
            ["dropped"]
        );
        // forward_from_own_domains: nothing guarded.
        assert_eq!(
            routed("<message from='e@bot.b' to='f@bot.b'/>", all, &[]),
            ["webhook"]
        );
    }

    #[test]
    fn what_we_answer_ourselves_is_answered_to_our_own_domain_too() {
        // A ping from our own domain gets its result, which is never answered: no loop.
        assert_eq!(
            local(
                "<iq from='bot.b' to='e@bot.b' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
                MESSAGES
            ),
            ["<iq from='e@bot.b' id='p' to='bot.b' type='result'/>"]
        );
    }
}
