//! `agentctl notifications`: prints the pending notifications of a session
//! without consuming them (`notifications.peek`), a page at a time as they
//! arrive, however many there are.

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{NotificationsPeek, PeekParams};
use clap::Args;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl notifications
  agentctl notifications --session review --json | jq length";

/// Arguments of `agentctl notifications`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Session whose queue to show [default: default]
    #[arg(long, short = 's', value_name = "NAME")]
    pub session: Option<String>,
    /// Print a JSON array of Notification objects
    #[arg(long)]
    pub json: bool,
}

/// Peeks at and prints the notifications, page after page (each after the
/// last `seq` of the one before).
///
/// Errors: no daemon; an invalid session name.
pub async fn run(global: &GlobalOpts, args: NotificationsArgs) -> anyhow::Result<ExitCode> {
    crate::agent::guard::check_taking(args.session.as_deref(), false, false)?;
    let client = connect::connect(&global.socket_path()).await?;
    let mut printer = output::NotificationPrinter::new(args.json);
    let mut after_seq = None;
    loop {
        let page = client
            .call::<NotificationsPeek>(&PeekParams {
                session: args.session.clone(),
                after_seq,
                max: None,
            })
            .await?;
        printer.dropped(page.dropped);
        printer.page(&page.notifications)?;
        match page.notifications.last() {
            Some(last) if page.more => after_seq = Some(last.seq),
            _ => break,
        }
    }
    printer.finish(args.session.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
