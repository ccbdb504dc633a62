//! The `[slurm]` config table and what it resolves to: the commands agentd
//! runs (`sbatch`, `squeue`, `scontrol`, `scancel`), the `SLURM_CONF` they
//! get, the default partition and arguments, and the poll interval.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Default time between two `squeue` calls while Slurm jobs are live: half
/// a second, so a job's end reaches its notification in about a quarter
/// second on average past Slurm's own delay (docs/benchmarks.md).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// `[slurm]` in the config file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmFile {
    /// Default `--partition` (a job's own `slurm.partition` wins).
    pub partition: Option<String>,
    /// Arguments added to every `sbatch`, before a job's own.
    pub extra_args: Option<Vec<String>>,
    /// Milliseconds between polls while Slurm jobs are live (10..=60000).
    pub poll_interval_ms: Option<u64>,
    /// Directory holding `sbatch`, `squeue`, `scontrol` and `scancel`
    /// (default: found on `PATH`; environment `AGENTD_SLURM_BIN_DIR`).
    pub bin_dir: Option<PathBuf>,
    /// `SLURM_CONF` for those commands (default: agentd's own
    /// `SLURM_CONF`, else Slurm's compiled-in path).
    pub conf: Option<PathBuf>,
}

/// The resolved `[slurm]` settings.
#[derive(Clone, Debug, Default)]
pub struct SlurmConfig {
    /// Default partition.
    pub partition: Option<String>,
    /// Arguments for every `sbatch`.
    pub extra_args: Vec<String>,
    /// Time between polls while Slurm jobs are live.
    pub poll_interval: Duration,
    /// Where the Slurm commands are; `None`: looked up on `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// `SLURM_CONF` given to the Slurm commands; `None`: inherited.
    pub conf: Option<PathBuf>,
}

impl SlurmConfig {
    /// Resolves the table, with `AGENTD_SLURM_BIN_DIR` when the file does
    /// not name a `bin_dir`.
    ///
    /// Errors: `poll_interval_ms` out of range.
    pub fn from_file(f: Option<SlurmFile>) -> anyhow::Result<SlurmConfig> {
        let f = f.unwrap_or_default();
        let poll_interval = match f.poll_interval_ms {
            None => DEFAULT_POLL_INTERVAL,
            Some(ms @ 10..=60_000) => Duration::from_millis(ms),
            Some(ms) => {
                anyhow::bail!("[slurm] poll_interval_ms must be in 10..=60000, got {ms}")
            }
        };
        let bin_dir = f.bin_dir.or_else(|| {
            std::env::var_os("AGENTD_SLURM_BIN_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        });
        Ok(SlurmConfig {
            partition: f.partition,
            extra_args: f.extra_args.unwrap_or_default(),
            poll_interval,
            bin_dir,
            conf: f.conf,
        })
    }

    /// The path (or bare name, for a `PATH` lookup) of Slurm command
    /// `name`.
    pub fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// Where `name` is, if it can be run: the file in `bin_dir`, or the
    /// first on `PATH`. Blocking (reads directories).
    pub fn locate(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let runnable = |p: &std::path::Path| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        match &self.bin_dir {
            Some(dir) => Some(dir.join(name)).filter(|p| runnable(p)),
            None => std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(name))
                    .find(|p| runnable(p))
            }),
        }
    }
}
