//! `agentctl daemon start|stop|status|log|install-service`: manage the
//! agentd daemon.
//!
//! `stop` and `status` never start a daemon; `start` starts one even when
//! `AGENTCTL_NO_AUTOSTART=1` (it is an explicit request). `install-service`
//! writes the systemd user units and says how to enable them
//! ([`super::service`]).

use super::output;
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{
    DaemonInfo, DaemonShutdown, Empty, InfoResult, ShutdownJobs, ShutdownParams,
};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::time::Duration;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl daemon status || agentctl daemon start
  agentctl daemon stop --kill-jobs
  agentctl daemon log -f
  agentctl daemon install-service";

/// How long `daemon stop` waits for the daemon's process to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `agentctl daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DaemonCommand,
}

/// `agentctl daemon` subcommands.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start agentd in the background (its output goes to `daemon log`)
    #[command(after_help = "Example:\n  agentctl daemon start")]
    Start,
    /// Ask agentd to exit and wait until it has (see --kill-jobs)
    #[command(after_help = "Example:\n  agentctl daemon stop --kill-jobs")]
    Stop {
        /// Kill every running job's process group first (they end
        /// `killed`); without it they keep running under their shims and
        /// the next agentd adopts them
        #[arg(long)]
        kill_jobs: bool,
    },
    /// Show whether agentd answers, and its version, pid, paths and job
    /// counts; exit 1 when no daemon answers
    #[command(after_help = "Example:\n  agentctl daemon status --json")]
    Status {
        /// Print daemon.info's result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the log of the daemon agentctl auto-started
    #[command(after_help = "Example:\n  agentctl daemon log -f")]
    Log {
        /// Keep printing as the log grows (runs `tail -f`)
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Write systemd user units (agentd.service, agentd.socket) to
    /// $XDG_CONFIG_HOME/systemd/user/ and print the commands that enable
    /// them
    #[command(after_help = "Example:\n  agentctl daemon install-service && \
                  systemctl --user daemon-reload && systemctl --user enable --now agentd.socket")]
    InstallService {
        /// Replace units that differ from what would be written (without
        /// it, such units are left alone and the differences shown)
        #[arg(long)]
        force: bool,
    },
}

/// Runs a daemon subcommand.
///
/// Errors: `start`: the daemon could not be started; `stop`: it did not
/// exit in 30 s; `log`: the log file cannot be read.
pub async fn run(global: &GlobalOpts, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let socket = global.socket_path();
    match args.command {
        DaemonCommand::Start => {
            if let Ok(client) = connect::connect_existing(&socket).await {
                let info = client.call::<DaemonInfo>(&Empty {}).await?;
                eprintln!(
                    "agentctl: agentd is already running (pid {}) on {}",
                    info.pid, info.socket
                );
                return Ok(ExitCode::SUCCESS);
            }
            connect::start_daemon(&socket).await?;
            let client = connect::connect_existing(&socket).await?;
            let info = client.call::<DaemonInfo>(&Empty {}).await?;
            eprintln!(
                "agentctl: agentd started (pid {}) on {}; log: {}",
                info.pid,
                info.socket,
                connect::daemon_log_path()?.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Stop { kill_jobs } => {
            let Ok(client) = connect::connect_existing(&socket).await else {
                eprintln!(
                    "agentctl: no agentd is running on {}; nothing to stop",
                    socket.display()
                );
                return Ok(ExitCode::SUCCESS);
            };
            let info = client.call::<DaemonInfo>(&Empty {}).await?;
            let exited = ProcessExit::watch(info.pid);
            let jobs = kill_jobs.then_some(ShutdownJobs::Kill);
            client
                .call::<DaemonShutdown>(&ShutdownParams { jobs })
                .await?;
            tokio::time::timeout(STOP_TIMEOUT, exited.wait())
                .await
                .with_context(|| {
                    format!(
                        "agentd (pid {}) did not exit within {} s",
                        info.pid,
                        STOP_TIMEOUT.as_secs()
                    )
                })?;
            eprintln!("agentctl: agentd (pid {}) stopped", info.pid);
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Status { json } => {
            let info = match connect::connect_existing(&socket).await {
                Ok(client) => client.call::<DaemonInfo>(&Empty {}).await?,
                // Not running is the answer, not a failure of the command:
                // one line, and exit 1 as `systemctl status` does.
                Err(e) => {
                    eprintln!("agentctl: {e:#}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            if json {
                output::print_json(&info)?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(status_text(&info).as_bytes())?;
                out.flush()?;
            }
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Log { follow } => {
            let path = connect::daemon_log_path()?;
            if !path.is_file() {
                anyhow::bail!(
                    "no daemon log at {} (agentctl writes it only for a daemon it started)",
                    path.display()
                );
            }
            if follow {
                let err = std::process::Command::new("tail")
                    .args(["-n", "+1", "-f", "--"])
                    .arg(&path)
                    .exec();
                return Err(err).context("cannot run `tail -f`");
            }
            let text = std::fs::read(&path)
                .with_context(|| format!("cannot read the daemon log {}", path.display()))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&text)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::InstallService { force } => {
            tokio::task::spawn_blocking(move || super::service::install(&socket, force)).await?
        }
    }
}

/// `daemon status`'s line about what the kernel lets agentd enforce.
fn sandbox_text(s: &agentd_proto::SandboxSupport) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let landlock = match s.landlock_abi {
        0 => "no Landlock".to_string(),
        n => format!("Landlock ABI {n}"),
    };
    format!(
        "sandbox:    {landlock}; file system {}, network {}, process limit {}\n",
        yes_no(s.filesystem),
        yes_no(s.network),
        if s.processes {
            "yes"
        } else {
            "no (root is exempt from RLIMIT_NPROC)"
        },
    )
}

/// `daemon status`'s human text.
fn status_text(info: &InfoResult) -> String {
    let uptime = output::ms_since(&info.started_at)
        .map(|ms| format!(" (up {})", output::duration(ms)))
        .unwrap_or_default();
    let sandbox = info.sandbox.as_ref().map(sandbox_text).unwrap_or_default();
    format!(
        "agentd {} (protocol {}) is running, pid {}\n\
         socket:     {}\n\
         state dir:  {}\n\
         started:    {}{uptime}\n\
         jobs:       {} running, {}{} queued, {} in all\n{sandbox}",
        info.version,
        info.protocol_version,
        info.pid,
        info.socket,
        info.state_dir,
        info.started_at,
        info.jobs.running,
        match info.jobs.paused {
            0 => String::new(),
            n => format!("{n} paused, "),
        },
        info.jobs.queued,
        info.jobs.total,
    )
}

/// A process's exit, watched through a pidfd (readable once the process
/// has exited), so `daemon stop` returns only when the daemon is gone.
struct ProcessExit(Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>);

impl ProcessExit {
    /// Opens a pidfd for `pid`. When that fails (the process is already
    /// gone, or the kernel has no pidfds) [`ProcessExit::wait`] returns at
    /// once.
    fn watch(pid: u32) -> ProcessExit {
        let fd = rustix::process::Pid::from_raw(pid as i32)
            .and_then(|pid| {
                rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
            })
            // SAFETY: the AsyncFd owns the OwnedFd, which stays open and
            // names the same pidfd until the AsyncFd is dropped.
            .and_then(|fd| unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok());
        ProcessExit(fd)
    }

    /// Resolves when the process has exited.
    async fn wait(&self) {
        if let Some(fd) = &self.0 {
            let _ = fd.readable().await;
        }
    }
}
