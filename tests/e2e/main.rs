//! End-to-end tests: a real Prosody, a real XMPP client (slixmpp), component-http's `run`
//! and a real HTTP webhook on loopback. One module per area of CONTRACT.md.

#[path = "../support/mod.rs"]
mod support;

mod fixture;
mod webhook;

mod examples;
mod failures;
mod messages;
mod presence_and_iq;
mod robustness;
