//! Bounded retries for model calls: 429, 5xx (and Anthropic's 529),
//! connection errors, a stream that breaks or ends early, and an
//! `overloaded_error` event inside a stream are retried with exponential
//! backoff, honouring a `retry-after` header given in seconds (`0`
//! retries at once) or as an HTTP date. Dates are parsed with the `time`
//! crate the agent already uses (no extra dependency).
//!
//! A provider makes one try with [`send_once`] and its own stream reading,
//! and on a [`Failure`] calls [`pause`], which either sleeps before the
//! next try or gives the error back.

use super::{ProviderError, error_message};
use std::time::{Duration, SystemTime};

/// Tries in all (the first and the retries).
pub const MAX_ATTEMPTS: u32 = 5;
/// Delay before the first retry without `retry-after`; doubles per retry.
pub const BASE_DELAY: Duration = Duration::from_millis(500);
/// The longest single wait, whatever `retry-after` says.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// How one try failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try, after `after` if the server said so.
    Retry {
        /// What went wrong (returned when tries are spent).
        error: ProviderError,
        /// The server's `retry-after`, if any.
        after: Option<Duration>,
    },
    /// Not worth another try.
    Fatal(ProviderError),
}

impl Failure {
    /// A retryable failure without a `retry-after`.
    pub fn retry(error: ProviderError) -> Failure {
        Failure::Retry { error, after: None }
    }
}

fn retryable(status: reqwest::StatusCode) -> bool {
    status.as_u16() == 429 || status.is_server_error()
}

/// A `retry-after` value: delay-seconds (fractions accepted) or an
/// IMF-fixdate HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), as a wait from
/// `now` (zero for a date in the past), at most [`MAX_DELAY`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_DELAY.as_secs_f64())));
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at: SystemTime = time::PrimitiveDateTime::parse(value, fmt)
        .ok()?
        .assume_utc()
        .into();
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_DELAY),
    )
}

/// Sends one request.
///
/// Errors: [`Failure::Retry`] for 429/5xx (with the API's message and its
/// `retry-after`) and connection errors; [`Failure::Fatal`] for any other
/// HTTP error status (with the API's message) or transport error.
async fn send_once(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
    match request.send().await {
        Ok(resp) if resp.status().is_success() => Ok(resp),
        Ok(resp) => {
            let status = resp.status();
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let body = resp.text().await.unwrap_or_default();
            if super::is_context_overflow(status.as_u16(), &body) {
                return Err(Failure::Fatal(ProviderError::ContextTooLong(
                    error_message(&body),
                )));
            }
            let error = ProviderError::Api {
                status: status.as_u16(),
                message: error_message(&body),
            };
            if retryable(status) {
                Err(Failure::Retry { error, after })
            } else {
                Err(Failure::Fatal(error))
            }
        }
        Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
            Err(Failure::retry(ProviderError::Transport(describe(&e))))
        }
        Err(e) => Err(Failure::Fatal(ProviderError::Transport(describe(&e)))),
    }
}

/// A failed send in plain words: what happened at which URL (connection
/// refused, DNS, TLS, timeout), from the error and its sources.
pub fn describe(e: &reqwest::Error) -> String {
    let url = e
        .url()
        .map_or_else(|| "the model API".to_string(), |u| u.to_string());
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut refused = false;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push(s.to_string());
        source = s.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let detail = chain.last().cloned().unwrap_or_default();
    if refused || all.contains("connection refused") {
        format!("connection refused at {url} (is the server running there?)")
    } else if all.contains("dns") || all.contains("lookup address") || all.contains("resolve") {
        format!("cannot resolve the host of {url} (DNS): {detail}")
    } else if [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "peer",
        "alert",
    ]
    .iter()
    .any(|w| all.contains(w))
    {
        format!("TLS with {url} failed: {detail}")
    } else if e.is_timeout() {
        format!("{url} did not answer in time: {detail}")
    } else {
        format!("{url}: {}", chain.join(": "))
    }
}

/// Sends the request `build` makes and reads its reply with `read`; after a
/// retryable failure waits (see [`pause`]) and tries again, at most
/// [`MAX_ATTEMPTS`] times in all.
///
/// Errors: a fatal failure's error, or the last one when the tries are
/// spent.
pub async fn call<T>(
    mut build: impl FnMut() -> reqwest::RequestBuilder,
    mut read: impl AsyncFnMut(reqwest::Response) -> Result<T, Failure>,
) -> Result<T, ProviderError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match send_once(build()).await {
            Ok(resp) => read(resp).await,
            Err(f) => Err(f),
        };
        match result {
            Ok(reply) => return Ok(reply),
            Err(f) => pause(f, attempt).await.map_err(|e| tried(e, attempt))?,
        }
    }
}

/// Adds how many tries were made to an error that ends the retries.
fn tried(e: ProviderError, attempts: u32) -> ProviderError {
    if attempts < 2 {
        return e;
    }
    let note = format!(" (tried {attempts} times)");
    match e {
        ProviderError::Api { status, message } => ProviderError::Api {
            status,
            message: message + &note,
        },
        ProviderError::Transport(m) => ProviderError::Transport(m + &note),
        e => e,
    }
}

/// After try number `attempt` (from 1) failed: sleeps before the next
/// try (the server's `retry-after`, else [`BASE_DELAY`] doubled per try,
/// at most [`MAX_DELAY`]).
///
/// Errors: the failure's error when it is fatal or the tries are spent.
async fn pause(failure: Failure, attempt: u32) -> Result<(), ProviderError> {
    match failure {
        Failure::Fatal(error) => Err(error),
        Failure::Retry {
            error: ProviderError::Api { status, message },
            after: Some(after),
        } if attempt >= MAX_ATTEMPTS => Err(ProviderError::Api {
            status,
            message: format!(
                "{message} (the server's retry-after: {:.1} s)",
                after.as_secs_f64()
            ),
        }),
        Failure::Retry { error, .. } if attempt >= MAX_ATTEMPTS => Err(error),
        Failure::Retry { error, after } => {
            let backoff = BASE_DELAY * 2u32.pow(attempt.saturating_sub(1));
            let delay = after.unwrap_or(backoff).min(MAX_DELAY);
            tracing::debug!(%error, ?delay, attempt, "retrying model call");
            tokio::time::sleep(delay).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // 08:49:30
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("9999", now), Some(MAX_DELAY));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past retries at once"
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
