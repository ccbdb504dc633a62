//! `agentctl compact [--session NAME]`: compacts a session's conversation
//! now (see [`super::compaction`]), the way `/compact` does in chat.

use super::compaction::Mode;
use super::session::Session;
use super::turn::TurnError;
use crate::GlobalOpts;
use crate::connect;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Compacts `s` on request: a normal compaction, or a hard one when that
/// finds nothing to do. Returns the line to show.
///
/// Errors: see [`Session::compact`].
pub async fn on_demand(s: &mut Session) -> Result<String, TurnError> {
    let mut outcome = s.compact(Mode::Normal).await?;
    if outcome.is_none() {
        outcome = s.compact(Mode::Hard).await?;
    }
    Ok(match outcome {
        Some(o) => format!("Compacted session {}: {o}.", s.name),
        None => format!(
            "Nothing to compact in session {}: it holds one turn and no large tool results.",
            s.name
        ),
    })
}

/// Runs `agentctl compact`.
///
/// Errors: config, agentd or transcript errors; no such session. A failed
/// summary request is printed and gives exit code 1.
pub async fn run(
    global: &GlobalOpts,
    session: &str,
    workdir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    super::session::validate_name(session)?;
    if !super::guard::has_transcript(session) {
        anyhow::bail!("no session {session} (agentctl sessions lists them)");
    }
    let config = super::load_config().await?;
    let workdir = super::workdir(workdir)?;
    let client = Arc::new(connect::connect(&global.socket_path()).await?);
    let mut s = Session::open(session, &workdir, client, config).await?;
    match on_demand(&mut s).await {
        Ok(line) => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(TurnError::Provider(e)) => {
            eprintln!("agentctl: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(TurnError::Other(e)) => Err(e),
    }
}
