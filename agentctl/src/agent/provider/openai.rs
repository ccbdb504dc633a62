//! OpenAI-compatible chat completions, streaming: `POST
//! {base}/chat/completions` (OpenAI, llama.cpp's server, Ollama, vLLM). A
//! server that answers with one whole completion instead of a stream is
//! read the same way.
//! Tools are offered as functions; tool results go back as `role: "tool"`
//! messages; streamed `tool_calls` argument fragments are joined per index.

use super::anthropic::parse_input;
use super::retry::Failure;
use super::{ProviderError, Reply, Request, StopReason, retry};
use crate::agent::config::Config;
use crate::agent::sse;
use crate::agent::transcript::{Block, Message, Role};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Converts the conversation: a system message first; each user message
/// becomes its `tool` messages followed by one `user` message for its text.
pub fn messages(system: &str, conversation: &[Message]) -> Vec<Value> {
    let mut out = vec![json!({"role": "system", "content": system})];
    for m in conversation {
        match m.role {
            Role::User => {
                let mut text = Vec::new();
                for b in &m.content {
                    match b {
                        Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            let content = if *is_error && !content.starts_with("error") {
                                format!("error: {content}")
                            } else {
                                content.clone()
                            };
                            out.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
                        }
                        Block::Text { text: t } => text.push(t.as_str()),
                        Block::ToolUse { .. } => {}
                    }
                }
                if !text.is_empty() {
                    out.push(json!({"role": "user", "content": text.join("\n\n")}));
                }
            }
            Role::Assistant => {
                let text = m.text();
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolUse { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": input.to_string()},
                        })),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                out.push(msg);
            }
        }
    }
    out
}

/// The request body.
pub fn body(config: &Config, request: &Request<'_>) -> Value {
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.input_schema}})
        })
        .collect();
    json!({
        "model": config.model,
        "max_tokens": config.max_tokens,
        "messages": messages(request.system, request.messages),
        "tools": tools,
        "stream": true,
    })
}

/// A tool call while its fragments arrive.
#[derive(Default)]
struct Call {
    id: String,
    name: String,
    args: String,
}

/// One streaming call, retried (see [`retry`]) on 429/5xx, connection
/// errors and a stream that ends with neither `[DONE]` nor a
/// `finish_reason` (a cut stream is not a finished reply).
///
/// Errors: see [`super::Provider::complete`].
pub async fn complete(
    http: &reqwest::Client,
    config: &Config,
    request: &Request<'_>,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Reply, ProviderError> {
    let url = format!("{}/chat/completions", config.base_url);
    let body = body(config, request);
    let build = || {
        let b = http.post(&url).json(&body);
        match &config.api_key {
            Some(key) => b.bearer_auth(key),
            None => b,
        }
    };
    retry::call(build, async |resp| read(resp, on_text).await).await
}

/// Reads one response: a stream, or one whole completion from a server
/// that ignores `stream`.
async fn read(
    resp: reqwest::Response,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Reply, Failure> {
    let mut reply = Gathered::default();
    let mut resp = match super::body(resp).await? {
        super::Body::Stream(resp) => resp,
        super::Body::Whole(text) => {
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                Failure::Fatal(ProviderError::Transport(format!("unreadable reply: {e}")))
            })?;
            reply
                .chunk(&v, "message", on_text)
                .map_err(Failure::Fatal)?;
            return Ok(reply.reply());
        }
    };
    let mut parser = sse::Parser::new();
    loop {
        let chunk = super::next_chunk(&mut resp).await.map_err(Failure::retry)?;
        let events = match &chunk {
            Some(bytes) => parser.feed(bytes),
            None => parser.finish().into_iter().collect(),
        };
        for ev in events {
            if ev.data.trim() == "[DONE]" {
                return Ok(reply.reply());
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            reply.chunk(&v, "delta", on_text).map_err(Failure::Fatal)?;
        }
        if chunk.is_none() {
            // Some servers close after the finish_reason without `[DONE]`.
            return if reply.finish.is_some() {
                Ok(reply.reply())
            } else {
                Err(Failure::retry(ProviderError::Transport(
                    "the stream ended before [DONE] and without a finish_reason".into(),
                )))
            };
        }
    }
}

/// A reply as it is gathered: from the `delta`s of a stream's chunks, or
/// from the one `message` of a whole completion.
#[derive(Default)]
struct Gathered {
    text: String,
    /// Tool calls by their `index` (a whole message's calls by position).
    calls: BTreeMap<u64, Call>,
    finish: Option<String>,
}

impl Gathered {
    /// Takes one chunk or completion `v`; `part` is `"delta"` for a stream's
    /// chunk, `"message"` for a whole completion.
    ///
    /// Errors: `v` carries an `error` object.
    fn chunk(
        &mut self,
        v: &Value,
        part: &str,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), ProviderError> {
        if let Some(err) = v.get("error") {
            return Err(ProviderError::Api {
                status: 0,
                message: err["message"]
                    .as_str()
                    .unwrap_or("error in the stream")
                    .to_string(),
            });
        }
        let Some(choice) = v.pointer("/choices/0") else {
            return Ok(());
        };
        let delta = &choice[part];
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            on_text(t);
            self.text.push_str(t);
        }
        for (pos, tc) in delta["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let idx = tc["index"].as_u64().unwrap_or(pos as u64);
            let call = self.calls.entry(idx).or_default();
            // `id` and `name` come whole (some servers repeat them in every
            // chunk); only `arguments` arrives in fragments.
            if let Some(id) = tc["id"].as_str().filter(|s| !s.is_empty()) {
                call.id = id.to_string();
            }
            if let Some(name) = tc
                .pointer("/function/name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                call.name = name.to_string();
            }
            if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                call.args.push_str(args);
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_string());
        }
        Ok(())
    }

    /// The reply: text first, then the tool calls in index order.
    fn reply(self) -> Reply {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Block::Text { text: self.text });
        }
        for (i, call) in self.calls {
            content.push(Block::ToolUse {
                id: if call.id.is_empty() {
                    format!("call_{i}")
                } else {
                    call.id
                },
                name: call.name,
                input: parse_input(&call.args),
            });
        }
        let has_calls = content.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        let stop = match self.finish.as_deref() {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::Refusal,
            // Some local servers say "stop" even when they called tools.
            _ if has_calls => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.to_string()),
        };
        Reply { content, stop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_become_tool_messages_before_user_text() {
        let conv = vec![
            Message::new(Role::User, vec![Block::text("hi")]),
            Message::new(
                Role::Assistant,
                vec![Block::ToolUse {
                    id: "c1".into(),
                    name: "bash".into(),
                    input: json!({"command": "ls"}),
                }],
            ),
            Message::new(
                Role::User,
                vec![
                    Block::ToolResult {
                        tool_use_id: "c1".into(),
                        content: "a.txt".into(),
                        is_error: false,
                    },
                    Block::text("<background-results>\n</background-results>"),
                ],
            ),
        ];
        let m = messages("sys", &conv);
        let roles: Vec<&str> = m.iter().map(|v| v["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            "{\"command\":\"ls\"}"
        );
        assert_eq!(m[3]["tool_call_id"], "c1");
    }

    #[test]
    fn repeated_ids_and_names_are_set_not_appended() {
        let mut g = Gathered::default();
        for args in ["{\"command\":", "\"ls\"}"] {
            let v = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                "id": "c1", "type": "function", "function": {"name": "bash", "arguments": args}}]}}]});
            g.chunk(&v, "delta", &mut |_: &str| {}).unwrap();
        }
        let reply = g.reply();
        assert!(
            matches!(&reply.content[0], Block::ToolUse { id, name, input } if id == "c1" && name == "bash" && input["command"] == "ls"),
            "{:?}",
            reply.content
        );
    }

    #[test]
    fn a_whole_completion_is_read_like_a_stream() {
        let v = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Looking.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\":\"ls\"}"}},
            {"id": "c2", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}
        ]}}]});
        let mut g = Gathered::default();
        let mut seen = String::new();
        g.chunk(&v, "message", &mut |t: &str| seen.push_str(t))
            .unwrap();
        let reply = g.reply();
        assert_eq!(seen, "Looking.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.content.len(), 3);
        assert!(
            matches!(&reply.content[2], Block::ToolUse { id, name, input } if id == "c2" && name == "read_file" && input["path"] == "a")
        );
    }
}
