//! When a failed webhook call is tried again, as a pure decision: on connection failures,
//! 429, 502, 503 and 504, honouring `Retry-After`, within `max_attempts` and `max_elapsed`.

use std::time::{Duration, SystemTime};

use crate::backoff::{exponential, jittered};
use crate::config::RetryPolicy;
use crate::stanza::reply::WebhookOutcome;

/// The first retry waits about this long; each next one twice as long.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// Whether this outcome is worth another attempt: the webhook did not handle the request.
pub fn is_retryable(outcome: &WebhookOutcome) -> bool {
    match outcome {
        WebhookOutcome::ConnectionFailed => true,
        WebhookOutcome::Response { status, .. } => matches!(status, 429 | 502 | 503 | 504),
        WebhookOutcome::TimedOut | WebhookOutcome::ResponseTooLarge => false,
    }
}

/// Whether queue mode keeps a message after this last outcome: the webhook did not take
/// it, or did not answer in time (a timeout is not retried at once, since the webhook may
/// have acted on the request, but it is worth delivering again once the webhook is back).
pub fn is_unreachable(outcome: &WebhookOutcome) -> bool {
    is_retryable(outcome) || matches!(outcome, WebhookOutcome::TimedOut)
}

/// How long to wait before attempt `attempt + 1`, or `None` to give up with this outcome.
pub fn next_wait(
    policy: &RetryPolicy,
    attempt: u32,
    elapsed: Duration,
    outcome: &WebhookOutcome,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if attempt >= policy.max_attempts || !is_retryable(outcome) {
        return None;
    }
    let wait = retry_after
        .unwrap_or_else(|| jittered(exponential(FIRST_RETRY, attempt, policy.max_elapsed)));
    (elapsed + wait <= policy.max_elapsed).then_some(wait)
}

/// A `Retry-After` value: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        max_elapsed: Duration::from_secs(30),
    };

    fn status(code: u16) -> WebhookOutcome {
        WebhookOutcome::Response {
            status: code,
            content_type: None,
            body: Vec::new(),
        }
    }

    #[test]
    fn retries_only_what_the_webhook_did_not_handle() {
        for outcome in [
            WebhookOutcome::ConnectionFailed,
            status(429),
            status(502),
            status(503),
            status(504),
        ] {
            assert!(
                next_wait(&POLICY, 1, Duration::ZERO, &outcome, None).is_some(),
                "{outcome:?}"
            );
        }
        for outcome in [
            WebhookOutcome::TimedOut,
            status(200),
            status(404),
            status(500),
            status(501),
        ] {
            assert_eq!(
                next_wait(&POLICY, 1, Duration::ZERO, &outcome, None),
                None,
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn stops_after_max_attempts_and_max_elapsed() {
        assert!(next_wait(&POLICY, 2, Duration::ZERO, &status(503), None).is_some());
        assert_eq!(
            next_wait(&POLICY, 3, Duration::ZERO, &status(503), None),
            None
        );
        let late = Duration::from_secs(29);
        assert_eq!(
            next_wait(&POLICY, 1, late, &status(503), Some(Duration::from_secs(2))),
            None
        );
    }

    #[test]
    fn honours_retry_after() {
        let wait = next_wait(
            &POLICY,
            1,
            Duration::ZERO,
            &status(429),
            Some(Duration::from_secs(7)),
        );
        assert_eq!(wait, Some(Duration::from_secs(7)));
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_without_retry_after_is_jittered_exponential() {
        let first = next_wait(&POLICY, 1, Duration::ZERO, &status(503), None).expect("retry");
        let second = next_wait(&POLICY, 2, Duration::ZERO, &status(503), None).expect("retry");
        assert!(
            first >= Duration::from_millis(250) && first < Duration::from_millis(500),
            "{first:?}"
        );
        assert!(
            second >= Duration::from_millis(500) && second < Duration::from_secs(1),
            "{second:?}"
        );
    }
}
