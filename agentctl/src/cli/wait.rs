//! `agentctl wait`: waits for jobs to finish (`job.wait`, a long-poll) and
//! exits with the job's exit code by the rules of [`super::exit`].
//!
//! With several ids: 75 when `--timeout` expired with any of them still
//! queued or running (so a script always learns that one still runs),
//! else the code of the last job, in the order given, whose code is not 0
//! (0 when all succeeded). One line per job goes
//! to stderr as it finishes; a spinner with the elapsed time shows while
//! waiting when stderr is a terminal.
//!
//! When agentd goes away while a job is waited for (killed, stopped,
//! restarted), the wait reconnects and asks the next agentd
//! ([`super::reconnect`]): the job runs on under its shim.

use super::reconnect::Reconnecting;
use super::{exit, output};
use crate::GlobalOpts;
use agentd_proto::Job;
use agentd_proto::methods::{IdParams, JobGet, JobWait, WaitParams};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `--help` examples and exit codes.
pub const EXAMPLES: &str = "\
Exit status:
  the job's exit code; 124 if its own timeout ended it; 128+N if signal N
  ended it (143 for SIGTERM); 1 if it was lost, cancelled or could not
  start;
  75 if --timeout expired while it was still queued or running.
  With several ids: 75 if any is still queued or running at the timeout,
  else the last non-zero code, in the order given.

Examples:
  agentctl wait 1a2b3c4d && echo done
  agentctl wait --timeout 60 1a2b 9f8e";

/// Arguments of `agentctl wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Job ids (full, or a unique prefix of 4+ hex characters)
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Stop waiting after SECS seconds in all (exit 75 if a job still runs)
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
}

/// Longest `--timeout`: 30 days, the daemon's bound on `job.wait`.
const MAX_TIMEOUT_SECS: f64 = 30.0 * 24.0 * 3600.0;

/// Parses a number of seconds from 0 to 30 days.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=MAX_TIMEOUT_SECS).contains(&t) => Ok(t),
        _ => Err(format!(
            "expected a number of seconds from 0 to {MAX_TIMEOUT_SECS} (30 days), got {s:?}"
        )),
    }
}

/// Waits for the jobs and returns the exit code.
///
/// Errors: no daemon; an unknown or ambiguous id (checked for every id
/// before waiting); agentd went away and did not come back within 30 s.
pub async fn run(global: &GlobalOpts, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let mut client = Reconnecting::connect(global.socket_path()).await?;
    let mut jobs = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        jobs.push(client.call::<JobGet>(&IdParams { id: id.clone() }).await?);
    }
    let code = wait_for(
        &mut client,
        jobs,
        args.timeout,
        output::stderr_is_terminal(),
    )
    .await?;
    Ok(ExitCode::from(code))
}

/// Waits for each job in turn until all have finished or `timeout` seconds
/// have passed in all, printing one line per job to stderr, and returns the
/// exit code: [`exit::STILL_RUNNING`] when any job is still queued or
/// running at the timeout, else the last non-zero one of the jobs, in
/// order. `spinner` shows a spinner on stderr while waiting.
///
/// When agentd goes away meanwhile (the connection closes, it answers
/// "shutting down", or it returns a job unfinished before the deadline
/// because it is stopping), waits on through the next agentd.
///
/// Errors: agentd's error reply; agentd did not come back within 30 s.
pub async fn wait_for(
    client: &mut Reconnecting,
    jobs: Vec<Job>,
    timeout: Option<f64>,
    spinner: bool,
) -> anyhow::Result<u8> {
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t));
    let bar = if spinner {
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    } else {
        ProgressBar::hidden()
    };
    client.set_bar(bar.clone());
    let total = jobs.len();
    let mut code = 0;
    let mut still_running = false;
    for (i, job) in jobs.into_iter().enumerate() {
        let counter = if total > 1 {
            format!(" ({}/{total})", i + 1)
        } else {
            String::new()
        };
        bar.set_message(format!(
            "waiting for {}{counter}: {}",
            job.short_id,
            output::one_line(&job.command)
        ));
        let done = loop {
            let timeout_secs =
                deadline.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64());
            let params = WaitParams {
                id: job.id.clone(),
                timeout_secs,
            };
            let done = match client.call::<JobWait>(&params).await {
                Ok(done) => done,
                Err(e) => {
                    bar.finish_and_clear();
                    return Err(e);
                }
            };
            // Unfinished before our deadline: agentd is shutting down.
            if done.state.is_finished() || deadline.is_some_and(|d| Instant::now() >= d) {
                break done;
            }
            if let Err(e) = client
                .reconnect("agentd stopped (it answered before the job finished)")
                .await
            {
                bar.finish_and_clear();
                return Err(e);
            }
        };
        let job_code = exit::job_exit_code(&done);
        let line = summary(&done);
        bar.suspend(|| eprintln!("{line}"));
        still_running |= !done.state.is_finished();
        if job_code != 0 {
            code = job_code;
        }
    }
    bar.finish_and_clear();
    Ok(if still_running {
        exit::STILL_RUNNING
    } else {
        code
    })
}

/// One line about how a job ended, or that it still runs:
/// `1a2b3c4d failed (exit 3) after 1.2s: make test`.
fn summary(job: &Job) -> String {
    let color = output::stderr_color();
    let state = output::paint(job.state, job.state.as_str(), color);
    if !job.state.is_finished() {
        return format!(
            "{} still {state} (wait --timeout expired): {}",
            job.short_id,
            output::one_line(&job.command)
        );
    }
    let took = output::job_duration_ms(job)
        .map(|ms| format!(" after {}", output::duration(ms)))
        .unwrap_or_default();
    format!(
        "{} {state}{}{took}: {}",
        job.short_id,
        output::outcome(job.exit_code, job.signal.as_deref()),
        output::one_line(&job.command)
    )
}
