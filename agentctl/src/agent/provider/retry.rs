//! Sending with bounded retries: 429, 5xx (and Anthropic's 529) and
//! connection errors are retried with exponential backoff, honouring a
//! `retry-after` header (seconds; `0` retries at once).

use super::{ProviderError, error_message};
use std::time::Duration;

/// Tries in all (the first and the retries).
pub const MAX_ATTEMPTS: u32 = 5;
/// Delay before the first retry without `retry-after`; doubles per retry.
pub const BASE_DELAY: Duration = Duration::from_millis(500);
/// The longest single wait, whatever `retry-after` says.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

fn retryable(status: reqwest::StatusCode) -> bool {
    status.as_u16() == 429 || status.is_server_error()
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_DELAY))
}

/// Sends the request `build` makes (called again for each try) and returns
/// the first successful response.
///
/// Errors: [`ProviderError::Api`] with the API's message for a
/// non-retryable status or when tries are spent; [`ProviderError::Transport`]
/// when the server could not be reached.
pub async fn send(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let backoff = BASE_DELAY * 2u32.pow(attempt - 1);
        let last = attempt >= MAX_ATTEMPTS;
        match build().send().await {
            Ok(resp) if resp.status().is_success() => return Ok(resp),
            Ok(resp) => {
                let status = resp.status();
                let delay = retry_after(&resp).unwrap_or(backoff).min(MAX_DELAY);
                if !retryable(status) || last {
                    let body = resp.text().await.unwrap_or_default();
                    return Err(ProviderError::Api {
                        status: status.as_u16(),
                        message: error_message(&body),
                    });
                }
                tracing::debug!(%status, ?delay, "retrying model call");
                tokio::time::sleep(delay).await;
            }
            Err(e) if !last && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                tracing::debug!(error = %e, "retrying model call");
                tokio::time::sleep(backoff.min(MAX_DELAY)).await;
            }
            Err(e) => return Err(ProviderError::Transport(format!("{e:#}"))),
        }
    }
}
