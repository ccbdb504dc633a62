//! Which agentd session an agent session's jobs belong to, so that the MCP
//! server (which starts them) and the hook (which injects their results)
//! agree without talking to each other, and two agent sessions in one
//! directory never see each other's results.
//!
//! - Claude Code gives both its MCP servers and its hooks the session id
//!   (`CLAUDE_CODE_SESSION_ID` in the environment, `session_id` in the hook
//!   event; `--resume` keeps it): the agentd session is `claude-<id>`.
//! - Codex and Gemini CLI do not tell an MCP server which session it
//!   serves, so their jobs are bound to the project directory:
//!   `dir-<name>-<hash>`, the directory's last component (at most 40
//!   characters) and 8 hex digits of a hash of its absolute path.
//! - `agentctl mcp --session NAME` overrides both.

use std::path::Path;

/// The variable Claude Code sets for its MCP servers and hooks.
pub const CLAUDE_SESSION_ENV: &str = "CLAUDE_CODE_SESSION_ID";
/// The variable Claude Code sets to the project directory.
pub const CLAUDE_PROJECT_ENV: &str = "CLAUDE_PROJECT_DIR";
/// The variable Gemini CLI sets to the project directory.
pub const GEMINI_PROJECT_ENV: &str = "GEMINI_PROJECT_DIR";

/// The agentd session of Claude Code session `id`: `claude-<id>`, with
/// every character agentd does not allow in a session name replaced by
/// `_`, cut to 128 characters.
pub fn claude_session(id: &str) -> String {
    sanitize(&format!("claude-{id}"))
}

/// The agentd session bound to project directory `dir`:
/// `dir-<name>-<8 hex digits>`.
pub fn dir_session(dir: &Path) -> String {
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(40).collect())
        .unwrap_or_default();
    let name = if name.is_empty() { "root".into() } else { name };
    sanitize(&format!(
        "dir-{name}-{:08x}",
        fnv1a(dir.as_os_str().as_encoded_bytes()) as u32
    ))
}

/// The session for an MCP server started in this environment: Claude
/// Code's session id when set, else the project directory's session (from
/// `CLAUDE_PROJECT_DIR` or `GEMINI_PROJECT_DIR` when set, else `cwd`).
pub fn session_from_env(cwd: &Path) -> String {
    if let Some(id) = env_nonempty(CLAUDE_SESSION_ENV) {
        return claude_session(&id);
    }
    let dir = env_nonempty(CLAUDE_PROJECT_ENV)
        .or_else(|| env_nonempty(GEMINI_PROJECT_ENV))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| cwd.to_path_buf());
    dir_session(&dir)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Replaces characters outside `[A-Za-z0-9._-]` with `_` and cuts the name
/// to agentd's 128-character limit.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between
/// Rust releases, and the name must not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_sessions_keep_the_id_and_obey_agentd_rules() {
        assert_eq!(
            claude_session("0f1e2d3c-aaaa-bbbb-cccc-000000000000"),
            "claude-0f1e2d3c-aaaa-bbbb-cccc-000000000000"
        );
        assert_eq!(claude_session("a b/c"), "claude-a_b_c");
        assert_eq!(claude_session(&"x".repeat(300)).len(), 128);
    }

    #[test]
    fn dir_sessions_differ_per_directory_and_are_stable() {
        let a = dir_session(Path::new("/home/me/proj"));
        let b = dir_session(Path::new("/home/you/proj"));
        assert!(a.starts_with("dir-proj-"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, dir_session(Path::new("/home/me/proj")));
        assert_eq!(
            dir_session(Path::new("/")),
            format!("dir-root-{:08x}", fnv1a(b"/") as u32)
        );
    }
}
