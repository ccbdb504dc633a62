//! `agentctl ask`: one user turn, non-interactive. The final text goes to
//! stdout, tool-call lines to stderr. With `--wait` it stays while the
//! session has live jobs, long-polling `notifications.wait`, and gives
//! each batch of results to the model.

use super::cancel::Cancelled;
use super::session::Session;
use super::turn::{TurnError, Ui};
use crate::GlobalOpts;
use crate::connect;
use agentd_proto::methods::{JobList, ListParams, NotificationsWait, NotificationsWaitParams};
use agentd_proto::{Client, JobState};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// How long one `notifications.wait` long-poll lasts, in milliseconds.
pub const WAIT_POLL_MS: u64 = 60_000;

/// Tool lines and notices to stderr; text is printed at the end.
struct AskUi;

impl Ui for AskUi {
    fn text(&mut self, _delta: &str) {}
    fn tool(&mut self, line: &str) {
        eprintln!("{line}");
    }
    fn notice(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

fn print_reply(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}

/// Runs `ask`.
///
/// Errors: an empty prompt; config, agentd and transcript errors. A model API error is
/// printed and gives exit code 1; the session is kept. SIGINT cancels (see
/// [`super::cancel`]) and gives exit code 130.
pub async fn run(
    global: &GlobalOpts,
    session: &str,
    wait: bool,
    workdir: Option<PathBuf>,
    sandbox: Option<agentd_proto::SandboxMode>,
    prompt: &str,
) -> anyhow::Result<ExitCode> {
    if prompt.trim().is_empty() {
        anyhow::bail!(
            "the prompt is empty: say what to ask, e.g. agentctl ask 'what does this repo do?'"
        );
    }
    let mut config = super::load_config().await?;
    config.apply_sandbox_flag(sandbox);
    let workdir = super::workdir(workdir)?;
    // SIGINT cancels the turn the way Ctrl-C does in chat (taken from
    // here on, so it never kills us half-way through a write).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let client = Arc::new(connect::connect(&global.socket_path()).await?);
    let mut s = Session::open(session, &workdir, client.clone(), config).await?;
    s.pending.push(super::transcript::Block::text(prompt));
    let outcome = tokio::select! {
        r = turns(&mut s, &client, wait) => Some(r),
        _ = interrupt.recv() => None,
    };
    match outcome {
        Some(r) => r,
        None => {
            let what = s.cancel()?;
            let note = match what {
                Cancelled::PromptWithdrawn => {
                    "cancelled before the model answered: the prompt is dropped"
                }
                Cancelled::AnswerKept => "cancelled: the answer so far is kept in the session",
                Cancelled::ToolsAnswered | Cancelled::Nothing => "cancelled",
            };
            eprintln!("agentctl: {note}");
            Ok(ExitCode::from(130))
        }
    }
}

/// The turn for the prompt, then with `wait` one per batch of background
/// results while the session has live jobs.
async fn turns(s: &mut Session, client: &Client, wait: bool) -> anyhow::Result<ExitCode> {
    let mut ui = AskUi;
    if !turn(s, &mut ui).await? {
        return Ok(ExitCode::FAILURE);
    }
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        if s.has_new_results().await? {
            if !turn(s, &mut ui).await? {
                return Ok(ExitCode::FAILURE);
            }
            continue;
        }
        let live = client
            .call::<JobList>(&ListParams {
                states: Some(JobState::LIVE.to_vec()),
                session: Some(s.name.clone()),
                limit: Some(1),
                group: None,
                cursor: None,
            })
            .await?;
        if live.jobs.is_empty() {
            // A job may have finished between the check and the list.
            if s.has_new_results().await? {
                continue;
            }
            return Ok(ExitCode::SUCCESS);
        }
        client
            .call::<NotificationsWait>(&NotificationsWaitParams {
                session: Some(s.name.clone()),
                timeout_ms: WAIT_POLL_MS,
                max: None,
            })
            .await?;
    }
}

/// One turn; prints the reply. False when the model API failed.
async fn turn(s: &mut Session, ui: &mut AskUi) -> anyhow::Result<bool> {
    match s.turn(ui).await {
        Ok(text) => {
            print_reply(&text);
            Ok(true)
        }
        Err(TurnError::Provider(e)) => {
            eprintln!("agentctl: {e}");
            Ok(false)
        }
        Err(TurnError::Other(e)) => Err(e),
    }
}
