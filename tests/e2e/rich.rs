//! Issue 18, rich messages both ways with real clients: a slixmpp user whose own plugins
//! (XEP-0066, 0085, 0184, 0308, 0424, 0444, 0461) build what it sends and parse what it gets
//! (tests/support/xmpp_client.py, rich mode). Each message arrives at the webhook with its
//! JSON key, the webhook answers with that key, and the plugins find the XEP's element in
//! the answer. Then receipts (after a 2xx only, before the reply) and
//! `forward_chat_states = false`.

use std::time::{Duration, Instant};

use minidom::Element;
use serde_json::{json, Value};

use crate::fixture::{wait_component_online, World, WAIT};
use crate::http_api::{scrape, with_api};
use crate::support::client::{to_xml, XmppClient};
use crate::support::xmpp_server::Server;
use crate::webhook_server::Canned;

const BOT: &str = "echo@bot.localhost";
const RECEIPTS_NS: &str = "urn:xmpp:receipts";

/// A logged-in user in rich mode, once the component answers.
async fn rich_client(world: &World, user: &str) -> XmppClient {
    let jid = format!("{user}@localhost");
    let mut client = XmppClient::connect_rich(&jid, "pw", world.server.c2s_port()).await;
    wait_component_online(&mut client).await;
    client
}

fn from_bot(stanza: &Element) -> bool {
    stanza.name() == "message" && stanza.attr("from") == Some(BOT)
}

fn is_receipt(stanza: &Element) -> bool {
    from_bot(stanza) && stanza.has_child("received", RECEIPTS_NS)
}

/// The next message from the bot and what the plugins parsed of it.
async fn bot_answer(client: &mut XmppClient) -> (Element, Value) {
    match client.recv_parsed(WAIT, from_bot).await {
        Some(found) => found,
        None => panic!(
            "no message from {BOT} within {WAIT:?}; client stderr:\n{}",
            client.stderr()
        ),
    }
}

/// The request the webhook was sent for the message `id`.
async fn posted(world: &World, id: &str) -> Value {
    let found = world.webhook().wait_for(WAIT, |r| r.json["id"] == id).await;
    found.json
}

/// Answers each message with the keys it came with: the webhook side of every row.
fn mirror_bot(request: &Value) -> Canned {
    let keys = |name: &str| request.get(name).is_some();
    let answer = if keys("reply") {
        // A reply to the very message, quoting it for old clients.
        json!({ "body": "noted", "reply": { "id": request["id"], "to": request["from"] },
                "fallback": true })
    } else if keys("replace") {
        json!({ "body": "corrected too", "replace": "bot-1" })
    } else if keys("reactions") {
        json!({ "reactions": { "id": request["id"], "reactions": ["🎉"] } })
    } else if keys("retract") {
        json!({ "retract": "bot-1" })
    } else if keys("oob_url") {
        // No body: the daemon writes the URL as the body.
        json!({ "oob_url": "https://example.org/answer.png" })
    } else if keys("state") && !keys("body") {
        json!({ "state": "paused" })
    } else if keys("receipt_request") {
        // The bot gives the receipt itself: the daemon sends no second one.
        json!({ "body": "first seen", "id": "bot-1", "received": request["id"] })
    } else {
        return Canned::raw(204, None, "");
    };
    Canned::json(answer)
}

async fn each_rich_key_arrives_and_goes_back(server: Server) {
    let world = World::start_with_on(server, mirror_bot, "typing_after = 0").await;
    let mut alice = rich_client(&world, "alice").await;
    let alice_jid = alice.full_jid().to_string();

    // A first message asking for a receipt; the bot answers with its own `received`.
    alice
        .send_built(json!({ "to": BOT, "id": "a-1", "body": "first", "request_receipt": true }))
        .await;
    let request = posted(&world, "a-1").await;
    assert_eq!(request["receipt_request"], true, "{request}");
    assert_eq!(request["body"], "first");
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["receipt"], "a-1", "{}", to_xml(&stanza));
    assert_eq!(parsed["body"], "first seen");
    assert_eq!(stanza.attr("id"), Some("bot-1"));

    // (a) An image link with OOB, the URL as body too (as Conversations sends it).
    let url = "https://example.org/cat.png";
    alice
        .send_built(json!({ "to": BOT, "id": "a-2", "body": url, "oob_url": url }))
        .await;
    let request = posted(&world, "a-2").await;
    assert_eq!(request["oob_url"], url, "{request}");
    assert_eq!(request["oob"], json!({ "url": url }), "{request}");
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(
        parsed["oob_url"],
        "https://example.org/answer.png",
        "{}",
        to_xml(&stanza)
    );
    assert_eq!(parsed["body"], "https://example.org/answer.png");

    // (b) A reply to the bot's earlier message; the bot replies to it in turn, quoted.
    alice
        .send_built(json!({ "to": BOT, "id": "a-3", "body": "I agree",
                            "reply": { "id": "bot-1", "to": BOT } }))
        .await;
    let request = posted(&world, "a-3").await;
    assert_eq!(
        request["reply"],
        json!({ "id": "bot-1", "to": BOT }),
        "{request}"
    );
    let (stanza, parsed) = bot_answer(&mut alice).await;
    let xml = to_xml(&stanza);
    assert_eq!(
        parsed["reply"],
        json!({ "id": "a-3", "to": alice_jid }),
        "{xml}"
    );
    assert_eq!(parsed["fallback_body"], "> I agree\n", "{xml}");
    assert_eq!(parsed["stripped_body"], "noted", "{xml}");

    // (c) A correction of the first message.
    alice
        .send_built(json!({ "to": BOT, "id": "a-4", "body": "first!", "replace": "a-1" }))
        .await;
    let request = posted(&world, "a-4").await;
    assert_eq!(request["replace"], "a-1", "{request}");
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["replace_id"], "bot-1", "{}", to_xml(&stanza));
    assert_eq!(parsed["body"], "corrected too");

    // (d) A reaction to the bot's message.
    alice
        .send_built(json!({ "to": BOT, "id": "a-5",
                            "reactions": { "id": "bot-1", "values": ["👍"] } }))
        .await;
    let request = posted(&world, "a-5").await;
    assert_eq!(
        request["reactions"],
        json!({ "id": "bot-1", "reactions": ["👍"] }),
        "{request}"
    );
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(
        parsed["reactions"],
        json!({ "id": "a-5", "values": ["🎉"] }),
        "{}",
        to_xml(&stanza)
    );

    // (e) A retraction of the first message.
    alice
        .send_built(json!({ "to": BOT, "id": "a-6", "retract": "a-1" }))
        .await;
    let request = posted(&world, "a-6").await;
    assert_eq!(request["retract"], "a-1", "{request}");
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["retract_id"], "bot-1", "{}", to_xml(&stanza));

    // (f) A chat state alone: POSTed by default, with its key and no body.
    alice
        .send_built(json!({ "to": BOT, "id": "a-7", "state": "composing" }))
        .await;
    let request = posted(&world, "a-7").await;
    assert_eq!(request["state"], "composing", "{request}");
    assert!(request.get("body").is_none(), "{request}");
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["chat_state"], "paused", "{}", to_xml(&stanza));

    // The bot's own receipt was the only one: the daemon sent none beside it.
    let extra = alice
        .expect_nothing(Duration::from_secs(1), is_receipt)
        .await;
    assert!(
        extra.is_none(),
        "a second receipt: {}",
        extra.map(|s| to_xml(&s)).unwrap_or_default()
    );
}
on_both_servers!(each_rich_key_arrives_and_goes_back);

/// How long the `slow` command keeps the webhook's 200 back.
const SLOW: Duration = Duration::from_millis(1500);

/// The body says what the webhook does: `slow` answers 200 after [`SLOW`], `fail` 503,
/// `late` after the daemon's `timeout`; anything else 204.
fn receipt_bot(request: &Value) -> Canned {
    match request["body"].as_str().unwrap_or_default() {
        "slow" => Canned::json(json!({ "body": "slow done" })).after(SLOW),
        "fail" => Canned::raw(503, Some("text/plain"), "down"),
        "late" => Canned::json(json!({ "body": "too late" })).after(Duration::from_secs(5)),
        _ => Canned::raw(204, None, ""),
    }
}

async fn a_receipt_follows_a_2xx_only(server: Server) {
    let config = "timeout = 3\nretry = { max_attempts = 1 }\ntyping_after = 0";
    let world = World::start_with_on(server, receipt_bot, config).await;
    let mut alice = rich_client(&world, "alice").await;
    let ask = |id: &str, body: &str| json!({ "to": BOT, "id": id, "body": body, "request_receipt": true });

    // A 204: the receipt, and nothing else. Without a request, nothing at all.
    alice.send_built(ask("r-1", "plain")).await;
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["receipt"], "r-1", "{}", to_xml(&stanza));
    assert_eq!(
        stanza.attr("type"),
        None,
        "a receipt has no type: {}",
        to_xml(&stanza)
    );
    alice
        .send_built(json!({ "to": BOT, "id": "r-2", "body": "plain" }))
        .await;
    posted(&world, "r-2").await;
    let nothing = alice.expect_nothing(Duration::from_secs(1), from_bot).await;
    assert!(
        nothing.is_none(),
        "no request, no receipt: {:?}",
        nothing.map(|s| to_xml(&s))
    );

    // A 200 after a delay: the receipt only once the webhook answered, and before the reply.
    let sent = Instant::now();
    alice.send_built(ask("r-3", "slow")).await;
    let (stanza, parsed) = bot_answer(&mut alice).await;
    let waited = sent.elapsed();
    assert_eq!(
        parsed["receipt"],
        "r-3",
        "the receipt comes first: {}",
        to_xml(&stanza)
    );
    assert!(
        waited >= SLOW,
        "the receipt came {waited:?} after sending, before the webhook's 200"
    );
    // The request is on record (the keys of the request are the first test's to check).
    posted(&world, "r-3").await;
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["body"], "slow done", "{}", to_xml(&stanza));

    // A 503 and a timeout: the error, never a receipt.
    for (id, body) in [("r-4", "fail"), ("r-5", "late")] {
        alice.send_built(ask(id, body)).await;
        let (stanza, _) = bot_answer(&mut alice).await;
        assert_eq!(
            stanza.attr("type"),
            Some("error"),
            "{body}: {}",
            to_xml(&stanza)
        );
        assert_eq!(stanza.attr("id"), Some(id));
    }
    // The late webhook's 200 comes 5 s after its request, 2 s after the timeout.
    let receipt = alice
        .expect_nothing(Duration::from_secs(3), is_receipt)
        .await;
    assert!(
        receipt.is_none(),
        "a receipt after a failure: {:?}",
        receipt.map(|s| to_xml(&s))
    );
}
on_both_servers!(a_receipt_follows_a_2xx_only);

async fn chat_states_can_be_kept_from_the_webhook(server: Server) {
    let (config, base) =
        with_api("forward_chat_states = false\nreceipts = false\ntyping_after = 0");
    let world = World::start_on(server, &config).await;
    let mut alice = rich_client(&world, "alice").await;
    let before = scrape(&base).await;
    // A chat state, a chat marker and a receipt, each alone; then a real message.
    alice
        .send_built(json!({ "to": BOT, "id": "n-1", "state": "composing" }))
        .await;
    alice
        .send(&format!(
            "<message to='{BOT}' type='chat' id='n-2'>\
             <displayed xmlns='urn:xmpp:chat-markers:0' id='bot-1'/></message>"
        ))
        .await;
    alice
        .send(&format!(
            "<message to='{BOT}' id='n-3'><received xmlns='{RECEIPTS_NS}' id='bot-1'/>\
             <no-store xmlns='urn:xmpp:hints'/></message>"
        ))
        .await;
    alice
        .send_built(
            json!({ "to": BOT, "id": "n-4", "body": "hello", "state": "active",
                            "request_receipt": true }),
        )
        .await;
    let request = posted(&world, "n-4").await;
    assert_eq!(request["body"], "hello", "{request}");
    // One conversation, in order: had the notices been POSTed, they would be there first.
    let ids: Vec<Value> = world
        .webhook()
        .requests()
        .iter()
        .map(|r| r.json["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!("n-4")],
        "only the message with a body is POSTed"
    );
    let (stanza, parsed) = bot_answer(&mut alice).await;
    assert_eq!(parsed["body"], "Did you say hello?", "{}", to_xml(&stanza));
    // No error for the notices, and no receipt (`receipts = false`).
    let more = alice.expect_nothing(Duration::from_secs(1), from_bot).await;
    assert!(
        more.is_none(),
        "nothing else: {:?}",
        more.map(|s| to_xml(&s))
    );
    let after = scrape(&base).await;
    let key = "component_http_stanzas_refused_total{component=bot.localhost,reason=chat_state}";
    let counted = after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
    assert_eq!(counted, 3.0, "{after:?}");
}
on_both_servers!(chat_states_can_be_kept_from_the_webhook);
