//! `agentctl sessions`: every transcript, most recent first, with its last
//! activity (the file's modification time) and its live job count.

use super::session::sessions_dir;
use crate::GlobalOpts;
use crate::connect;
use agentd_proto::JobState;
use agentd_proto::methods::{JobList, ListParams};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// One session on disk.
#[derive(Debug)]
pub struct SessionInfo {
    /// Its name.
    pub name: String,
    /// Its transcript.
    pub path: PathBuf,
    /// When it was last written.
    pub modified: SystemTime,
}

/// Sessions on disk, most recently active first.
///
/// Errors: the sessions directory exists but cannot be read.
pub fn list() -> anyhow::Result<Vec<SessionInfo>> {
    let dir = sessions_dir()?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out: Vec<SessionInfo> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let path = e.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jsonl")?
                .to_string();
            let modified = e.metadata().ok()?.modified().ok()?;
            Some(SessionInfo {
                name,
                path,
                modified,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.modified));
    Ok(out)
}

fn rfc3339(t: SystemTime) -> String {
    let t: time::OffsetDateTime = t.into();
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    t.format(fmt).unwrap_or_default()
}

/// Prints the table. Job counts need agentd; without one they show `?`.
///
/// Errors: the sessions directory cannot be read.
pub async fn run(global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let sessions = list()?;
    if sessions.is_empty() {
        println!("No sessions yet. Start one with `agentctl chat` or `agentctl ask PROMPT`.");
        return Ok(ExitCode::SUCCESS);
    }
    let client = connect::connect_existing(&global.socket_path()).await.ok();
    let width = sessions
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(7);
    println!(
        "{:<width$}  {:<20}  JOBS RUNNING",
        "SESSION", "LAST ACTIVITY"
    );
    for s in sessions {
        let running = match &client {
            Some(c) => c
                .call::<JobList>(&ListParams {
                    states: Some(vec![JobState::Queued, JobState::Running]),
                    session: Some(s.name.clone()),
                    limit: None,
                })
                .await
                .map(|r| r.jobs.len().to_string())
                .unwrap_or_else(|_| "?".into()),
            None => "?".into(),
        };
        println!("{:<width$}  {:<20}  {running}", s.name, rfc3339(s.modified));
    }
    Ok(ExitCode::SUCCESS)
}
