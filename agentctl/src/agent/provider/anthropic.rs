//! The Anthropic Messages API, streaming: `POST {base}/v1/messages` with
//! `x-api-key` and `anthropic-version: 2023-06-01`; text deltas and
//! `input_json_delta` fragments are gathered per content block index.
//! Empty text blocks are dropped (the API refuses them when sent back).

use super::retry::Failure;
use super::{ProviderError, Reply, Request, StopReason, retry};
use crate::agent::config::Config;
use crate::agent::sse;
use crate::agent::transcript::{Block, Usage};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The API version header value.
pub const API_VERSION: &str = "2023-06-01";

/// A content block while its deltas arrive.
enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// Kinds we do not keep (thinking, server tools).
    Other,
}

/// The request body.
pub fn body(config: &Config, request: &Request<'_>) -> Value {
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect();
    let tools = (!tools.is_empty()).then_some(tools);
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({
        "model": config.model,
        "max_tokens": config.max_tokens,
        "system": request.system,
        "messages": messages,
        "stream": true,
    });
    if let Some(tools) = tools {
        body["tools"] = Value::Array(tools);
    }
    body
}

/// One streaming call, retried (see [`retry`]) on 429/5xx, connection
/// errors, a stream cut before `message_stop`, and an `overloaded_error`
/// (or `api_error`, `rate_limit_error`) event inside the stream.
///
/// Errors: see [`super::Provider::complete`].
pub async fn complete(
    http: &reqwest::Client,
    config: &Config,
    request: &Request<'_>,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Reply, ProviderError> {
    let url = format!("{}/v1/messages", config.base_url);
    let body = body(config, request);
    let build = || {
        let b = http
            .post(&url)
            .header("anthropic-version", API_VERSION)
            .header("accept", "text/event-stream")
            .json(&body);
        match &config.api_key {
            Some(key) => b.header("x-api-key", key),
            None => b,
        }
    };
    retry::call(build, async |resp| read(resp, on_text).await).await
}

/// Reads one response: a stream, or a whole message from a server that
/// ignores `stream`.
async fn read(
    resp: reqwest::Response,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Reply, Failure> {
    let mut resp = match super::body(resp).await? {
        super::Body::Whole(text) => return parse_message(&text, on_text).map_err(Failure::Fatal),
        super::Body::Stream(resp) => resp,
    };
    let mut parser = sse::Parser::new();
    let mut state = Stream::default();
    loop {
        let chunk = super::next_chunk(&mut resp).await.map_err(Failure::retry)?;
        let events = match &chunk {
            Some(bytes) => parser.feed(bytes),
            None => parser.finish().into_iter().collect(),
        };
        for ev in events {
            if state.event(&ev, on_text)? {
                return Ok(state.reply());
            }
        }
        if chunk.is_none() {
            return if state.stop.is_some() {
                Ok(state.reply())
            } else {
                Err(Failure::retry(ProviderError::Transport(
                    "the stream ended before message_stop".into(),
                )))
            };
        }
    }
}

/// The stream's state: blocks by index and the stop reason.
#[derive(Default)]
struct Stream {
    blocks: BTreeMap<u64, Partial>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

/// The token counts of a `usage` object: input (cache writes and reads
/// included) and output.
fn usage(u: &Value) -> Option<Usage> {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    u.is_object().then(|| Usage {
        input_tokens: n("input_tokens")
            + n("cache_creation_input_tokens")
            + n("cache_read_input_tokens"),
        output_tokens: n("output_tokens"),
    })
}

impl Stream {
    /// Handles one event; true at `message_stop`.
    fn event(
        &mut self,
        ev: &sse::Event,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<bool, Failure> {
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return Ok(false);
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&ev.event);
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => self.usage = usage(&data["message"]["usage"]),
            "content_block_start" => {
                let cb = &data["content_block"];
                let partial = match cb["type"].as_str() {
                    Some("text") => {
                        let t = cb["text"].as_str().unwrap_or("").to_string();
                        if !t.is_empty() {
                            on_text(&t);
                        }
                        Partial::Text(t)
                    }
                    Some("tool_use") => Partial::Tool {
                        id: cb["id"].as_str().unwrap_or("").to_string(),
                        name: cb["name"].as_str().unwrap_or("").to_string(),
                        json: String::new(),
                    },
                    _ => Partial::Other,
                };
                self.blocks.insert(index, partial);
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match (self.blocks.get_mut(&index), delta["type"].as_str()) {
                    (Some(Partial::Text(t)), Some("text_delta")) => {
                        let piece = delta["text"].as_str().unwrap_or("");
                        on_text(piece);
                        t.push_str(piece);
                    }
                    (Some(Partial::Tool { json, .. }), Some("input_json_delta")) => {
                        json.push_str(delta["partial_json"].as_str().unwrap_or(""));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let (Some(u), Some(out)) = (
                    self.usage.as_mut(),
                    data.pointer("/usage/output_tokens").and_then(Value::as_u64),
                ) {
                    u.output_tokens = out;
                }
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(stop_reason(r));
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                let kind = data
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event in the stream");
                // The statuses the same errors have as HTTP answers.
                let status = match kind {
                    "overloaded_error" => 529,
                    "api_error" => 500,
                    "rate_limit_error" => 429,
                    _ => 0,
                };
                let error = ProviderError::Api {
                    status,
                    message: format!("{kind}: {message}"),
                };
                return Err(if status == 0 {
                    Failure::Fatal(error)
                } else {
                    Failure::retry(error)
                });
            }
            _ => {}
        }
        Ok(false)
    }

    fn reply(self) -> Reply {
        let content = self
            .blocks
            .into_values()
            .filter_map(|p| match p {
                Partial::Text(text) if !text.is_empty() => Some(Block::Text { text }),
                Partial::Tool { id, name, json } => Some(Block::ToolUse {
                    id,
                    name,
                    input: parse_input(&json),
                }),
                _ => None,
            })
            .collect();
        Reply {
            content,
            stop: self.stop.unwrap_or(StopReason::EndTurn),
            usage: self.usage,
        }
    }
}

/// A tool call's accumulated JSON; empty means `{}`. Unparseable input
/// (cut by max_tokens) is kept under `_invalid_json`, an object still, so
/// the conversation stays valid and the tool reports the problem.
pub fn parse_input(json: &str) -> Value {
    if json.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(json) {
        Ok(v) if v.is_object() => v,
        _ => json!({ "_invalid_json": json }),
    }
}

/// Maps the API's stop reason.
pub fn stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::Refusal,
        other => StopReason::Other(other.to_string()),
    }
}

/// A non-streamed message body.
fn parse_message(
    text: &str,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Reply, ProviderError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ProviderError::Transport(format!("unreadable reply: {e}")))?;
    let mut content = Vec::new();
    for b in v["content"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("text") => {
                // The API refuses empty text blocks when they are sent back.
                let t = b["text"].as_str().unwrap_or("");
                if !t.is_empty() {
                    on_text(t);
                    content.push(Block::text(t));
                }
            }
            Some("tool_use") => content.push(Block::ToolUse {
                id: b["id"].as_str().unwrap_or("").to_string(),
                name: b["name"].as_str().unwrap_or("").to_string(),
                input: b["input"].clone(),
            }),
            _ => {}
        }
    }
    Ok(Reply {
        content,
        stop: stop_reason(v["stop_reason"].as_str().unwrap_or("end_turn")),
        usage: usage(&v["usage"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_streamed_message_is_read_whole() {
        let body = r#"{"content":[{"type":"text","text":"hi"},
            {"type":"tool_use","id":"t1","name":"bash","input":{"command":"ls"}}],
            "stop_reason":"tool_use"}"#;
        let mut seen = String::new();
        let reply = parse_message(body, &mut |t: &str| seen.push_str(t)).unwrap();
        assert_eq!(seen, "hi");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert!(matches!(&reply.content[1], Block::ToolUse { id, .. } if id == "t1"));
    }

    #[test]
    fn empty_text_blocks_are_dropped() {
        let body = r#"{"content":[{"type":"text","text":""},
            {"type":"tool_use","id":"t1","name":"bash","input":{}}],"stop_reason":"tool_use"}"#;
        let reply = parse_message(body, &mut |_: &str| {}).unwrap();
        assert_eq!(reply.content.len(), 1);
        assert!(matches!(&reply.content[0], Block::ToolUse { .. }));
    }

    #[test]
    fn an_overloaded_error_event_is_retried_and_others_are_not() {
        let ev = |kind: &str| sse::Event {
            event: "error".into(),
            data: json!({"type": "error", "error": {"type": kind, "message": "m"}}).to_string(),
        };
        let mut st = Stream::default();
        let mut on_text = |_: &str| {};
        assert!(matches!(
            st.event(&ev("overloaded_error"), &mut on_text),
            Err(Failure::Retry {
                error: ProviderError::Api { status: 529, .. },
                ..
            })
        ));
        assert!(matches!(
            st.event(&ev("invalid_request_error"), &mut on_text),
            Err(Failure::Fatal(_))
        ));
    }

    #[test]
    fn cut_tool_input_stays_an_object() {
        assert_eq!(parse_input(""), json!({}));
        assert_eq!(
            parse_input("{\"a\": 1"),
            json!({"_invalid_json": "{\"a\": 1"})
        );
    }

    #[test]
    fn stream_gathers_text_and_tool_json_per_block() {
        let raw = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"bash\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"comm\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"and\\\": \\\"ls\\\"}\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut parser = sse::Parser::new();
        let mut st = Stream::default();
        let mut seen = String::new();
        let mut on_text = |t: &str| seen.push_str(t);
        let mut done = false;
        // Feed in small chunks to cross event boundaries.
        for chunk in raw.as_bytes().chunks(7) {
            for ev in parser.feed(chunk) {
                done |= st.event(&ev, &mut on_text).unwrap();
            }
        }
        assert!(done);
        let reply = st.reply();
        assert_eq!(seen, "Hello");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.content.len(), 2);
        assert!(
            matches!(&reply.content[1], Block::ToolUse { id, input, .. } if id == "tu1" && input["command"] == "ls")
        );
    }
}
