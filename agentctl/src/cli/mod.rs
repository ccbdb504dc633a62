//! The job CLI: one file per subcommand.

use crate::GlobalOpts;
use clap::Subcommand;
use std::process::ExitCode;

/// Job subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {}

/// Runs a job subcommand.
pub async fn run(_global: &GlobalOpts, cmd: JobCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
