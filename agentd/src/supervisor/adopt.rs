//! Recovery at start: what became of the jobs the database records as
//! running, i.e. that an earlier agentd started and did not see end.
//!
//! For each such job, in this order:
//!
//! 1. its shim is alive (its pid exists with the start time recorded at
//!    spawn, so a recycled pid is never taken for it) → **adopt** it: watch
//!    the shim through a pidfd, enforce the job's timeout from `started_at +
//!    timeout_secs` (at once if that passed while no agentd ran), accept
//!    `job.kill`, and record the end from its exit record;
//! 2. otherwise its exit record exists → **finish** the job from it, exactly
//!    as if agentd had watched it end (state, exit code, signal, end time,
//!    duration, output size, notification with the output's tail);
//! 3. otherwise → **lost**, with a notification: the shim died (or the job
//!    was started by an agentd without shims) and nothing says how the job
//!    ended.
//!
//! Liveness is checked before the exit record because a shim writes its
//! record durably and only then exits: a shim seen dead has written its
//! record, if it ever will.

use super::{Control, ShimWatch, apply_outcome, finish, group, job_dir, read_record, run_to_end};
use crate::daemon::Daemon;
use crate::store::ShimId;
use crate::timefmt;
use agentd_proto::Job;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A job recorded as running when the daemon started.
pub struct Orphan {
    /// The job as stored.
    pub job: Job,
    /// Its shim, when the agentd that started it recorded one.
    pub shim: Option<ShimId>,
}

/// How many jobs [`recover`] adopted, finished from exit records, and
/// marked lost.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Shims alive and now watched by this daemon.
    pub adopted: usize,
    /// Jobs that ended while no agentd ran, finished from their records.
    pub finished: usize,
    /// Jobs marked `lost`.
    pub lost: usize,
}

/// Adopts, finishes or marks lost every job in `orphans` (see the module
/// docs). Returns once every finished or lost job's end is committed;
/// adopted jobs are then supervised by their own tasks.
pub async fn recover(daemon: &Arc<Daemon>, orphans: Vec<Orphan>) -> Recovered {
    let mut counts = Recovered::default();
    for Orphan { mut job, shim } in orphans {
        let watch = shim.and_then(|s| group::watch_if_same(s.pid, s.start));
        if let Some(pidfd) = watch {
            let (tx, rx) = mpsc::unbounded_channel::<Control>();
            daemon
                .shared
                .jobs
                .lock()
                .expect("job table poisoned")
                .adopt(&job.id, tx, started_instant(&job));
            let deadline = deadline(&job);
            tracing::info!(job = %job.short_id, pid = ?job.pid, "adopted a job still running under its shim");
            counts.adopted += 1;
            tokio::spawn(run_to_end(
                daemon.clone(),
                job,
                ShimWatch::Adopted(pidfd),
                rx,
                deadline,
            ));
            continue;
        }
        let rec = read_record(job_dir(&daemon.config.state_dir, &job.id)).await;
        match &rec {
            Some(_) => {
                tracing::info!(job = %job.short_id, "job ended while agentd was not running; recording its end");
                counts.finished += 1;
            }
            None => {
                tracing::warn!(job = %job.short_id, "job was running when agentd stopped and its shim is gone without a record; marking it lost");
                counts.lost += 1;
            }
        }
        apply_outcome(&mut job, rec.as_ref(), None);
        finish(daemon, job, None).await;
    }
    counts
}

/// The timeout deadline of an adopted job: `started_at + timeout_secs`,
/// on this daemon's monotonic clock; now when it has passed already.
fn deadline(job: &Job) -> Option<Instant> {
    let timeout = Duration::from_secs_f64(job.timeout_secs?);
    Some(Instant::now() + timeout.saturating_sub(elapsed(job)))
}

/// The monotonic instant the job started at, as far as the wall clock
/// tells.
fn started_instant(job: &Job) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_sub(elapsed(job)).unwrap_or(now)
}

/// Wall-clock time since the job started; zero when unknown or in the
/// future (the clock was set back).
fn elapsed(job: &Job) -> Duration {
    job.started_at
        .as_deref()
        .and_then(|s| timefmt::millis_between(s, &timefmt::now()))
        .map_or(Duration::ZERO, Duration::from_millis)
}
