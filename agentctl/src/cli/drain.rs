//! `agentctl drain`: prints the pending notifications of a session and
//! consumes them, as an agent does before each model call.
//!
//! Page by page: peek a page, print it (stdout flushed), then ack up to its
//! last `seq` (or past the drops it reported, when later: see
//! `dropped_up_to_seq`). A drain that dies part way (killed, closed pipe) has acked
//! only what it printed; the rest stays pending. A page printed but not
//! yet acked when it died is printed again by the next drain.

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{AckParams, NotificationsAck, NotificationsPeek, PeekParams};
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
    #[arg(long, short = 's', value_name = "NAME")]
    pub session: Option<String>,
    /// Print a JSON array of Notification objects
    #[arg(long)]
    pub json: bool,
    /// Drain even a session that belongs to an agent (its model will not
    /// see what is taken)
    #[arg(long)]
    pub force: bool,
}

/// Prints and consumes the notifications, a page at a time: peek, print,
/// ack.
///
/// Errors: no daemon; an invalid session name; a session that belongs to
/// an agent, without `--force`; stdout closed (nothing unprinted is
/// acked).
pub async fn run(global: &GlobalOpts, args: DrainArgs) -> anyhow::Result<ExitCode> {
    crate::agent::guard::check_taking(args.session.as_deref(), true, args.force)?;
    let client = connect::connect(&global.socket_path()).await?;
    let mut printer = output::NotificationPrinter::new(args.json);
    loop {
        let page = client
            .call::<NotificationsPeek>(&PeekParams {
                session: args.session.clone(),
                after_seq: None,
                max: None,
            })
            .await?;
        printer.dropped(page.dropped);
        printer.page(&page.notifications)?;
        // The ack also covers the drops just reported, pending
        // notifications or not (their jobs may have been removed).
        let last = page.notifications.last().map(|n| n.seq);
        let Some(up_to_seq) = last.max(page.dropped_up_to_seq) else {
            break;
        };
        client
            .call::<NotificationsAck>(&AckParams {
                session: args.session.clone(),
                up_to_seq,
            })
            .await?;
        if !page.more {
            break;
        }
    }
    printer.finish(args.session.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
