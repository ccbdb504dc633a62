//! OpenAI-compatible chat completions, streaming: `POST
//! {base}/chat/completions` (OpenAI, llama.cpp's server, Ollama, vLLM).
//! Tools are offered as functions; tool results go back as `role: "tool"`
//! messages; streamed `tool_calls` argument fragments are joined per index.

use super::anthropic::parse_input;
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

/// One streaming call.
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
    let mut resp = retry::send(|| {
        let b = http.post(&url).json(&body);
        match &config.api_key {
            Some(key) => b.bearer_auth(key),
            None => b,
        }
    })
    .await?;
    let mut parser = sse::Parser::new();
    let mut text = String::new();
    let mut calls: BTreeMap<u64, Call> = BTreeMap::new();
    let mut finish: Option<String> = None;
    loop {
        let chunk = super::next_chunk(&mut resp).await?;
        let events = match &chunk {
            Some(bytes) => parser.feed(bytes),
            None => parser.finish().into_iter().collect(),
        };
        let mut done = chunk.is_none();
        for ev in events {
            if ev.data.trim() == "[DONE]" {
                done = true;
                break;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
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
                continue;
            };
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                on_text(t);
                text.push_str(t);
            }
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                let idx = tc["index"].as_u64().unwrap_or(0);
                let call = calls.entry(idx).or_default();
                if let Some(id) = tc["id"].as_str() {
                    call.id.push_str(id);
                }
                if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                    call.name.push_str(name);
                }
                if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                    call.args.push_str(args);
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
        if done {
            break;
        }
    }
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(Block::Text { text });
    }
    for (i, call) in calls {
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
    let stop = match finish.as_deref() {
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::Refusal,
        // Some local servers say "stop" even when they called tools.
        _ if has_calls => StopReason::ToolUse,
        Some("stop") | None => StopReason::EndTurn,
        Some(other) => StopReason::Other(other.to_string()),
    };
    Ok(Reply { content, stop })
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
}
