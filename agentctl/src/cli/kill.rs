//! `agentctl kill`: signals jobs' process groups (`job.kill`) and prints
//! the state each job ended in. A queued job is cancelled; a finished job
//! is left as it is.

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{JobKill, KillParams};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl kill 1a2b3c4d
  agentctl kill --signal INT --grace 30 1a2b 9f8e";

/// Arguments of `agentctl kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Job ids (full, or a unique prefix of 4+ hex characters)
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// First signal: TERM, INT, HUP or KILL
    // No short flag: `-s` is `--session` across agentctl.
    #[arg(long, value_name = "SIG", default_value = "TERM")]
    pub signal: String,
    /// Seconds before SIGKILL follows [default: 5]
    #[arg(long, value_name = "SECS")]
    pub grace: Option<f64>,
}

/// Kills each job in turn and prints `<short_id> <state> (…)` for each.
/// An id the daemon rejects is reported on stderr and the others are still
/// killed; the exit code is then 1.
///
/// Errors: no daemon.
pub async fn run(global: &GlobalOpts, args: KillArgs) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let color = output::stdout_color();
    let mut code = ExitCode::SUCCESS;
    for id in args.ids {
        let params = KillParams {
            id,
            signal: Some(args.signal.clone()),
            grace_secs: args.grace,
        };
        match client.call::<JobKill>(&params).await {
            Ok(job) => {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{} {}{}",
                    job.short_id,
                    output::paint(job.state, job.state.as_str(), color),
                    output::outcome(job.exit_code, job.signal.as_deref())
                )?;
                out.flush()?;
            }
            Err(e) => {
                eprintln!("agentctl: {}", crate::errors::human_client(&e));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
