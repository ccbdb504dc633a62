//! `agentctl pause` and `agentctl resume` (`job.pause`, `job.resume`): a
//! running job's process group is stopped (SIGSTOP) or continued
//! (SIGCONT); a queued job is held out of the queue or released into it.
//! Prints each job's state afterwards.

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{IdParams, JobPause, JobResume};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples of `pause`.
pub const PAUSE_EXAMPLES: &str = "\
Examples:
  agentctl pause 1a2b3c4d
  agentctl pause 1a2b 9f8e   # a queued job is held until resumed";

/// `--help` examples of `resume`.
pub const RESUME_EXAMPLES: &str = "\
Examples:
  agentctl resume 1a2b3c4d";

/// Arguments of `agentctl pause` and `agentctl resume`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Job ids (full, or a unique prefix of 4+ hex characters)
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

/// Pauses (`resume` false) or resumes each job in turn and prints
/// `<short_id> <state>`; a finished job is shown as it is. An id the
/// daemon rejects is reported on stderr and the others are still done;
/// the exit code is then 1.
///
/// Errors: no daemon.
pub async fn run(global: &GlobalOpts, args: PauseArgs, resume: bool) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let color = output::stdout_color();
    let mut code = ExitCode::SUCCESS;
    for id in args.ids {
        let params = IdParams { id };
        let reply = if resume {
            client.call::<JobResume>(&params).await
        } else {
            client.call::<JobPause>(&params).await
        };
        match reply {
            Ok(job) => {
                let mut out = std::io::stdout().lock();
                let note = if job.state.is_finished() {
                    " (finished already)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "{} {}{note}",
                    job.short_id,
                    output::paint(job.state, job.state.as_str(), color),
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
