//! Running one Slurm command (`sbatch`, `squeue`, `scontrol`, `scancel`)
//! as a child process of agentd, without blocking the runtime: its output
//! collected, a deadline so a hung controller cannot stall the caller, and
//! `SLURM_CONF` from the config (Slurm's clients retry for up to a minute
//! when they find no configuration).

use super::config::SlurmConfig;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long one `squeue`, `scontrol` or `scancel` may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `sbatch` may take (the controller may be busy).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Output {
    /// Exit status 0.
    pub success: bool,
    /// Its stdout, lossy UTF-8.
    pub stdout: String,
    /// Its stderr, lossy UTF-8, trimmed.
    pub stderr: String,
}

/// Why a command gave no output.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program is not installed (or not where `[slurm] bin_dir` says).
    #[error(
        "{0} was not found: install Slurm's client commands (Debian: slurm-client) or set [slurm] bin_dir in agentd's config"
    )]
    Missing(String),
    /// It could not be started or waited for.
    #[error("cannot run {0}: {1}")]
    Io(String, std::io::Error),
    /// It did not finish in time (and was killed).
    #[error("{0} did not answer within {1} s; is slurmctld up and SLURM_CONF right?")]
    Timeout(String, u64),
}

/// Runs Slurm command `name` with `args`, writing `stdin` to it (when
/// given), within `timeout`.
///
/// Errors: [`CommandError`].
pub async fn run(
    config: &SlurmConfig,
    name: &str,
    args: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, CommandError> {
    let program = config.program(name);
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(conf) = &config.conf {
        cmd.env("SLURM_CONF", conf);
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CommandError::Missing(program.display().to_string()),
        _ => CommandError::Io(name.to_string(), e),
    })?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes)
            .await
            .map_err(|e| CommandError::Io(name.to_string(), e))?;
        drop(pipe);
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
        Ok(Err(e)) => Err(CommandError::Io(name.to_string(), e)),
        Err(_) => Err(CommandError::Timeout(name.to_string(), timeout.as_secs())),
    }
}
