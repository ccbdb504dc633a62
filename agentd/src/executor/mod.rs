//! Executors: how a job is started, watched, signalled and re-adopted
//! after a restart of agentd (DESIGN.md, "Jobs on a cluster").
//!
//! - [`local`]: a shim process on this machine ([`crate::supervisor`]),
//!   the default and the fast path, unchanged by this layer;
//! - [`slurm`]: a Slurm batch job, submitted with `sbatch`, watched with
//!   `squeue`/`scontrol` while any is live, cancelled with `scancel`.
//!
//! The job's `executor` is chosen at submit and stored with it, so a
//! restarted agentd hands each running job back to the executor that
//! started it. Both end a job the same way ([`crate::supervisor::finish`]):
//! one durable end, one notification.

pub mod local;
pub mod slurm;

use crate::daemon::Daemon;
use crate::state::JobIdx;
use crate::supervisor::Control;
use agentd_proto::{Executor, Job};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Starts a job just taken off the queue with its executor: spawns its
/// shim (`local`) or submits it to Slurm (`slurm`). Returns once the job
/// runs (or was submitted), or has been recorded as failed to start.
pub async fn start(
    daemon: &Arc<Daemon>,
    idx: JobIdx,
    job: Job,
    env: Option<BTreeMap<String, String>>,
    control: mpsc::UnboundedReceiver<Control>,
) {
    match job.executor {
        Executor::Local => local::start(daemon, idx, job, env, control).await,
        Executor::Slurm => slurm::start(daemon, idx, job, env, control).await,
    }
}

/// Checks what only one executor accepts: `slurm` options need the
/// `slurm` executor; `sandbox` and `limits` are applied by the local shim
/// and are refused for Slurm jobs (the cluster's own limits apply there).
///
/// Errors: the message and the field it names.
pub fn check_submit(
    executor: Executor,
    p: &agentd_proto::methods::SubmitParams,
) -> Result<(), (String, &'static str)> {
    match executor {
        Executor::Local if p.slurm.is_some() => {
            Err(("slurm options need executor \"slurm\"".into(), "slurm"))
        }
        Executor::Local => Ok(()),
        Executor::Slurm => {
            if p.sandbox.is_some() || p.limits.is_some() {
                return Err((
                    "sandbox and limits apply to local jobs; a Slurm job gets the cluster's limits (slurm.cpus, slurm.mem_bytes, slurm.time_limit_secs)".into(),
                    if p.sandbox.is_some() { "sandbox" } else { "limits" },
                ));
            }
            p.slurm.as_ref().map_or(Ok(()), slurm::check_options)
        }
    }
}
