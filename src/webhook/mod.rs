//! The HTTP edge: one keep-alive connection pool per component, POSTing the JSON request
//! and reading at most `max_response_size` of the answer. What it returns carries no HTTP
//! types, so the stanza mapping stays pure.

use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};

use crate::config::ComponentConfig;
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

/// A component's webhook: its URL and its connection pool.
#[derive(Clone, Debug)]
pub struct Webhook {
    http: reqwest::Client,
    url: reqwest::Url,
    max_response_size: usize,
}

/// One webhook call's outcome and, for failures, a line for the log.
#[derive(Debug)]
pub struct Delivery {
    pub outcome: WebhookOutcome,
    pub failure: Option<String>,
}

impl Webhook {
    pub fn new(config: &ComponentConfig) -> Result<Webhook, ClientError> {
        let error = |source| ClientError {
            domain: config.domain.clone(),
            source,
        };
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
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
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// POSTs one JSON body and reads the answer.
    pub async fn post(&self, body: Vec<u8>) -> Delivery {
        let request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return failed(&error),
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
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
        Delivery {
            outcome: WebhookOutcome::Response {
                status,
                content_type,
                body,
            },
            failure,
        }
    }
}

fn too_large(limit: usize) -> Delivery {
    Delivery {
        outcome: WebhookOutcome::ResponseTooLarge,
        failure: Some(format!(
            "webhook response is larger than max_response_size ({limit} bytes)"
        )),
    }
}

fn failed(error: &reqwest::Error) -> Delivery {
    let outcome = if error.is_timeout() {
        WebhookOutcome::TimedOut
    } else {
        WebhookOutcome::ConnectionFailed
    };
    Delivery {
        outcome,
        failure: Some(format!("webhook request failed: {}", error_chain(error))),
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
