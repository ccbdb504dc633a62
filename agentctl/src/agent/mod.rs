//! The agent: an LLM tool-use loop whose long commands run as agentd jobs.
//!
//! `ask` runs one turn non-interactively ([`ask`]), `chat` is the REPL
//! ([`repl`]), `sessions` lists, shows and removes transcripts
//! ([`sessions`]), `compact` shrinks one ([`compact`], [`compaction`]). The loop itself
//! is [`turn`]; background results are [`notifications`]; the conversation
//! on disk is [`transcript`], its size [`context`]; the model is behind
//! [`provider`]. [`guard`] keeps the job CLI's `drain` off an agent's
//! results.

pub mod ask;
pub mod cancel;
pub mod compact;
pub mod compaction;
pub mod config;
pub mod context;
pub mod guard;
pub mod notifications;
pub mod provider;
pub mod repl;
pub mod session;
pub mod sessions;
pub mod sse;
pub mod style;
pub mod tools;
pub mod transcript;
pub mod turn;

use crate::GlobalOpts;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// Agent subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Ask the agent one thing and print its answer.
    #[command(after_help = "Examples:\n  agentctl ask 'what does this repo do?'\n  \
                  agentctl ask --session fix --wait 'run the tests in the background and fix what fails'")]
    Ask {
        /// Session to continue or start [default: agent].
        #[arg(long, short)]
        session: Option<String>,
        /// Stay until this session's background jobs have finished and the
        /// model has seen their results.
        #[arg(long)]
        wait: bool,
        /// The workspace the tools work in [default: current directory].
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Confine the model's commands: workspace-write, read-only or
        /// none (no sandbox at all) [default: the config's `[sandbox] mode`,
        /// else workspace-write]
        #[arg(long, value_name = "MODE", value_parser = parse_sandbox_mode)]
        sandbox: Option<agentd_proto::SandboxMode>,
        /// What to ask.
        #[arg(required = true, value_name = "PROMPT")]
        prompt: Vec<String>,
    },
    /// Talk with the agent interactively.
    Chat {
        /// Session to continue or start [default: a fresh one].
        #[arg(long, short, conflicts_with = "continue_")]
        session: Option<String>,
        /// Resume the most recently used session.
        #[arg(long = "continue", short = 'c')]
        continue_: bool,
        /// The workspace the tools work in [default: current directory].
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Confine the model's commands: workspace-write, read-only or
        /// none (no sandbox at all) [default: the config's `[sandbox] mode`,
        /// else workspace-write]
        #[arg(long, value_name = "MODE", value_parser = parse_sandbox_mode)]
        sandbox: Option<agentd_proto::SandboxMode>,
    },
    /// List the agent's sessions; show or remove one.
    #[command(
        after_help = "Examples:\n  agentctl sessions\n  agentctl sessions show agent\n  \
                  agentctl sessions rm old-experiment"
    )]
    Sessions {
        /// What to do [default: list them].
        #[command(subcommand)]
        cmd: Option<sessions::SessionsCommand>,
    },
    /// Compact a session's conversation now: the model summarises the
    /// older turns, the recent ones are kept.
    #[command(after_help = "Examples:\n  agentctl compact\n  agentctl compact --session fix")]
    Compact {
        /// The session [default: agent].
        #[arg(long, short)]
        session: Option<String>,
        /// The workspace (for the system prompt) [default: current directory].
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
}

/// The session `ask` and `compact` use without `--session`: the agent's
/// own, never the job CLI's `default` (whose results belong to people).
pub const DEFAULT_SESSION: &str = "agent";

/// Runs an agent subcommand.
///
/// Errors: no API key; agentd unreachable; transcript I/O. A failed model
/// call is reported and exits 1 without an error chain.
pub async fn run(global: &GlobalOpts, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Ask {
            session,
            wait,
            workdir,
            sandbox,
            prompt,
        } => {
            sessions::apply_retention();
            let session = session.unwrap_or_else(|| DEFAULT_SESSION.into());
            ask::run(global, &session, wait, workdir, sandbox, &prompt.join(" ")).await
        }
        AgentCommand::Chat {
            session,
            continue_,
            workdir,
            sandbox,
        } => {
            sessions::apply_retention();
            repl::run(global, session, continue_, workdir, sandbox).await
        }
        AgentCommand::Sessions { cmd } => sessions::run(global, cmd).await,
        AgentCommand::Compact { session, workdir } => {
            let session = session.unwrap_or_else(|| DEFAULT_SESSION.into());
            compact::run(global, &session, workdir).await
        }
    }
}

/// Loads the config (model, API key, base URL).
///
/// The keys stay in this process's environment; jobs never see them:
/// [`config::job_env`] drops them from what the tools submit, and an agentd
/// auto-started by us gets an environment without them.
///
/// With no model named and an OpenAI-compatible server other than
/// api.openai.com, the server is asked which model it serves
/// ([`provider::openai::only_served_model`]).
///
/// Errors: see [`config::Config::load`]; the server cannot say which one
/// model to use.
pub async fn load_config() -> anyhow::Result<config::Config> {
    let mut config = config::Config::load()?;
    if config.model_from_server() {
        let http = provider::http_client()?;
        config.model = provider::openai::only_served_model(&http, &config).await?;
    }
    Ok(config)
}

/// Parses `--sandbox MODE`.
fn parse_sandbox_mode(s: &str) -> Result<agentd_proto::SandboxMode, String> {
    s.parse()
}

/// The workspace: `--workdir`, else the current directory.
///
/// Errors: the current directory cannot be read.
pub fn workdir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(d) => Ok(d),
        None => Ok(std::env::current_dir()?),
    }
}
