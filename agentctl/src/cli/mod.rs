//! The job CLI: `agentctl run`, `jobs`, `show`, `logs`, `wait`, `kill`,
//! `pause`, `resume`, `restart`, `group …`, `drain`, `notifications`,
//! `daemon …` and `completions`.
//!
//! One file per subcommand (as mini-redis's `cmd/` and pueue's
//! `client/commands/`): each holds its clap arguments and an async `run`
//! returning the process exit code. [`JobCommand`] ties them together and
//! [`run`] dispatches. Shared formatting lives in [`output`], the
//! exit-code rules of `wait` in [`exit`].

pub mod clean;
pub mod completions;
pub mod daemon;
pub mod drain;
pub mod exit;
pub mod group;
pub mod jobs;
pub mod kill;
pub mod logs;
pub mod notifications;
pub mod output;
pub mod pause;
pub mod reconnect;
pub mod restart;
pub mod rm;
pub mod run;
pub mod service;
pub mod show;
pub mod wait;

use crate::GlobalOpts;
use clap::Subcommand;
use std::process::ExitCode;

/// Job subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a shell command as a background job and print its short id
    #[command(after_help = run::EXAMPLES)]
    Run(Box<run::RunArgs>),
    /// List jobs (running and queued ones unless --all or --state)
    #[command(after_help = jobs::EXAMPLES)]
    Jobs(jobs::JobsArgs),
    /// Show one job in full
    #[command(after_help = show::EXAMPLES)]
    Show(show::ShowArgs),
    /// Print a job's output (stdout and stderr interleaved)
    #[command(after_help = logs::EXAMPLES)]
    Logs(logs::LogsArgs),
    /// Wait for jobs to finish and exit with the job's exit code
    #[command(after_help = wait::EXAMPLES)]
    Wait(wait::WaitArgs),
    /// Signal jobs' process groups (a queued job is cancelled)
    #[command(after_help = kill::EXAMPLES)]
    Kill(kill::KillArgs),
    /// Pause jobs: stop a running job's processes (SIGSTOP), hold a queued one
    #[command(after_help = pause::PAUSE_EXAMPLES)]
    Pause(pause::PauseArgs),
    /// Resume paused jobs (SIGCONT), or release held ones into the queue
    #[command(after_help = pause::RESUME_EXAMPLES)]
    Resume(pause::PauseArgs),
    /// Run a job again: same command, directory, session, group and label,
    /// this shell's environment; prints the new job's id
    #[command(after_help = restart::EXAMPLES)]
    Restart(restart::RestartArgs),
    /// List groups of jobs, or set how many of a group's jobs run at once
    #[command(after_help = group::EXAMPLES)]
    Group(group::GroupArgs),
    /// Remove finished jobs with their output (a live job must be killed first)
    #[command(after_help = rm::EXAMPLES)]
    Rm(rm::RmArgs),
    /// Remove finished jobs in bulk: by age, keeping the newest N, by session
    #[command(after_help = clean::EXAMPLES)]
    Clean(clean::CleanArgs),
    /// Print and consume the notifications of finished jobs
    #[command(after_help = drain::EXAMPLES)]
    Drain(drain::DrainArgs),
    /// Print the pending notifications of finished jobs without consuming them
    #[command(after_help = notifications::EXAMPLES)]
    Notifications(notifications::NotificationsArgs),
    /// Start, stop and inspect the agentd daemon
    #[command(after_help = daemon::EXAMPLES)]
    Daemon(daemon::DaemonArgs),
    /// Print a shell completion script
    #[command(after_help = completions::EXAMPLES)]
    Completions(completions::CompletionsArgs),
}

/// Runs a job subcommand and returns its exit code.
///
/// Errors: the daemon cannot be reached, or answers with an error (unknown
/// or ambiguous job id, invalid params, …); `main` prints them as
/// `agentctl: …` ([`crate::errors`]). A closed stdout (`agentctl logs ID | head`) is not
/// an error: the command stops quietly with exit 0.
pub async fn run(global: &GlobalOpts, cmd: JobCommand) -> anyhow::Result<ExitCode> {
    let result = match cmd {
        JobCommand::Run(args) => run::run(global, *args).await,
        JobCommand::Jobs(args) => jobs::run(global, args).await,
        JobCommand::Show(args) => show::run(global, args).await,
        JobCommand::Logs(args) => logs::run(global, args).await,
        JobCommand::Wait(args) => wait::run(global, args).await,
        JobCommand::Kill(args) => kill::run(global, args).await,
        JobCommand::Pause(args) => pause::run(global, args, false).await,
        JobCommand::Resume(args) => pause::run(global, args, true).await,
        JobCommand::Restart(args) => restart::run(global, args).await,
        JobCommand::Group(args) => group::run(global, args).await,
        JobCommand::Rm(args) => rm::run(global, args).await,
        JobCommand::Clean(args) => clean::run(global, args).await,
        JobCommand::Drain(args) => drain::run(global, args).await,
        JobCommand::Notifications(args) => notifications::run(global, args).await,
        JobCommand::Daemon(args) => daemon::run(global, args).await,
        JobCommand::Completions(args) => completions::run(args),
    };
    match result {
        Err(e) if output::is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}
