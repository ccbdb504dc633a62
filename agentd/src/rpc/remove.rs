//! `job.remove` and `job.prune`: removing finished jobs on request, with
//! their notification and output ([`crate::retention::remove`]).

use super::params;
use crate::daemon::Daemon;
use crate::{retention, timefmt};
use agentd_proto::methods::{PruneParams, PruneResult, RemoveParams, RemoveResult};
use agentd_proto::{RpcError, codes};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// `job.remove`: every id must name a finished job, else nothing is
/// removed: -32006 for a live one (kill it first), -32001/-32002 for an
/// unknown or ambiguous id.
pub async fn remove(d: &Arc<Daemon>, p: RemoveParams) -> Result<RemoveResult, RpcError> {
    if p.ids.is_empty() {
        return Err(RpcError::invalid_params(
            "ids must name at least one job",
            Some("ids"),
        ));
    }
    let ids = {
        let jobs = d.shared.jobs.lock().expect("job table poisoned");
        let mut ids = Vec::new();
        for id in &p.ids {
            let job = &jobs.entry(jobs.resolve(id)?).job;
            if !job.state.is_finished() {
                return Err(RpcError::new(
                    codes::JOB_NOT_FINISHED,
                    format!(
                        "job {} is {}; kill it first (agentctl kill {}), then remove it",
                        job.short_id, job.state, job.short_id
                    ),
                )
                .with_data(json!({ "id": job.short_id, "state": job.state })));
            }
            if !ids.contains(&job.id) {
                ids.push(job.id.clone());
            }
        }
        ids
    };
    retention::remove(d, ids.clone())
        .await
        .map_err(|e| RpcError::internal(format!("cannot remove the jobs: {e}")))?;
    Ok(RemoveResult { removed: ids })
}

/// `job.prune`: removes the finished jobs that match, oldest first, except
/// the newest `keep_last` of them and those whose notification is still
/// pending. With `dry_run`, only counts.
pub async fn prune(d: &Arc<Daemon>, p: PruneParams) -> Result<PruneResult, RpcError> {
    let session = p.session.map(|s| params::session(Some(s))).transpose()?;
    if let Some(states) = &p.states
        && let Some(live) = states.iter().find(|s| !s.is_finished())
    {
        return Err(RpcError::invalid_params(
            format!("states may name only finished states; {live} jobs are never pruned"),
            Some("states"),
        ));
    }
    let cutoff = match p.older_than_secs {
        Some(s) if !(s.is_finite() && s >= 0.0) => {
            return Err(RpcError::invalid_params(
                format!("older_than_secs must be a number of seconds >= 0, got {s}"),
                Some("older_than_secs"),
            ));
        }
        Some(s) => timefmt::minus_millis(&timefmt::now(), (s * 1000.0) as u64),
        None => None,
    };
    let (victims, bytes) = {
        let jobs = d.shared.jobs.lock().expect("job table poisoned");
        let queues = d.shared.queues.lock().expect("queues poisoned");
        let pending: HashSet<&str> = queues.job_ids().collect();
        let mut keep = p.keep_last.unwrap_or(0);
        let mut victims = Vec::new();
        let mut bytes = 0;
        for job in jobs.oldest_first().rev() {
            if !job.state.is_finished()
                || session.as_deref().is_some_and(|s| job.session != s)
                || p.states.as_ref().is_some_and(|s| !s.contains(&job.state))
            {
                continue;
            }
            if keep > 0 {
                keep -= 1;
                continue;
            }
            let old_enough = cutoff
                .as_deref()
                .is_none_or(|c| job.finished_at.as_deref().is_some_and(|f| f < c));
            if old_enough && !pending.contains(job.id.as_str()) {
                victims.push(job.id.clone());
                bytes += job.output_bytes;
            }
        }
        victims.reverse();
        (victims, bytes)
    };
    let removed = victims.len() as u64;
    if !p.dry_run.unwrap_or(false) {
        retention::remove(d, victims)
            .await
            .map_err(|e| RpcError::internal(format!("cannot remove the jobs: {e}")))?;
    }
    Ok(PruneResult {
        removed,
        bytes_freed: bytes,
    })
}
