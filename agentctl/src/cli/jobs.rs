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
  agentctl jobs --all --group gpu
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
    #[arg(long, short = 's', value_name = "NAME")]
    pub session: Option<String>,
    /// Only jobs of this group (`agentctl run --group`)
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
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

/// Lists the jobs, page by page (`job.list` with `cursor`), printing each
/// page as it arrives: any number of jobs, in bounded memory.
///
/// Errors: no daemon; an invalid session name.
pub async fn run(global: &GlobalOpts, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let states = match (args.all, args.states.is_empty()) {
        (true, _) => None,
        (false, true) => Some(JobState::LIVE.to_vec()),
        (false, false) => Some(args.states.clone()),
    };
    let client = connect::connect(&global.socket_path()).await?;
    let mut json = args.json.then(output::JsonArray::new);
    let mut layout: Option<Table> = None;
    let mut left = args.limit;
    let mut cursor = None;
    let mut printed = 0usize;
    loop {
        let page = client
            .call::<JobList>(&ListParams {
                states: states.clone(),
                session: args.session.clone(),
                group: args.group.clone(),
                limit: left.map(|n| n.min(PAGE)).or(Some(PAGE)),
                cursor: cursor.take(),
            })
            .await?;
        printed += page.jobs.len();
        if let Some(json) = &mut json {
            json.write(&page.jobs)?;
        } else {
            let table = layout.get_or_insert_with(|| {
                Table::new(&page.jobs, output::stdout_color(), output::stdout_width())
            });
            let text = table.render(&page.jobs, printed == page.jobs.len());
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        if let Some(n) = &mut left {
            *n = n.saturating_sub(page.jobs.len() as u64);
        }
        match page.next_cursor {
            Some(next) if left != Some(0) => cursor = Some(next),
            _ => break,
        }
    }
    if let Some(json) = json {
        json.finish()?;
    } else if printed == 0 && !args.all && args.states.is_empty() {
        eprintln!("no running, paused or queued jobs (--all includes finished ones)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Jobs asked for per `job.list` call (the daemon's default page).
const PAGE: u64 = 1000;

const HEADERS: [&str; 8] = [
    "ID", "STATE", "EXIT", "STARTED", "DURATION", "SESSION", "GROUP", "COMMAND",
];
/// Index of the GROUP column, shown only when the first page holds jobs
/// of more than one group.
const GROUP: usize = 6;
/// Index of the COMMAND column, the last.
const COMMAND: usize = 7;
/// The columns left out, in this order, while the terminal is too narrow
/// for the others and [`MIN_COMMAND`] columns of COMMAND: STARTED, GROUP,
/// SESSION, DURATION, EXIT. ID and STATE always stay.
const DROP_ORDER: [usize; 5] = [3, 6, 5, 4, 2];
/// The COMMAND width below which another column is left out.
const MIN_COMMAND: usize = 10;

/// The table, one line per job under a header line (see [`Table`]).
pub fn table(jobs: &[Job], color: bool, width: Option<usize>) -> String {
    Table::new(jobs, color, width).render(jobs, true)
}

/// The job table's layout. Columns are padded to their widest cell in the
/// first page (a later page's wider cell pushes its line's rest right).
/// With a terminal `width`, no line is wider: columns are left out in
/// [`DROP_ORDER`] until COMMAND gets at least [`MIN_COMMAND`] columns, and
/// COMMAND is cut (ending in `…`) to what is left; narrower than ID and
/// STATE themselves, lines wrap.
pub struct Table {
    /// Each column's width in characters.
    widths: [usize; 8],
    /// Which columns are shown.
    shown: [bool; 8],
    /// COMMAND's width, when cut to the terminal.
    command_width: Option<usize>,
    /// Colour the STATE column.
    color: bool,
}

impl Table {
    /// The layout fitting `jobs` (the first page) into `width` columns.
    pub fn new(jobs: &[Job], color: bool, width: Option<usize>) -> Table {
        let mut widths = HEADERS.map(|h| h.chars().count());
        for row in jobs.iter().map(row) {
            for (w, cell) in widths.iter_mut().zip(&row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut shown = [true; 8];
        shown[GROUP] = jobs.iter().any(|j| j.group != jobs[0].group);
        // Everything left of COMMAND that is shown, with two spaces after each.
        let used = |shown: &[bool; 8]| -> usize {
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
        Table {
            widths,
            shown,
            command_width,
            color,
        }
    }

    /// The lines of `jobs`, under the header line when `header`.
    pub fn render(&self, jobs: &[Job], header: bool) -> String {
        let mut text = String::new();
        if header {
            self.line(&mut text, &HEADERS.map(str::to_string), None);
        }
        for job in jobs {
            self.line(&mut text, &row(job), Some(job.state));
        }
        text
    }

    fn line(&self, text: &mut String, cells: &[String; 8], state: Option<JobState>) {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(self.widths).enumerate() {
            if !self.shown[i] {
                continue;
            }
            if i == COMMAND {
                match self.command_width {
                    Some(cw) => line.push_str(&output::truncate(cell, cw)),
                    None => line.push_str(cell),
                }
                break;
            }
            let padded = format!("{cell:<w$}  ");
            match (i, state) {
                (1, Some(state)) => {
                    line.push_str(&output::paint(state, cell, self.color));
                    line.push_str(&padded[cell.len()..]);
                }
                _ => line.push_str(&padded),
            }
        }
        text.push_str(line.trim_end_matches(' '));
        text.push('\n');
    }
}

/// The cells of one job's line.
fn row(job: &Job) -> [String; 8] {
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
        job.group.clone(),
        format!(
            "{}{}",
            executor_tag(job),
            match job.sandbox.as_ref().filter(|s| s.restricts()) {
                Some(s) => format!("[{}] {}", sandbox_tag(s), output::one_line(&job.command)),
                None => output::one_line(&job.command),
            }
        ),
    ]
}

/// A job run elsewhere than locally, marked before its command with its
/// executor and its id there: `[slurm 4211] `; empty for a local job.
fn executor_tag(job: &Job) -> String {
    match (job.executor, &job.external_id) {
        (agentd_proto::Executor::Local, _) => String::new(),
        (e, Some(id)) => format!("[{e} {id}] "),
        (e, None) => format!("[{e}] "),
    }
}

/// A sandboxed job's mark before its command: `ws`, `ro`, `no-net`,
/// `ws,no-net`.
fn sandbox_tag(s: &agentd_proto::Sandbox) -> String {
    let mut tags = Vec::new();
    match s.mode {
        agentd_proto::SandboxMode::WorkspaceWrite => tags.push("ws"),
        agentd_proto::SandboxMode::ReadOnly => tags.push("ro"),
        agentd_proto::SandboxMode::None => {}
    }
    if !s.network_allowed() {
        tags.push("no-net");
    }
    tags.join(",")
}
