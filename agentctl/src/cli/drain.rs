//! `agentctl drain`: prints the pending notifications of a session and
//! consumes them (`notifications.drain`, at-most-once), as an agent does
//! before each model call.

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{DrainParams, NotificationsDrain};
use clap::Args;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl drain
  agentctl drain --session review --json";

/// Arguments of `agentctl drain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// Session whose queue to drain [default: default]
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Print a JSON array of Notification objects
    #[arg(long)]
    pub json: bool,
    /// Drain even a session that belongs to an agent (its model will not
    /// see what is taken)
    #[arg(long)]
    pub force: bool,
}

/// Drains and prints the notifications.
///
/// Errors: no daemon; an invalid session name; a session that belongs to
/// an agent, without `--force`.
pub async fn run(global: &GlobalOpts, args: DrainArgs) -> anyhow::Result<ExitCode> {
    crate::agent::guard::check_taking(args.session.as_deref(), true, args.force)?;
    let client = connect::connect(&global.socket_path()).await?;
    let result = client
        .call::<NotificationsDrain>(&DrainParams {
            session: args.session.clone(),
            max: None,
        })
        .await?;
    output::print_notifications(&result.notifications, args.json, args.session.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
