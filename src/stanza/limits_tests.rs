//! The bounds on what one stanza can make the daemon do: every recursive walk of an element
//! stays within a tokio thread's stack at the deepest `max_depth` allowed; webhook and API
//! stanzas past the depth are refused before they are built; answers never exceed
//! `max_outgoing_size`, never echo a huge `id`, and come from the address as the server
//! writes it.

use minidom::Element;
use serde_json::json;

use super::error::StanzaError;
use super::fields::ReplyError;
use super::fields::{stanza_from_fields, Defaults, NoRooms, SendPolicy};
use super::reply::write_answers;
use super::reply::{answer, WebhookOutcome};
use super::request::request_body;
use super::{Inbound, Kind, COMPONENT_NS, MAX_ECHOED_ID};
use crate::config::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_OUTGOING_SIZE, MAX_MAX_DEPTH};
use crate::xml::document::parse_stanza;
use crate::xml::outgoing::OutgoingStanza;
use crate::xml::parse::parse_element;
use crate::xml::scope::Scope;
use crate::xml::write::write_stanza;
use crate::xml::XmlError;

const DOMAIN: &str = "bot.example.com";
const POLICY: SendPolicy<'static> = SendPolicy {
    domain: DOMAIN,
    max_depth: DEFAULT_MAX_DEPTH,
    rooms: &NoRooms,
};

/// A message `depth` levels deep (the message is level 1), its root in `namespace`.
fn nested(depth: usize, namespace: &str) -> String {
    format!(
        "<message xmlns='{namespace}' from='a@example.org/r' to='echo@{DOMAIN}' id='m1'>{}{}</message>",
        "<a>".repeat(depth - 1),
        "</a>".repeat(depth - 1),
    )
}

/// A stanza as the stream reader reads it from the server.
fn inbound(text: &str) -> Inbound {
    let mut scope = Scope::new(COMPONENT_NS);
    let element = parse_element(text, &mut scope, DEFAULT_MAX_DEPTH).expect("a stanza");
    Inbound::new(element).expect("an inbound stanza")
}

fn webhook_json(body: serde_json::Value) -> WebhookOutcome {
    WebhookOutcome::Response {
        status: 200,
        content_type: Some("application/json".into()),
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn every_walk_of_the_deepest_allowed_stanza_fits_a_tokio_thread_stack() {
    // tokio's worker and blocking threads get 2 MiB (the daemon keeps tokio's default), and
    // the tests run unoptimised, with larger frames than the release binary.
    const TOKIO_THREAD_STACK: usize = 2 * 1024 * 1024;
    let walks = std::thread::Builder::new()
        .stack_size(TOKIO_THREAD_STACK)
        .spawn(|| {
            // From the server: read, POSTed as JSON, written back, cloned, compared, dropped.
            let text = nested(MAX_MAX_DEPTH, COMPONENT_NS);
            let mut scope = Scope::new(COMPONENT_NS);
            let element = parse_element(&text, &mut scope, MAX_MAX_DEPTH).expect("read");
            let inbound = Inbound::new(element).expect("a stanza");
            let body = request_body(&inbound, None);
            assert!(body.stanza_len > 4 * MAX_MAX_DEPTH);
            assert_eq!(write_stanza(inbound.element()).len(), body.stanza_len);
            assert_eq!(inbound.clone(), inbound);
            drop(inbound);
            // From a webhook, in jabber:client: moved into the component namespace level by
            // level, then written for the stream.
            let reply = parse_stanza(&nested(MAX_MAX_DEPTH, "jabber:client"), MAX_MAX_DEPTH)
                .expect("a reply at the limit");
            assert!(reply.has_ns(COMPONENT_NS));
            OutgoingStanza::write(&reply, usize::MAX).expect("written");
        })
        .expect("a thread");
    walks.join().expect("no walk overflowed the stack");
}

#[test]
fn a_webhook_or_api_stanza_past_the_depth_is_refused_before_it_is_built() {
    for depth in [DEFAULT_MAX_DEPTH + 1, 10_000, 100_000] {
        let text = nested(depth, "jabber:client");
        assert_eq!(
            parse_stanza(&text, DEFAULT_MAX_DEPTH),
            Err(XmlError::TooDeep(DEFAULT_MAX_DEPTH))
        );
    }
    assert!(parse_stanza(&nested(DEFAULT_MAX_DEPTH, COMPONENT_NS), DEFAULT_MAX_DEPTH).is_ok());
    let received = inbound(&format!(
        "<message from='a@example.org/r' to='echo@{DOMAIN}' type='chat'/>"
    ));
    let reply = webhook_json(json!({ "stanza": nested(10_000, "jabber:client") }));
    let answered = answer(received.head(), &reply, &POLICY);
    assert_eq!(
        answered.problem,
        Some(ReplyError::BadStanza(XmlError::TooDeep(DEFAULT_MAX_DEPTH)))
    );
    assert!(write_stanza(&answered.stanzas[0]).contains("internal-server-error"));
}

#[test]
fn an_answer_too_large_to_send_is_replaced_by_an_error_that_fits() {
    let max = DEFAULT_MAX_OUTGOING_SIZE;
    // 100 kB of apostrophes: 600 kB once written.
    let quotes = "'".repeat(100_000);
    let received = inbound(&format!(
        "<message from='a@example.org/r' to='echo@{DOMAIN}' id='m1' type='chat'/>"
    ));
    let answered = answer(
        received.head(),
        &webhook_json(json!({ "body": quotes })),
        &POLICY,
    );
    let written = write_answers(answered.stanzas, received.head(), max);
    assert!(
        matches!(written.problems.as_slice(), [XmlError::TooLarge { max: m, .. }] if *m == max)
    );
    let [error] = written.stanzas.as_slice() else {
        panic!("{:?}", written.stanzas);
    };
    assert!(error.text().len() < 1024, "{}", error.text());
    assert!(error.text().contains("type='error'") && error.text().contains("id='m1'"));
    assert_eq!(error.error_condition(), Some("internal-server-error"));

    // An iq keeps exactly one answer: the message that does not fit is dropped, the result
    // stays.
    let iq = inbound(&format!(
        "<iq from='a@example.org/r' to='echo@{DOMAIN}' id='q1' type='get'><x xmlns='urn:x'/></iq>"
    ));
    let huge = Element::builder("message", COMPONENT_NS)
        .attr(minidom::rxml::xml_ncname!("to").into(), "a@example.org/r")
        .append(
            Element::builder("body", COMPONENT_NS)
                .append(quotes.clone())
                .build(),
        )
        .build();
    let result = super::reply::empty_iq_result(iq.head());
    let written = write_answers(vec![huge, result], iq.head(), max);
    assert_eq!(written.problems.len(), 1);
    assert_eq!(written.stanzas.len(), 1);
    assert!(written.stanzas[0].text().contains("type='result'"));
}

#[test]
fn a_huge_id_is_never_echoed() {
    let long_id = "'".repeat(90_000);
    let escaped = long_id.replace('\'', "&apos;");
    let ping = inbound(&format!(
        "<iq from='a@example.org/r' to='echo@{DOMAIN}' type='get' id='{escaped}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    assert_eq!(ping.id(), None);
    let answers = match super::local::route(&ping, &[Kind::Message], &[DOMAIN.to_string()]) {
        super::local::Route::Local(answers) => answers,
        other => panic!("{other:?}"),
    };
    let written = write_answers(answers, ping.head(), DEFAULT_MAX_OUTGOING_SIZE);
    assert!(written.problems.is_empty());
    assert!(
        written.stanzas[0].text().len() < 200,
        "{}",
        written.stanzas[0].text()
    );
    let bounded = "i".repeat(MAX_ECHOED_ID);
    let at_bound = inbound(&format!(
        "<message from='a@example.org/r' to='echo@{DOMAIN}' id='{bounded}'/>"
    ));
    assert_eq!(at_bound.id(), Some(bounded.as_str()));
    let error = StanzaError::SERVICE_UNAVAILABLE.reply_to(&at_bound);
    assert!(write_stanza(&error.expect("an error")).contains(&bounded));
}

#[test]
fn a_from_the_server_would_refuse_is_sent_in_its_normalised_form() {
    let defaults = Defaults {
        kind: Kind::Message,
        to: Some("a@example.org/r"),
        from: DOMAIN,
        iq_type: "result",
        iq_id: None,
        quoted: crate::stanza::request::Quoted::Nothing,
    };
    for (from, sent) in [
        ("bot@BOT.EXAMPLE.COM", "bot@bot.example.com"),
        ("bot@ｂot.example.com", "bot@bot.example.com"),
        ("BOT.example.com", "bot.example.com"),
        ("Bot@bot.example.com/Res", "bot@bot.example.com/Res"),
        ("bot@bot.example.com", "bot@bot.example.com"),
    ] {
        let fields = json!({ "from": from, "body": "hi" });
        let stanza = stanza_from_fields(fields.as_object().expect("object"), &defaults, &POLICY)
            .unwrap_or_else(|e| panic!("{from}: {e}"));
        assert_eq!(stanza.attr("from"), Some(sent), "{from}");
        let raw = json!({ "stanza": format!("<message from='{from}' to='a@example.org'/>") });
        let stanza = stanza_from_fields(raw.as_object().expect("object"), &defaults, &POLICY)
            .unwrap_or_else(|e| panic!("{from}: {e}"));
        assert_eq!(stanza.attr("from"), Some(sent), "raw {from}");
    }
    // The `to` a reply's `from` is copied from is normalised as it is read.
    let received = inbound("<message from='a@example.org/r' to='Echo@Bot.Example.COM'/>");
    assert_eq!(received.to(), "echo@bot.example.com");
    let fields = json!({ "from": "bot@evil.example.com", "body": "hi" });
    assert!(matches!(
        stanza_from_fields(fields.as_object().expect("object"), &defaults, &POLICY),
        Err(ReplyError::ForeignFrom { .. })
    ));
}

#[test]
fn an_iq_result_to_someone_else_does_not_answer_the_iq() {
    let iq = inbound(&format!(
        "<iq from='a@example.org/r' to='echo@{DOMAIN}' id='q1' type='get'><x xmlns='urn:x'/></iq>"
    ));
    let reply = webhook_json(json!({ "stanza": format!(
        "<iq type='result' id='q1' to='mallory@example.org/x' from='echo@{DOMAIN}'/>"
    ) }));
    let answered = answer(iq.head(), &reply, &POLICY);
    let to_sender: Vec<_> = answered
        .stanzas
        .iter()
        .filter(|s| s.attr("to") == Some("a@example.org/r"))
        .collect();
    assert_eq!(to_sender.len(), 1, "{:?}", answered.stanzas);
    assert_eq!(to_sender[0].attr("type"), Some("result"));
    // The same answer written otherwise (case) is the answer.
    let reply = webhook_json(json!({ "stanza": format!(
        "<iq type='result' id='q1' to='A@EXAMPLE.ORG/r' from='echo@{DOMAIN}'/>"
    ) }));
    assert_eq!(answer(iq.head(), &reply, &POLICY).stanzas.len(), 1);
}
