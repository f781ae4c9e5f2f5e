//! The TOML configuration: raw serde structs (with Prosody's option names as aliases) are
//! checked once into a ready-to-use [`Config`]; every error names the file and the key.

mod api_section;
mod component_section;
mod raw;
mod room_section;
mod runtime_section;
mod secret;
mod store_section;
mod upload_section;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::room::RoomConfig;
use crate::stanza::Kind;
use api_section::check_api;
pub use api_section::ApiConfig;
use component_section::check_component;
use raw::RawFile;
pub use room_section::{
    DEFAULT_JOIN_TIMEOUT, DEFAULT_MAX_ROOMS, DEFAULT_MAX_ROOM_OCCUPANTS, DEFAULT_REJOIN_AFTER_KICK,
};
use runtime_section::check_runtime;
pub use runtime_section::RuntimeConfig;
pub use secret::{PostUrl, Secret, SigningKey};
use store_section::check_store;
pub use store_section::{QueueConfig, StoreConfig, WhenUnreachable};
pub use upload_section::{DEFAULT_MAX_UPLOAD_SIZE, DEFAULT_UPLOAD_TIMEOUT};

/// A configuration that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

/// The whole validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    #[serde(rename = "component")]
    pub components: Vec<ComponentConfig>,
    /// The HTTP API (`[api]`); `None`: no API is served.
    pub api: Option<ApiConfig>,
    /// The delivery log (`[store]`); `None`: nothing is written to disk.
    pub store: Option<StoreConfig>,
    /// The threads that run it (`[runtime]`).
    pub runtime: RuntimeConfig,
}

/// One component domain: its server connection and its webhook.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentConfig {
    pub domain: String,
    /// Where the XMPP server's component listener is (`[server]`).
    pub server_host: String,
    pub server_port: u16,
    pub secret: Secret,
    pub post_url: PostUrl,
    pub stanzas: Vec<Kind>,
    #[serde(serialize_with = "seconds")]
    pub timeout: Duration,
    #[serde(serialize_with = "seconds")]
    pub keepalive: Duration,
    pub max_in_flight: usize,
    /// Webhook connections open at once, at most (never more than `max_in_flight`).
    pub max_connections: usize,
    pub max_response_size: usize,
    #[serde(serialize_with = "seconds")]
    pub reconnect_delay: Duration,
    #[serde(serialize_with = "seconds")]
    pub reconnect_max_delay: Duration,
    /// One stanza at a time per conversation (sender's bare JID → component JID).
    pub ordered: bool,
    /// With `ordered`: stanzas waiting behind a conversation's call in progress, at most;
    /// past it a stanza is refused at once.
    pub max_queued_per_conversation: usize,
    /// Stanzas of one sender (bare JID) accepted and not yet answered, at most, over all
    /// its conversations (never more than `max_in_flight`); past it a stanza is refused.
    pub max_in_flight_per_sender: usize,
    /// `None`: `rate_limit = false` (printed so: absent, it would mean the default).
    #[serde(serialize_with = "rate_limit_or_false")]
    pub rate_limit: Option<RateLimit>,
    /// POST stanzas whose sender is on a domain this process serves (off: dropped, the
    /// loop guard).
    pub forward_from_own_domains: bool,
    /// Every domain this process serves (filled in once all components are read).
    #[serde(skip)]
    pub own_domains: Vec<String>,
    pub retry: RetryPolicy,
    /// The Standard Webhooks signing key, decoded from `whsec_…`.
    pub signing_secret: Option<SigningKey>,
    /// Static headers added to every webhook request (values redacted when printed).
    pub post_headers: Vec<(String, Secret)>,
    pub max_stanza_size: usize,
    /// The largest element read from the server; a larger one ends the connection.
    pub max_read_size: usize,
    /// How deeply the elements of one stanza may nest (the stanza itself is level 1): from
    /// the server, in a webhook's `stanza` and in the API's.
    pub max_depth: usize,
    /// The largest stanza written to the server (Prosody closes a component's stream past
    /// its own limit); a larger answer is replaced by an error that fits.
    pub max_outgoing_size: usize,
    pub max_queued_replies: usize,
    #[serde(serialize_with = "seconds")]
    pub shutdown_timeout: Duration,
    /// A chat message's sender sees "composing" after this long without an answer; `None`: never.
    #[serde(serialize_with = "optional_seconds")]
    pub typing_after: Option<Duration>,
    /// POST messages that carry nothing but a chat state, a receipt or a chat marker (off:
    /// they are dropped unanswered and counted).
    pub forward_chat_states: bool,
    /// Send a XEP-0184 receipt for a message that asks for one, once the webhook answered
    /// it with a 2xx (never in group chats).
    pub receipts: bool,
    /// The rooms the bot joins after every handshake (XEP-0045).
    pub rooms: Vec<RoomConfig>,
    /// How long after a kick the bot joins the room again (jittered); `None`: it stays out.
    #[serde(serialize_with = "optional_seconds")]
    pub rejoin_after_kick: Option<Duration>,
    /// How long `POST /v1/rooms` waits for the room's answer.
    #[serde(serialize_with = "seconds")]
    pub join_timeout: Duration,
    /// Rooms at most, from the configuration and the API together.
    pub max_rooms: usize,
    /// Occupants remembered per room (their real JIDs), at most.
    pub max_room_occupants: usize,
    /// The XEP-0363 upload service; `None`: found by discovery at connect.
    pub upload_service: Option<String>,
    /// The largest file uploaded, in bytes (`POST /v1/upload`, `file`).
    pub max_upload_size: usize,
    /// How long one upload (slot request and PUT) may take.
    #[serde(serialize_with = "seconds")]
    pub upload_timeout: Duration,
    /// Queue mode: what a message gets when the webhook stays unreachable.
    pub queue: QueueConfig,
}

/// A per-sender token bucket: `per_second` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    /// Senders tracked at most; past it the one seen least recently is forgotten.
    pub max_senders: usize,
}

/// When a failed webhook call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    #[serde(serialize_with = "seconds")]
    pub max_elapsed: Duration,
}

fn rate_limit_or_false<S: Serializer>(
    value: &Option<RateLimit>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(limit) => limit.serialize(serializer),
        None => serializer.serialize_bool(false),
    }
}

fn optional_seconds<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.map_or(0.0, |d| d.as_secs_f64()))
}

pub(crate) fn seconds<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

pub const DEFAULT_PORT: u16 = 5347;
pub const DEFAULT_TIMEOUT: f64 = 10.0;
pub const DEFAULT_KEEPALIVE: f64 = 60.0;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 1024 * 1024;
pub const DEFAULT_RECONNECT_DELAY: f64 = 0.5;
pub const DEFAULT_RECONNECT_MAX_DELAY: f64 = 30.0;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_MAX_ELAPSED: f64 = 30.0;
pub const DEFAULT_MAX_STANZA_SIZE: usize = 256 * 1024;
/// Eight times Prosody's own limit on a component's stanzas (512 KiB).
pub const DEFAULT_MAX_READ_SIZE: usize = 4 * 1024 * 1024;
/// Real stanzas nest a handful of levels (the deepest known: about 13, a MAM result
/// forwarding a PubSub Atom entry with XHTML content); every recursive walk of a stanza is
/// bounded by this, and `MAX_MAX_DEPTH` is what the stack-depth test proves safe.
pub const DEFAULT_MAX_DEPTH: usize = 64;
pub const MAX_MAX_DEPTH: usize = 1024;
/// Prosody's limit on what a component sends (its `component_stanza_size_limit`).
pub const DEFAULT_MAX_OUTGOING_SIZE: usize = 512 * 1024;
pub const DEFAULT_MAX_QUEUED_REPLIES: usize = 1024;
pub const DEFAULT_SHUTDOWN_TIMEOUT: f64 = 10.0;
pub const DEFAULT_RATE_LIMIT_SENDERS: usize = 100_000;
/// Far above what a person types or a client replays on reconnecting; a flood hits it at once.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    per_second: 10.0,
    burst: 50,
    max_senders: DEFAULT_RATE_LIMIT_SENDERS,
};
pub const DEFAULT_MAX_QUEUED_PER_CONVERSATION: usize = 32;
pub const DEFAULT_MAX_IN_FLIGHT_PER_SENDER: usize = 64;
pub const DEFAULT_TYPING_AFTER: f64 = 1.0;

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            file: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
        Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(error)
    }

    /// Validates configuration text; relative `secret_file` paths start at `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, String> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        if raw.component.is_empty() {
            return Err("no [[component]] block: at least one is needed".into());
        }
        let store = raw
            .store
            .map(|store| check_store(store, base_dir))
            .transpose()
            .map_err(|e| format!("[store]: {e}"))?;
        let mut components: Vec<ComponentConfig> = Vec::new();
        for (index, component) in raw.component.into_iter().enumerate() {
            let checked = check_component(component, &raw.server, base_dir, store.is_some())
                .map_err(|e| format!("[[component]] #{}: {e}", index + 1))?;
            if components.iter().any(|c| c.domain == checked.domain) {
                return Err(format!("domain '{}' is configured twice", checked.domain));
            }
            components.push(checked);
        }
        let own_domains: Vec<String> = components.iter().map(|c| c.domain.clone()).collect();
        for component in &mut components {
            component.own_domains.clone_from(&own_domains);
        }
        let api = raw
            .api
            .map(|api| check_api(api, base_dir))
            .transpose()
            .map_err(|e| format!("[api]: {e}"))?;
        let runtime = check_runtime(raw.runtime.unwrap_or_default())
            .map_err(|e| format!("[runtime]: {e}"))?;
        Ok(Config {
            components,
            api,
            store,
            runtime,
        })
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

pub(crate) fn duration(key: &str, value: Option<f64>, default: f64) -> Result<Duration, String> {
    let seconds = value.unwrap_or(default);
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!(
            "key '{key}': {seconds} is not a number of seconds in (0, 86400]"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
#[path = "config/config_tests.rs"]
mod tests;
