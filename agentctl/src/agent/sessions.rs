//! `agentctl sessions`: every transcript, most recent first, with its last
//! activity (the file's modification time) and its live job count;
//! `sessions show NAME` (size, context estimate, last compaction) and
//! `sessions rm NAME` (transcript and pending results gone, running jobs
//! left alone). Transcripts older than `[retention] max_age_days` are
//! removed when an agent command starts ([`apply_retention`]).

use super::session::{sessions_dir, validate_name};
use super::transcript::Transcript;
use crate::GlobalOpts;
use crate::connect;
use agentd_proto::methods::{
    AckParams, JobList, ListParams, NotificationsAck, NotificationsPeek, PeekParams,
};
use agentd_proto::{Client, JobState};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// `agentctl sessions` subcommands.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Show one session: messages, size, context estimate, last compaction.
    Show {
        /// The session.
        name: String,
    },
    /// Remove a session: its transcript, and its pending results in
    /// agentd (acked). Its running jobs are left alone.
    Rm {
        /// The session.
        name: String,
    },
}

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

/// Runs `agentctl sessions [show|rm]`.
///
/// Errors: see [`list_table`], [`show`], [`rm`].
pub async fn run(global: &GlobalOpts, cmd: Option<SessionsCommand>) -> anyhow::Result<ExitCode> {
    match cmd {
        None => {
            apply_retention();
            list_table(global).await
        }
        Some(SessionsCommand::Show { name }) => show(global, &name).await,
        Some(SessionsCommand::Rm { name }) => rm(global, &name).await,
    }
}

/// How long an empty transcript (a chat left without a word) is kept
/// before retention removes it: long enough that one just created by a
/// starting agentctl is never taken from under it.
pub const EMPTY_GRACE: Duration = Duration::from_secs(3600);

/// Removes transcripts untouched for `[retention] max_age_days` (0: never),
/// and empty ones older than [`EMPTY_GRACE`], skipping those in use (locked).
/// Problems are logged, never fatal: retention must not stop a command.
pub fn apply_retention() {
    let days = match super::config::retention_max_age_days() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("retention skipped: {e:#}");
            return;
        }
    };
    let now = SystemTime::now();
    for s in list().unwrap_or_default() {
        let age = now.duration_since(s.modified).unwrap_or_default();
        let old = days > 0 && age > Duration::from_secs(days * 86_400);
        let empty = age > EMPTY_GRACE && std::fs::metadata(&s.path).is_ok_and(|m| m.len() == 0);
        if !(old || empty) {
            continue;
        }
        // Held while removing: a run opening the session now waits for
        // nothing but finds no file and starts afresh.
        let Ok(_held) = lock(&s.path) else { continue };
        if let Err(e) = std::fs::remove_file(&s.path) {
            tracing::warn!("cannot remove {}: {e}", s.path.display());
        }
    }
}

/// Opens and exclusively locks a transcript (without waiting).
///
/// Errors: it does not exist, or another agentctl uses it.
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| anyhow::anyhow!("it is in use by another agentctl"))?;
    Ok(f)
}

/// The transcript of an existing session.
///
/// Errors: a bad name; no such session.
fn existing(name: &str) -> anyhow::Result<PathBuf> {
    validate_name(name)?;
    let path = sessions_dir()?.join(format!("{name}.jsonl"));
    if !path.is_file() {
        anyhow::bail!("no session {name} (agentctl sessions lists them)");
    }
    Ok(path)
}

/// The session's queued and running jobs, every page of `job.list` (one
/// page holds at most 1000).
///
/// Errors: agentd errors.
async fn live_jobs(client: &Client, name: &str) -> anyhow::Result<Vec<agentd_proto::Job>> {
    let mut jobs = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .call::<JobList>(&ListParams {
                states: Some(JobState::LIVE.to_vec()),
                session: Some(name.to_string()),
                limit: None,
                group: None,
                cursor: cursor.take(),
            })
            .await?;
        jobs.extend(page.jobs);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(jobs),
        }
    }
}

/// How many results of the session are pending, every page of
/// `notifications.peek` (one page holds at most 100).
///
/// Errors: agentd errors.
async fn pending_count(client: &Client, name: &str) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut after_seq = None;
    loop {
        let page = client
            .call::<NotificationsPeek>(&PeekParams {
                session: Some(name.to_string()),
                after_seq,
                max: None,
            })
            .await?;
        count += page.notifications.len();
        match page.notifications.last() {
            Some(last) if page.more => after_seq = Some(last.seq),
            _ => return Ok(count),
        }
    }
}

/// Acks every pending notification of the session, and its drops;
/// returns how many notifications.
async fn clear_pending(client: &Client, name: &str) -> anyhow::Result<usize> {
    let mut cleared = 0;
    loop {
        let page = client
            .call::<NotificationsPeek>(&PeekParams {
                session: Some(name.to_string()),
                after_seq: None,
                max: None,
            })
            .await?;
        let last = page.notifications.iter().map(|n| n.seq).max();
        let Some(up_to_seq) = last.max(page.dropped_up_to_seq) else {
            return Ok(cleared);
        };
        cleared += page.notifications.len();
        client
            .call::<NotificationsAck>(&AckParams {
                session: Some(name.to_string()),
                up_to_seq,
            })
            .await?;
    }
}

/// `agentctl sessions rm NAME`.
///
/// Errors: no such session; it is in use; agentd answers with an error.
pub async fn rm(global: &GlobalOpts, name: &str) -> anyhow::Result<ExitCode> {
    let path = existing(name)?;
    let _lock = lock(&path).with_context(|| format!("cannot remove session {name}"))?;
    let messages = Transcript::open_read_only(&path)
        .map(|t| t.messages().len())
        .unwrap_or(0);
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    println!("Removed session {name} ({messages} messages).");
    let Ok(client) = connect::connect_existing(&global.socket_path()).await else {
        println!("agentd is not running: results of this session's jobs may still be pending.");
        return Ok(ExitCode::SUCCESS);
    };
    let cleared = clear_pending(&client, name).await?;
    if cleared > 0 {
        println!("Cleared {cleared} pending results.");
    }
    let live = live_jobs(&client, name).await?;
    if !live.is_empty() {
        // The first few ids; `agentctl jobs` lists them all.
        let mut ids: Vec<&str> = live.iter().take(10).map(|j| j.short_id.as_str()).collect();
        if live.len() > ids.len() {
            ids.push("…");
        }
        println!(
            "Note: {} jobs of session {name} still run and were left alone ({}); see \
             `agentctl jobs --session {name}`, stop them with `agentctl kill ID`. Their results \
             will wait in `agentctl notifications --session {name}`.",
            live.len(),
            ids.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `agentctl sessions show NAME`.
///
/// Errors: no such session; its transcript cannot be read.
pub async fn show(global: &GlobalOpts, name: &str) -> anyhow::Result<ExitCode> {
    let path = existing(name)?;
    let t = Transcript::open_read_only(&path)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let view = t.view();
    let workdir = std::env::current_dir().unwrap_or_default();
    let tokens = super::context::estimate(
        &super::session::system_prompt(&workdir),
        &super::tools::specs(),
        &view,
    );
    println!("Session:         {name}");
    println!("Transcript:      {} ({size} bytes)", path.display());
    println!(
        "Messages:        {} in all, {} in the model's view",
        t.messages().len(),
        view.len()
    );
    match super::config::Config::load() {
        Ok(c) => println!(
            "Context:         ~{tokens} tokens of {} (compaction at {})",
            c.context_window_tokens,
            super::context::threshold(c.context_window_tokens)
        ),
        Err(_) => println!("Context:         ~{tokens} tokens"),
    }
    match t.compaction() {
        Some(c) => println!(
            "Last compaction: {}: {} messages summarised, ~{} -> ~{} tokens",
            c.at, c.summarised, c.tokens_before, c.tokens_after
        ),
        None => println!("Last compaction: never"),
    }
    if let Ok(client) = connect::connect_existing(&global.socket_path()).await {
        let live = live_jobs(&client, name).await?.len();
        let pending = pending_count(&client, name).await?;
        println!("Jobs:            {live} queued or running, {pending} results pending");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the table. Job counts need agentd; without one they show `?`.
///
/// Errors: the sessions directory cannot be read.
pub async fn list_table(global: &GlobalOpts) -> anyhow::Result<ExitCode> {
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
            Some(c) => live_jobs(c, &s.name)
                .await
                .map(|jobs| jobs.len().to_string())
                .unwrap_or_else(|_| "?".into()),
            None => "?".into(),
        };
        println!("{:<width$}  {:<20}  {running}", s.name, rfc3339(s.modified));
    }
    Ok(ExitCode::SUCCESS)
}
