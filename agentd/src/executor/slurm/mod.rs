//! The `slurm` executor (DESIGN.md, "Jobs on a cluster"; docs/slurm.md).
//!
//! - **Start** ([`start`]): `sbatch --parsable` with the job's script on
//!   stdin ([`submit`]); the Slurm job id becomes the job's `external_id`,
//!   recorded durably before `job.submit` answers.
//! - **Watch** ([`watcher`]): one task polls `squeue` (and `scontrol` for
//!   exit codes, the jobcomp record once Slurm has purged a job) every
//!   `[slurm] poll_interval_ms`, only while Slurm jobs are live; with none
//!   it sleeps on a [`Notify`] and costs nothing.
//! - **Supervise** ([`supervise`]): one task per job turns what the watcher
//!   sees into the job's state, acts on `job.kill` (`scancel --signal`,
//!   then a final `scancel` after the grace), and records the end through
//!   [`crate::supervisor::finish`] like a local job: one notification.
//! - **Re-adopt** ([`adopt`]): after a restart of agentd, each Slurm job
//!   the database records as running is watched again by its Slurm id.

pub mod command;
pub mod config;
pub mod jobcomp;
pub mod status;
pub mod submit;
pub mod watcher;

use crate::daemon::Daemon;
use crate::state::JobIdx;
use crate::supervisor::{self, Control, output};
use crate::timefmt;
use agentd_proto::{Job, JobState, SlurmOptions};
use rustix::process::Signal;
use status::Ended;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use watcher::{Seen, Slurm};

/// How often a `job.output` `wait_ms` (and so `logs -f`) on a Slurm job
/// reads the log again even without an inotify event: a node writing to
/// the log over a shared file system raises none on this machine.
pub const OUTPUT_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks a submit's `slurm` options (before the job is recorded).
///
/// Errors: the message and the field it names.
pub fn check_options(o: &SlurmOptions) -> Result<(), (String, &'static str)> {
    let bad = |s: &str| s.is_empty() || s.contains(['\0', '\n']);
    if o.partition.as_deref().is_some_and(bad) {
        return Err((
            "slurm.partition must be a non-empty name without NUL or newline".into(),
            "slurm.partition",
        ));
    }
    if o.extra_args.iter().flatten().any(|a| bad(a)) {
        return Err((
            "slurm.extra_args must be non-empty strings without NUL or newline".into(),
            "slurm.extra_args",
        ));
    }
    if o.cpus == Some(0) {
        return Err(("slurm.cpus must be at least 1".into(), "slurm.cpus"));
    }
    if o.mem_bytes == Some(0) {
        return Err((
            "slurm.mem_bytes must be at least 1".into(),
            "slurm.mem_bytes",
        ));
    }
    if o.time_limit_secs == Some(0) {
        return Err((
            "slurm.time_limit_secs must be at least 1".into(),
            "slurm.time_limit_secs",
        ));
    }
    Ok(())
}

/// Submits a job just taken off agentd's queue to Slurm and hands it to
/// its supervising task; a failed `sbatch` makes the job `failed` with
/// sbatch's words as its `reason` (and in its output).
pub async fn start(
    daemon: &Arc<Daemon>,
    idx: JobIdx,
    mut job: Job,
    env: Option<BTreeMap<String, String>>,
    control: mpsc::UnboundedReceiver<Control>,
) {
    let log = daemon.output_path(&job.id);
    let env_file = submit::env_path(&log);
    // A job recorded before this agentd started may have been submitted by
    // the agentd before, which stopped before recording the Slurm id.
    let earlier = match job.created_at < daemon.started_at {
        true => daemon.slurm.submitted_earlier(daemon, &job).await,
        false => None,
    };
    let submitted = match earlier {
        Some(id) => {
            tracing::warn!(job = %job.short_id, slurm_id = %id, "the job was submitted to Slurm by an agentd that stopped before recording it; not submitting it again");
            Ok(id)
        }
        None => submit(daemon, &job, env, &log, &env_file).await,
    };
    let external_id = match submitted {
        Ok(id) => id,
        Err(reason) => {
            let msg = format!("agentd: cannot submit the job to Slurm: {reason}");
            tracing::warn!(job = %job.short_id, "{msg}");
            let _ = tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_file(&env_file);
                output::append_line(&log, &msg)
            })
            .await;
            job.state = JobState::Failed;
            job.reason = Some(format!("cannot submit to Slurm: {reason}"));
            job.finished_at = Some(timefmt::now());
            supervisor::finish(daemon, job, None).await;
            daemon.slot_freed.notify_one();
            return;
        }
    };
    tracing::debug!(job = %job.short_id, slurm_id = %external_id, "submitted to Slurm");
    // Not awaited (one commit less on the way to the reply, as a local
    // job's start): later writes of this job are committed after it, and a
    // restart before it commits finds the job by its `--comment`.
    daemon
        .store
        .mark_submitted_later(job.id.clone(), external_id.clone(), None);
    job.external_id = Some(external_id);
    // Slurm's first state is PENDING: queued until it is seen running.
    job.state = JobState::Queued;
    {
        let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        if let Some(entry) = jobs.get_mut(idx) {
            entry.job.external_id = job.external_id.clone();
            entry.job.state = JobState::Queued;
        }
    }
    watch_job(daemon, job, control);
}

/// Writes the environment file and runs `sbatch`. Returns the Slurm job
/// id, or why there is none.
async fn submit(
    daemon: &Daemon,
    job: &Job,
    env: Option<BTreeMap<String, String>>,
    log: &std::path::Path,
    env_file: &std::path::Path,
) -> Result<String, String> {
    if let Some(env) = env.filter(|e| !e.is_empty()) {
        let path = env_file.to_owned();
        let short = job.short_id.clone();
        let written = tokio::task::spawn_blocking(move || submit::write_env(&path, &env))
            .await
            .map_err(|e| e.to_string())?;
        match written {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(job = %short, "{n} environment variables are not valid shell names (or are SLURM_*) and are not passed to the Slurm job")
            }
            Err(e) => return Err(format!("cannot write the job's environment file: {e}")),
        }
    }
    let config = &daemon.config.slurm;
    let args = submit::args(config, job, log);
    let script = submit::script(job, env_file);
    let out = command::run(
        config,
        "sbatch",
        &args,
        Some(script.as_bytes()),
        command::SUBMIT_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    if !out.success {
        return Err(if out.stderr.is_empty() {
            "sbatch failed without saying why".into()
        } else {
            out.stderr
        });
    }
    submit::parse_id(&out.stdout)
        .ok_or_else(|| format!("sbatch printed no job id: {:?}", out.stdout.trim()))
}

/// Registers a submitted (or re-adopted) job with the watcher and starts
/// its supervising task.
fn watch_job(daemon: &Arc<Daemon>, job: Job, control: mpsc::UnboundedReceiver<Control>) {
    let Some(id) = job.external_id.clone() else {
        return;
    };
    let seen = daemon.slurm.register(&id, submit::job_name(&job));
    tokio::spawn(supervise(daemon.clone(), job, seen, control));
}

/// How [`adopt`] dealt with a job.
#[derive(Debug, PartialEq, Eq)]
pub enum Adopted {
    /// Watched again by its Slurm id.
    Watching,
    /// agentd stopped before it recorded the Slurm id: marked `lost`.
    Lost,
}

/// Takes back a Slurm job the database records as running, after a
/// restart of agentd: its supervising task and the watcher follow it again
/// by its Slurm id, and it ends with whatever Slurm (or its jobcomp
/// record) says, or `lost` when Slurm no longer knows it.
pub async fn adopt(daemon: &Arc<Daemon>, mut job: Job) -> Adopted {
    if job.external_id.is_none() {
        tracing::warn!(job = %job.short_id, "agentd stopped while submitting this job to Slurm, before it recorded the Slurm job id; marking it lost");
        job.state = JobState::Lost;
        job.reason = Some(format!(
            "agentd stopped while submitting the job to Slurm; if sbatch accepted it, it runs as Slurm job name {} (see squeue --name)",
            submit::job_name(&job)
        ));
        job.finished_at = Some(timefmt::now());
        remove_env_file(daemon, &job.id).await;
        supervisor::finish(daemon, job, None).await;
        return Adopted::Lost;
    }
    let (tx, rx) = mpsc::unbounded_channel::<Control>();
    daemon
        .shared
        .jobs
        .lock()
        .expect("job table poisoned")
        .adopt(&job.id, tx, std::time::Instant::now());
    tracing::info!(job = %job.short_id, slurm_id = ?job.external_id, "following a Slurm job again");
    watch_job(daemon, job, rx);
    Adopted::Watching
}

/// Supervises one Slurm job to its end: applies what the watcher sees,
/// acts on kill requests, and records the end.
async fn supervise(
    daemon: Arc<Daemon>,
    mut job: Job,
    mut seen: watch::Receiver<Seen>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let slurm_id = job.external_id.clone().unwrap_or_default();
    let mut killed = false;
    let mut kill_at: Option<Instant> = None;
    let mut control_open = true;
    let ended = loop {
        tokio::select! {
            changed = seen.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = seen.borrow_and_update().clone();
                match now {
                    Seen::Unknown => {}
                    Seen::Waiting => set_state(&daemon, &mut job, JobState::Queued).await,
                    Seen::Running => set_state(&daemon, &mut job, JobState::Running).await,
                    Seen::Ended(e) => break Some(e),
                    Seen::Gone => break None,
                }
            }
            request = control.recv(), if control_open => match request {
                Some(Control::Kill { signal, grace }) => {
                    killed = true;
                    if signal == Signal::KILL || job.state == JobState::Queued {
                        scancel(&daemon, &slurm_id, None).await;
                        kill_at = None;
                    } else {
                        scancel(&daemon, &slurm_id, Some(signal)).await;
                        let at = Instant::now() + grace;
                        kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                    }
                }
                None => control_open = false,
            },
            _ = sleep_until(kill_at), if kill_at.is_some() => {
                scancel(&daemon, &slurm_id, None).await;
                kill_at = None;
            }
        }
    };
    daemon.slurm.forget(&slurm_id);
    end(&daemon, job, ended, killed).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Moves a live job between `queued` (Slurm has not started it) and
/// `running`, recording the start the first time it is seen running.
async fn set_state(daemon: &Daemon, job: &mut Job, state: JobState) {
    if job.state == state && (state == JobState::Queued || job.started_at.is_some()) {
        return;
    }
    job.state = state;
    let first_start = state == JobState::Running && job.started_at.is_none();
    if first_start {
        job.started_at = Some(timefmt::now());
    }
    {
        let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        if let Some(idx) = jobs.by_id(&job.id) {
            let entry = jobs.entry_mut(idx);
            entry.job.state = state;
            entry.job.started_at = job.started_at.clone();
            if first_start {
                entry.started = Some(std::time::Instant::now());
            }
        }
    }
    if first_start {
        daemon.store.mark_submitted_later(
            job.id.clone(),
            job.external_id.clone().unwrap_or_default(),
            job.started_at.clone(),
        );
    }
}

/// `scancel` of Slurm job `id`: with `signal`, that signal to every step
/// and the batch script (`--full`), the job going on; without, the final
/// cancel (SIGTERM, then SIGKILL after Slurm's `KillWait`).
async fn scancel(daemon: &Daemon, id: &str, signal: Option<Signal>) {
    let mut args = Vec::new();
    if let Some(sig) = signal {
        args.push("--full".to_string());
        args.push(format!(
            "--signal={}",
            agentd_proto::signal::name(sig.as_raw()).trim_start_matches("SIG")
        ));
    }
    args.push(id.to_string());
    match command::run(
        &daemon.config.slurm,
        "scancel",
        &args,
        None,
        command::QUERY_TIMEOUT,
    )
    .await
    {
        Ok(out) if out.success => {}
        Ok(out) => tracing::warn!(slurm_id = %id, "scancel failed: {}", out.stderr),
        Err(e) => tracing::warn!(slurm_id = %id, "{e}"),
    }
}

/// Records the end of a Slurm job: how Slurm ended it (`None`: Slurm no
/// longer knows it and no jobcomp record says), whether agentd killed it.
async fn end(daemon: &Arc<Daemon>, mut job: Job, ended: Option<Ended>, killed: bool) {
    remove_env_file(daemon, &job.id).await;
    let finished_at = timefmt::now();
    match &ended {
        Some(e) => {
            let (state, code, signal, reason) = status::outcome(e, killed);
            job.state = state;
            job.exit_code = code;
            job.signal = signal;
            if reason.is_some() {
                job.reason = reason;
            }
        }
        None if killed => job.state = JobState::Killed,
        None => {
            job.state = JobState::Lost;
            job.reason = Some(format!(
                "Slurm no longer knows job {} and no jobcomp record says how it ended",
                job.external_id.as_deref().unwrap_or("?")
            ));
        }
    }
    let run_ms = ended.as_ref().and_then(|e| e.run_ms);
    if job.started_at.is_none()
        && let Some(ms) = run_ms
    {
        job.started_at = timefmt::minus_millis(&finished_at, ms);
    }
    job.duration_ms = job
        .started_at
        .as_deref()
        .and_then(|s| timefmt::millis_between(s, &finished_at))
        .or(run_ms);
    job.finished_at = Some(finished_at);
    tracing::debug!(job = %job.short_id, state = %job.state, "Slurm job finished");
    supervisor::finish(daemon, job, None).await;
    daemon.slot_freed.notify_one();
}

/// Deletes job `id`'s environment file (`jobs/<id>.slurm-env`), if any.
async fn remove_env_file(daemon: &Daemon, id: &str) {
    let env_file = submit::env_path(&daemon.output_path(id));
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(env_file)).await;
}

/// At agentd's start, after recovery: deletes every `jobs/*.slurm-env`
/// whose job is not live (queued, paused or running) in the job table. A
/// live Slurm job keeps its file: if Slurm still has it pending, its
/// script has yet to source it, and [`end`] (or the script) removes it; a
/// queued job not yet submitted writes it afresh. What is left belongs to
/// jobs that ended while (or because) agentd stopped before removing it
/// (killed between writing it and `sbatch`, a job marked lost or failed
/// at restart) and would keep a job's secrets on disk for good. Returns
/// how many files were deleted.
pub async fn sweep_env_files(daemon: &Daemon) -> usize {
    let dir = daemon.config.state_dir.join("jobs");
    let Ok(Ok(names)) = tokio::task::spawn_blocking(move || {
        std::fs::read_dir(&dir).map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "slurm-env"))
                .collect::<Vec<_>>()
        })
    })
    .await
    else {
        return 0;
    };
    let stray: Vec<std::path::PathBuf> = {
        let jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        names
            .into_iter()
            .filter(|p| {
                p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_none_or(|id| jobs.by_id(id).is_none())
            })
            .collect()
    };
    if stray.is_empty() {
        return 0;
    }
    tokio::task::spawn_blocking(move || {
        stray
            .iter()
            .filter(|p| std::fs::remove_file(p).is_ok())
            .count()
    })
    .await
    .unwrap_or(0)
}
