//! Shared integration-test harness: a real Prosody (`prosody`) or ejabberd (`ejabberd`)
//! per test, either behind `xmpp_server::XmppServer`, and real XMPP users driven through
//! slixmpp (`client`), also as group chat occupants (`room_client`); what both server harnesses share is `server_process`. Include it
//! with `mod support;`.
// Each test binary uses only part of the harness.
#![allow(dead_code)]

pub mod c2s_probe;
pub mod client;
pub mod ejabberd;
pub mod process_tree;
pub mod prosody;
pub mod room_client;
pub mod server_process;
pub mod xmpp_server;
