//! The configuration file as serde reads it: every key and its Prosody alias, nothing
//! checked yet. `deny_unknown_fields` makes a mistyped key an error that names it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::stanza::Kind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) server: RawServer,
    pub(super) api: Option<RawApi>,
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
    pub(super) rate_limit: Option<RawRateLimit>,
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
