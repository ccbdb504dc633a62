//! `agentctl rm`: removes finished jobs with their notification and output
//! (`job.remove`). A running or queued job is refused: kill it first.

use crate::{GlobalOpts, connect};
use agentd_proto::methods::{JobRemove, RemoveParams};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl rm 1a2b3c4d
  agentctl jobs --state failed --json | jq -r '.[].id' | xargs agentctl rm";

/// Arguments of `agentctl rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Job ids (full, or a unique prefix of 4+ hex characters)
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

/// Removes the jobs and prints `removed <short_id>` for each. All or
/// nothing: one id that is unknown, ambiguous or live removes none.
///
/// Errors: no daemon; an id agentd refuses (a live job says to kill it
/// first).
pub async fn run(global: &GlobalOpts, args: RmArgs) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let result = client
        .call::<JobRemove>(&RemoveParams { ids: args.ids })
        .await?;
    let mut out = std::io::stdout().lock();
    for id in result.removed {
        writeln!(out, "removed {}", &id[..8.min(id.len())])?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
