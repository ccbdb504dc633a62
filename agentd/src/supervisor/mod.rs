//! Running jobs: taking them off the queue, spawning `/bin/sh -c COMMAND` in
//! its own process group, supervising it until it ends (woken by the child's
//! exit, a kill request or a timer — never by a polling tick), and
//! recording its end.
//!
//! Each running job has one supervising task that owns its
//! [`tokio::process::Child`] and reads kill requests from a channel.

pub mod group;
pub mod output;
pub mod signal;

use crate::daemon::Daemon;
use crate::timefmt;
use agentd_proto::{Job, JobState};
use rustix::process::Signal;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a timed-out job has between SIGTERM and SIGKILL (DESIGN.md:
/// "SIGKILL after a grace of 5 s").
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
#[derive(Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Killed,
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
                (idx, entry.job.clone(), entry.env.take())
            })
        };
        let Some((idx, job, env)) = taken else { break };
        start(daemon, idx, job, env, rx).await;
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

/// Spawns one job and hands it to a supervising task; a spawn failure
/// becomes a `failed` job with the reason in its output.
async fn start(
    daemon: &Arc<Daemon>,
    idx: usize,
    mut job: Job,
    env: Option<BTreeMap<String, String>>,
    control: mpsc::UnboundedReceiver<Control>,
) {
    let log = output::path(&daemon.config.state_dir, &job.id);
    let child = match spawn(&job, env.as_ref(), &log).await {
        Ok(child) => child,
        Err(reason) => {
            let msg = format!("agentd: cannot start the job: {reason}");
            tracing::warn!(job = %job.short_id, "{msg}");
            let _ = tokio::task::spawn_blocking(move || output::append_line(&log, &msg)).await;
            job.state = JobState::Failed;
            job.finished_at = Some(timefmt::now());
            finish(daemon, job, None).await;
            daemon.slot_freed.notify_one();
            return;
        }
    };
    let pid = child
        .id()
        .expect("a child that was not waited on has a pid");
    let started = Instant::now();
    job.pid = Some(pid);
    job.started_at = Some(timefmt::now());
    {
        let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        let entry = jobs.entry_mut(idx);
        entry.job.pid = job.pid;
        entry.job.started_at = job.started_at.clone();
        entry.started = Some(started.into_std());
    }
    daemon.store.mark_started(
        job.id.clone(),
        pid,
        job.started_at.clone().unwrap_or_default(),
    );
    tracing::debug!(job = %job.short_id, pid, "started");
    tokio::spawn(run_to_end(daemon.clone(), job, child, control, started));
}

/// Supervises a started job to its end and records the end.
async fn run_to_end(
    daemon: Arc<Daemon>,
    mut job: Job,
    child: tokio::process::Child,
    control: mpsc::UnboundedReceiver<Control>,
    started: Instant,
) {
    let pid = job.pid.expect("a started job has a pid");
    let timeout = job.timeout_secs.map(Duration::from_secs_f64);
    let (status, reason) = supervise(child, pid, control, timeout.map(|t| started + t)).await;
    job.finished_at = Some(timefmt::now());
    job.duration_ms = Some(started.elapsed().as_millis() as u64);
    let (state, exit_code, signal) = outcome(status.as_ref(), reason);
    job.state = state;
    job.exit_code = exit_code;
    job.signal = signal;
    tracing::debug!(job = %job.short_id, state = %job.state, "finished");
    finish(&daemon, job, Some(started)).await;
    daemon.slot_freed.notify_one();
}

/// Spawns `/bin/sh -c COMMAND` in a new process group with stdin from
/// `/dev/null` and stdout and stderr appended to the output log.
async fn spawn(
    job: &Job,
    env: Option<&BTreeMap<String, String>>,
    log: &std::path::Path,
) -> Result<tokio::process::Child, String> {
    let log = log.to_owned();
    let file = tokio::task::spawn_blocking(move || output::open_for_job(&log))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open the output log: {e}"))?;
    let stderr = file
        .try_clone()
        .map_err(|e| format!("cannot open the output log: {e}"))?;
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&job.command)
        .current_dir(&job.cwd)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .process_group(0);
    // What systemd (or an auto-starting agentctl) handed agentd is not the
    // job's to use.
    for var in [
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
    ] {
        cmd.env_remove(var);
    }
    if let Some(env) = env {
        cmd.envs(env);
    }
    cmd.spawn()
        .map_err(|e| format!("cannot run /bin/sh in {}: {e}", job.cwd))
}

/// Waits for the job's end, acting on kill requests and the timeout. After
/// a kill or timeout, waits for the rest of the process group too (SIGKILL
/// after the grace), so no process of the group survives.
async fn supervise(
    mut child: tokio::process::Child,
    pgid: u32,
    mut control: mpsc::UnboundedReceiver<Control>,
    deadline: Option<Instant>,
) -> (Option<ExitStatus>, Option<EndReason>) {
    let mut reason = None;
    let mut kill_at: Option<Instant> = None;
    let mut control_open = true;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            _ = sleep_until(deadline), if reason.is_none() => {
                reason = Some(EndReason::TimedOut);
                group::signal(pgid, Signal::TERM);
                kill_at = Some(Instant::now() + TIMEOUT_GRACE);
            }
            request = control.recv(), if control_open => match request {
                Some(Control::Kill { signal, grace }) => {
                    reason.get_or_insert(EndReason::Killed);
                    group::signal(pgid, signal);
                    let at = if signal == Signal::KILL { Instant::now() } else { Instant::now() + grace };
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
                None => control_open = false,
            },
            _ = sleep_until(kill_at), if kill_at.is_some() => {
                group::signal(pgid, Signal::KILL);
                kill_at = None;
            }
        }
    };
    if reason.is_some() {
        group::reap(pgid, kill_at.unwrap_or_else(Instant::now)).await;
    }
    (status, reason)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The final state, exit code and signal name of a job (DESIGN.md,
/// "States").
fn outcome(
    status: Option<&ExitStatus>,
    reason: Option<EndReason>,
) -> (JobState, Option<i32>, Option<String>) {
    let exit_code = status.and_then(|s| s.code());
    let signal = status.and_then(|s| s.signal()).map(signal::name);
    let state = match (reason, status) {
        (Some(EndReason::TimedOut), _) => JobState::TimedOut,
        (Some(EndReason::Killed), _) => JobState::Killed,
        (None, None) => JobState::Lost,
        (None, Some(_)) if signal.is_some() => JobState::Killed,
        (None, Some(_)) if exit_code == Some(0) => JobState::Succeeded,
        (None, Some(_)) => JobState::Failed,
    };
    (state, exit_code, signal)
}

/// Records a finished job: output size, notification tail, durable commit
/// (which also updates the job table and queues the notification).
pub async fn finish(daemon: &Daemon, mut job: Job, started: Option<Instant>) {
    if job.duration_ms.is_none()
        && let Some(started) = started
    {
        job.duration_ms = Some(started.elapsed().as_millis() as u64);
    }
    let tail_bytes = {
        let jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        jobs.resolve(&job.id)
            .map(|i| jobs.entry(i).tail_bytes)
            .unwrap_or(0)
    };
    let log = output::path(&daemon.config.state_dir, &job.id);
    let (tail, total) = tokio::task::spawn_blocking(move || output::read_tail(&log, tail_bytes))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    job.output_bytes = total;
    let tail = String::from_utf8_lossy(&tail).into_owned();
    if let Err(e) = daemon.store.finish(job, tail).await {
        tracing::error!("cannot record a job's end durably: {e}");
    }
}
