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
use crate::agent::transcript::{Block, Message, Role, Usage};
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
    let mut body = json!({
        "model": config.model,
        "messages": messages(request.system, request.messages),
        "stream": true,
        // The last chunk then carries `usage` (the context size).
        "stream_options": {"include_usage": true},
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    body[config.max_tokens_param.as_str()] = json!(config.max_tokens);
    body
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
    retry::call(build, async |resp| read(resp, on_text).await)
        .await
        .map_err(|e| explain_token_param(e, config))
}

/// A 400 that names the output-budget field agentctl sent (OpenAI's
/// reasoning models answer `Unsupported parameter: 'max_tokens' …`) gets a
/// hint saying how to send the other one.
fn explain_token_param(e: ProviderError, config: &Config) -> ProviderError {
    let sent = config.max_tokens_param;
    match e {
        ProviderError::Api {
            status: 400,
            message,
        } if message.contains(sent.as_str()) => {
            let path = crate::agent::config::config_path().map_or_else(
                || "agentctl's config.toml".into(),
                |p| p.display().to_string(),
            );
            ProviderError::Api {
                status: 400,
                message: format!(
                    "{message} (agentctl sent `{}`; if this server wants `{}`, set \
                     max_tokens_param = \"{}\" in {path})",
                    sent.as_str(),
                    sent.other().as_str(),
                    sent.other().as_str(),
                ),
            }
        }
        e => e,
    }
}

/// The one model an OpenAI-compatible server serves, for when none was
/// named (`GET {base_url}/models`, answered by llama.cpp, Ollama, vLLM and
/// OpenAI alike with `{"data": [{"id": …}, …]}`).
///
/// Errors, each saying how to name a model instead: the server cannot be
/// reached or answers with an error; it serves no model, or several (they
/// are listed).
pub async fn only_served_model(http: &reqwest::Client, config: &Config) -> anyhow::Result<String> {
    let url = format!("{}/models", config.base_url);
    let how = "name one with AGENTCTL_MODEL=NAME (or `model` in agentctl's config.toml)";
    let mut req = http.get(&url);
    if let Some(key) = &config.api_key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!(
            "no model is named and asking {url} which models it serves failed: {e:#}; {how}"
        )
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!(
            "no model is named and {url} answered {status}: {}; {how}",
            super::error_message(&text)
        );
    }
    let ids: Vec<String> = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v["data"].as_array().map(|models| {
                models
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    match ids.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("no model is named and {url} lists no models; {how}"),
        many => anyhow::bail!(
            "no model is named and {url} serves {} models ({}); {how}",
            many.len(),
            many.join(", ")
        ),
    }
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

/// Adds one stream fragment of a tool call's `id` or `name` to what came
/// before. The stream format lets a server split them across chunks
/// (`"ba"`, then `"sh"`: joined), and some servers instead repeat the whole
/// value in every chunk (`"bash"`, `"bash"`: kept once) or send it growing
/// (`"ba"`, `"bash"`: the longer one). So a fragment equal to what is
/// there, or starting with it, replaces it; any other is appended. (A
/// name that is its own first half twice over, `"baba"` sent as `"ba"`,
/// `"ba"`, would come out as `"ba"`; no tool is named so.)
fn join_fragment(field: &mut String, piece: &str) {
    if piece.starts_with(field.as_str()) {
        field.replace_range(.., piece);
    } else {
        field.push_str(piece);
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
    /// `usage` of the completion (a stream's last chunk).
    usage: Option<Usage>,
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
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Some(Usage {
                input_tokens: n("prompt_tokens"),
                output_tokens: n("completion_tokens"),
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
            if let Some(id) = tc["id"].as_str() {
                join_fragment(&mut call.id, id);
            }
            if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                join_fragment(&mut call.name, name);
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
        Reply {
            content,
            stop,
            usage: self.usage,
        }
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
    fn ids_and_names_split_across_fragments_are_joined() {
        let mut g = Gathered::default();
        let frags = [("ca", "ba", "{\"command\":"), ("ll_7", "sh", "\"ls\"}")];
        for (id, name, args) in frags {
            let v = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                "id": id, "function": {"name": name, "arguments": args}}]}}]});
            g.chunk(&v, "delta", &mut |_: &str| {}).unwrap();
        }
        // A growing (cumulative) name is taken whole too.
        for name in ["read", "read_file"] {
            let v = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1,
                "function": {"name": name, "arguments": ""}}]}}]});
            g.chunk(&v, "delta", &mut |_: &str| {}).unwrap();
        }
        let reply = g.reply();
        assert!(
            matches!(&reply.content[0], Block::ToolUse { id, name, input } if id == "call_7" && name == "bash" && input["command"] == "ls"),
            "{:?}",
            reply.content
        );
        assert!(
            matches!(&reply.content[1], Block::ToolUse { name, .. } if name == "read_file"),
            "{:?}",
            reply.content
        );
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
