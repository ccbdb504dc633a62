//! A session: its name, its transcript, the connection to agentd and the
//! provider, and the user message being built. Opening one takes an
//! exclusive lock on its transcript (two agentctl runs on one session
//! would interleave it) and repairs a transcript cut mid-turn.

use super::config::{self, Config};
use super::provider::{Provider, ToolSpec};
use super::tools::{self, ToolContext};
use super::transcript::{Block, Transcript};
use agentd_proto::Client;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where transcripts live: `$AGENTCTL_STATE_DIR/sessions`, default
/// `$XDG_STATE_HOME/agentctl/sessions`.
///
/// Errors: no state dir variable and no home directory.
pub fn sessions_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("AGENTCTL_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => directories::ProjectDirs::from("", "", "agentctl")
            .and_then(|d| d.state_dir().map(Path::to_path_buf))
            .context("cannot find the home directory; set AGENTCTL_STATE_DIR")?,
    };
    Ok(base.join("sessions"))
}

/// Checks the daemon's rule for session names: 1–128 chars of
/// `[A-Za-z0-9._-]` (and not `.`/`..`, which would be odd file names).
///
/// Errors: the name breaks the rule; the message says how.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 128 || !ok_chars || name == "." || name == ".." {
        bail!("invalid session name {name:?}: use 1-128 characters of A-Z a-z 0-9 . _ -");
    }
    Ok(())
}

/// A fresh session name: `chat-YYYYMMDD-HHMMSS-xxxx`.
pub fn fresh_name() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = now.format(fmt).unwrap_or_else(|_| "now".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("chat-{stamp}-{}", &rand[..4])
}

/// The system prompt.
pub fn system_prompt(workdir: &Path) -> String {
    format!(
        "You are a coding agent working in the workspace {ws}. Your file tools (read_file, \
         write_file, edit_file) only reach files inside it; bash and background_run run there \
         through agentd, the user's job daemon.\n\
         Use bash for quick commands. Anything that may take more than a few seconds (builds, \
         test suites, installs, servers) belongs in background_run: it returns at once with a \
         task id and you can keep working meanwhile. A bash command that outlives its timeout \
         is not killed; it becomes a background task.\n\
         When background tasks finish, their results arrive in a later user message inside a \
         <background-results> block, one entry per task: `[bg:<id>] <state> (exit <code>): \
         <command>` followed by the tail of its output. Use check_background to look at tasks \
         and kill_background to stop one. Do not poll in a loop: finished results come to you.",
        ws = workdir.display()
    )
}

/// An open session.
pub struct Session {
    /// The session name (agentd's session and the transcript's file name).
    pub name: String,
    /// The persisted conversation.
    pub transcript: Transcript,
    /// Connection to agentd.
    pub client: Arc<Client>,
    /// The model.
    pub provider: Provider,
    /// What the tools run against.
    pub tools: ToolContext,
    /// Tools on offer.
    pub specs: Vec<ToolSpec>,
    /// The system prompt.
    pub system: String,
    /// Content of the next user message, not yet persisted.
    pub pending: Vec<Block>,
    /// Jobs whose results `pending` carries as `bash` results.
    pub pending_fg: Vec<String>,
    /// Index in the transcript's messages where the current turn began
    /// (what a cancel before any model output withdraws starts there).
    pub turn_start: usize,
    /// Text streamed by the model call in flight (kept when it is
    /// cancelled, marked `[cancelled]`).
    pub partial: String,
    /// The tool call running now, by id (a cancel says it may have taken
    /// effect; the calls after it never ran).
    pub running_tool: Option<String>,
    /// Holds the transcript lock while the session is open.
    _lock: std::fs::File,
}

impl Session {
    /// Opens (or creates) session `name` with the workspace `workdir`.
    ///
    /// Errors: bad name; the session is open in another agentctl; the
    /// transcript cannot be read; the workspace does not exist.
    pub async fn open(
        name: &str,
        workdir: &Path,
        client: Arc<Client>,
        config: Config,
    ) -> anyhow::Result<Session> {
        validate_name(name)?;
        let workdir = std::fs::canonicalize(workdir)
            .with_context(|| format!("workspace {}", workdir.display()))?;
        let dir = sessions_dir()?;
        let path = dir.join(format!("{name}.jsonl"));
        // Lock before reading: a transcript being written by another run
        // must not be loaded (or repaired) half-way.
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| anyhow::anyhow!("session {name} is in use by another agentctl"))?;
        let transcript = Transcript::open(&path)?;
        let sandbox = config.sandbox.clone();
        let background = config.background.clone();
        let provider = Provider::new(config)?;
        let mut session = Session {
            name: name.to_string(),
            transcript,
            client: client.clone(),
            provider,
            tools: ToolContext {
                client,
                session: name.to_string(),
                workdir: workdir.clone(),
                env: config::job_env(),
                sandbox,
                background,
            },
            specs: tools::specs(),
            system: system_prompt(&workdir),
            pending: Vec::new(),
            pending_fg: Vec::new(),
            turn_start: 0,
            partial: String::new(),
            running_tool: None,
            _lock: lock,
        };
        session.repair();
        Ok(session)
    }

    /// Answers every tool call of the last message that has no result yet
    /// (cut by a crash or Ctrl-C) with an error result in `pending`.
    pub fn repair(&mut self) {
        let answered: Vec<String> = self
            .pending
            .iter()
            .filter_map(|b| match b {
                Block::ToolResult { tool_use_id, .. } => Some(tool_use_id.clone()),
                _ => None,
            })
            .collect();
        for block in self.transcript.unanswered() {
            if let Block::ToolResult { tool_use_id, .. } = &block
                && !answered.contains(tool_use_id)
            {
                self.pending.push(block);
            }
        }
    }
}
