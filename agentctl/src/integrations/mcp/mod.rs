//! `agentctl mcp [--session NAME]`: agentd as a Model Context Protocol
//! server on stdio (built on `rmcp`, the official Rust SDK), for Claude
//! Code, Codex, Gemini CLI or any MCP client. Server name `agentd`; tools
//! `run`, `jobs`, `output`, `wait`, `kill` and `results` (DESIGN.md, "Any
//! agent can use agentd"). stdout carries only protocol messages; the few
//! things worth saying go to stderr.

pub mod format;
pub mod inputs;
pub mod server;

use super::binding;
use crate::GlobalOpts;
use anyhow::Context;
use clap::Args;
use rmcp::ServiceExt;
use std::process::ExitCode;

/// Examples shown by `agentctl mcp --help`.
pub const EXAMPLES: &str = "Examples:
  agentctl integrate claude-code --project .   # registers this server for Claude Code
  claude mcp add agentd -- agentctl mcp        # the same, by hand
  agentctl mcp --session build-bot             # jobs go to agentd session build-bot

Jobs belong to an agentd session: claude-<id> under Claude Code (from
CLAUDE_CODE_SESSION_ID), else dir-<name>-<hash> of the project directory,
unless --session names one.";

/// Arguments of `agentctl mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The agentd session this server's jobs belong to [default: claude-<id>
    /// from CLAUDE_CODE_SESSION_ID, else dir-<name>-<hash> of the project
    /// directory]
    #[arg(short, long, value_name = "NAME")]
    pub session: Option<String>,
}

/// Serves MCP on stdin/stdout until the client closes stdin.
///
/// Errors: an invalid `--session`; the client did not complete the MCP
/// handshake. Tool failures are answered to the client, never returned.
pub async fn run(global: &GlobalOpts, args: McpArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project_dir = std::env::var_os(binding::CLAUDE_PROJECT_ENV)
        .or_else(|| std::env::var_os(binding::GEMINI_PROJECT_ENV))
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or(cwd.clone());
    let session = match args.session {
        Some(name) => {
            crate::agent::session::validate_name(&name)?;
            name
        }
        None => binding::session_from_env(&cwd),
    };
    let server = server::AgentdServer::new(server::Binding {
        socket: global.socket_path(),
        session,
        project_dir,
    });
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("MCP handshake with the client failed")?;
    running
        .waiting()
        .await
        .context("the MCP connection ended with an error")?;
    Ok(ExitCode::SUCCESS)
}
