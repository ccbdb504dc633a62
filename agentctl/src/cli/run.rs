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
use agentd_proto::{Executor, Limits, Sandbox, SandboxMode, SlurmOptions};
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
  agentctl run --wait -- 'cd sub && ./build.sh'; echo \"exit $?\"
  agentctl run --sandbox workspace-write --no-network --memory 2G --cpu-time 10m -- make test
  agentctl run --on slurm --partition gpu --cpus 8 --mem 32G --gpus 1 --time 2h -- python train.py
  b=$(agentctl run -- make build); agentctl run --after $b -- make test
  agentctl run --group gpu -- python train.py";

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
    /// Start only after job ID succeeded (repeatable, or comma-separated);
    /// if it fails, is killed or lost, this job ends failed without running
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub after: Vec<String>,
    /// Run in group GROUP, whose own limit (`agentctl group set GROUP
    /// --parallel N`) caps how many of its jobs run at once [default: default]
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
    /// Stream the job's output instead of printing its id, then say how it
    /// ended and exit as `agentctl wait` does (Ctrl-C leaves it running)
    #[arg(long)]
    pub wait: bool,
    /// Confine the job's writes (docs/sandbox.md): `workspace-write` (only
    /// the cwd, --writable paths and a private temp dir), `read-only` (only
    /// the temp dir) or `none` [default: none]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub sandbox: Option<SandboxMode>,
    /// With --sandbox workspace-write: also let the job write PATH and
    /// everything under it (repeatable)
    #[arg(long, value_name = "PATH")]
    pub writable: Vec<PathBuf>,
    /// No TCP, UDP or raw sockets for the job and its children, to any
    /// address, loopback included (Unix sockets still work)
    #[arg(long)]
    pub no_network: bool,
    /// Address-space limit per process (RLIMIT_AS), e.g. 2G, 512M, 4096
    /// (bytes); K, M, G, T are powers of 1024
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// CPU-time limit per process (RLIMIT_CPU), e.g. 10m, 90s, 1h, 30
    /// (seconds): SIGXCPU ends the job `killed`
    #[arg(long, value_name = "TIME", value_parser = parse_cpu_time)]
    pub cpu_time: Option<u64>,
    /// Most processes of your user while the job runs (RLIMIT_NPROC counts
    /// all of them, not only the job's; agentd running as root refuses it)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_procs: Option<u64>,
    /// Most open files per process (RLIMIT_NOFILE)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_files: Option<u64>,
    /// Where the job runs: `local` or `slurm` (docs/slurm.md) [default:
    /// agentd's config `executor`, else local]
    #[arg(long = "on", value_name = "EXECUTOR", value_parser = parse_executor)]
    pub on: Option<Executor>,
    /// Slurm partition (`sbatch --partition`; needs --on slurm)
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// CPUs for the Slurm job (`--cpus-per-task`; needs --on slurm)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub cpus: Option<u32>,
    /// Memory for the Slurm job, e.g. 4G (`--mem`, whole MiB; needs --on slurm)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub mem: Option<u64>,
    /// GPUs for the Slurm job (`--gres=gpu:N`; needs --on slurm)
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// Slurm time limit, e.g. 2h, 90m, 30 (seconds), rounded up to whole
    /// minutes by Slurm (`--time`; needs --on slurm) [default: --timeout]
    #[arg(long, value_name = "TIME", value_parser = parse_cpu_time)]
    pub time: Option<u64>,
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

/// Parses an executor name (`local`, `slurm`).
fn parse_executor(s: &str) -> Result<Executor, String> {
    s.parse()
}

/// The `slurm` options the flags ask for (`None` for none).
///
/// Errors: a Slurm flag without `--on slurm`.
fn slurm_options(args: &RunArgs) -> anyhow::Result<Option<SlurmOptions>> {
    let opts = SlurmOptions {
        partition: args.partition.clone(),
        time_limit_secs: args.time,
        cpus: args.cpus,
        mem_bytes: args.mem,
        gpus: args.gpus,
        extra_args: None,
    };
    if opts == SlurmOptions::default() {
        return Ok(None);
    }
    if args.on != Some(Executor::Slurm) {
        bail!("--partition, --cpus, --mem, --gpus and --time are for Slurm jobs: add --on slurm");
    }
    Ok(Some(opts))
}

/// Parses a sandbox mode name.
fn parse_mode(s: &str) -> Result<SandboxMode, String> {
    s.parse()
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024;
/// an optional `B`/`iB` after it), e.g. `2G`, `1.5G`, `512MiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("expected a size such as 2G, 512M or 1048576 (bytes), got {s:?}");
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let bytes = n * mult as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Parses a CPU time: seconds, or a number with s, m or h, e.g. `10m`.
pub fn parse_cpu_time(s: &str) -> Result<u64, String> {
    let bad = || format!("expected a time such as 10m, 90s, 1h or 30 (seconds), got {s:?}");
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        _ => (t, 1.0),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = (n * mult).ceil();
    if !(secs >= 1.0 && secs < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(secs as u64)
}

/// The `sandbox` and `limits` the options ask for (`None` for none).
///
/// Errors: --writable without --sandbox workspace-write; a path that is
/// not UTF-8.
fn sandbox_and_limits(args: &RunArgs) -> anyhow::Result<(Option<Sandbox>, Option<Limits>)> {
    let mode = args.sandbox.unwrap_or_default();
    if !args.writable.is_empty() && mode != SandboxMode::WorkspaceWrite {
        bail!("--writable needs --sandbox workspace-write");
    }
    let writable = args
        .writable
        .iter()
        .map(|p| {
            let abs = std::path::absolute(p)
                .with_context(|| format!("cannot resolve --writable {}", p.display()))?;
            abs.into_os_string()
                .into_string()
                .map_err(|p| anyhow::anyhow!("--writable {p:?} is not valid UTF-8"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sandbox = (args.sandbox.is_some() || args.no_network).then(|| Sandbox {
        mode,
        writable,
        network: args.no_network.then_some(false),
    });
    let limits = Limits {
        memory_bytes: args.memory,
        cpu_secs: args.cpu_time,
        processes: args.max_procs,
        open_files: args.max_files,
    };
    Ok((sandbox, (!limits.is_empty()).then_some(limits)))
}

/// The environment to send: this process's variables (those that are
/// valid UTF-8; others are left out) unless `--no-env`, then `--env`.
fn environment(args: &RunArgs) -> BTreeMap<String, String> {
    let mut env = if args.no_env {
        BTreeMap::new()
    } else {
        caller_environment()
    };
    env.extend(args.env.iter().cloned());
    env
}

/// This process's environment variables that are valid UTF-8 (others are
/// left out).
pub fn caller_environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
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
    let (sandbox, limits) = sandbox_and_limits(&args)?;
    let params = SubmitParams {
        command: args.command.join(" "),
        cwd: Some(working_dir(&args)?),
        env: Some(environment(&args)),
        timeout_secs: args.timeout,
        session: args.session.clone(),
        label: args.label.clone(),
        tail_bytes: None,
        sandbox,
        limits,
        executor: args.on,
        slurm: slurm_options(&args)?,
        after: (!args.after.is_empty()).then(|| args.after.clone()),
        group: args.group.clone(),
    };
    submit_and_report(global, &params, args.wait).await
}

/// Submits `params` and prints the new job's short id; with `wait`,
/// follows it as `run --wait` does (shared with `agentctl restart`).
///
/// Errors: no daemon; the daemon refused the job.
pub async fn submit_and_report(
    global: &GlobalOpts,
    params: &SubmitParams,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let socket = global.socket_path();
    let client = connect::connect(&socket).await?;
    // Not re-issued when agentd goes away: the job might be submitted twice.
    let job = client.call::<JobSubmit>(params).await?;
    if !wait {
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

    #[test]
    fn sizes_and_times_read_as_people_write_them() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("2X").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(parse_cpu_time("10m"), Ok(600));
        assert_eq!(parse_cpu_time("90s"), Ok(90));
        assert_eq!(parse_cpu_time("1h"), Ok(3600));
        assert_eq!(parse_cpu_time("30"), Ok(30));
        assert!(parse_cpu_time("0").is_err());
        assert!(parse_cpu_time("ten").is_err());
    }
}
