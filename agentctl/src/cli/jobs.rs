//! `agentctl jobs`: lists jobs (`job.list`) newest first, as a table or as
//! JSON (an array of Job objects exactly as the protocol has them).

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{JobList, ListParams};
use agentd_proto::{Job, JobState};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl jobs
  agentctl jobs --all --session review
  agentctl jobs --state failed --state timed_out
  agentctl jobs --all --json | jq -r '.[] | select(.exit_code != 0) | .short_id'";

/// Arguments of `agentctl jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Include finished jobs
    #[arg(long, short = 'a', conflicts_with = "states")]
    pub all: bool,
    /// Only jobs in this state (repeatable)
    #[arg(
        long = "state",
        value_name = "STATE",
        value_parser = state_parser()
    )]
    pub states: Vec<JobState>,
    /// Only jobs of this session
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// At most N jobs (the newest)
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
    /// Print a JSON array of Job objects
    #[arg(long)]
    pub json: bool,
}

/// Accepts the wire names of the states (and offers them to completion).
fn state_parser() -> impl TypedValueParser<Value = JobState> {
    PossibleValuesParser::new(JobState::ALL.map(JobState::as_str))
        .map(|s| s.parse::<JobState>().expect("a possible value is a state"))
}

/// Lists the jobs.
///
/// Errors: no daemon; an invalid session name.
pub async fn run(global: &GlobalOpts, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let states = match (args.all, args.states.is_empty()) {
        (true, _) => None,
        (false, true) => Some(vec![JobState::Running, JobState::Queued]),
        (false, false) => Some(args.states.clone()),
    };
    let client = connect::connect(&global.socket_path()).await?;
    let jobs = client
        .call::<JobList>(&ListParams {
            states,
            session: args.session.clone(),
            limit: args.limit,
        })
        .await?
        .jobs;
    if args.json {
        output::print_json(&jobs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table = table(&jobs, output::stdout_color(), output::stdout_width());
    let mut out = std::io::stdout().lock();
    out.write_all(table.as_bytes())?;
    out.flush()?;
    if jobs.is_empty() && !args.all && args.states.is_empty() {
        eprintln!("no running or queued jobs (--all includes finished ones)");
    }
    Ok(ExitCode::SUCCESS)
}

const HEADERS: [&str; 7] = [
    "ID", "STATE", "EXIT", "STARTED", "DURATION", "SESSION", "COMMAND",
];
/// Index of the COMMAND column, the last.
const COMMAND: usize = 6;
/// The columns left out, in this order, while the terminal is too narrow
/// for the others and [`MIN_COMMAND`] columns of COMMAND: STARTED,
/// SESSION, DURATION, EXIT. ID and STATE always stay.
const DROP_ORDER: [usize; 4] = [3, 5, 4, 2];
/// The COMMAND width below which another column is left out.
const MIN_COMMAND: usize = 10;

/// The table, one line per job under a header line. Columns are padded to
/// their widest cell. With a terminal `width`, no line is wider: columns
/// are left out in [`DROP_ORDER`] until COMMAND gets at least
/// [`MIN_COMMAND`] columns, and COMMAND is cut (ending in `…`) to what is
/// left; narrower than ID and STATE themselves, lines wrap.
pub fn table(jobs: &[Job], color: bool, width: Option<usize>) -> String {
    let rows: Vec<[String; 7]> = jobs.iter().map(row).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut shown = [true; 7];
    // Everything left of COMMAND that is shown, with two spaces after each.
    let used = |shown: &[bool; 7]| -> usize {
        (0..COMMAND)
            .filter(|&i| shown[i])
            .map(|i| widths[i] + 2)
            .sum()
    };
    if let Some(w) = width {
        for col in DROP_ORDER {
            if used(&shown) + MIN_COMMAND <= w {
                break;
            }
            shown[col] = false;
        }
    }
    let command_width = width.map(|w| w.saturating_sub(used(&shown)));
    let mut text = String::new();
    let line = |text: &mut String, cells: &[String; 7], state: Option<JobState>| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if !shown[i] {
                continue;
            }
            if i == COMMAND {
                match command_width {
                    Some(cw) => line.push_str(&output::truncate(cell, cw)),
                    None => line.push_str(cell),
                }
                break;
            }
            let padded = format!("{cell:<w$}  ");
            match (i, state) {
                (1, Some(state)) => {
                    line.push_str(&output::paint(state, cell, color));
                    line.push_str(&padded[cell.len()..]);
                }
                _ => line.push_str(&padded),
            }
        }
        text.push_str(line.trim_end_matches(' '));
        text.push('\n');
    };
    line(&mut text, &HEADERS.map(str::to_string), None);
    for (job, cells) in jobs.iter().zip(&rows) {
        line(&mut text, cells, Some(job.state));
    }
    text
}

/// The cells of one job's line.
fn row(job: &Job) -> [String; 7] {
    let started = match job.started_at.as_deref().and_then(output::ms_since) {
        Some(ms) if ms < 60_000 => format!("{}s ago", ms / 1000),
        Some(ms) => format!("{} ago", output::duration(ms)),
        None => "-".to_string(),
    };
    let duration = output::job_duration_ms(job).map_or_else(|| "-".to_string(), output::duration);
    [
        job.short_id.clone(),
        job.state.as_str().to_string(),
        output::exit_column(job.exit_code, job.signal.as_deref()),
        started,
        duration,
        job.session.clone(),
        output::one_line(&job.command),
    ]
}
