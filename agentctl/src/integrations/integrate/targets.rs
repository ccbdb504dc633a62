//! What `agentctl integrate` writes for each agent, as a list of file
//! edits: which file, and what to change in it (DESIGN.md, "Any agent can
//! use agentd").
//!
//! | agent | MCP server | hooks |
//! | --- | --- | --- |
//! | Claude Code, project | `DIR/.mcp.json` `mcpServers.agentd` (`alwaysLoad`) | `DIR/.claude/settings.json` `hooks` (+ `enabledMcpjsonServers`) |
//! | Claude Code, user | `~/.claude.json` `mcpServers.agentd` | `~/.claude/settings.json` `hooks` |
//! | Codex, project / user | `DIR/.codex/config.toml` / `~/.codex/config.toml` `[mcp_servers.agentd]`, `[features] codex_hooks` | `DIR/.codex/hooks.json` / `~/.codex/hooks.json` |
//! | Gemini CLI, project / user | `DIR/.gemini/settings.json` / `~/.gemini/settings.json` `mcpServers.agentd` | the same file's `hooks` |

use super::super::Agent;
use super::super::hook::events::injecting_events;
use super::json_edit;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Seconds an agent gives our hook before giving up on it: far above its
/// few milliseconds, far below anything a person would notice as a hang
/// (it also gives up on agentd itself after 2 s).
const HOOK_TIMEOUT_SECS: u64 = 10;

/// Where the settings go.
#[derive(Clone, Debug)]
pub enum Scope {
    /// The project in this directory.
    Project(PathBuf),
    /// The user's settings under this home directory.
    User(PathBuf),
}

/// Changes a parsed JSON settings file; the error says what is wrong in it.
pub type JsonEdit = Box<dyn Fn(&mut Map<String, Value>) -> Result<(), String>>;
/// Changes a parsed TOML settings file; the error says what is wrong in it.
pub type TomlEdit = Box<dyn Fn(&mut toml_edit::DocumentMut) -> Result<(), String>>;

/// How a file's text changes.
pub enum Edit {
    /// A JSON settings file.
    Json(JsonEdit),
    /// A TOML settings file.
    Toml(TomlEdit),
}

/// One file and its edit.
pub struct FileEdit {
    /// The file.
    pub path: PathBuf,
    /// What to change.
    pub edit: Edit,
}

/// The edits that install (or with `remove`, uninstall) agentd for
/// `agent` in `scope`; `agentctl` is the command that runs agentctl.
pub fn edits(agent: Agent, scope: &Scope, agentctl: &str, remove: bool) -> Vec<FileEdit> {
    let hook_command = format!("{agentctl} hook {}", agent.name());
    match agent {
        Agent::ClaudeCode => claude_code(scope, agentctl, hook_command, remove),
        Agent::Codex => codex(scope, agentctl, hook_command, remove),
        Agent::Gemini => gemini(scope, agentctl, hook_command, remove),
    }
}

fn claude_code(scope: &Scope, agentctl: &str, hook_command: String, remove: bool) -> Vec<FileEdit> {
    let (servers_file, settings_file) = match scope {
        Scope::Project(dir) => (dir.join(".mcp.json"), dir.join(".claude/settings.json")),
        Scope::User(home) => (
            home.join(".claude.json"),
            home.join(".claude/settings.json"),
        ),
    };
    let project = matches!(scope, Scope::Project(_));
    let server = json!({
        "type": "stdio",
        "command": agentctl,
        "args": ["mcp"],
        // Offer the tools to the model directly instead of behind ToolSearch.
        "alwaysLoad": true,
    });
    let hook = json!({
        "type": "command",
        "command": hook_command,
        "timeout": HOOK_TIMEOUT_SECS,
    });
    vec![
        FileEdit {
            path: servers_file,
            edit: Edit::Json(Box::new(move |map| {
                if remove {
                    json_edit::remove_server(map, "mcpServers");
                    Ok(())
                } else {
                    json_edit::set_server(map, "mcpServers", server.clone())
                }
            })),
        },
        FileEdit {
            path: settings_file,
            edit: Edit::Json(Box::new(move |map| {
                if remove {
                    json_edit::remove_hooks(map);
                    json_edit::remove_from_list(map, "enabledMcpjsonServers", "agentd");
                    return Ok(());
                }
                for event in injecting_events(super::super::Agent::ClaudeCode) {
                    let matcher = (*event == "PostToolUse").then_some("*");
                    json_edit::set_hook(map, event, matcher, hook.clone())?;
                }
                if project {
                    // Approves the project's server for interactive sessions.
                    json_edit::add_to_list(map, "enabledMcpjsonServers", "agentd")?;
                }
                Ok(())
            })),
        },
    ]
}

fn codex(scope: &Scope, agentctl: &str, hook_command: String, remove: bool) -> Vec<FileEdit> {
    let dir = match scope {
        Scope::Project(dir) => dir.join(".codex"),
        Scope::User(home) => home.join(".codex"),
    };
    let agentctl = agentctl.to_string();
    let hook = json!({
        "type": "command",
        "command": hook_command,
        "timeout": HOOK_TIMEOUT_SECS,
    });
    vec![
        FileEdit {
            path: dir.join("config.toml"),
            edit: Edit::Toml(Box::new(move |doc| codex_config(doc, &agentctl, remove))),
        },
        FileEdit {
            path: dir.join("hooks.json"),
            edit: Edit::Json(Box::new(move |map| {
                if remove {
                    json_edit::remove_hooks(map);
                    return Ok(());
                }
                for event in injecting_events(super::super::Agent::Codex) {
                    json_edit::set_hook(map, event, None, hook.clone())?;
                }
                Ok(())
            })),
        },
    ]
}

/// `[mcp_servers.agentd]` and `[features] codex_hooks = true` in Codex's
/// config.toml, comments and everything else kept.
fn codex_config(
    doc: &mut toml_edit::DocumentMut,
    agentctl: &str,
    remove: bool,
) -> Result<(), String> {
    use toml_edit::{Array, Item, Table, value};
    if remove {
        if let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_mut) {
            servers.remove("agentd");
            if servers.is_empty() {
                doc.remove("mcp_servers");
            }
        }
        // `codex_hooks` stays: other hooks may need it.
        return Ok(());
    }
    let servers = doc
        .entry("mcp_servers")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or("`mcp_servers` is not a table")?;
    let mut args = Array::new();
    args.push("mcp");
    let entry = servers
        .entry("agentd")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or("`mcp_servers.agentd` is not a table")?;
    entry["command"] = value(agentctl);
    entry["args"] = value(args);
    let features = doc
        .entry("features")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or("`features` is not a table")?;
    features["codex_hooks"] = value(true);
    Ok(())
}

fn gemini(scope: &Scope, agentctl: &str, hook_command: String, remove: bool) -> Vec<FileEdit> {
    let path = match scope {
        Scope::Project(dir) => dir.join(".gemini/settings.json"),
        Scope::User(home) => home.join(".gemini/settings.json"),
    };
    let server = json!({ "command": agentctl, "args": ["mcp"] });
    let hook = json!({
        "name": "agentd",
        "type": "command",
        "command": hook_command,
        "timeout": HOOK_TIMEOUT_SECS * 1000,
    });
    vec![FileEdit {
        path,
        edit: Edit::Json(Box::new(move |map| {
            if remove {
                json_edit::remove_server(map, "mcpServers");
                json_edit::remove_hooks(map);
                return Ok(());
            }
            json_edit::set_server(map, "mcpServers", server.clone())?;
            for event in injecting_events(super::super::Agent::Gemini) {
                let matcher = (*event == "AfterTool").then_some("*");
                json_edit::set_hook(map, event, matcher, hook.clone())?;
            }
            // Hooks are off unless enabled (Gemini CLI 0.26 and later).
            let config = map
                .entry("hooksConfig")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or("`hooksConfig` is not an object")?;
            config.insert("enabled".into(), true.into());
            Ok(())
        })),
    }]
}

/// The path as shown to the user: relative to `base` when inside it.
pub fn shown(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}
