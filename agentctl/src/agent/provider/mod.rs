//! Model providers: one streaming call per [`Provider::complete`], the
//! reply gathered into content blocks while text deltas go to a callback.
//!
//! [`anthropic`] speaks the Messages API, [`openai`] chat completions;
//! [`retry`] holds the shared send-with-backoff. Errors a user can act on
//! (bad key, bad model, invalid request) come back as
//! [`ProviderError::Api`] with the API's own message.

pub mod anthropic;
pub mod explain;
pub mod openai;
pub mod retry;

use super::config::{Config, ProviderKind};
use super::transcript::{Block, Message, Usage};
use serde_json::Value;

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its reply.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It ran out of output tokens.
    MaxTokens,
    /// A long turn paused; send the conversation again to continue.
    PauseTurn,
    /// It declined to answer.
    Refusal,
    /// Anything else the API reported.
    Other(String),
}

/// One model reply.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Text and tool calls, in order.
    pub content: Vec<Block>,
    /// Why it stopped.
    pub stop: StopReason,
    /// The provider's token counts, when it reported them.
    pub usage: Option<Usage>,
}

/// A tool as offered to the model.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    /// Name (docs/agent.md, "Tools").
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// JSON Schema of its input object.
    pub input_schema: Value,
}

/// What one call sends.
pub struct Request<'a> {
    /// The system prompt.
    pub system: &'a str,
    /// The conversation, valid (alternating, tool results paired).
    pub messages: &'a [Message],
    /// The tools on offer.
    pub tools: &'a [ToolSpec],
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The API answered with an error (after retries for 429/5xx).
    #[error("the model API answered {status}: {message}")]
    Api {
        /// HTTP status (0 for an error event inside a stream).
        status: u16,
        /// The API's error message.
        message: String,
    },
    /// The API could not be reached or the stream broke.
    #[error("cannot reach the model API: {0}")]
    Transport(String),
    /// The request is larger than the model's context window (Anthropic's
    /// 400 `prompt is too long`, OpenAI's `context_length_exceeded`); the
    /// turn compacts the conversation and tries again.
    #[error("the conversation is too long for the model's context window: {0}")]
    ContextTooLong(String),
}

/// True when an error body says the prompt exceeds the context window:
/// Anthropic `prompt is too long: 210000 tokens > 200000 maximum`, OpenAI
/// `"code": "context_length_exceeded"`, and the wording of servers that
/// copy them (`maximum context length`).
pub fn is_context_overflow(status: u16, body: &str) -> bool {
    matches!(status, 400 | 413)
        && (body.contains("prompt is too long")
            || body.contains("context_length_exceeded")
            || body.contains("maximum context length"))
}

/// A configured provider with its HTTP client.
pub struct Provider {
    /// Model, key, base URL.
    config: Config,
    /// Shared connection pool.
    http: reqwest::Client,
}

impl Provider {
    /// Builds the HTTP client (rustls) for `config`.
    ///
    /// Errors: the TLS backend cannot be initialised.
    pub fn new(config: Config) -> anyhow::Result<Provider> {
        Ok(Provider {
            config,
            http: http_client()?,
        })
    }

    /// The model's context window in tokens (`context_window_tokens`).
    pub fn context_window(&self) -> u64 {
        self.config.context_window_tokens
    }

    /// The model id in use.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// One model call, streaming: `on_text` gets each text delta as it
    /// arrives.
    ///
    /// Errors: [`ProviderError`] once retries are spent or for a
    /// non-retryable answer.
    pub async fn complete(
        &self,
        request: &Request<'_>,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, ProviderError> {
        let result = match self.config.provider {
            ProviderKind::Anthropic => {
                anthropic::complete(&self.http, &self.config, request, on_text).await
            }
            ProviderKind::OpenAi => {
                openai::complete(&self.http, &self.config, request, on_text).await
            }
        };
        result.map_err(|e| explain::explain(e, &self.config))
    }
}

/// The HTTP client for model servers: rustls, a 30 s connect timeout.
///
/// Errors: the TLS backend cannot be initialised.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// Longest silence tolerated inside a streamed reply (the APIs send pings
/// far more often).
pub const STREAM_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The next piece of a streamed body; `None` at its end.
///
/// Errors: [`ProviderError::Transport`] when the stream breaks or stays
/// silent for [`STREAM_IDLE_TIMEOUT`].
pub async fn next_chunk(resp: &mut reqwest::Response) -> Result<Option<Vec<u8>>, ProviderError> {
    match tokio::time::timeout(STREAM_IDLE_TIMEOUT, resp.chunk()).await {
        Ok(Ok(chunk)) => Ok(chunk.map(|b| b.to_vec())),
        Ok(Err(e)) => Err(ProviderError::Transport(format!("the stream broke: {e}"))),
        Err(_) => Err(ProviderError::Transport(format!(
            "the stream was silent for {} s",
            STREAM_IDLE_TIMEOUT.as_secs()
        ))),
    }
}

/// A successful reply, as the server sent it.
pub enum Body {
    /// `text/event-stream`: read it event by event.
    Stream(reqwest::Response),
    /// One whole body, from a server that ignores `stream: true`.
    Whole(String),
}

/// Tells a streamed reply from a whole one (by its `Content-Type`) and
/// reads a whole one.
///
/// Errors: the body breaks off (retryable).
pub async fn body(resp: reqwest::Response) -> Result<Body, retry::Failure> {
    let streaming = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streaming {
        return Ok(Body::Stream(resp));
    }
    resp.text()
        .await
        .map(Body::Whole)
        .map_err(|e| retry::Failure::retry(ProviderError::Transport(e.to_string())))
}

/// The readable message of an API error body: `error.message` of the
/// JSON shape both APIs use, else the body itself (shortened).
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(500).collect())
}
