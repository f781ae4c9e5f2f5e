//! One attempt at a webhook call as the retry loop sees it: its outcome, the failure line
//! for the log, what the answer said about retrying, and the entry the store keeps of it.

use std::time::Duration;

use crate::stanza::reply::WebhookOutcome;
use crate::store::{now_ms, AttemptLog};

/// One attempt, with what the response said about retrying.
pub(super) struct Attempt {
    pub(super) outcome: WebhookOutcome,
    pub(super) failure: Option<String>,
    pub(super) retry_after: Option<Duration>,
}

impl Attempt {
    /// The answer was larger than `max_response_size` (`limit`): not read further.
    pub(super) fn too_large(limit: usize) -> Attempt {
        Attempt {
            outcome: WebhookOutcome::ResponseTooLarge,
            failure: Some(format!(
                "webhook response is larger than max_response_size ({limit} bytes)"
            )),
            retry_after: None,
        }
    }

    /// No full answer within `timeout` (`limit`).
    pub(super) fn timed_out(limit: Duration) -> Attempt {
        Attempt {
            outcome: WebhookOutcome::TimedOut,
            failure: Some(format!(
                "webhook request failed: no full response within {} s (timeout)",
                limit.as_secs_f64()
            )),
            retry_after: None,
        }
    }

    /// The connection failed, or the answer could not be read: the error with its causes.
    pub(super) fn failed(error: &(dyn std::error::Error + 'static)) -> Attempt {
        Attempt {
            outcome: WebhookOutcome::ConnectionFailed,
            failure: Some(format!("webhook request failed: {}", error_chain(error))),
            retry_after: None,
        }
    }

    /// What the store keeps of this attempt, which took `took`.
    pub(super) fn log(&self, took: Duration) -> AttemptLog {
        let status = match self.outcome {
            WebhookOutcome::Response { status, .. } => Some(status),
            _ => None,
        };
        AttemptLog {
            at: now_ms() - took.as_millis() as i64,
            status,
            duration_ms: took.as_millis() as i64,
            error: self.failure.clone(),
        }
    }
}

/// The error and its causes on one line (hyper's own message hides the cause).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_every_cause_and_the_log_keeps_the_status() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(inner);
        let attempt = Attempt::failed(&outer);
        let failure = attempt.failure.as_deref().unwrap_or_default();
        assert!(
            failure.starts_with("webhook request failed: refused"),
            "{failure}"
        );
        let log = attempt.log(Duration::from_millis(12));
        assert_eq!((log.status, log.duration_ms), (None, 12));
        let answered = Attempt {
            outcome: WebhookOutcome::Response {
                status: 503,
                content_type: None,
                body: Vec::new(),
            },
            failure: Some("webhook answered HTTP 503".into()),
            retry_after: None,
        };
        assert_eq!(answered.log(Duration::ZERO).status, Some(503));
        let large = Attempt::too_large(1024).failure.unwrap_or_default();
        assert!(large.contains("max_response_size (1024 bytes)"), "{large}");
    }
}
