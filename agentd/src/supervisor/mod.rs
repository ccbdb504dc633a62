//! Running jobs: taking them off the queue, spawning each job's shim (which
//! runs `/bin/sh -c COMMAND` in its own process group and outlives agentd,
//! see [`crate::shim`]), supervising the job until it ends (woken by the
//! shim's exit, a kill request or a timer — never by a polling tick), and
//! recording its end from the shim's exit record.
//!
//! Each running job has one supervising task that watches its shim (a
//! [`tokio::process::Child`], or a pidfd for a shim adopted after a
//! restart, see [`adopt`]) and reads kill requests from a channel. Kills and
//! timeouts signal the job's process group directly.

pub mod adopt;
pub mod cap;
pub mod group;
pub mod journal;
pub mod layout;
pub mod output;
pub mod record;
pub mod signal;

use crate::daemon::Daemon;
use crate::sandbox;
use crate::spawner::client::{SpawnError, Started};
use crate::spawner::wire::Request;
use crate::timefmt;
use agentd_proto::{Job, JobState};
use record::ExitRecord;
use rustix::fd::OwnedFd;
use rustix::process::Signal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a timed-out job has between SIGTERM and SIGKILL (README.md,
/// "How agentd behaves": "SIGKILL after a grace of 5 s").
pub const TIMEOUT_GRACE: Duration = Duration::from_secs(5);

/// A request to a job's supervising task.
#[derive(Debug)]
pub enum Control {
    /// Send `signal` to the process group, then SIGKILL after `grace`.
    Kill {
        /// The first signal.
        signal: Signal,
        /// Time before SIGKILL follows.
        grace: Duration,
    },
}

/// Why the supervisor ended the job, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// `job.kill` (or a `kill` shutdown).
    Killed,
    /// Its `timeout_secs` expired.
    TimedOut,
}

/// Starts queued jobs while `max_running` allows: each is spawned before
/// this returns, so a `job.submit` reply already shows its pid. Called after
/// every submit and, through the scheduler task, after every job end.
pub async fn start_queued(daemon: &Arc<Daemon>) {
    if daemon.shutdown_requested().is_some() {
        return;
    }
    loop {
        let (tx, rx) = mpsc::unbounded_channel();
        let taken = {
            let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
            jobs.take_startable(daemon.config.max_running).map(|idx| {
                let entry = jobs.entry_mut(idx);
                entry.control = Some(tx);
                let on_disk = std::mem::take(&mut entry.env_on_disk);
                (idx, entry.job.clone(), entry.env.take(), on_disk)
            })
        };
        let Some((idx, job, env, on_disk)) = taken else {
            break;
        };
        if on_disk && let Err(e) = daemon.store.wipe_env(job.id.clone()).await {
            // Started anyway: the job's start removes the value again.
            tracing::error!(job = %job.short_id, "cannot wipe the job's stored environment before starting it: {e}");
        }
        crate::executor::start(daemon, idx, job, env, rx).await;
    }
}

/// Starts queued jobs whenever a running job frees its slot. Runs for the
/// daemon's lifetime; woken by [`Daemon::slot_freed`], never by a timer.
pub async fn scheduler(daemon: Arc<Daemon>) {
    loop {
        daemon.slot_freed.notified().await;
        start_queued(&daemon).await;
    }
}

/// Spawns one job's shim and hands the job to a supervising task; a spawn
/// failure becomes a `failed` job with the reason in its output. The
/// `local` executor ([`crate::executor::local`]).
pub async fn start(
    daemon: &Arc<Daemon>,
    idx: crate::state::JobIdx,
    mut job: Job,
    env: Option<BTreeMap<String, String>>,
    control: mpsc::UnboundedReceiver<Control>,
) {
    let log = output::path(&daemon.config.state_dir, &job.id);
    let spawned = match spawn(daemon, &job, env, &log).await {
        Ok(spawned) => spawned,
        Err(e) => {
            if let SpawnError::Spawner(reason) | SpawnError::Unknown(reason) = &e {
                let msg = format!("agentd: cannot start the job: {reason}");
                tracing::warn!(job = %job.short_id, "{msg}");
                let _ = tokio::task::spawn_blocking(move || output::append_line(&log, &msg)).await;
            } else {
                tracing::warn!(job = %job.short_id, "cannot start the job; the reason is in its output");
            }
            job.reason = Some(match &e {
                SpawnError::InOutput => "the job could not be started; its output says why".into(),
                SpawnError::Refused(r) => format!("not started: {r}"),
                SpawnError::Spawner(r) => format!("cannot start the job: {r}"),
                SpawnError::Unknown(r) => {
                    format!("agentd lost track of the job while starting it: {r}")
                }
            });
            job.state = match e {
                SpawnError::Unknown(_) => JobState::Lost,
                _ => JobState::Failed,
            };
            job.finished_at = Some(timefmt::now());
            finish(daemon, job, None).await;
            daemon.slot_freed.notify_one();
            return;
        }
    };
    let started = Instant::now();
    job.pid = Some(spawned.job_pid);
    job.started_at = Some(timefmt::now());
    // Sent before the pid shows, so whatever a client does after seeing it
    // is committed after the start.
    daemon.store.mark_started(
        job.id.clone(),
        spawned.job_pid,
        job.started_at.clone().unwrap_or_default(),
        spawned.shim,
    );
    // Still in the table: only this function's supervising task, spawned
    // below, can end it.
    if let Some(entry) = daemon
        .shared
        .jobs
        .lock()
        .expect("job table poisoned")
        .get_mut(idx)
    {
        entry.job.pid = job.pid;
        entry.job.started_at = job.started_at.clone();
        entry.started = Some(started.into_std());
        if entry.job.state == JobState::Paused {
            // `job.pause` came while the job was being spawned.
            group::signal(spawned.job_pid, Signal::STOP);
            daemon
                .store
                .set_state_later(job.id.clone(), JobState::Paused);
        }
    }
    tracing::debug!(job = %job.short_id, pid = spawned.job_pid, shim = spawned.shim.pid, "started");
    let deadline = job
        .timeout_secs
        .map(|t| started + Duration::from_secs_f64(t));
    let watch = match group::async_fd(spawned.pidfd) {
        Ok(fd) => ShimWatch(fd),
        Err(e) => {
            // The job runs, but this agentd cannot see it end: as after a
            // restart, the next agentd will adopt or finish it. Its exit
            // journal segment is kept on purpose (no `journal.done`): the
            // shim writes the exit record there, and the next agentd finds
            // the segment at start and deletes it once that job is done.
            tracing::error!(job = %job.short_id, "cannot watch the job's shim: {e}");
            return;
        }
    };
    tokio::spawn(run_to_end(daemon.clone(), job, watch, control, deadline));
}

/// How agentd learns that a job's shim has exited, without polling: a
/// pidfd of the shim (sent by the spawner, or opened when adopting a shim
/// after a restart), readable once it has exited.
pub struct ShimWatch(pub AsyncFd<OwnedFd>);

impl ShimWatch {
    /// Resolves once the shim has exited. Cancel-safe.
    async fn exited(&mut self) {
        let _ = self.0.readable().await;
    }
}

/// Supervises a started (or adopted) job to its end and records the end:
/// the exit record its shim left, or `lost` when the shim died without
/// one.
pub async fn run_to_end(
    daemon: Arc<Daemon>,
    mut job: Job,
    shim: ShimWatch,
    control: mpsc::UnboundedReceiver<Control>,
    deadline: Option<Instant>,
) {
    let reason = supervise(shim, job.pid, control, deadline).await;
    let rec = read_record(&daemon, &job.id).await;
    if rec.is_none() && reason.is_none() {
        tracing::warn!(job = %job.short_id, "the job's shim exited without recording the job's end; marking it lost");
    }
    apply_outcome(&mut job, rec.as_ref(), reason);
    tracing::debug!(job = %job.short_id, state = %job.state, "finished");
    finish(&daemon, job, None).await;
    daemon.slot_freed.notify_one();
}

/// Job `id`'s exit record, if its shim wrote one ([`journal::Journal::take`]);
/// an unreadable record is logged and counts as none.
pub async fn read_record(daemon: &Arc<Daemon>, id: &str) -> Option<ExitRecord> {
    let d = daemon.clone();
    let id = id.to_owned();
    match tokio::task::spawn_blocking(move || d.journal.take(&id)).await {
        Ok(Ok(rec)) => rec,
        Ok(Err(e)) => {
            tracing::error!("cannot read the exit journal: {e}");
            None
        }
        Err(_) => None,
    }
}

/// Asks the spawner to start the job's shim in the job's cwd, with `env`
/// laid over agentd's environment (less
/// [`NOT_INHERITED`](crate::spawner::client::NOT_INHERITED)).
///
/// Errors: as [`Spawner::spawn`](crate::spawner::client::Spawner::spawn).
async fn spawn(
    daemon: &Arc<Daemon>,
    job: &Job,
    env: Option<BTreeMap<String, String>>,
    log: &Path,
) -> Result<Started, SpawnError> {
    let policy = sandbox::Policy::new(job.sandbox.as_ref(), job.limits.as_ref());
    if !policy.is_empty() {
        // Refused here already, so the reason does not depend on a shim.
        if let Some(reason) = sandbox::refusal(&policy, sandbox::support()) {
            let msg = format!("agentd: cannot start the job: {reason}");
            let log = log.to_owned();
            let _ = tokio::task::spawn_blocking(move || output::append_line(&log, &msg)).await;
            return Err(SpawnError::Refused(reason));
        }
    }
    let assigned = daemon.journal.assign(&job.id);
    if assigned.create.is_some() || !assigned.gone.is_empty() {
        // Once per [`journal::SEGMENT_JOBS`] jobs, and not waited for: the
        // segment made now is used from the next rotation on.
        let (create, gone) = (assigned.create, assigned.gone);
        let d = daemon.clone();
        tokio::task::spawn_blocking(move || {
            journal::delete(&gone);
            if let Some((n, path)) = create {
                let made = journal::create(&path);
                if let Err(e) = &made {
                    tracing::error!(
                        "cannot create the exit journal segment {}: {e}",
                        path.display()
                    );
                }
                d.journal.created(n, made.is_ok());
            }
        });
    }
    let request = Request {
        id: job.id.clone(),
        journal: assigned.segment,
        log: log.to_owned(),
        cwd: PathBuf::from(&job.cwd),
        command: job.command.clone().into(),
        policy: policy.encode(),
        max_output: daemon.config.output_max_bytes,
        env: env
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
    };
    daemon.spawner.spawn(&request).await
}

/// Waits for the job's end (its shim's exit), acting on kill requests and
/// the timeout. After a kill or timeout, waits for the rest of the process
/// group too (SIGKILL after the grace), so no process of the group
/// survives. Returns why the supervisor ended the job, if it did.
async fn supervise(
    mut shim: ShimWatch,
    pgid: Option<u32>,
    mut control: mpsc::UnboundedReceiver<Control>,
    deadline: Option<Instant>,
) -> Option<EndReason> {
    // The group to signal; `None` only for a job adopted after its leader
    // already exited (its shim is about to record the end).
    let signal_group = |sig| {
        if let Some(pgid) = pgid {
            group::signal(pgid, sig);
        }
    };
    let mut reason = None;
    let mut kill_at: Option<Instant> = None;
    let mut control_open = true;
    loop {
        tokio::select! {
            _ = shim.exited() => break,
            _ = sleep_until(deadline), if reason.is_none() => {
                reason = Some(EndReason::TimedOut);
                signal_group(Signal::TERM);
                signal_group(Signal::CONT);
                kill_at = Some(Instant::now() + TIMEOUT_GRACE);
            }
            request = control.recv(), if control_open => match request {
                Some(Control::Kill { signal, grace }) => {
                    reason.get_or_insert(EndReason::Killed);
                    signal_group(signal);
                    // A paused (stopped) job acts on the signal only once
                    // continued.
                    signal_group(Signal::CONT);
                    let at = if signal == Signal::KILL { Instant::now() } else { Instant::now() + grace };
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
                None => control_open = false,
            },
            _ = sleep_until(kill_at), if kill_at.is_some() => {
                signal_group(Signal::KILL);
                kill_at = None;
            }
        }
    }
    if let (Some(pgid), Some(_)) = (pgid, reason) {
        group::reap(pgid, kill_at.unwrap_or_else(Instant::now)).await;
    }
    reason
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sets a finished job's state, exit code, signal, end time and duration
/// from its exit record (if its shim wrote one) and the supervisor's reason
/// for ending it (if it did) (README.md, "How agentd behaves").
pub fn apply_outcome(job: &mut Job, rec: Option<&ExitRecord>, reason: Option<EndReason>) {
    job.exit_code = rec.and_then(|r| r.exit_code);
    job.signal = rec.and_then(|r| r.signal.clone());
    if let Some(why) = rec.and_then(|r| r.reason.clone()) {
        job.reason = Some(format!("not started: {why}"));
    } else if let Some(cpu) = job.limits.as_ref().and_then(|l| l.cpu_secs)
        && reason.is_none()
    {
        // SIGXCPU is the kernel's only word for RLIMIT_CPU; a shell whose
        // child it ended exits 128 + 24.
        let xcpu = rec.is_some_and(|r| {
            r.signal.as_deref() == Some("SIGXCPU") || r.exit_code == Some(128 + 24)
        });
        if xcpu {
            job.reason = Some(format!(
                "the CPU time limit of {cpu} s was reached (limits.cpu_secs, RLIMIT_CPU: SIGXCPU)"
            ));
        }
    }
    job.state = match (reason, rec) {
        (Some(EndReason::TimedOut), _) => JobState::TimedOut,
        (Some(EndReason::Killed), _) => JobState::Killed,
        (None, None) => {
            job.reason.get_or_insert_with(|| {
                "the job's shim ended without recording how the job ended".to_string()
            });
            JobState::Lost
        }
        (None, Some(r)) if r.signal.is_some() => JobState::Killed,
        (None, Some(r)) if r.exit_code == Some(0) => JobState::Succeeded,
        (None, Some(_)) => JobState::Failed,
    };
    let finished_at = rec.map_or_else(timefmt::now, |r| r.finished_at.clone());
    if job.started_at.is_none()
        && let Some(r) = rec
    {
        // Started by an agentd that crashed before recording the start.
        job.started_at = timefmt::minus_millis(&r.finished_at, r.duration_ms);
    }
    job.duration_ms = rec.map(|r| r.duration_ms).or_else(|| {
        job.started_at
            .as_deref()
            .and_then(|s| timefmt::millis_between(s, &finished_at))
    });
    job.finished_at = Some(finished_at);
}

/// Records a finished job: output size, notification tail, durable commit
/// (which also updates the job table and queues the notification); then
/// fails the queued jobs its end doomed ([`settle`]).
pub async fn finish(daemon: &Daemon, job: Job, started: Option<Instant>) {
    finish_one(daemon, job, started).await;
    settle(daemon).await;
}

/// Fails every queued job whose dependency ended without succeeding
/// (DESIGN.md, "Queue control"): each ends `failed` with `reason`
/// "dependency <short_id> <state>" and its own notification, and so on
/// down the chain (a failed dependent dooms its own dependents).
pub async fn settle(daemon: &Daemon) {
    loop {
        let doomed: Vec<Job> = {
            let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
            jobs.take_doomed()
                .into_iter()
                .filter_map(|(idx, reason)| {
                    let mut job = jobs.get(idx)?.job.clone();
                    if job.state.is_finished() {
                        return None;
                    }
                    job.state = JobState::Failed;
                    job.reason = Some(reason);
                    job.finished_at = Some(timefmt::now());
                    Some(job)
                })
                .collect()
        };
        if doomed.is_empty() {
            return;
        }
        // Together, so that a chain's ends share the store's commits.
        futures_join_all(doomed.into_iter().map(|job| finish_one(daemon, job, None))).await;
    }
}

/// Runs the futures concurrently on this task and waits for all.
async fn futures_join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Records one finished job (see [`finish`]), without failing its
/// dependents.
async fn finish_one(daemon: &Daemon, mut job: Job, started: Option<Instant>) {
    if job.duration_ms.is_none()
        && let Some(started) = started
    {
        job.duration_ms = Some(started.elapsed().as_millis() as u64);
    }
    let tail_bytes = {
        let jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        jobs.by_id(&job.id)
            .map(|i| jobs.entry(i).tail_bytes)
            .unwrap_or(0)
    };
    let log = output::path(&daemon.config.state_dir, &job.id);
    let tail = tokio::task::spawn_blocking(move || output::read_tail(&log, tail_bytes))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    job.output_bytes = tail.total;
    if let Some((from, to)) = tail.dropped {
        job.reason.get_or_insert_with(|| {
            format!(
                "output truncated: the job wrote {} bytes, more than [output] max_bytes; bytes {from}..{to} were dropped, the head and the newest tail kept",
                tail.total
            )
        });
    }
    let tail = String::from_utf8_lossy(&tail.data).into_owned();
    let id = job.id.clone();
    match daemon.store.finish(job, tail).await {
        Ok(_) => {
            // Its exit record is no longer needed.
            let gone = daemon.journal.done(&id);
            if !gone.is_empty() {
                tokio::task::spawn_blocking(move || journal::delete(&gone));
            }
        }
        Err(e) => tracing::error!("cannot record a job's end durably: {e}"),
    }
    daemon.retention_wake.notify_one();
}
