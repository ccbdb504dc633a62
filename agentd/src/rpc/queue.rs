//! Queue control (DESIGN.md, "Queue control"): `job.pause`, `job.resume`,
//! `job.group_set`, `job.group_list`. Dependencies (`job.submit` `after`)
//! are taken at submit ([`super::job::submit`]) and followed by the job
//! table ([`crate::runqueue`]).
//!
//! Pausing a started local job stops its process group (SIGSTOP); it keeps its
//! slot, its duration counts wall time, and its timeout clock keeps
//! running (a paused job can time out: it is then continued so that it
//! gets the SIGTERM). Pausing a job that has not started holds it out of
//! the queue. Both are recorded, so a paused job stays paused across a
//! restart of agentd (its stopped processes wait under their shim). A job
//! handed to Slurm cannot be paused (-32602): Slurm's `scontrol suspend`
//! is for operators.

use super::{job::as_now, params};
use crate::daemon::Daemon;
use crate::lookup;
use crate::supervisor::{self, group};
use agentd_proto::methods::{Empty, Group, GroupListResult, GroupSetParams, IdParams};
use agentd_proto::{Job, JobState, RpcError};
use rustix::process::Signal;
use std::sync::Arc;

/// `job.pause`: SIGSTOP to a running job's process group, or holds a
/// queued job; state `paused`. A paused or finished job is returned
/// unchanged.
pub async fn pause(d: &Arc<Daemon>, p: IdParams) -> Result<Job, RpcError> {
    let full = lookup::resolve(d, &p.id).await?;
    let changed = 'changed: {
        let mut jobs = d.shared.jobs.lock().expect("job table poisoned");
        // Not in the table: finished.
        let Some(idx) = jobs.by_id(&full) else {
            break 'changed None;
        };
        let entry = jobs.entry(idx);
        if entry.holds_slot && entry.job.executor != agentd_proto::Executor::Local {
            return Err(RpcError::invalid_params(
                format!(
                    "job {} was handed to {}, and agentd cannot pause a job there (Slurm's `scontrol suspend` needs an operator); kill it or let it run",
                    entry.job.short_id, entry.job.executor
                ),
                None,
            ));
        }
        match entry.job.state {
            JobState::Queued => jobs.hold(idx).then(|| jobs.entry(idx).job.id.clone()),
            JobState::Running => {
                let entry = jobs.entry_mut(idx);
                // Without a pid the job is being spawned; its start sends
                // the SIGSTOP once the pid is known.
                if let Some(pid) = entry.job.pid {
                    group::signal(pid, Signal::STOP);
                }
                entry.job.state = JobState::Paused;
                Some(entry.job.id.clone())
            }
            _ => None,
        }
    };
    if let Some(id) = changed {
        record(d, id, JobState::Paused).await?;
    }
    as_now(d, &full).await
}

/// `job.resume`: SIGCONT to a paused job's process group (state
/// `running`), or releases a held job into the queue (state `queued`,
/// started at once if a slot is free). Any other job is returned
/// unchanged.
pub async fn resume(d: &Arc<Daemon>, p: IdParams) -> Result<Job, RpcError> {
    let full = lookup::resolve(d, &p.id).await?;
    let changed = 'changed: {
        let mut jobs = d.shared.jobs.lock().expect("job table poisoned");
        // Not in the table: finished.
        let Some(idx) = jobs.by_id(&full) else {
            break 'changed None;
        };
        let entry = jobs.entry(idx);
        match (entry.job.state, entry.holds_slot) {
            (JobState::Paused, true) => {
                let entry = jobs.entry_mut(idx);
                if let Some(pid) = entry.job.pid {
                    group::signal(pid, Signal::CONT);
                }
                entry.job.state = JobState::Running;
                Some((entry.job.id.clone(), JobState::Running))
            }
            (JobState::Paused, false) => jobs
                .release(idx)
                .then(|| (jobs.entry(idx).job.id.clone(), JobState::Queued)),
            _ => None,
        }
    };
    if let Some((id, state)) = changed {
        record(d, id, state).await?;
        if state == JobState::Queued {
            supervisor::start_queued(d).await;
        }
    }
    as_now(d, &full).await
}

/// Makes a pause or resume durable.
///
/// Errors: -32603 when the commit failed (the change holds in memory).
async fn record(d: &Daemon, id: String, state: JobState) -> Result<(), RpcError> {
    d.store.set_state(id, state).await.map_err(|e| {
        RpcError::internal(format!(
            "the job is {state} but agentd could not record it; a restart of agentd would forget it: {e}"
        ))
    })
}

/// `job.group_set`: sets (and stores) a group's `max_running`; `null` or
/// 0 removes its own limit. Starts what the new limit lets start.
///
/// Errors: -32602 for a bad group name; -32603 when it cannot be stored.
pub async fn group_set(d: &Arc<Daemon>, p: GroupSetParams) -> Result<Group, RpcError> {
    let name = params::group(Some(p.group))?;
    let max = p
        .max_running
        .filter(|&n| n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    d.store
        .set_group_limit(name.clone(), max)
        .await
        .map_err(|e| RpcError::internal(format!("cannot store the group's limit: {e}")))?;
    d.shared
        .jobs
        .lock()
        .expect("job table poisoned")
        .set_group_limit(&name, max);
    supervisor::start_queued(d).await;
    Ok(find_group(d, &name))
}

/// `job.group_list`: `default`, every group with a limit, every group with
/// a live job.
pub async fn group_list(d: &Arc<Daemon>, _: Empty) -> Result<GroupListResult, RpcError> {
    let groups = d.shared.jobs.lock().expect("job table poisoned").groups();
    Ok(GroupListResult { groups })
}

fn find_group(d: &Daemon, name: &str) -> Group {
    d.shared
        .jobs
        .lock()
        .expect("job table poisoned")
        .groups()
        .into_iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| Group {
            name: name.to_string(),
            max_running: None,
            running: 0,
            queued: 0,
        })
}
