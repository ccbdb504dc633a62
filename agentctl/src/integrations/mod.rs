//! Other coding agents on agentd (DESIGN.md, "Any agent can use agentd"):
//! `agentctl mcp` (an MCP server whose tools run agentd jobs),
//! `agentctl hook AGENT` (injects finished jobs' results into the agent's
//! next model call) and `agentctl integrate AGENT` (registers both in the
//! agent's settings). What they share: which agentd session an agent
//! session's jobs belong to ([`binding`]) and how pending results are
//! handed over exactly once ([`delivery`]).

pub mod binding;
pub mod delivery;
pub mod hook;
pub mod integrate;
pub mod mcp;

use crate::GlobalOpts;
use clap::Subcommand;
use std::process::ExitCode;

/// The commands other agents call (or that set them up).
#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Serve agentd's jobs to an MCP client (Claude Code, Codex, Gemini CLI) on stdio
    #[command(after_help = mcp::EXAMPLES)]
    Mcp(mcp::McpArgs),
    /// Hook for Claude Code, Codex or Gemini CLI: injects finished jobs' results
    #[command(after_help = hook::EXAMPLES)]
    Hook(hook::HookArgs),
    /// Register agentd's MCP server and hook in an agent's settings
    #[command(after_help = integrate::EXAMPLES)]
    Integrate(integrate::IntegrateArgs),
}

/// Runs one of these commands and returns its exit code.
///
/// Errors: as each command says; `agentctl hook` never fails (it exits 0
/// and says nothing, so the agent is never blocked).
pub async fn run(global: &GlobalOpts, cmd: IntegrationCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IntegrationCommand::Mcp(args) => mcp::run(global, args).await,
        IntegrationCommand::Hook(args) => Ok(hook::run(global, args).await),
        IntegrationCommand::Integrate(args) => integrate::run(args),
    }
}

/// A coding agent agentctl integrates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Agent {
    /// Anthropic's Claude Code (`claude`).
    ClaudeCode,
    /// OpenAI's Codex CLI (`codex`).
    Codex,
    /// Google's Gemini CLI (`gemini`).
    Gemini,
}

impl Agent {
    /// The name on the command line: `claude-code`, `codex`, `gemini`.
    pub fn name(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude-code",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
        }
    }
}
