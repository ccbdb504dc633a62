//! Command-line flags, environment variables and the optional config file,
//! resolved into one [`Config`] (README.md, "Where things live").

use crate::supervisor::cap;
use agentd_proto::paths;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `agentd`'s command line. With no subcommand it runs the daemon in the
/// foreground.
#[derive(Debug, clap::Parser)]
#[command(
    name = "agentd",
    version,
    about = "The agentd daemon: runs and supervises background jobs for agentctl and LLM agents"
)]
pub struct Args {
    /// Socket to listen on [default: $XDG_RUNTIME_DIR/agentd/agentd.sock, or /tmp/agentd-$UID/agentd.sock]
    #[arg(long, env = paths::SOCKET_ENV, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Directory for the job database and job output [default: $XDG_STATE_HOME/agentd]
    #[arg(long, env = paths::STATE_DIR_ENV, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Config file (TOML) [default: $XDG_CONFIG_HOME/agentd/config.toml, if it exists]
    #[arg(long, env = "AGENTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A subcommand; none runs the daemon.
    #[command(subcommand)]
    pub command: Option<Subcommand>,
}

/// `agentd`'s subcommands. None is for people: the daemon runs with none.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Fork job shims for agentd (started by agentd only; see
    /// docs/survival.md)
    #[command(hide = true)]
    Spawner,
}

/// The config file's contents. Every key is optional.
///
/// ```toml
/// # at most this many jobs run at once; the rest wait, first in first out
/// max_running = 4
/// # a connection that starts a request line and does not finish it within
/// # this many seconds is closed
/// torn_request_timeout_secs = 30
///
/// [output]
/// # output kept per job, in bytes; past it the head and the newest tail
/// # are kept and the middle dropped; 0 keeps everything
/// max_bytes = 1073741824
///
/// [retention]
/// max_finished_jobs = 10000       # 0: keep every finished job
/// max_age_days = 30               # 0: never remove for age
/// max_pending_per_session = 10000 # 0: no cap on unacknowledged results
///
/// # where jobs run unless job.submit says: "local" (default) or "slurm"
/// executor = "local"
///
/// [slurm]                         # docs/slurm.md
/// partition = "debug"             # default --partition
/// extra_args = ["--qos=normal"]   # added to every sbatch
/// poll_interval_ms = 500          # squeue while Slurm jobs are live
/// bin_dir = "/usr/bin"            # where sbatch, squeue, scontrol, scancel are
/// conf = "/etc/slurm/slurm.conf"  # SLURM_CONF for those commands
/// # at most one job of group `gpu` runs at once (`job.group_set` overrides)
/// [groups.gpu]
/// max_running = 1
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// At most this many jobs run at once (default: unlimited).
    pub max_running: Option<usize>,
    /// Seconds a begun request line may take to finish (default 30).
    pub torn_request_timeout_secs: Option<f64>,
    /// `[output]`: what is kept of each job's output.
    pub output: Option<OutputSection>,
    /// What agentd keeps of finished jobs (see [`Retention`]).
    pub retention: Option<RetentionFile>,
    /// Where jobs run when `job.submit` does not say: `local` or `slurm`.
    pub executor: Option<agentd_proto::Executor>,
    /// `[slurm]`: the Slurm executor (docs/slurm.md).
    pub slurm: Option<crate::executor::slurm::config::SlurmFile>,
    /// `[groups.NAME]`: per-group settings, by group name.
    pub groups: Option<std::collections::BTreeMap<String, GroupFile>>,
}

/// The config file's `[groups.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    /// At most this many of the group's jobs run at once (0 or absent: no
    /// limit of the group's own).
    pub max_running: Option<u64>,
}

/// The config file's `[retention]` table; every key optional, 0 meaning
/// unlimited.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    /// Finished jobs kept (default [`DEFAULT_MAX_FINISHED_JOBS`]).
    pub max_finished_jobs: Option<u64>,
    /// Days a finished job is kept (default [`DEFAULT_MAX_AGE_DAYS`]).
    pub max_age_days: Option<u64>,
    /// Pending notifications per session (default
    /// [`DEFAULT_MAX_PENDING_PER_SESSION`]).
    pub max_pending_per_session: Option<u64>,
}

/// Default `[retention] max_finished_jobs` (DESIGN.md): a few days of an
/// agent's heavy use, about 10 MB of database.
pub const DEFAULT_MAX_FINISHED_JOBS: u64 = 10_000;
/// Default `[retention] max_age_days`.
pub const DEFAULT_MAX_AGE_DAYS: u64 = 30;
/// Default `[retention] max_pending_per_session`: far more results than a
/// model could read, so only a session nobody reads reaches it.
pub const DEFAULT_MAX_PENDING_PER_SESSION: u64 = 10_000;

/// What agentd keeps, resolved (`None` is unlimited). Applied by
/// [`crate::retention`] as jobs finish, at start and hourly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most the newest N finished jobs whose notification is not
    /// pending.
    pub max_finished_jobs: Option<usize>,
    /// Remove finished jobs (notification not pending) that finished
    /// longer ago than this.
    pub max_age: Option<Duration>,
    /// At most this many pending notifications per session; the oldest
    /// past it are dropped (and counted for the session's next peek).
    pub max_pending_per_session: Option<usize>,
}

impl Retention {
    /// From the file's table, defaults filled in, 0 read as unlimited.
    pub fn from_file(f: Option<&RetentionFile>) -> Retention {
        let pick = |v: Option<u64>, default: u64| Some(v.unwrap_or(default)).filter(|&n| n > 0);
        let f = f.unwrap_or(&RetentionFile {
            max_finished_jobs: None,
            max_age_days: None,
            max_pending_per_session: None,
        });
        Retention {
            max_finished_jobs: pick(f.max_finished_jobs, DEFAULT_MAX_FINISHED_JOBS)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_age: pick(f.max_age_days, DEFAULT_MAX_AGE_DAYS)
                .map(|d| Duration::from_secs(d.saturating_mul(86_400))),
            max_pending_per_session: pick(
                f.max_pending_per_session,
                DEFAULT_MAX_PENDING_PER_SESSION,
            )
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::from_file(None)
    }
}

/// The config file's `[output]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Bytes kept per job (default 1 GiB; 0 keeps everything).
    pub max_bytes: Option<u64>,
}

/// Default time a begun request line has to arrive whole: 30 s.
pub const DEFAULT_TORN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the daemon needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Unix socket path.
    pub socket: PathBuf,
    /// The state directory (database, job output, lock file).
    pub state_dir: PathBuf,
    /// At most this many jobs run at once; `None` is unlimited.
    pub max_running: Option<usize>,
    /// Time a begun request line has to arrive whole before the connection
    /// is closed.
    pub torn_request_timeout: Duration,
    /// Output kept per job, in bytes (`[output] max_bytes`; 0 keeps
    /// everything): past it the job's shim drops the middle of the log
    /// ([`crate::supervisor::cap`]).
    pub output_max_bytes: u64,
    /// What agentd keeps of finished jobs (`[retention]`).
    pub retention: Retention,
    /// Per-group `max_running` from `[groups.NAME]` (groups without a
    /// limit left out); `job.group_set` values stored in the database take
    /// precedence.
    pub group_limits: std::collections::BTreeMap<String, usize>,
    /// The program run as the spawner that forks each job's shim (`PROGRAM
    /// spawner`, see [`crate::spawner`]): `/proc/self/exe`, i.e. this very
    /// agentd build, even when its file has been replaced by an upgrade
    /// since it started.
    pub spawner_program: PathBuf,
    /// Where jobs run when `job.submit` does not say (`executor`).
    pub default_executor: agentd_proto::Executor,
    /// The Slurm executor's settings (`[slurm]`).
    pub slurm: crate::executor::slurm::config::SlurmConfig,
}

impl Config {
    /// Resolves flags, environment and config file.
    ///
    /// Errors: no home directory to derive the state dir from; a config file
    /// named explicitly that cannot be read; a config file that is not valid
    /// TOML or has unknown keys.
    pub fn from_args(args: Args) -> anyhow::Result<Config> {
        let socket = args.socket.unwrap_or_else(paths::default_socket_path);
        let state_dir = match args.state_dir {
            Some(dir) => dir,
            None => paths::default_state_dir().context(
                "cannot find the home directory to place the state dir; set AGENTD_STATE_DIR",
            )?,
        };
        let file = match args.config {
            Some(path) => load_file(&path, true)?,
            None => match directories::BaseDirs::new() {
                Some(base) => load_file(&base.config_dir().join("agentd/config.toml"), false)?,
                None => FileConfig::default(),
            },
        };
        let torn_request_timeout = match file.torn_request_timeout_secs {
            None => DEFAULT_TORN_REQUEST_TIMEOUT,
            Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => Duration::from_secs_f64(t),
            Some(t) => anyhow::bail!(
                "torn_request_timeout_secs must be a number of seconds in (0, 86400], got {t}"
            ),
        };
        let output_max_bytes = match file.output.and_then(|o| o.max_bytes) {
            None => cap::DEFAULT_MAX_BYTES,
            Some(n) if n == 0 || n >= cap::MIN_MAX_BYTES => n,
            Some(n) => anyhow::bail!(
                "[output] max_bytes must be 0 (keep everything) or at least {} (64 KiB), got {n}",
                cap::MIN_MAX_BYTES
            ),
        };
        let mut group_limits = std::collections::BTreeMap::new();
        for (name, g) in file.groups.iter().flatten() {
            if !crate::rpc::params::is_name(name) {
                anyhow::bail!(
                    "[groups.{name}]: a group name is 1-128 characters of A-Z a-z 0-9 . _ -"
                );
            }
            if let Some(n) = g.max_running.filter(|&n| n > 0) {
                group_limits.insert(name.clone(), usize::try_from(n).unwrap_or(usize::MAX));
            }
        }
        Ok(Config {
            group_limits,
            output_max_bytes,
            socket: absolute(socket)?,
            state_dir: absolute(state_dir)?,
            max_running: file.max_running.filter(|&n| n > 0),
            torn_request_timeout,
            retention: Retention::from_file(file.retention.as_ref()),
            spawner_program: PathBuf::from("/proc/self/exe"),
            default_executor: file.executor.unwrap_or_default(),
            slurm: crate::executor::slurm::config::SlurmConfig::from_file(file.slurm)?,
        })
    }
}

fn load_file(path: &Path, required: bool) -> anyhow::Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileConfig::default());
        }
        Err(e) => return Err(e).with_context(|| format!("reading config file {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

fn absolute(path: PathBuf) -> anyhow::Result<PathBuf> {
    std::path::absolute(&path).with_context(|| format!("resolving {}", path.display()))
}
