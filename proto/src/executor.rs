//! Where a job runs (DESIGN.md, "Jobs on a cluster"): `job.submit`
//! `executor` (`"local"` or `"slurm"`) and, for Slurm, the resources asked
//! of it ([`SlurmOptions`]). docs/slurm.md explains them to users.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The executor of a job: how it is started, watched, signalled and
/// re-adopted after a restart of agentd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// A shim process on the daemon's machine (the default).
    #[default]
    Local,
    /// A Slurm batch job submitted with `sbatch`.
    Slurm,
}

impl Executor {
    /// The wire name: `local` or `slurm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Executor::Local => "local",
            Executor::Slurm => "slurm",
        }
    }
}

impl fmt::Display for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Executor {
    type Err = String;

    /// Parses a wire name; the error names the valid ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Executor::Local),
            "slurm" => Ok(Executor::Slurm),
            _ => Err(format!("unknown executor {s:?} (expected local or slurm)")),
        }
    }
}

/// What a Slurm job asks of the cluster (`job.submit` `slurm`). Every field
/// is optional; absent ones take the `[slurm]` config defaults, then
/// Slurm's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// `sbatch --partition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `sbatch --time`, in seconds; Slurm counts whole minutes, so it is
    /// rounded up to the next minute. Default: the job's `timeout_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_secs: Option<u64>,
    /// `sbatch --cpus-per-task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// `sbatch --mem`, in bytes (rounded up to whole MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bytes: Option<u64>,
    /// `sbatch --gres=gpu:N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// More `sbatch` arguments, after the config's `[slurm] extra_args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<Vec<String>>,
}
