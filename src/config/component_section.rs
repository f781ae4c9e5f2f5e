//! One `[[component]]` block checked into a [`ComponentConfig`]: its domain, secret and
//! webhook URL, the server's address, every bound with its default, and the room, upload
//! and queue keys (checked by their own sections); each error names its key.

use std::path::Path;

use super::raw::{RawComponent, RawRateLimitSetting, RawRetry, RawServer};
use super::room_section::check_rooms;
use super::secret::{post_headers, read_secret_file, signing_key};
use super::store_section::{check_queue, RawQueue};
use super::upload_section::check_upload;
use super::{
    duration, ComponentConfig, PostUrl, RateLimit, RetryPolicy, Secret, DEFAULT_KEEPALIVE,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELAPSED,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_SENDER, DEFAULT_MAX_OUTGOING_SIZE,
    DEFAULT_MAX_QUEUED_PER_CONVERSATION, DEFAULT_MAX_QUEUED_REPLIES, DEFAULT_MAX_READ_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_STANZA_SIZE, DEFAULT_PORT, DEFAULT_RATE_LIMIT,
    DEFAULT_RATE_LIMIT_SENDERS, DEFAULT_RECONNECT_DELAY, DEFAULT_RECONNECT_MAX_DELAY,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TYPING_AFTER, MAX_MAX_DEPTH,
};
use crate::stanza::Kind;

pub(super) fn check_component(
    raw: RawComponent,
    server: &RawServer,
    base_dir: &Path,
    has_store: bool,
) -> Result<ComponentConfig, String> {
    let domain = raw.domain.ok_or("missing key 'domain'")?;
    match jid::Jid::new(&domain) {
        Ok(jid) if jid.node().is_none() && jid.resource().is_none() => {}
        _ => return Err(format!("key 'domain': '{domain}' is not a domain name")),
    }
    let secret = match (raw.secret, raw.secret_file) {
        (Some(secret), None) => secret,
        (None, Some(file)) => read_secret_file(&base_dir.join(file))?,
        (Some(_), Some(_)) => return Err("set only one of 'secret' and 'secret_file'".into()),
        (None, None) => {
            return Err("missing key 'secret' (or 'secret_file', 'component_secret')".into())
        }
    };
    if secret.is_empty() {
        return Err("key 'secret': the secret is empty".into());
    }
    let post_url = raw
        .post_url
        .ok_or("missing key 'post_url' (or 'component_post_url')")?;
    let post_url = match url::Url::parse(&post_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => PostUrl::new(url),
        Ok(url) => {
            return Err(format!(
                "key 'post_url': scheme '{}' is not http or https",
                url.scheme()
            ))
        }
        Err(e) => return Err(format!("key 'post_url': '{post_url}' is not a URL: {e}")),
    };
    let mut stanzas = raw.stanzas.unwrap_or_else(|| vec![Kind::Message]);
    stanzas.dedup();
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        return Err("key 'max_in_flight' must be at least 1".into());
    }
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        return Err("key 'max_connections' must be at least 1".into());
    }
    let max_connections = max_connections.min(max_in_flight);
    let max_response_size = raw.max_response_size.unwrap_or(DEFAULT_MAX_RESPONSE_SIZE);
    let reconnect_delay = duration(
        "reconnect_delay",
        raw.reconnect_delay,
        DEFAULT_RECONNECT_DELAY,
    )?;
    let reconnect_max_delay = duration(
        "reconnect_max_delay",
        raw.reconnect_max_delay,
        DEFAULT_RECONNECT_MAX_DELAY,
    )?;
    if reconnect_max_delay < reconnect_delay {
        return Err("key 'reconnect_max_delay' is smaller than 'reconnect_delay'".into());
    }
    let max_in_flight_per_sender = raw
        .max_in_flight_per_sender
        .unwrap_or(DEFAULT_MAX_IN_FLIGHT_PER_SENDER);
    if max_in_flight_per_sender == 0 {
        return Err("key 'max_in_flight_per_sender' must be at least 1".into());
    }
    let max_in_flight_per_sender = max_in_flight_per_sender.min(max_in_flight);
    let rate_limit = match raw.rate_limit {
        None | Some(RawRateLimitSetting::Switch(true)) => Some(DEFAULT_RATE_LIMIT),
        Some(RawRateLimitSetting::Switch(false)) => None,
        Some(RawRateLimitSetting::Limit(limit))
            if limit.per_second.is_nan() || limit.per_second <= 0.0 =>
        {
            return Err("key 'rate_limit.per_second' must be above 0".into())
        }
        Some(RawRateLimitSetting::Limit(limit)) => Some(RateLimit {
            per_second: limit.per_second,
            burst: limit.burst.unwrap_or(limit.per_second.ceil() as u32).max(1),
            max_senders: limit
                .max_senders
                .unwrap_or(DEFAULT_RATE_LIMIT_SENDERS)
                .max(1),
        }),
    };
    let retry = raw.retry.unwrap_or(RawRetry {
        max_attempts: None,
        max_elapsed: None,
    });
    let retry = RetryPolicy {
        max_attempts: retry.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1),
        max_elapsed: duration("retry.max_elapsed", retry.max_elapsed, DEFAULT_MAX_ELAPSED)?,
    };
    let signing_secret = raw
        .signing_secret
        .map(|text| signing_key(&text))
        .transpose()?;
    let post_headers = post_headers(raw.post_headers.unwrap_or_default())?;
    let max_stanza_size = raw.max_stanza_size.unwrap_or(DEFAULT_MAX_STANZA_SIZE);
    let max_read_size = raw.max_read_size.unwrap_or(DEFAULT_MAX_READ_SIZE);
    if max_read_size < max_stanza_size {
        return Err("key 'max_read_size' is smaller than 'max_stanza_size'".into());
    }
    let max_depth = raw.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
    if !(2..=MAX_MAX_DEPTH).contains(&max_depth) {
        return Err(format!(
            "key 'max_depth': {max_depth} is not in 2..={MAX_MAX_DEPTH}"
        ));
    }
    let max_outgoing_size = raw.max_outgoing_size.unwrap_or(DEFAULT_MAX_OUTGOING_SIZE);
    if max_outgoing_size < 4096 {
        return Err("key 'max_outgoing_size' must be at least 4096".into());
    }
    let typing_after = match raw.typing_after {
        Some(0.0) => None,
        other => Some(duration("typing_after", other, DEFAULT_TYPING_AFTER)?),
    };
    let room_keys = check_rooms(
        &domain,
        raw.rooms,
        raw.rejoin_after_kick,
        raw.join_timeout,
        raw.max_rooms,
        raw.max_room_occupants,
    )?;
    let upload = check_upload(raw.upload_service, raw.max_upload_size, raw.upload_timeout)?;
    let queue = RawQueue {
        when_unreachable: raw.when_unreachable,
        queue_max_age: raw.queue_max_age,
        queue_probe_interval: raw.queue_probe_interval,
        queue_probe_max_interval: raw.queue_probe_max_interval,
        queued_notice: raw.queued_notice,
        max_queued: raw.max_queued,
    };
    let queue = check_queue(queue, has_store)?;
    Ok(ComponentConfig {
        queue,
        upload_service: upload.upload_service,
        max_upload_size: upload.max_upload_size,
        upload_timeout: upload.upload_timeout,
        typing_after,
        forward_chat_states: raw.forward_chat_states.unwrap_or(true),
        receipts: raw.receipts.unwrap_or(true),
        rooms: room_keys.rooms,
        rejoin_after_kick: room_keys.rejoin_after_kick,
        join_timeout: room_keys.join_timeout,
        max_rooms: room_keys.max_rooms,
        max_room_occupants: room_keys.max_room_occupants,
        ordered: raw.ordered.unwrap_or(true),
        max_queued_per_conversation: raw
            .max_queued_per_conversation
            .unwrap_or(DEFAULT_MAX_QUEUED_PER_CONVERSATION),
        max_in_flight_per_sender,
        rate_limit,
        forward_from_own_domains: raw.forward_from_own_domains.unwrap_or(false),
        own_domains: Vec::new(),
        retry,
        signing_secret,
        post_headers,
        max_stanza_size,
        max_read_size,
        max_depth,
        max_outgoing_size,
        max_queued_replies: raw
            .max_queued_replies
            .unwrap_or(DEFAULT_MAX_QUEUED_REPLIES)
            .max(1),
        shutdown_timeout: duration(
            "shutdown_timeout",
            raw.shutdown_timeout,
            DEFAULT_SHUTDOWN_TIMEOUT,
        )?,
        domain,
        server_host: server.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
        server_port: server.port.unwrap_or(DEFAULT_PORT),
        secret: Secret::new(secret),
        post_url,
        stanzas,
        timeout: duration("timeout", raw.timeout, DEFAULT_TIMEOUT)?,
        keepalive: duration("keepalive", raw.keepalive, DEFAULT_KEEPALIVE)?,
        max_in_flight,
        max_connections,
        max_response_size,
        reconnect_delay,
        reconnect_max_delay,
    })
}
