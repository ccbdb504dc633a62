//! `job.remove` and `job.prune`: removing finished jobs on request, with
//! their notification and output ([`crate::retention::remove`]).

use super::params;
use crate::daemon::Daemon;
use crate::store::read::PruneFilter;
use crate::{lookup, retention, timefmt};
use agentd_proto::methods::{PruneParams, PruneResult, RemoveParams, RemoveResult};
use agentd_proto::{RpcError, codes};
use serde_json::json;
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
    let mut ids = Vec::new();
    for id in &p.ids {
        let job = lookup::find(d, id).await?;
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
            ids.push(job.id);
        }
    }
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
    let filter = PruneFilter {
        session,
        states: p.states,
        finished_before: cutoff,
        keep_last: p.keep_last.unwrap_or(0),
    };
    let reader = &d.store.reader;
    let Some(bound) = reader
        .prune_bound(filter.clone())
        .await
        .map_err(lookup::read_error)?
    else {
        return Ok(PruneResult {
            removed: 0,
            bytes_freed: 0,
        });
    };
    if p.dry_run.unwrap_or(false) {
        let (removed, bytes_freed) = reader
            .prune_totals(filter, bound)
            .await
            .map_err(lookup::read_error)?;
        return Ok(PruneResult {
            removed,
            bytes_freed,
        });
    }
    // Oldest first, a batch at a time, so that memory stays bounded
    // however many jobs go.
    let (mut removed, mut bytes_freed, mut after) = (0, 0, 0);
    loop {
        let page = reader
            .prune_page(filter.clone(), bound, after, retention::BATCH)
            .await
            .map_err(lookup::read_error)?;
        let Some(&(last, ..)) = page.last() else {
            break;
        };
        after = last;
        removed += page.len() as u64;
        bytes_freed += page.iter().map(|(_, _, b)| b).sum::<u64>();
        let ids = page.into_iter().map(|(_, id, _)| id).collect();
        retention::remove(d, ids)
            .await
            .map_err(|e| RpcError::internal(format!("cannot remove the jobs: {e}")))?;
    }
    Ok(PruneResult {
        removed,
        bytes_freed,
    })
}
