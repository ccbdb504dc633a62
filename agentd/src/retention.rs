//! Retention: what agentd removes so that a daemon running for months stays
//! bounded by its live jobs, not by its history (DESIGN.md, "A daemon for a
//! lifetime"; config `[retention]`, docs/limits.md).
//!
//! - The pending cap (`max_pending_per_session`) is kept by the store
//!   thread: the transaction that queues a job's notification drops its
//!   session's oldest past the cap and records how many, so the session's
//!   next peek says so (never silently). At start ([`at_start`]) a lowered
//!   cap is applied here.
//! - Finished jobs whose notification is no longer pending are removed,
//!   oldest first, past `max_finished_jobs` or older than `max_age_days`:
//!   once at start before the first request is served, then by one task
//!   off the request path, woken when a job finishes or notifications are
//!   acknowledged, and hourly for the age. It works in batches of at most
//!   [`BATCH`] jobs, each its own transaction.
//!
//! Removing a job ([`remove`], also behind `job.remove` and `job.prune`)
//! deletes its row and its notification and records its id in the
//! `removing` table in one transaction, then deletes its output, then
//! forgets the id. A `kill -9` at any point leaves each job whole or gone;
//! output whose row is gone is deleted at the next start.

use crate::daemon::Daemon;
use crate::store::StoreError;
use crate::supervisor::output;
use crate::timefmt;
use std::sync::Arc;
use std::time::Duration;

/// Most jobs removed in one transaction (and one round of output
/// deletion): small enough that a submit waiting behind it is not held up
/// for long (the store thread runs one transaction at a time).
pub const BATCH: usize = 256;

/// How often `max_age_days` is applied besides at start.
pub const AGE_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// Removes the jobs `ids` (full ids of finished jobs): rows, notifications
/// (pending or not) and output, [`BATCH`] at a time. Returns how many rows
/// were removed.
///
/// Errors: a batch's transaction failed; the batches before it stay
/// removed, the rest are left whole.
pub async fn remove(daemon: &Daemon, ids: Vec<String>) -> Result<u64, StoreError> {
    let mut removed = 0;
    for chunk in ids.chunks(BATCH) {
        let chunk = chunk.to_vec();
        removed += daemon.store.remove_jobs(chunk.clone()).await?;
        delete_output(daemon, chunk).await;
    }
    Ok(removed)
}

/// Deletes the output of removed jobs, then forgets their ids in the
/// `removing` table.
async fn delete_output(daemon: &Daemon, ids: Vec<String>) {
    let state_dir = daemon.config.state_dir.clone();
    let ids = tokio::task::spawn_blocking(move || {
        for id in &ids {
            if let Err(e) = output::remove(&state_dir, id) {
                tracing::warn!("cannot delete the output of removed job {id}: {e}");
            }
        }
        ids
    })
    .await;
    if let Ok(ids) = ids {
        daemon.store.forget_removed(ids);
    }
}

/// At start, before the first request is served: finishes the output
/// deletions a killed agentd left (`leftover`, from the `removing` table),
/// then applies every limit once (a lowered limit takes effect here).
pub async fn at_start(daemon: &Daemon, leftover: Vec<String>) {
    if !leftover.is_empty() {
        tracing::info!(
            jobs = leftover.len(),
            "deleting the output of jobs removed before agentd last stopped"
        );
    }
    for chunk in leftover.chunks(BATCH) {
        delete_output(daemon, chunk.to_vec()).await;
    }
    if let Err(e) = apply(daemon, true).await {
        tracing::error!("retention at start failed: {e}");
    }
}

/// The retention task: runs for the daemon's lifetime, applying the limits
/// whenever [`Daemon::retention_wake`] fires and, for `max_age_days`,
/// every [`AGE_CHECK_EVERY`].
pub async fn run(daemon: Arc<Daemon>) {
    let mut age_due = false;
    let mut next_age_check = tokio::time::Instant::now() + AGE_CHECK_EVERY;
    loop {
        tokio::select! {
            _ = daemon.retention_wake.notified() => {}
            _ = tokio::time::sleep_until(next_age_check) => {
                age_due = true;
                next_age_check += AGE_CHECK_EVERY;
            }
            _ = daemon.shutting_down() => return,
        }
        if let Err(e) = apply(&daemon, age_due).await {
            tracing::error!("retention stopped for now: {e}");
        }
        age_due = false;
    }
}

/// One round: the pending cap, then finished jobs until none is over the
/// limits.
async fn apply(daemon: &Daemon, age_due: bool) -> Result<(), StoreError> {
    let r = &daemon.config.retention;
    if let Some(cap) = r.max_pending_per_session {
        let over = daemon
            .shared
            .queues
            .lock()
            .expect("queues poisoned")
            .over_cap(cap);
        for (session, up_to_seq) in over {
            let dropped = daemon
                .store
                .drop_pending(session.clone(), up_to_seq)
                .await?;
            tracing::warn!(
                session,
                dropped,
                "dropped the oldest pending notifications past max_pending_per_session ({cap})"
            );
        }
    }
    let cutoff = match (age_due, r.max_age) {
        (true, Some(age)) => timefmt::minus_millis(&timefmt::now(), age.as_millis() as u64),
        _ => None,
    };
    loop {
        let victims = select(daemon, cutoff.as_deref()).await?;
        if victims.is_empty() {
            return Ok(());
        }
        let n = victims.len();
        remove(daemon, victims).await?;
        tracing::info!(jobs = n, "retention removed finished jobs");
        if daemon.shutdown_requested().is_some() {
            return Ok(());
        }
    }
}

/// Up to [`BATCH`] finished jobs to remove, oldest first: those past
/// `max_finished_jobs` and, with `cutoff`, those that finished before it.
/// A job whose notification is pending is never chosen. The counts come
/// from memory; the jobs are read from the database.
///
/// Errors: the database cannot be read.
async fn select(daemon: &Daemon, cutoff: Option<&str>) -> Result<Vec<String>, StoreError> {
    let kept = {
        let jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        let queues = daemon.shared.queues.lock().expect("queues poisoned");
        jobs.finished_count().saturating_sub(queues.len())
    };
    let excess = match daemon.config.retention.max_finished_jobs {
        Some(max) => kept.saturating_sub(max),
        None => 0,
    };
    if excess == 0 && cutoff.is_none() {
        return Ok(Vec::new());
    }
    daemon
        .store
        .reader
        .retention_victims(excess, cutoff.map(str::to_string), BATCH)
        .await
}
