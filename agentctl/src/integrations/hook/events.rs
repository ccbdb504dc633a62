//! The hook events of each agent: which ones take extra context, which
//! agentd session an event belongs to, and the answer's shape.
//!
//! | agent | events that inject | answer |
//! | --- | --- | --- |
//! | Claude Code | `SessionStart`, `UserPromptSubmit`, `PostToolUse` | `hookSpecificOutput.additionalContext` |
//! | Codex | `SessionStart`, `UserPromptSubmit` | `hookSpecificOutput.additionalContext` |
//! | Gemini CLI | `SessionStart`, `BeforeAgent`, `AfterTool` | `hookSpecificOutput.additionalContext` |
//!
//! Every event carries `hook_event_name`, `session_id` and `cwd` (all
//! three agents use these names). Claude Code's results are bound to its
//! `session_id` (the MCP server sees the same id in
//! `CLAUDE_CODE_SESSION_ID`); Codex's and Gemini's to the project
//! directory, since their MCP servers are not told the session id
//! ([`crate::integrations::binding`]).

use super::super::{Agent, binding};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;

/// What to do for one event.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The event's name, echoed in the answer.
    pub event: String,
    /// The agentd session whose results to inject.
    pub session: String,
}

/// The fields of a hook event the hook reads; the rest is ignored.
#[derive(Debug, Deserialize)]
struct Event {
    hook_event_name: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
}

/// The events of `agent` whose answer can add context for the model.
pub fn injecting_events(agent: Agent) -> &'static [&'static str] {
    match agent {
        Agent::ClaudeCode => &["SessionStart", "UserPromptSubmit", "PostToolUse"],
        Agent::Codex => &["SessionStart", "UserPromptSubmit"],
        Agent::Gemini => &["SessionStart", "BeforeAgent", "AfterTool"],
    }
}

/// Reads an event: `None` when it is not JSON, not an event that injects,
/// or does not say whose it is.
pub fn plan(agent: Agent, input: &[u8]) -> Option<Plan> {
    let event: Event = serde_json::from_slice(input).ok()?;
    if !injecting_events(agent).contains(&event.hook_event_name.as_str()) {
        return None;
    }
    let session = match agent {
        Agent::ClaudeCode => {
            let id = event
                .session_id
                .filter(|s| !s.is_empty())
                .or_else(|| std::env::var(binding::CLAUDE_SESSION_ENV).ok())
                .filter(|s| !s.is_empty())?;
            binding::claude_session(&id)
        }
        Agent::Codex | Agent::Gemini => {
            let from_env = match agent {
                Agent::Gemini => std::env::var_os(binding::GEMINI_PROJECT_ENV),
                _ => None,
            };
            let dir = from_env
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| event.cwd.filter(|c| !c.is_empty()).map(PathBuf::from))
                .or_else(|| std::env::current_dir().ok())?;
            binding::dir_session(&dir)
        }
    };
    Some(Plan {
        event: event.hook_event_name,
        session,
    })
}

/// The answer carrying `context` for event `event` of `agent`.
pub fn answer(agent: Agent, event: &str, context: &str) -> Value {
    match agent {
        // All three document the same shape for added context.
        Agent::ClaudeCode | Agent::Codex | Agent::Gemini => json!({
            "hookSpecificOutput": {
                "hookEventName": event,
                "additionalContext": context,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn claude_code_prompt_submit_binds_to_its_session_id() {
        let event = br#"{"session_id":"abc-123","transcript_path":"/t.jsonl","cwd":"/p",
            "hook_event_name":"UserPromptSubmit","permission_mode":"default","prompt":"hi"}"#;
        let p = plan(Agent::ClaudeCode, event).unwrap();
        assert_eq!(p.session, "claude-abc-123");
        assert_eq!(p.event, "UserPromptSubmit");
        let start = br#"{"session_id":"abc-123","cwd":"/p","hook_event_name":"SessionStart","source":"resume"}"#;
        assert_eq!(
            plan(Agent::ClaudeCode, start).unwrap().session,
            "claude-abc-123"
        );
    }

    #[test]
    fn events_without_context_and_garbage_inject_nothing() {
        let stop = br#"{"session_id":"s","cwd":"/p","hook_event_name":"Stop"}"#;
        assert_eq!(plan(Agent::ClaudeCode, stop), None);
        assert_eq!(plan(Agent::ClaudeCode, b"not json"), None);
        assert_eq!(plan(Agent::ClaudeCode, b""), None);
        // Gemini's prompt event is BeforeAgent, not UserPromptSubmit.
        let ups = br#"{"session_id":"s","cwd":"/p","hook_event_name":"UserPromptSubmit"}"#;
        assert_eq!(plan(Agent::Gemini, ups), None);
    }

    #[test]
    fn codex_events_bind_to_the_project_directory() {
        // Codex's documented UserPromptSubmit and SessionStart inputs.
        let event = br#"{"session_id":"019a-codex","transcript_path":null,"cwd":"/work/proj",
            "hook_event_name":"UserPromptSubmit","model":"gpt-5.1","turn_id":"t1","prompt":"go"}"#;
        let p = plan(Agent::Codex, event).unwrap();
        assert_eq!(p.session, binding::dir_session(Path::new("/work/proj")));
        let start = br#"{"session_id":"019a","cwd":"/work/proj","hook_event_name":"SessionStart",
            "model":"gpt-5.1","source":"startup"}"#;
        assert_eq!(plan(Agent::Codex, start).unwrap().event, "SessionStart");
        let post = br#"{"session_id":"019a","cwd":"/work/proj","hook_event_name":"PostToolUse","tool_name":"Bash"}"#;
        assert_eq!(plan(Agent::Codex, post), None);
        let block = "<background-results>\n</background-results>";
        assert_eq!(
            answer(Agent::Codex, "UserPromptSubmit", block),
            json!({"hookSpecificOutput":{"hookEventName":"UserPromptSubmit",
                "additionalContext": block}})
        );
    }

    #[test]
    fn gemini_before_agent_and_after_tool_inject() {
        // Gemini CLI's documented BeforeAgent and AfterTool inputs.
        let before = br#"{"session_id":"g-1","transcript_path":"/t.json","cwd":"/home/u/app",
            "hook_event_name":"BeforeAgent","timestamp":"2026-01-01T00:00:00Z","prompt":"build it"}"#;
        let p = plan(Agent::Gemini, before).unwrap();
        assert_eq!(p.event, "BeforeAgent");
        assert_eq!(p.session, binding::dir_session(Path::new("/home/u/app")));
        let after = br#"{"session_id":"g-1","cwd":"/home/u/app","hook_event_name":"AfterTool",
            "timestamp":"2026-01-01T00:00:00Z","tool_name":"run_shell_command",
            "tool_input":{"command":"ls"},"tool_response":{"llmContent":"a b"}}"#;
        assert_eq!(plan(Agent::Gemini, after).unwrap().event, "AfterTool");
        let v = answer(Agent::Gemini, "AfterTool", "ctx");
        assert_eq!(v["hookSpecificOutput"]["additionalContext"], "ctx");
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "AfterTool");
    }
}
