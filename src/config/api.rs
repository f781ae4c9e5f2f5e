//! The `[api]` section: where the HTTP API listens, its token, and its limits.

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
}

pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:5380";
pub const DEFAULT_IQ_TIMEOUT: f64 = 30.0;
pub const DEFAULT_MAX_IQ_TIMEOUT: f64 = 120.0;
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 256 * 1024;

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
    Ok(ApiConfig {
        listen,
        token: Secret::new(token),
        iq_timeout,
        max_iq_timeout,
        max_request_size: raw.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_SIZE),
    })
}
