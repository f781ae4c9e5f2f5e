//! What `GET /v1/status` shows of one component, as JSON: its connection, its calls and
//! queues, its counters and its rooms. `ComponentHandle::status` fills it in.

use serde::Serialize;

/// One component in `GET /v1/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub domain: String,
    pub connected: bool,
    /// Unix seconds since when connected (or null).
    pub connected_since: Option<u64>,
    /// Why it is not connected (or null).
    pub disconnected_because: Option<String>,
    pub reconnects: u64,
    pub in_flight: usize,
    pub queued_replies: usize,
    pub dropped_replies: u64,
    pub last_webhook_error: Option<WebhookError>,
    pub stanzas_received: KindCounts,
    pub webhook_requests: ClassCounts,
    /// Stanza errors not sent because their stanza came from a room.
    pub stanza_errors_suppressed: u64,
    pub rooms: RoomCounts,
    /// Queue mode's messages waiting for the webhook.
    pub queue: QueueCounts,
}

#[derive(Debug, Serialize)]
pub struct QueueCounts {
    pub queued: i64,
    pub oldest_queued_age_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct RoomCounts {
    pub joined: usize,
    pub total: usize,
}

#[derive(Debug, Serialize)]
pub struct WebhookError {
    pub at: u64,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct KindCounts {
    pub message: u64,
    pub presence: u64,
    pub iq: u64,
}

#[derive(Debug, Serialize)]
pub struct ClassCounts {
    #[serde(rename = "2xx")]
    pub ok: u64,
    #[serde(rename = "3xx")]
    pub redirect: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
    pub error: u64,
}
