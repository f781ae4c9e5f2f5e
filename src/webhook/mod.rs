//! The HTTP edge: one keep-alive connection pool per component, POSTing the JSON request
//! (signed, with a `webhook-id` that stays the same across retries) and reading at most
//! `max_response_size` of the answer. What it returns carries no HTTP types, so the stanza
//! mapping stays pure.

pub mod retry;
pub mod signature;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};

use crate::config::{ComponentConfig, RetryPolicy, SigningKey};
use crate::metrics::ComponentMetrics;
use crate::stanza::reply::WebhookOutcome;

/// The `User-Agent` of every webhook request.
pub const USER_AGENT: &str = concat!("component-http/", env!("CARGO_PKG_VERSION"));

/// Why the webhook client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for {domain}: {source}")]
pub struct ClientError {
    domain: String,
    source: reqwest::Error,
}

/// A component's webhook: its URL, its connection pool and its delivery policy.
#[derive(Clone)]
pub struct Webhook {
    http: reqwest::Client,
    url: reqwest::Url,
    max_response_size: usize,
    retry: RetryPolicy,
    signing_key: Option<SigningKey>,
    metrics: ComponentMetrics,
}

/// One stanza's delivery: the last attempt's outcome and, for failures, a line for the log.
#[derive(Debug)]
pub struct Delivery {
    pub outcome: WebhookOutcome,
    pub failure: Option<String>,
    pub attempts: u32,
}

/// One attempt, with what the response said about retrying.
struct Attempt {
    outcome: WebhookOutcome,
    failure: Option<String>,
    retry_after: Option<Duration>,
}

impl Webhook {
    pub fn new(
        config: &ComponentConfig,
        metrics: ComponentMetrics,
    ) -> Result<Webhook, ClientError> {
        let error = |source| ClientError {
            domain: config.domain.clone(),
            source,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &config.post_headers {
            // Both were checked when the configuration was loaded.
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.max_in_flight)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(error)?;
        Ok(Webhook {
            http,
            url: config.post_url.clone(),
            max_response_size: config.max_response_size,
            retry: config.retry,
            signing_key: config.signing_secret.clone(),
            metrics,
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Delivers one JSON body, trying again while [`retry::next_wait`] says so.
    pub async fn post(&self, body: Vec<u8>) -> Delivery {
        let body = Bytes::from(body);
        let id = signature::new_message_id();
        let started = Instant::now();
        let mut attempts = 1;
        loop {
            let started_attempt = Instant::now();
            let attempt = self.attempt(&id, body.clone()).await;
            self.metrics
                .webhook_attempt(&attempt.outcome, started_attempt.elapsed().as_secs_f64());
            let wait = retry::next_wait(
                &self.retry,
                attempts,
                started.elapsed(),
                &attempt.outcome,
                attempt.retry_after,
            );
            let Some(wait) = wait else {
                let failure = attempt.failure.map(|text| match attempts {
                    1 => text,
                    n => format!("{text} (after {n} attempts)"),
                });
                return Delivery {
                    outcome: attempt.outcome,
                    failure,
                    attempts,
                };
            };
            tracing::info!(
                "{}; retrying {id} in {:.1} s (attempt {} of {})",
                attempt.failure.as_deref().unwrap_or("webhook failed"),
                wait.as_secs_f64(),
                attempts + 1,
                self.retry.max_attempts
            );
            tokio::time::sleep(wait).await;
            attempts += 1;
        }
    }

    async fn attempt(&self, id: &str, body: Bytes) -> Attempt {
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", id);
        if let Some(key) = &self.signing_key {
            let timestamp = unix_seconds();
            request = request
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    signature::sign(key.bytes(), id, timestamp, &body),
                );
        }
        let mut response = match request.body(body).send().await {
            Ok(response) => response,
            Err(error) => return failed(&error),
        };
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE);
        let retry_after =
            header(RETRY_AFTER).and_then(|v| retry::parse_retry_after(&v, SystemTime::now()));
        if response
            .content_length()
            .is_some_and(|length| length > self.max_response_size as u64)
        {
            return too_large(self.max_response_size);
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > self.max_response_size => {
                    return too_large(self.max_response_size)
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return failed(&error),
            }
        }
        let failure =
            (status >= 300).then(|| format!("webhook answered HTTP {}", response.status()));
        Attempt {
            outcome: WebhookOutcome::Response {
                status,
                content_type,
                body,
            },
            failure,
            retry_after,
        }
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn too_large(limit: usize) -> Attempt {
    Attempt {
        outcome: WebhookOutcome::ResponseTooLarge,
        failure: Some(format!(
            "webhook response is larger than max_response_size ({limit} bytes)"
        )),
        retry_after: None,
    }
}

fn failed(error: &reqwest::Error) -> Attempt {
    let outcome = if error.is_timeout() {
        WebhookOutcome::TimedOut
    } else {
        WebhookOutcome::ConnectionFailed
    };
    Attempt {
        outcome,
        failure: Some(format!("webhook request failed: {}", error_chain(error))),
        retry_after: None,
    }
}

/// The error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
