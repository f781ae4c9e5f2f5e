//! The HTTP edge: POSTing the JSON request (signed, with a `webhook-id` that stays the same
//! across retries) on a keep-alive connection ([`pool`]), and reading
//! at most `max_response_size` of the answer. What it returns carries no HTTP types, so the
//! stanza mapping stays pure.

mod attempt;
pub mod pool;
pub mod retry;
pub mod signature;

use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT as USER_AGENT_HEADER,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use self::attempt::Attempt;
use self::pool::Connections;

use crate::config::{ComponentConfig, RetryPolicy, SigningKey};
use crate::deadline::{after, Deadline};
use crate::metrics::ComponentMetrics;
use crate::stanza::reply::WebhookOutcome;
use crate::store::AttemptLog;

/// The `User-Agent` of every webhook request.
pub const USER_AGENT: &str = concat!("component-http/", env!("CARGO_PKG_VERSION"));

/// Why the webhook client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up TLS for the webhook of {domain}: {source}")]
    Tls {
        domain: String,
        source: rustls::Error,
    },
    #[error("key 'post_url' of {domain}: {source}")]
    Url {
        domain: String,
        source: http::uri::InvalidUri,
    },
}

/// A component's webhook: its URL, its connections and its delivery policy. Its only
/// callers are the dispatcher's `max_connections` workers, one call each at a time: that
/// bounds the connections in use.
#[derive(Clone)]
pub struct Webhook {
    connections: Connections,
    /// The URL's path and query: what an HTTP/1.1 request line carries.
    target: Uri,
    /// Host, User-Agent, Content-Type and `post_headers`: the same on every request.
    headers: HeaderMap,
    timeout: Duration,
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

impl Webhook {
    pub fn new(
        config: &ComponentConfig,
        metrics: ComponentMetrics,
    ) -> Result<Webhook, ClientError> {
        let domain = || config.domain.clone();
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
        let (uri, authorization) = without_credentials(&config.post_url);
        if let Some(value) = authorization {
            headers.insert(AUTHORIZATION, value);
        }
        let uri = uri
            .as_str()
            .parse::<Uri>()
            .map_err(|source| ClientError::Url {
                domain: domain(),
                source,
            })?;
        let target = uri
            .path_and_query()
            .map_or(Ok(Uri::from_static("/")), |path| {
                Uri::try_from(path.as_str())
            })
            .map_err(|source| ClientError::Url {
                domain: domain(),
                source,
            })?;
        if let Some(host) = host_header(&config.post_url) {
            // A `Host` in post_headers wins, as it did with hyper's pooled client.
            headers.entry(HOST).or_insert(host);
        }
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(config.timeout));
        // The platform's root certificates cost about a megabyte: loaded only for https.
        let tls = if config.post_url.scheme() == "https" {
            hyper_rustls::HttpsConnectorBuilder::new()
                .try_with_platform_verifier()
                .map_err(|source| ClientError::Tls {
                    domain: domain(),
                    source,
                })?
        } else {
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        };
        let connector = tls.https_or_http().enable_http1().wrap_connector(tcp);
        Ok(Webhook {
            connections: Connections::new(connector, uri, config.max_connections),
            target,
            headers,
            timeout: config.timeout,
            max_response_size: config.max_response_size,
            retry: config.retry,
            signing_key: config.signing_secret.clone(),
            metrics,
        })
    }

    /// Closes, from time to time, the unused connections that are closed or idle too long;
    /// to be spawned (it ends when the webhook is dropped).
    pub fn sweep_unused(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.connections.sweep()
    }

    /// Delivers one JSON body, trying again for as long as [`retry::next_wait`] gives a wait. `started`
    /// is now, as the caller read it; `timer` bounds each attempt and times the waits
    /// between them.
    ///
    /// `id` is the `webhook-id`; `log`, when given, gets a line per attempt (the store's).
    /// `once`: a single attempt, whatever the retry policy (queue mode's probe).
    pub async fn post(
        &self,
        id: &str,
        body: Bytes,
        started: Instant,
        timer: &mut Deadline,
        mut log: Option<&mut Vec<AttemptLog>>,
        once: bool,
    ) -> Delivery {
        let policy = RetryPolicy {
            max_attempts: if once { 1 } else { self.retry.max_attempts },
            ..self.retry
        };
        let mut started_attempt = started;
        let mut attempts = 1;
        loop {
            let deadline = after(started_attempt, self.timeout);
            let attempt = timer
                .limit(deadline, self.attempt(id, body.clone()))
                .await
                .unwrap_or_else(|| Attempt::timed_out(self.timeout));
            let now = Instant::now();
            self.metrics
                .webhook_attempt(&attempt.outcome, (now - started_attempt).as_secs_f64());
            if let Some(log) = log.as_deref_mut() {
                log.push(attempt.log(now - started_attempt));
            }
            let wait = retry::next_wait(
                &policy,
                attempts,
                now - started,
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
                policy.max_attempts
            );
            timer.wait_until(after(now, wait)).await;
            started_attempt = Instant::now();
            attempts += 1;
        }
    }

    /// One request and its answer. The connection is kept only when the answer was read
    /// whole.
    async fn attempt(&self, id: &str, body: Bytes) -> Attempt {
        let request = self.request(id, body);
        let (mut open, response) = match self.connections.send(request).await {
            Ok(sent) => sent,
            Err(error) => return Attempt::failed(&*error),
        };
        let attempt = open.drive(self.read(response)).await;
        if matches!(attempt.outcome, WebhookOutcome::Response { .. }) {
            self.connections.keep(open);
        }
        attempt
    }

    fn request(&self, id: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut headers = self.headers.clone();
        if let Ok(value) = HeaderValue::from_str(id) {
            headers.insert("webhook-id", value);
        }
        if let Some(key) = &self.signing_key {
            let timestamp = unix_seconds();
            let signature = signature::sign(key.bytes(), id, timestamp, &body);
            headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
            if let Ok(value) = HeaderValue::from_str(&signature) {
                headers.insert("webhook-signature", value);
            }
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.target.clone();
        *request.headers_mut() = headers;
        request
    }

    /// The answer's status, headers and body (at most `max_response_size`).
    async fn read(&self, response: Response<Incoming>) -> Attempt {
        let (parts, mut incoming) = response.into_parts();
        let status = parts.status.as_u16();
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let content_type = header(CONTENT_TYPE).map(str::to_string);
        let retry_after =
            header(RETRY_AFTER).and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        let length = header(CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        if length.is_some_and(|length| length > self.max_response_size as u64) {
            return Attempt::too_large(self.max_response_size);
        }
        let mut body = Vec::with_capacity(length.unwrap_or(0) as usize);
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(frame) => {
                    let Ok(chunk) = frame.into_data() else {
                        continue; // trailers
                    };
                    if body.len() + chunk.len() > self.max_response_size {
                        return Attempt::too_large(self.max_response_size);
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(error) => return Attempt::failed(&error),
            }
        }
        let failure = (status >= 300).then(|| format!("webhook answered HTTP {}", parts.status));
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

/// `http://user:password@host/…` → the URL without them, and the `Authorization: Basic`
/// header they stand for (as browsers, curl and Prosody's HTTP client send it).
fn without_credentials(url: &url::Url) -> (url::Url, Option<HeaderValue>) {
    if url.username().is_empty() && url.password().is_none() {
        return (url.clone(), None);
    }
    let decode = |text: &str| percent_encoding::percent_decode_str(text).collect::<Vec<u8>>();
    let mut credentials = decode(url.username());
    credentials.push(b':');
    credentials.extend(decode(url.password().unwrap_or_default()));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let header = HeaderValue::from_str(&format!("Basic {encoded}"))
        .ok()
        .map(|mut value| {
            value.set_sensitive(true);
            value
        });
    let mut bare = url.clone();
    // Cannot fail on an http(s) URL, which has a host.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    (bare, header)
}

/// `host` or `host:port` (a port other than the scheme's own), as HTTP/1.1 requires.
fn host_header(url: &url::Url) -> Option<HeaderValue> {
    let host = url.host_str()?;
    let value = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    HeaderValue::from_str(&value).ok()
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_become_basic_authorization() {
        let url =
            url::Url::parse("https://bot:p%40ss%3Aword@example.com:8443/hook?x=1").expect("url");
        let (bare, header) = without_credentials(&url);
        assert_eq!(bare.as_str(), "https://example.com:8443/hook?x=1");
        let header = header.expect("a header");
        assert!(header.is_sensitive());
        // base64("bot:p@ss:word")
        assert_eq!(header.to_str().ok(), Some("Basic Ym90OnBAc3M6d29yZA=="));
        let plain = url::Url::parse("http://127.0.0.1:8080/").expect("url");
        assert_eq!(without_credentials(&plain), (plain.clone(), None));
    }
}
