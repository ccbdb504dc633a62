//! `agentctl integrate claude-code|codex|gemini [--project DIR | --user]
//! [--dry-run] [--remove]`: registers agentd's MCP server (`agentctl mcp`)
//! and hook (`agentctl hook AGENT`) in that agent's settings files
//! ([`targets`]), merged with what is there: other servers, hooks and keys
//! are kept, running it twice changes nothing the second time, and a file
//! that cannot be read as settings is left alone with an error naming it.

pub mod diff;
pub mod json_edit;
pub mod targets;

use super::Agent;
use anyhow::{Context, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use targets::{Edit, FileEdit, Scope};

/// Examples shown by `agentctl integrate --help`.
pub const EXAMPLES: &str = "Examples:
  agentctl integrate claude-code --project .    # this project's .mcp.json and .claude/settings.json
  agentctl integrate codex --user --dry-run     # show what would change in ~/.codex
  agentctl integrate gemini --project . --remove

docs/integrations.md says what each agent gets and how results reach its model.";

/// Arguments of `agentctl integrate`.
#[derive(Debug, Args)]
pub struct IntegrateArgs {
    /// The agent to set up
    #[arg(value_enum)]
    pub agent: Agent,
    /// Set up this project directory [default: the current directory]
    #[arg(long, value_name = "DIR", conflicts_with = "user")]
    pub project: Option<PathBuf>,
    /// Set up the user's settings (in the home directory) instead of a project
    #[arg(long)]
    pub user: bool,
    /// Print the changes without writing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Take agentd's MCP server and hooks out again
    #[arg(long)]
    pub remove: bool,
}

/// Applies (or prints) the edits; exit 0.
///
/// Errors: no such project directory; no home directory for `--user`; a
/// settings file that is not valid JSON/TOML or has an unexpected shape
/// (nothing is written then); a file that cannot be written.
pub fn run(args: IntegrateArgs) -> anyhow::Result<ExitCode> {
    let (scope, base) = if args.user {
        let home = directories::BaseDirs::new()
            .map(|d| d.home_dir().to_path_buf())
            .context("cannot find the home directory")?;
        (Scope::User(home.clone()), home)
    } else {
        let dir = args.project.clone().unwrap_or_else(|| PathBuf::from("."));
        let dir = std::fs::canonicalize(&dir).with_context(|| {
            format!(
                "no project directory {} (give an existing one with --project DIR)",
                dir.display()
            )
        })?;
        if !dir.is_dir() {
            bail!(
                "{} is not a directory (give a project directory with --project DIR)",
                dir.display()
            );
        }
        (Scope::Project(dir.clone()), dir)
    };
    let agentctl = agentctl_command();
    let edits = targets::edits(args.agent, &scope, &agentctl, args.remove);

    // Compute every change first, so one bad file means nothing is written.
    let mut changes = Vec::new();
    for FileEdit { path, edit } in edits {
        let old = read(&path)?;
        if args.remove && old.is_none() {
            continue;
        }
        let new = apply(&edit, old.as_deref()).map_err(|why| {
            anyhow::anyhow!(
                "{} {why}; fix or move it, then run this again",
                path.display()
            )
        })?;
        changes.push((path, old, new));
    }

    let mut changed = 0;
    for (path, old, new) in &changes {
        let name = targets::shown(path, &base);
        if old.as_deref() == Some(new.as_str()) {
            println!("unchanged {name}");
            continue;
        }
        changed += 1;
        if args.dry_run {
            println!(
                "would {} {name}:",
                if old.is_some() { "change" } else { "create" }
            );
            print!("{}", diff::lines(old.as_deref().unwrap_or(""), new));
        } else {
            write(path, new)?;
            println!(
                "{} {name}",
                if old.is_some() { "updated" } else { "created" }
            );
        }
    }
    if !args.dry_run && !args.remove && changed > 0 {
        println!("{}", next_steps(args.agent));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the user still has to do, after an install.
fn next_steps(agent: Agent) -> &'static str {
    match agent {
        Agent::ClaudeCode => {
            "Claude Code now has the agentd tools (mcp__agentd__run, …) and gets finished jobs' results \
             with each prompt. In `claude -p`, allow the tools with `--allowedTools mcp__agentd`."
        }
        Agent::Codex => {
            "Codex now has the agentd tools and gets finished jobs' results with each prompt \
             (hooks need `[features] codex_hooks = true`, which was set)."
        }
        Agent::Gemini => {
            "Gemini CLI now has the agentd tools and gets finished jobs' results before each turn \
             and after each tool call."
        }
    }
}

/// How settings should run agentctl: `agentctl` when that name on PATH is
/// this very program, else this program's absolute path.
fn agentctl_command() -> String {
    let Ok(me) = std::env::current_exe() else {
        return "agentctl".into();
    };
    let me_real = std::fs::canonicalize(&me).unwrap_or(me.clone());
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("agentctl"))
            .find(|p| p.is_file())
    });
    match on_path.and_then(|p| std::fs::canonicalize(p).ok()) {
        Some(p) if p == me_real => "agentctl".into(),
        _ => me.display().to_string(),
    }
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The file's new text.
fn apply(edit: &Edit, old: Option<&str>) -> Result<String, String> {
    match edit {
        Edit::Json(f) => {
            let mut map = json_edit::parse(old)?;
            f(&mut map)?;
            Ok(json_edit::render(&map))
        }
        Edit::Toml(f) => {
            let mut doc: toml_edit::DocumentMut = old
                .unwrap_or("")
                .parse()
                .map_err(|e| format!("is not valid TOML ({e})"))?;
            f(&mut doc)?;
            Ok(doc.to_string())
        }
    }
}

/// Writes `text` to `path` through a temp file renamed over it, so the
/// agent never reads half a file; creates the directory when missing.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("agentctl-{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        // Keep the file's permissions (~/.claude.json is private).
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
