//! `agentctl run`: submits a shell command as a job (`job.submit`) and
//! prints its short id, so that `id=$(agentctl run -- make)` works. With
//! `--wait` it runs the job in the foreground's style: the job's output on
//! stdout as it comes, then its end on stderr and its exit code.
//!
//! The job gets this shell's environment (with `--env` laid over it) and
//! working directory, so it behaves as if typed here.

use super::reconnect::Reconnecting;
use super::{logs, wait};
use crate::{GlobalOpts, connect};
use agentd_proto::methods::{JobSubmit, SubmitParams};
use anyhow::{Context, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl run -- cargo build --release
  id=$(agentctl run --timeout 600 --label tests -- make test)
  agentctl run --wait -- 'cd sub && ./build.sh'; echo \"exit $?\"";

/// Arguments of `agentctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory to run in (made absolute) [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set a variable for the job, over this shell's environment (repeatable)
    #[arg(long = "env", short = 'e', value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Do not send this shell's environment: the job sees agentd's, plus --env
    #[arg(long)]
    pub no_env: bool,
    /// Kill the job after SECS seconds (SIGTERM, then SIGKILL 5 s later)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// A free-form label shown by `agentctl show`
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// Session whose notification queue gets the job's end [default: default]
    #[arg(long, short = 's', value_name = "NAME")]
    pub session: Option<String>,
    /// Stream the job's output instead of printing its id, then say how it
    /// ended and exit as `agentctl wait` does (Ctrl-C leaves it running)
    #[arg(long)]
    pub wait: bool,
    /// The command, run as `/bin/sh -c 'WORDS…'` (words joined by spaces).
    /// Options go before it: after `--`, or from its first word on, every
    /// word is the command's (`run make -j4`), and an option agentctl does
    /// not know before it is a usage error, never part of the command.
    // No `allow_hyphen_values`: with it clap took an unknown option such
    // as `--timout 5` as the command's first word and ran it (issue 20).
    // `trailing_var_arg` alone makes every word after the first one the
    // command's, hyphens and all.
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Parses `K=V` (the name non-empty, without `=`).
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// The environment to send: this process's variables (those that are
/// valid UTF-8; others are left out) unless `--no-env`, then `--env`.
fn environment(args: &RunArgs) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if !args.no_env {
        for (k, v) in std::env::vars_os() {
            if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                env.insert(k, v);
            }
        }
    }
    env.extend(args.env.iter().cloned());
    env
}

/// The job's working directory as an absolute UTF-8 path.
fn working_dir(args: &RunArgs) -> anyhow::Result<String> {
    let dir = match &args.cwd {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("cannot resolve --cwd {}", dir.display()))?,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    match dir.into_os_string().into_string() {
        Ok(dir) => Ok(dir),
        Err(dir) => bail!("the directory {dir:?} is not valid UTF-8; agentd needs UTF-8 paths"),
    }
}

/// Exit code of `run --wait` interrupted by Ctrl-C: 130, as a shell
/// reports a command ended by SIGINT. The job itself keeps running.
pub const INTERRUPTED: u8 = 130;

/// Submits the job and prints its short id; with `--wait`, instead streams
/// its output to stdout as it comes (as `logs -f`), then prints how it
/// ended on stderr (as `wait`) and exits with its code. Ctrl-C stops the
/// waiting, not the job, and says how to follow it.
///
/// Errors: no daemon; the daemon refused the job (empty command, bad cwd,
/// bad session name, …: its message says which).
pub async fn run(global: &GlobalOpts, args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.command.iter().all(|w| w.trim().is_empty()) {
        bail!("the command is empty");
    }
    let params = SubmitParams {
        command: args.command.join(" "),
        cwd: Some(working_dir(&args)?),
        env: Some(environment(&args)),
        timeout_secs: args.timeout,
        session: args.session.clone(),
        label: args.label.clone(),
        tail_bytes: None,
    };
    let socket = global.socket_path();
    let client = connect::connect(&socket).await?;
    // Not re-issued when agentd goes away: the job might be submitted twice.
    let job = client.call::<JobSubmit>(&params).await?;
    if !args.wait {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", job.short_id)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut client = Reconnecting::new(socket, client);
    let short = job.short_id.clone();
    let foreground = async {
        logs::follow(&mut client, &job.id, 0, &mut std::io::stdout().lock()).await?;
        wait::wait_for(&mut client, vec![job], None, false).await
    };
    tokio::select! {
        code = foreground => Ok(ExitCode::from(code?)),
        Ok(()) = tokio::signal::ctrl_c() => {
            eprintln!(
                "\nagentctl: stopped waiting; job {short} keeps running in agentd \
                 (`agentctl logs -f {short}` follows it, `agentctl kill {short}` ends it)"
            );
            Ok(ExitCode::from(INTERRUPTED))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_need_a_name() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_env("A="), Ok(("A".into(), String::new())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("A").is_err());
    }
}
