//! agentctl: the client of agentd. A job CLI for people ([`cli`]) and an
//! LLM agent whose long commands run as agentd jobs ([`agent`]).
//!
//! `main.rs` parses the command line ([`Cli`]) and calls [`run`].

pub mod agent;
pub mod cli;
pub mod connect;
pub mod errors;
pub mod integrations;

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
    /// $XDG_RUNTIME_DIR/agentd/agentd.sock, or /tmp/agentd-$UID/agentd.sock
    /// when XDG_RUNTIME_DIR is unset]
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
    /// Commands for other coding agents (MCP server, hooks, integrate).
    #[command(flatten)]
    Integrations(integrations::IntegrationCommand),
}

/// Runs a parsed command line; the exit code is the command's.
///
/// Errors: whatever the command reports; `main` prints it as
/// `agentctl: …` ([`errors`]) and exits 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Jobs(cmd) => cli::run(&cli.global, cmd).await,
        Command::Agent(cmd) => agent::run(&cli.global, cmd).await,
        Command::Integrations(cmd) => integrations::run(&cli.global, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;
    use std::collections::BTreeMap;

    /// Short flags that stand for different long names with one meaning:
    /// `-n N` is "only the last N" (`logs --tail`, `jobs --limit`).
    const SHARED_MEANING: &[(char, &[&str])] = &[('n', &["limit", "tail"])];

    /// Every (short, long) pair of the whole command tree.
    fn shorts(cmd: &clap::Command, seen: &mut BTreeMap<char, Vec<String>>) {
        for arg in cmd.get_arguments() {
            if let (Some(short), Some(long)) = (arg.get_short(), arg.get_long()) {
                let longs = seen.entry(short).or_default();
                if !longs.iter().any(|l| l == long) {
                    longs.push(long.to_string());
                    longs.sort();
                }
            }
            if arg.get_long() == Some("session") {
                assert_eq!(
                    arg.get_short(),
                    Some('s'),
                    "--session of `{}` has -s, as everywhere",
                    cmd.get_name()
                );
            }
        }
        for sub in cmd.get_subcommands() {
            shorts(sub, seen);
        }
    }

    #[test]
    fn each_short_flag_means_one_thing_across_the_cli() {
        let mut seen = BTreeMap::new();
        shorts(&Cli::command(), &mut seen);
        for (short, longs) in &seen {
            if longs.len() > 1 {
                let allowed = SHARED_MEANING.iter().find(|(s, _)| s == short);
                assert!(
                    allowed.is_some_and(|(_, l)| l.iter().eq(longs.iter())),
                    "-{short} stands for --{}",
                    longs.join(" and --")
                );
            }
        }
        assert_eq!(seen[&'s'], ["session"]);
    }
}
