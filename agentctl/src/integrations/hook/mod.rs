//! `agentctl hook claude-code|codex|gemini`: one command for every hook
//! event of that agent. It reads the event JSON on stdin and, on the
//! events where the agent takes extra context ([`events`]), answers with
//! the agent session's pending `<background-results>` in the agent's
//! format, handed over exactly once ([`crate::integrations::delivery`]).
//!
//! It runs on every prompt, so it is quick (one read of stdin, one
//! connection, one `notifications.peek` when nothing is pending) and it
//! never gets in the agent's way: agentd down, bad input, anything else
//! wrong: it prints nothing and exits 0. It never starts agentd.

pub mod events;

use super::{Agent, delivery};
use crate::GlobalOpts;
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Examples shown by `agentctl hook --help`.
pub const EXAMPLES: &str = "Examples:
  agentctl integrate claude-code --project .   # registers this hook (and the MCP server)
  echo '{\"hook_event_name\":\"UserPromptSubmit\",\"session_id\":\"S\"}' | agentctl hook claude-code

Prints nothing when nothing is pending, agentd is not running, or the input
is not a hook event; it always exits 0.";

/// Longest the hook spends on agentd before giving up quietly: an agent
/// waits for its hooks, and a wedged daemon must not stall it.
const AGENTD_BUDGET: Duration = Duration::from_secs(2);
/// Most bytes of event JSON read (a PostToolUse event carries the tool's
/// whole output).
const MAX_EVENT_BYTES: u64 = 16 << 20;

/// Arguments of `agentctl hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// The agent whose hook event comes on stdin
    #[arg(value_enum)]
    pub agent: Agent,
}

/// Handles one hook event; always exit code 0.
pub async fn run(global: &GlobalOpts, args: HookArgs) -> ExitCode {
    let mut input = Vec::new();
    if tokio::io::stdin()
        .take(MAX_EVENT_BYTES)
        .read_to_end(&mut input)
        .await
        .is_err()
    {
        return ExitCode::SUCCESS;
    }
    let Some(plan) = events::plan(args.agent, &input) else {
        return ExitCode::SUCCESS;
    };
    let socket = global.socket_path();
    let _ = tokio::time::timeout(AGENTD_BUDGET, async {
        let client = crate::connect::connect_existing(&socket).await.ok()?;
        let handover = delivery::take(&client, &plan.session).await.ok()??;
        let answer = events::answer(args.agent, &plan.event, &handover.block);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{answer}").ok()?;
        out.flush().ok()?;
        drop(out);
        // Shown: now consume. If this fails the record stays and the next
        // run acks it without showing it again.
        delivery::finish(&client, &plan.session, &handover)
            .await
            .ok()
    })
    .await;
    ExitCode::SUCCESS
}
