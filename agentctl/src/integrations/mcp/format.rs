//! The text the tools answer with: short lines a model reads well, the
//! same `[bg:ID] state (exit N): command` header the hook's
//! `<background-results>` block uses.

use crate::agent::notifications;
use agentd_proto::methods::OutputResult;
use agentd_proto::{Job, Notification};

/// `[bg:1a2b3c4d] succeeded (exit 0): cargo build`, as in a results block.
pub fn header(job: &Job) -> String {
    notifications::header(&Notification::of_job(job, 0, String::new()))
}

/// A finished job with its output tail.
pub fn finished(job: &Job, tail: &str) -> String {
    let mut out = header(job);
    if let Some(reason) = &job.reason {
        out.push_str(&format!("\nreason: {reason}"));
    }
    let tail = tail.trim_end_matches('\n');
    if !tail.is_empty() {
        out.push('\n');
        out.push_str(tail);
    }
    if job.output_bytes as usize > tail.len() {
        out.push_str(&format!(
            "\n(last {} of {} bytes; the `output` tool gives the rest)",
            tail.len(),
            job.output_bytes
        ));
    }
    out
}

/// A job that has not finished yet.
pub fn started(job: &Job) -> String {
    format!(
        "Job {} started: {}\nIt runs in agentd, apart from this session. Its result is \
         delivered with your next prompt when it finishes; `wait` with id {} waits for it now.",
        job.short_id, job.command, job.short_id
    )
}

/// A job still running after a wait.
pub fn still_running(job: &Job, waited_secs: f64) -> String {
    format!(
        "Job {} is still {} after {waited_secs:.0} s: {}\nIts result is delivered when it finishes.",
        job.short_id, job.state, job.command
    )
}

/// One line per job: `1a2b3c4d  running  cargo build`.
pub fn job_lines(jobs: &[Job], all: bool) -> String {
    if jobs.is_empty() {
        return if all {
            "No jobs in this session.".into()
        } else {
            "No running or queued jobs in this session (all=true lists finished ones too).".into()
        };
    }
    jobs.iter()
        .map(|j| {
            let status = match (j.exit_code, &j.signal) {
                (Some(c), _) => format!("{} (exit {c})", j.state),
                (None, Some(s)) => format!("{} ({s})", j.state),
                _ => j.state.to_string(),
            };
            format!("{}  {status}  {}", j.short_id, j.command)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Output bytes and where they sit in the log.
pub fn output(out: &OutputResult) -> String {
    format!(
        "{}\n[bytes {}-{} of {}{}]",
        out.data.trim_end_matches('\n'),
        out.offset,
        out.next_offset,
        out.total_bytes,
        if out.complete {
            "; the job has finished"
        } else {
            "; more may come"
        }
    )
}
