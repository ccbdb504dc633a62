//! The agent: an LLM tool-use loop whose long commands run as agentd jobs.

use crate::GlobalOpts;
use clap::Subcommand;
use std::process::ExitCode;

/// Agent subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {}

/// Runs an agent subcommand.
pub async fn run(_global: &GlobalOpts, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
