//! The model-facing tools (docs/agent.md, "Tools"): their specs, and dispatch
//! from a `tool_use` block to the code that runs it. A tool never fails
//! the turn: every problem becomes an error result the model can read.

pub mod blocklist;
pub mod cap;
pub mod files;
pub mod jobs;
pub mod shell;
pub mod workspace;

use super::provider::ToolSpec;
use agentd_proto::Client;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What the tools run against.
#[derive(Clone)]
pub struct ToolContext {
    /// Connection to agentd.
    pub client: Arc<Client>,
    /// The session: jobs are submitted under it.
    pub session: String,
    /// The workspace root, canonical (symlinks resolved).
    pub workdir: PathBuf,
    /// The environment jobs get (API keys removed).
    pub env: BTreeMap<String, String>,
    /// How the jobs are confined (config `[sandbox]`, `--sandbox`).
    pub sandbox: agentd_proto::Sandbox,
    /// Where `background_run` jobs run (config `[background]`).
    pub background: crate::agent::config::Background,
}

/// A tool's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Text for the model.
    pub content: String,
    /// True when the tool failed.
    pub is_error: bool,
    /// Full id of a job whose end this result already reports (a `bash`
    /// call that finished in time): its notification is not shown again.
    pub fg_job: Option<String>,
}

impl Outcome {
    /// A successful result.
    pub fn ok(content: impl Into<String>) -> Outcome {
        Outcome {
            content: content.into(),
            is_error: false,
            fg_job: None,
        }
    }

    /// An error result.
    pub fn err(content: impl Into<String>) -> Outcome {
        Outcome {
            content: format!("error: {}", content.into()),
            is_error: true,
            fg_job: None,
        }
    }
}

/// The tools on offer, with their input schemas.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "bash",
            description: "Run a shell command in the workspace and wait for it (default 120 s, at most 600 s). \
                          If it is still running at the timeout it is not killed: it continues as a background \
                          task whose result arrives later. Use background_run for anything long.",
            input_schema: json!({"type": "object", "properties": {
                "command": {"type": "string", "description": "Shell command (/bin/sh -c)."},
                "timeout": {"type": "number", "description": "Seconds to wait, default 120, max 600."}},
                "required": ["command"]}),
        },
        ToolSpec {
            name: "read_file",
            description: "Read a text file in the workspace, optionally only its first `limit` lines.",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
                "required": ["path"]}),
        },
        ToolSpec {
            name: "write_file",
            description: "Write (create or replace) a file in the workspace; parent directories are created.",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"]}),
        },
        ToolSpec {
            name: "edit_file",
            description: "Replace old_text with new_text in a workspace file; old_text must occur exactly once.",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string"}, "old_text": {"type": "string"}, "new_text": {"type": "string"}},
                "required": ["path", "old_text", "new_text"]}),
        },
        ToolSpec {
            name: "background_run",
            description: "Start a shell command as a background task and return at once with its id. \
                          Its result arrives later in a <background-results> block. Use it for builds, \
                          test suites, installs and anything that may take more than a few seconds.",
            input_schema: json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "timeout": {"type": "number", "description": "Seconds after which the task is killed (optional)."}},
                "required": ["command"]}),
        },
        ToolSpec {
            name: "check_background",
            description: "With task_id: that task's state, exit code and output tail. Without: this session's tasks.",
            input_schema: json!({"type": "object", "properties": {"task_id": {"type": "string"}}}),
        },
        ToolSpec {
            name: "kill_background",
            description: "Kill a background task (its whole process group) and return its state.",
            input_schema: json!({"type": "object", "properties": {"task_id": {"type": "string"}},
                "required": ["task_id"]}),
        },
    ]
}

/// A string field of the input.
fn str_arg<'a>(input: &'a Value, key: &str) -> Result<&'a str, Outcome> {
    input.get(key).and_then(Value::as_str).ok_or_else(|| {
        if input.get("_invalid_json").is_some() {
            Outcome::err("the tool input was not valid JSON (cut off?); send the call again")
        } else {
            Outcome::err(format!("missing string field `{key}`"))
        }
    })
}

/// Runs one tool call.
pub async fn run(ctx: &ToolContext, name: &str, input: &Value) -> Outcome {
    let result = match name {
        "bash" => shell::bash(ctx, input).await,
        "background_run" => shell::background_run(ctx, input).await,
        "check_background" => jobs::check(ctx, input).await,
        "kill_background" => jobs::kill(ctx, input).await,
        "read_file" => files::read(ctx, input),
        "write_file" => files::write(ctx, input),
        "edit_file" => files::edit(ctx, input),
        other => Err(Outcome::err(format!("unknown tool {other:?}"))),
    };
    result.unwrap_or_else(|e| e)
}

/// The one line shown to the user for a call: `> bash: cargo build`.
pub fn summary(name: &str, input: &Value) -> String {
    let detail = ["command", "path", "task_id"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
        .unwrap_or("");
    let first_line = detail.lines().next().unwrap_or("");
    let mut line: String = first_line.chars().take(120).collect();
    if line.len() < detail.len() {
        line.push('…');
    }
    if line.is_empty() {
        format!("> {name}")
    } else {
        format!("> {name}: {line}")
    }
}
