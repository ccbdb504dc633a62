//! `agentctl restart`: submits a new job with the same command, cwd,
//! session, group, label, timeout, sandbox, limits and executor (with its
//! Slurm resources) as an earlier one,
//! in this shell's environment (as `agentctl run` would), and prints the
//! new job's short id. The earlier job is left as it is.

use super::run::{caller_environment, submit_and_report};
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{IdParams, JobGet, SubmitParams};
use clap::Args;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl restart 1a2b3c4d
  agentctl restart --wait 1a2b3c4d; echo \"exit $?\"";

/// Arguments of `agentctl restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The job to run again (full id, or a unique prefix of 4+ hex characters)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Stream the new job's output, then say how it ended and exit with its
    /// code, as `agentctl run --wait`
    #[arg(long)]
    pub wait: bool,
}

/// Reads the job (`job.get`), submits its copy and prints the new id (or
/// follows it with `--wait`). Dependencies (`after`) are not copied: the
/// copy does not wait for them, even when the earlier job is still queued
/// behind them. `tail_bytes` is not copied: a job does not carry it
/// (`job.get` does not report it), so the copy has the default.
///
/// Errors: no daemon; no such job; the daemon refused the copy (its cwd
/// is gone, …).
pub async fn run(global: &GlobalOpts, args: RestartArgs) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let old = client.call::<JobGet>(&IdParams { id: args.id }).await?;
    drop(client);
    let params = SubmitParams {
        command: old.command,
        cwd: Some(old.cwd),
        env: Some(caller_environment()),
        timeout_secs: old.timeout_secs,
        session: Some(old.session),
        label: old.label,
        tail_bytes: None,
        sandbox: old.sandbox,
        limits: old.limits,
        after: None,
        group: Some(old.group),
        executor: Some(old.executor),
        slurm: old.slurm,
    };
    submit_and_report(global, &params, args.wait).await
}
