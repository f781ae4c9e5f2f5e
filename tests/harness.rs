//! Smoke test of the integration-test harness itself (tests/support), on each server
//! (Prosody, ejabberd): two real slixmpp clients, message routing, a bogus message type, an
//! iq ping, and the stop / kill -9 / restart cycle that later tests rely on. No
//! component-http involved.

mod support;

use std::time::Duration;

use minidom::Element;
use support::client::{to_xml, XmppClient};
use support::xmpp_server::{Server, XmppServer};

const T: Duration = Duration::from_secs(10);
const CLIENT_NS: &str = "jabber:client";
const STREAMS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

fn is_message_with_body(el: &Element) -> bool {
    el.is("message", CLIENT_NS) && el.get_child("body", CLIENT_NS).is_some()
}

fn is_iq_with_id(id: &'static str) -> impl Fn(&Element) -> bool {
    move |el| el.is("iq", CLIENT_NS) && el.attr("id") == Some(id)
}

#[tokio::test]
async fn harness_smoke_prosody() {
    harness_smoke(Server::Prosody).await;
}

#[tokio::test]
async fn harness_smoke_ejabberd() {
    harness_smoke(Server::Ejabberd).await;
}

async fn harness_smoke(kind: Server) {
    let mut server = kind.start(
        &[("bot.localhost", "secret")],
        &[("alice", "pw"), ("bob", "pw")],
    );
    println!(
        "{} in {:?}, c2s {}, component {}",
        kind.name(),
        server.dir(),
        server.c2s_port(),
        server.component_port()
    );
    std::net::TcpStream::connect(("127.0.0.1", server.component_port()))
        .expect("component port accepts TCP");

    let mut alice = XmppClient::connect("alice@localhost", "pw", server.c2s_port()).await;
    let mut bob = XmppClient::connect("bob@localhost/phone", "pw", server.c2s_port()).await;
    assert!(
        alice.full_jid().starts_with("alice@localhost/"),
        "{}",
        alice.full_jid()
    );
    assert_eq!(bob.full_jid(), "bob@localhost/phone");

    // 1. A chat message to bob's bare JID reaches his client.
    alice
        .send("<message to='bob@localhost' type='chat' id='m1'>\n<body>hello bob</body></message>")
        .await;
    let msg = bob
        .recv_matching(T, is_message_with_body)
        .await
        .expect("bob gets alice's message");
    println!("bob received: {}", to_xml(&msg));
    assert_eq!(
        msg.get_child("body", CLIENT_NS).map(|b| b.text()),
        Some("hello bob".into())
    );
    assert_eq!(msg.attr("from"), Some(alice.full_jid()));
    assert_eq!(msg.attr("type"), Some("chat"));

    // 2. An invalid message type: just observe what the server does with it.
    alice
        .send("<message type='bogus' to='bob@localhost'><body>x</body></message>")
        .await;
    let at_bob = bob
        .recv_matching(Duration::from_secs(2), is_message_with_body)
        .await;
    println!(
        "bogus type, bob received: {:?}",
        at_bob.as_ref().map(to_xml)
    );
    let at_alice = alice
        .recv_matching(Duration::from_secs(1), |el| el.is("message", CLIENT_NS))
        .await;
    println!(
        "bogus type, alice received: {:?}",
        at_alice.as_ref().map(to_xml)
    );

    // 3. The server answers an iq ping itself; the client prints it and answers nothing.
    alice
        .send("<iq type='get' to='localhost' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = alice
        .recv_matching(T, is_iq_with_id("ping1"))
        .await
        .expect("ping result");
    println!("ping answer: {}", to_xml(&pong));
    assert_eq!(pong.attr("type"), Some("result"));
    assert_eq!(pong.attr("from"), Some("localhost"));

    // 4. An iq get to a client is delivered and left unanswered by the script.
    let bob_jid = bob.full_jid().to_owned();
    alice
        .send(&format!(
            "<iq type='get' to='{bob_jid}' id='v1'><query xmlns='jabber:iq:version'/></iq>"
        ))
        .await;
    let get = bob
        .recv_matching(T, is_iq_with_id("v1"))
        .await
        .expect("bob gets the iq get");
    assert_eq!(get.attr("type"), Some("get"));
    let answer = alice
        .expect_nothing(Duration::from_secs(1), is_iq_with_id("v1"))
        .await;
    assert!(
        answer.is_none(),
        "bob's client must not answer: {:?}",
        answer.as_ref().map(to_xml)
    );

    // 5. Graceful stop: clients get a system-shutdown stream error.
    server.stop();
    assert!(
        alice.wait_disconnected(T).await,
        "alice disconnected by stop()"
    );
    assert!(bob.wait_disconnected(T).await, "bob disconnected by stop()");
    println!(
        "stream errors at alice: {:?}",
        alice.stream_errors.iter().map(to_xml).collect::<Vec<_>>()
    );
    assert!(
        alice
            .stream_errors
            .iter()
            .any(|e| e.get_child("system-shutdown", STREAMS_NS).is_some()),
        "{}",
        server.log_tail()
    );

    // 6. Restart (same ports, same users), then kill -9: no stream error this time.
    server.restart();
    let mut bob = XmppClient::connect("bob@localhost", "pw", server.c2s_port()).await;
    server.kill9();
    assert!(!server.is_running());
    assert!(
        bob.wait_disconnected(T).await,
        "bob disconnected by kill9()"
    );
    assert!(
        bob.stream_errors.is_empty(),
        "kill -9 sends no stream error"
    );

    // 7. And back again: the data survived, ping works.
    server.restart();
    let mut alice = XmppClient::connect("alice@localhost", "pw", server.c2s_port()).await;
    alice
        .send("<iq type='get' to='localhost' id='ping2'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = alice
        .recv_matching(T, is_iq_with_id("ping2"))
        .await
        .expect("ping after restart");
    assert_eq!(pong.attr("type"), Some("result"));
    let status = alice.close().await;
    assert!(status.success(), "clean exit on stdin EOF: {status}");

    // 8. ejabberd runs as a tree of processes (su, sh, beam.smp, erl_child_setup, ...):
    // dropping it leaves none of them behind.
    if let XmppServer::Ejabberd(ejabberd) = &server {
        let processes = ejabberd.process_tree();
        assert!(processes.iter().any(|p| p.is_beam()), "{processes:?}");
        drop(server);
        let left: Vec<_> = processes.iter().filter(|p| p.is_alive()).collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// ejabberd may not have written users registered a moment before a kill -9: the harness
/// registers them again on restart, so a test's client still logs in.
#[tokio::test]
async fn users_log_in_after_a_kill_right_after_registration() {
    for kind in [Server::Prosody, Server::Ejabberd] {
        let mut server = kind.start(&[], &[("carol", "pw")]);
        server.kill9();
        server.restart();
        let carol = XmppClient::connect("carol@localhost", "pw", server.c2s_port()).await;
        assert!(
            carol.full_jid().starts_with("carol@localhost/"),
            "{}",
            kind.name()
        );
    }
}
