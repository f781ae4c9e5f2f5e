//! End-to-end tests: a real XMPP server, a real XMPP client (slixmpp), component-http's `run`
//! and a real HTTP webhook on loopback. One module per area of docs/contract.md. Every test
//! body runs twice, as `name::prosody` and `name::ejabberd` (`on_both_servers!` in
//! fixture.rs), except where a module says it needs one server's behaviour (instances).
//! Built only with `--features system-tests` (Cargo.toml): `cargo test --features
//! system-tests --test e2e`.

#[path = "../support/mod.rs"]
mod support;

#[macro_use]
mod fixture;
mod webhook_server;

mod api_fuzz;
mod delivery_log;
mod examples;
mod failures;
mod files;
mod hostile_api;
mod hostile_dispatch;
mod hostile_stanzas;
mod http_api;
mod instances;
mod messages;
mod presence_and_iq;
mod reliability;
mod rich;
mod robustness;
mod rooms;
