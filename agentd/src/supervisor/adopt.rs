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
//!
//! Jobs recorded as *queued* get one check first ([`claim_unrecorded`]): an
//! agentd that crashed right after spawning a shim, before its group commit
//! recorded the start, leaves a job that looks queued but has run or is
//! running. Such a job is recognised by a live shim whose stderr is the
//! job's output log, or by its exit record, and is adopted or finished
//! instead of being started a second time.

use super::{Control, ShimWatch, apply_outcome, finish, group, journal, read_record, run_to_end};
use crate::daemon::Daemon;
use crate::store::ShimId;
use crate::timefmt;
use agentd_proto::Job;
use std::path::Path;
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
    /// False for a job recorded as queued that was found started (see
    /// [`claim_unrecorded`]): its start is recorded on adoption.
    pub recorded: bool,
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
    let mut ending = tokio::task::JoinSet::new();
    for Orphan {
        mut job,
        shim,
        recorded,
    } in orphans
    {
        if job.executor == agentd_proto::Executor::Slurm {
            match crate::executor::slurm::adopt(daemon, job).await {
                crate::executor::slurm::Adopted::Watching => counts.adopted += 1,
                crate::executor::slurm::Adopted::Lost => counts.lost += 1,
            }
            continue;
        }
        let watch = shim.and_then(|s| group::watch_if_same(s.pid, s.start));
        if let (Some(pidfd), Some(shim)) = (watch, shim) {
            if !recorded {
                daemon.store.mark_started(
                    job.id.clone(),
                    job.pid.unwrap_or(0),
                    job.started_at.clone().unwrap_or_else(timefmt::now),
                    shim,
                );
            }
            let (tx, rx) = mpsc::unbounded_channel::<Control>();
            daemon
                .shared
                .jobs
                .lock()
                .expect("job table poisoned")
                .adopt(&job.id, tx, started_instant(&job));
            let deadline = deadline(&job);
            // Its shim appends to a segment an earlier agentd chose.
            daemon.journal.pin(&job.id);
            tracing::info!(job = %job.short_id, pid = ?job.pid, "adopted a job still running under its shim");
            counts.adopted += 1;
            tokio::spawn(run_to_end(
                daemon.clone(),
                job,
                ShimWatch(pidfd),
                rx,
                deadline,
            ));
            continue;
        }
        let rec = read_record(daemon, &job.id).await;
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
        // Concurrently, so that many ends share the store's group commits.
        let d = daemon.clone();
        ending.spawn(async move { finish(&d, job, None).await });
    }
    while ending.join_next().await.is_some() {}
    counts
}

/// Tells the exit journal that adoption is over ([`journal::Journal::seal`])
/// and deletes what it no longer needs. Call once, after [`recover`] (or
/// when there was nothing to recover).
pub async fn seal(daemon: &Daemon) {
    let gone = daemon.journal.seal();
    if !gone.is_empty() {
        let _ = tokio::task::spawn_blocking(move || journal::delete(&gone)).await;
    }
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

/// Takes the queued (ready or held: paused while being started) jobs that
/// an earlier agentd had in fact started (it crashed before recording the
/// start) off the queue and returns them, to
/// be adopted or finished by [`recover`] instead of started again. A job
/// counts as started when a live shim has the job's output log as its
/// stderr (or, for a shim of an older agentd, a live `agentd shim --dir
/// STATE_DIR/jobs/<id>` process exists), or its exit record does. Reads
/// `/proc` once; blocking (call it on a blocking thread), and only done at
/// start when jobs are queued.
pub fn claim_unrecorded(daemon: &Daemon) -> Vec<Orphan> {
    let queued: Vec<(crate::state::JobIdx, String)> = {
        let jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        jobs.startable_ids()
    };
    if queued.is_empty() {
        return Vec::new();
    }
    let jobs_dir = daemon.config.state_dir.join("jobs");
    let procs = scan_proc();
    let mut claimed = Vec::new();
    for (idx, id) in queued {
        let dir = jobs_dir.join(&id);
        // A shim forked by a spawner has the job's output log as its
        // stderr (renamed to its current name at an upgrade, which /proc
        // shows); one started by an older agentd (an `exec`'d `agentd
        // shim`) names the job's directory on its command line.
        // The kernel's name for the log, symlinks and `..` resolved, as
        // `/proc/PID/fd/2` shows it.
        let log = super::output::path(&daemon.config.state_dir, &id);
        let log = std::fs::canonicalize(&log).unwrap_or(log);
        let shim = procs.iter().find(|p| {
            let forked = p.args.get(1).is_some_and(|a| a == "spawner")
                && std::fs::read_link(format!("/proc/{}/fd/2", p.pid)).is_ok_and(|l| l == log);
            let execd = p.args.len() >= 4
                && p.args[1] == "shim"
                && p.args[2] == "--dir"
                && Path::new(&p.args[3]) == dir;
            forked || execd
        });
        let leader = shim.and_then(|s| procs.iter().find(|p| p.ppid == s.pid && p.pgrp == p.pid));
        if shim.is_none() && !daemon.journal.has_record(&id).unwrap_or(false) {
            continue;
        }
        let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        if !jobs.dequeue(idx) {
            continue;
        }
        let entry = jobs.entry_mut(idx);
        entry.env = None;
        entry.env_on_disk = false;
        entry.job.state = agentd_proto::JobState::Running;
        entry.job.pid = leader.map(|p| p.pid);
        entry.job.started_at = leader
            .or(shim)
            .and_then(|p| timefmt::from_boot_ticks(p.start));
        tracing::warn!(
            job = %entry.job.short_id,
            "job was started by an agentd that stopped before recording it; not starting it again"
        );
        claimed.push(Orphan {
            job: entry.job.clone(),
            shim: shim.map(|s| ShimId {
                pid: s.pid,
                start: s.start,
            }),
            recorded: false,
        });
    }
    claimed
}

/// One live process, as [`claim_unrecorded`] needs it.
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    start: u64,
    args: Vec<String>,
}

/// Every live (not zombie) process `/proc` shows.
fn scan_proc() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            if matches!(f.first(), Some(&("Z" | "X")) | None) {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some(Proc {
                pid,
                ppid: f.get(1)?.parse().ok()?,
                pgrp: f.get(2)?.parse().ok()?,
                start: f.get(19)?.parse().ok()?,
                args,
            })
        })
        .collect()
}
