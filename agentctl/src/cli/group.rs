//! `agentctl group list` and `agentctl group set G --parallel N`
//! (`job.group_list`, `job.group_set`): groups of jobs with their own
//! limit on how many run at once, under the daemon-wide `max_running`.

use crate::{GlobalOpts, connect};
use agentd_proto::methods::{Empty, Group, GroupSetParams, JobGroupList, JobGroupSet};
use clap::{Args, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl group list
  agentctl group set gpu --parallel 1
  agentctl group set gpu --parallel 0   # no limit of its own
  agentctl run --group gpu -- python train.py";

/// Arguments of `agentctl group`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// `agentctl group` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List the groups: their limit, running and queued jobs
    List {
        /// Print the groups as JSON (`job.group_list`'s `groups`)
        #[arg(long)]
        json: bool,
    },
    /// Set how many jobs of a group may run at once (kept across restarts)
    Set {
        /// The group's name (1-128 characters of A-Z a-z 0-9 . _ -)
        #[arg(value_name = "GROUP")]
        group: String,
        /// At most N of its jobs run (or are paused) at once; 0: no limit
        /// of its own
        #[arg(long, value_name = "N")]
        parallel: u64,
    },
}

/// Runs `group list` or `group set`.
///
/// Errors: no daemon; a bad group name.
pub async fn run(global: &GlobalOpts, args: GroupArgs) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        GroupCommand::List { json } => {
            let groups = client.call::<JobGroupList>(&Empty {}).await?.groups;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&groups)?)?;
            } else {
                out.write_all(table(&groups).as_bytes())?;
            }
        }
        GroupCommand::Set { group, parallel } => {
            let g = client
                .call::<JobGroupSet>(&GroupSetParams {
                    group,
                    max_running: Some(parallel),
                })
                .await?;
            writeln!(out, "{}", line(&g))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `gpu: at most 1 at once (1 running, 3 queued)`.
fn line(g: &Group) -> String {
    let limit = match g.max_running {
        Some(n) => format!("at most {n} at once"),
        None => "no limit of its own".to_string(),
    };
    format!(
        "{}: {limit} ({} running, {} queued)",
        g.name, g.running, g.queued
    )
}

/// The groups as a table: GROUP, PARALLEL, RUNNING, QUEUED.
fn table(groups: &[Group]) -> String {
    let width = groups
        .iter()
        .map(|g| g.name.len())
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut text = format!("{:<width$}  PARALLEL  RUNNING  QUEUED\n", "GROUP");
    for g in groups {
        let parallel = g.max_running.map_or("-".to_string(), |n| n.to_string());
        text.push_str(&format!(
            "{:<width$}  {parallel:<8}  {:<7}  {}\n",
            g.name, g.running, g.queued
        ));
    }
    text
}
