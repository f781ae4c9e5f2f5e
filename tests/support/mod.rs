//! Shared integration-test harness: a real Prosody per test (`prosody`) and real XMPP
//! users driven through slixmpp (`client`). Include it with `mod support;`.
// Each test binary uses only part of the harness.
#![allow(dead_code)]

pub mod client;
pub mod prosody;
