//! agentctl: the client of agentd. A job CLI for people ([`cli`]) and an
//! LLM agent whose long commands run as agentd jobs ([`agent`]).
//!
//! `main.rs` parses the command line ([`Cli`]) and calls [`run`].

pub mod agent;
pub mod cli;
pub mod connect;
pub mod errors;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "agentctl",
    version,
    about = "Run background jobs through agentd, and an LLM agent whose long commands never block",
    after_help = "Examples:\n  agentctl run -- cargo build\n  agentctl jobs\n  agentctl logs -f 1a2b\n  agentctl ask 'run the tests in the background and summarise failures'"
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// agentd's socket [env: AGENTD_SOCKET] [default:
    /// $XDG_RUNTIME_DIR/agentd/agentd.sock]
    // AGENTD_SOCKET is read by `connect::socket_path`, not by clap's `env`:
    // clap counts a value from the environment as given on the command
    // line, so usage errors would show `--socket <PATH>` as if required.
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl GlobalOpts {
    /// The socket path to use.
    pub fn socket_path(&self) -> PathBuf {
        connect::socket_path(self.socket.as_deref())
    }
}

/// Every subcommand: the job CLI's and the agent's.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Job commands.
    #[command(flatten)]
    Jobs(cli::JobCommand),
    /// Agent commands.
    #[command(flatten)]
    Agent(agent::AgentCommand),
}

/// Runs a parsed command line; the exit code is the command's.
///
/// Errors: whatever the command reports; `main` prints it as
/// `agentctl: …` ([`errors`]) and exits 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Jobs(cmd) => cli::run(&cli.global, cmd).await,
        Command::Agent(cmd) => agent::run(&cli.global, cmd).await,
    }
}
