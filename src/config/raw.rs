//! The configuration file as serde reads it: every key and its Prosody alias, nothing
//! checked yet. `deny_unknown_fields` makes a mistyped key an error that names it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::room_section::RawRoom;
use super::runtime_section::RawRuntime;
use super::store_section::{RawStore, WhenUnreachable};
use crate::stanza::Kind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) server: RawServer,
    pub(super) api: Option<RawApi>,
    pub(super) store: Option<RawStore>,
    pub(super) runtime: Option<RawRuntime>,
    #[serde(default)]
    pub(super) component: Vec<RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) listen: Option<String>,
    pub(super) token: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) iq_timeout: Option<f64>,
    pub(super) max_iq_timeout: Option<f64>,
    pub(super) max_request_size: Option<usize>,
    pub(super) max_connections: Option<usize>,
    pub(super) header_timeout: Option<f64>,
    pub(super) body_timeout: Option<f64>,
    pub(super) write_timeout: Option<f64>,
    pub(super) max_pending_iqs: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub(super) domain: Option<String>,
    #[serde(alias = "component_secret")]
    pub(super) secret: Option<String>,
    pub(super) secret_file: Option<PathBuf>,
    #[serde(alias = "component_post_url")]
    pub(super) post_url: Option<String>,
    #[serde(alias = "component_post_stanzas", alias = "post_stanza_types")]
    pub(super) stanzas: Option<Vec<Kind>>,
    pub(super) timeout: Option<f64>,
    pub(super) keepalive: Option<f64>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_response_size: Option<usize>,
    pub(super) reconnect_delay: Option<f64>,
    pub(super) reconnect_max_delay: Option<f64>,
    pub(super) ordered: Option<bool>,
    pub(super) max_queued_per_conversation: Option<usize>,
    pub(super) max_in_flight_per_sender: Option<usize>,
    pub(super) rate_limit: Option<RawRateLimitSetting>,
    pub(super) forward_from_own_domains: Option<bool>,
    pub(super) retry: Option<RawRetry>,
    pub(super) signing_secret: Option<String>,
    pub(super) post_headers: Option<BTreeMap<String, String>>,
    pub(super) max_stanza_size: Option<usize>,
    pub(super) max_read_size: Option<usize>,
    pub(super) max_depth: Option<usize>,
    pub(super) max_outgoing_size: Option<usize>,
    pub(super) max_queued_replies: Option<usize>,
    pub(super) shutdown_timeout: Option<f64>,
    pub(super) typing_after: Option<f64>,
    pub(super) forward_chat_states: Option<bool>,
    pub(super) receipts: Option<bool>,
    pub(super) rooms: Option<Vec<RawRoom>>,
    pub(super) rejoin_after_kick: Option<f64>,
    pub(super) join_timeout: Option<f64>,
    pub(super) max_rooms: Option<usize>,
    pub(super) max_room_occupants: Option<usize>,
    pub(super) upload_service: Option<String>,
    pub(super) max_upload_size: Option<usize>,
    pub(super) upload_timeout: Option<f64>,
    pub(super) when_unreachable: Option<WhenUnreachable>,
    pub(super) queue_max_age: Option<f64>,
    pub(super) queue_probe_interval: Option<f64>,
    pub(super) queue_probe_max_interval: Option<f64>,
    pub(super) queued_notice: Option<String>,
    pub(super) max_queued: Option<usize>,
}

/// `rate_limit = false` (off), `true` (the defaults), or a table of its keys.
pub(super) enum RawRateLimitSetting {
    Switch(bool),
    Limit(RawRateLimit),
}

impl<'de> Deserialize<'de> for RawRateLimitSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Setting;
        impl<'de> Visitor<'de> for Setting {
            type Value = RawRateLimitSetting;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("false, true or a table such as { per_second = 10, burst = 50 }")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
                Ok(RawRateLimitSetting::Switch(on))
            }

            // The table's own errors (an unknown key, a missing `per_second`) keep their
            // wording, naming the key, as with any other table.
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                RawRateLimit::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawRateLimitSetting::Limit)
            }
        }
        deserializer.deserialize_any(Setting)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) per_second: f64,
    pub(super) burst: Option<u32>,
    pub(super) max_senders: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) max_attempts: Option<u32>,
    pub(super) max_elapsed: Option<f64>,
}
