//! `agentctl show`: one job in full (`job.get`), as `key: value` lines or
//! as the JSON Job object.

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::Job;
use agentd_proto::methods::{IdParams, JobGet};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl show 1a2b3c4d
  agentctl show --json 1a2b | jq .exit_code";

/// Arguments of `agentctl show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Job id (full, or a unique prefix of 4+ hex characters)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print the Job object as JSON
    #[arg(long)]
    pub json: bool,
}

/// Prints the job.
///
/// Errors: no daemon; an unknown or ambiguous id.
pub async fn run(global: &GlobalOpts, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let job = client.call::<JobGet>(&IdParams { id: args.id }).await?;
    if args.json {
        output::print_json(&job)?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(details(&job, output::stdout_color()).as_bytes())?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The resources a Slurm job asked for, as ` (partition gpu, 8 CPUs,
/// ...)`; empty when it asked for none.
fn slurm_resources(o: &agentd_proto::SlurmOptions) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &o.partition {
        parts.push(format!("partition {p}"));
    }
    if let Some(c) = o.cpus {
        parts.push(format!("{c} CPUs"));
    }
    if let Some(m) = o.mem_bytes {
        parts.push(format!("{} MiB", m.div_ceil(1 << 20)));
    }
    if let Some(g) = o.gpus {
        parts.push(format!("{g} GPUs"));
    }
    if let Some(t) = o.time_limit_secs {
        parts.push(format!("time limit {} min", t.div_ceil(60)));
    }
    if let Some(a) = o.extra_args.as_ref().filter(|a| !a.is_empty()) {
        parts.push(a.join(" "));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// The job as aligned `key: value` lines; `-` for what is not known.
pub fn details(job: &Job, color: bool) -> String {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let duration = output::job_duration_ms(job).map(|ms| {
        let note = if job.state.is_finished() {
            ""
        } else {
            " so far"
        };
        match ms {
            0..1000 => format!("{ms}ms{note}"),
            _ => format!("{}{note} ({ms} ms)", output::duration(ms)),
        }
    });
    let lines: [(&str, String); 23] = [
        ("id", job.id.clone()),
        ("short id", job.short_id.clone()),
        ("state", output::paint(job.state, job.state.as_str(), color)),
        ("exit code", or_dash(job.exit_code.map(|c| c.to_string()))),
        ("signal", or_dash(job.signal.clone())),
        ("command", job.command.clone()),
        ("cwd", job.cwd.clone()),
        ("session", job.session.clone()),
        ("label", or_dash(job.label.clone())),
        ("group", job.group.clone()),
        (
            "after",
            or_dash((!job.after.is_empty()).then(|| {
                job.after
                    .iter()
                    .map(|id| id.get(..8).unwrap_or(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            })),
        ),
        ("pid", or_dash(job.pid.map(|p| p.to_string()))),
        ("executor", job.executor.to_string()),
        (
            "slurm job",
            or_dash(match (&job.external_id, &job.slurm) {
                (Some(id), Some(o)) => Some(format!("{id}{}", slurm_resources(o))),
                (Some(id), None) => Some(id.clone()),
                (None, Some(o)) if !slurm_resources(o).is_empty() => {
                    Some(format!("not submitted yet{}", slurm_resources(o)))
                }
                _ => None,
            }),
        ),
        ("created", job.created_at.clone()),
        ("started", or_dash(job.started_at.clone())),
        ("finished", or_dash(job.finished_at.clone())),
        ("duration", or_dash(duration)),
        (
            "timeout",
            or_dash(job.timeout_secs.map(|t| format!("{t} s"))),
        ),
        ("output", format!("{} bytes", job.output_bytes)),
        ("reason", or_dash(job.reason.clone())),
        (
            "sandbox",
            or_dash(
                job.sandbox
                    .as_ref()
                    .filter(|s| s.restricts())
                    .map(|s| s.describe()),
            ),
        ),
        (
            "limits",
            or_dash(
                job.limits
                    .as_ref()
                    .filter(|l| !l.is_empty())
                    .map(|l| l.describe()),
            ),
        ),
    ];
    let mut text = String::new();
    for (key, value) in lines {
        let key = format!("{key}:");
        // A multi-line command keeps its lines, indented under the first.
        let value = value.replace('\n', "\n            ");
        text.push_str(&format!("{key:<12}{value}\n"));
    }
    text
}
