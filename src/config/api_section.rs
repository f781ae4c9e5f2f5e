//! The `[api]` section: where the HTTP API listens, its token, and its limits (request size,
//! connections, their timeouts, iqs awaiting answers).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::raw::RawApi;
use super::{duration, seconds, Secret};

/// The HTTP API: send stanzas, status, health, metrics.
#[derive(Debug, Clone, Serialize)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    pub token: Secret,
    #[serde(serialize_with = "seconds")]
    pub iq_timeout: Duration,
    #[serde(serialize_with = "seconds")]
    pub max_iq_timeout: Duration,
    pub max_request_size: usize,
    /// API connections open at once; more wait in the kernel's listen backlog.
    pub max_connections: usize,
    /// The most a connection may take to send a request's head (or stay idle between
    /// requests) before it is closed.
    #[serde(serialize_with = "seconds")]
    pub header_timeout: Duration,
    /// The most a request's body may take to arrive, once its head has (then 408).
    #[serde(serialize_with = "seconds")]
    pub body_timeout: Duration,
    /// The most an answer may wait for its client to read it before the connection is closed.
    #[serde(serialize_with = "seconds")]
    pub write_timeout: Duration,
    /// API iqs awaiting their answers at once, over every component; past it 503.
    pub max_pending_iqs: usize,
}

pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:5380";
pub const DEFAULT_IQ_TIMEOUT: f64 = 30.0;
pub const DEFAULT_MAX_IQ_TIMEOUT: f64 = 120.0;
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 256 * 1024;
pub const DEFAULT_API_MAX_CONNECTIONS: usize = 256;
/// The most `max_connections` may be: far above any descriptor limit a daemon gets.
pub const MAX_API_CONNECTIONS: usize = 1_000_000;
pub const DEFAULT_HEADER_TIMEOUT: f64 = 10.0;
pub const DEFAULT_BODY_TIMEOUT: f64 = 30.0;
pub const DEFAULT_WRITE_TIMEOUT: f64 = 30.0;
/// Half of the default `max_connections`: each waiting iq holds an API connection, and iqs
/// waiting must leave connections for everything else.
pub const DEFAULT_MAX_PENDING_IQS: usize = 128;

pub(super) fn check_api(raw: RawApi, base_dir: &Path) -> Result<ApiConfig, String> {
    let listen = raw.listen.unwrap_or_else(|| DEFAULT_API_LISTEN.into());
    let listen = listen
        .parse()
        .map_err(|_| format!("key 'listen': '{listen}' is not an address:port"))?;
    let token = match (raw.token, raw.token_file) {
        (Some(token), None) => token,
        (None, Some(file)) => std::fs::read_to_string(base_dir.join(&file))
            .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("key 'token_file': cannot read {}: {e}", file.display()))?,
        (Some(_), Some(_)) => return Err("set only one of 'token' and 'token_file'".into()),
        (None, None) => return Err("missing key 'token' (or 'token_file')".into()),
    };
    if token.len() < 16 {
        return Err("key 'token': use at least 16 characters".into());
    }
    let iq_timeout = duration("iq_timeout", raw.iq_timeout, DEFAULT_IQ_TIMEOUT)?;
    let max_iq_timeout = duration("max_iq_timeout", raw.max_iq_timeout, DEFAULT_MAX_IQ_TIMEOUT)?;
    if max_iq_timeout < iq_timeout {
        return Err("key 'max_iq_timeout' is smaller than 'iq_timeout'".into());
    }
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_API_MAX_CONNECTIONS);
    if !(1..=MAX_API_CONNECTIONS).contains(&max_connections) {
        return Err(format!(
            "key 'max_connections' must be between 1 and {MAX_API_CONNECTIONS}"
        ));
    }
    let max_pending_iqs = raw.max_pending_iqs.unwrap_or(DEFAULT_MAX_PENDING_IQS);
    if max_pending_iqs == 0 {
        return Err("key 'max_pending_iqs' must be at least 1".into());
    }
    Ok(ApiConfig {
        listen,
        token: Secret::new(token),
        iq_timeout,
        max_iq_timeout,
        max_request_size: raw.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_SIZE),
        max_connections,
        header_timeout: duration("header_timeout", raw.header_timeout, DEFAULT_HEADER_TIMEOUT)?,
        body_timeout: duration("body_timeout", raw.body_timeout, DEFAULT_BODY_TIMEOUT)?,
        write_timeout: duration("write_timeout", raw.write_timeout, DEFAULT_WRITE_TIMEOUT)?,
        max_pending_iqs,
    })
}

#[cfg(test)]
#[path = "api_section_tests.rs"]
mod tests;
