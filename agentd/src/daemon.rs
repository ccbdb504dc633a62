//! Starting and stopping the daemon: lock the state dir, open the store,
//! recover the job table, bind the socket, serve until shutdown, and on
//! shutdown keep or kill the running jobs.

use crate::config::Config;
use crate::state::{JobEntry, Shared};
use crate::store::{Loaded, Store};
use crate::supervisor::adopt::Orphan;
use crate::supervisor::{self, Control};
use crate::{listener, lock, server, timefmt};
use agentd_proto::JobState;
use agentd_proto::methods::ShutdownJobs;
use anyhow::Context;
use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The daemon's shared context, handed to every request handler and
/// supervising task.
pub struct Daemon {
    /// Resolved configuration.
    pub config: Config,
    /// Job table and notification queues.
    pub shared: Arc<Shared>,
    /// The durable store.
    pub store: Store,
    /// The helper process that forks each job's shim.
    pub spawner: crate::spawner::client::Spawner,
    /// The Slurm executor's followed jobs ([`crate::executor::slurm`]).
    pub slurm: crate::executor::slurm::Slurm,
    /// Where the shims record how their jobs ended.
    pub journal: supervisor::journal::Journal,
    /// When this daemon started (RFC 3339 UTC).
    pub started_at: String,
    /// Signalled when a job ends or fails to start, so the scheduler can
    /// start the next queued job.
    pub slot_freed: tokio::sync::Notify,
    /// Wakes the retention task ([`crate::retention`]): a job finished or
    /// notifications were acknowledged.
    pub retention_wake: tokio::sync::Notify,
    /// `Some` once shutdown was requested, with what to do to jobs.
    shutdown: watch::Sender<Option<ShutdownJobs>>,
    /// `true` once connections should finish their in-flight requests and
    /// close (after the jobs are dealt with at shutdown).
    closing: watch::Sender<bool>,
}

impl Daemon {
    /// The shutdown request, if any.
    pub fn shutdown_requested(&self) -> Option<ShutdownJobs> {
        *self.shutdown.borrow()
    }

    /// Asks the daemon to stop; the first request decides what happens to
    /// running jobs.
    pub fn request_shutdown(&self, jobs: ShutdownJobs) {
        self.shutdown.send_if_modified(|s| {
            let first = s.is_none();
            s.get_or_insert(jobs);
            first
        });
    }

    /// Resolves once shutdown has been requested.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Tells every connection to stop reading and close once its in-flight
    /// requests are answered.
    pub fn close_connections(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once connections should close.
    pub async fn closing(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|&c| c).await;
    }

    /// The output log of job `id`.
    pub fn output_path(&self, id: &str) -> PathBuf {
        supervisor::output::path(&self.config.state_dir, id)
    }
}

/// Runs the daemon until `stop` resolves (a signal, in `main`) or a client
/// calls `daemon.shutdown`.
///
/// Errors: the state dir cannot be created or is locked by another agentd;
/// the database cannot be opened; another daemon answers on the socket or
/// the socket cannot be bound.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    raise_fd_limit();
    let _lock = lock::lock_state_dir(&config.state_dir)?;
    let shared = Arc::new(Shared::default());
    let db = config.state_dir.join("agentd.db");
    let (store, mut loaded) =
        Store::open(db, shared.clone(), config.retention.max_pending_per_session)?;
    let removing = std::mem::take(&mut loaded.removing);
    let live: HashSet<String> = loaded
        .jobs
        .iter()
        .filter(|l| !l.job.state.is_finished())
        .map(|l| l.job.id.clone())
        .collect();
    {
        // Config first, then what `job.group_set` stored over it.
        let mut jobs = shared.jobs.lock().expect("job table poisoned");
        for (group, max) in &config.group_limits {
            jobs.set_group_limit(group, Some(*max));
        }
        for (group, max) in std::mem::take(&mut loaded.group_limits) {
            jobs.set_group_limit(&group, max);
        }
    }
    let (orphans, unkept) = restore(&shared, loaded);
    let journal = open_journal(&config.state_dir, live).await?;
    let mut config = config;
    let listener = match listener::inherited()? {
        Some((listener, path)) => {
            tracing::info!(
                "using the socket {} passed by the service manager",
                path.display()
            );
            config.socket = path;
            listener
        }
        None => listener::bind(&config.socket)
            .await
            .with_context(|| format!("cannot listen on {}", config.socket.display()))?,
    };
    let spawner = crate::spawner::client::Spawner::new(config.spawner_program.clone());
    let daemon = Arc::new(Daemon {
        config,
        shared,
        store,
        spawner,
        slurm: Default::default(),
        journal,
        started_at: timefmt::now(),
        slot_freed: tokio::sync::Notify::new(),
        retention_wake: tokio::sync::Notify::new(),
        shutdown: watch::channel(None).0,
        closing: watch::channel(false).0,
    });
    tracing::info!(
        socket = %daemon.config.socket.display(),
        state_dir = %daemon.config.state_dir.display(),
        pid = std::process::id(),
        "agentd {} listening",
        env!("CARGO_PKG_VERSION")
    );
    // Tell systemd (Type=notify) or an auto-starting agentctl that the
    // store is open and the socket serves.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("cannot send READY=1 to $NOTIFY_SOCKET: {e}");
    }
    let mut orphans = orphans;
    // Reads /proc: a blocking thread, not the runtime's.
    let claimer = daemon.clone();
    match tokio::task::spawn_blocking(move || supervisor::adopt::claim_unrecorded(&claimer)).await {
        Ok(claimed) => orphans.extend(claimed),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
    if !orphans.is_empty() {
        let r = supervisor::adopt::recover(&daemon, orphans).await;
        tracing::info!(
            adopted = r.adopted,
            finished = r.finished,
            lost = r.lost,
            "recovered the jobs that were running when agentd last stopped"
        );
    }
    supervisor::adopt::seal(&daemon).await;
    fail_unkept(&daemon, unkept).await;
    // Queued jobs whose dependency failed while no agentd ran.
    supervisor::settle(&daemon).await;
    let swept = crate::executor::slurm::sweep_env_files(&daemon).await;
    if swept > 0 {
        tracing::info!("deleted {swept} Slurm environment files of jobs that are no longer live");
    }
    supervisor::start_queued(&daemon).await;
    let scheduler = tokio::spawn(supervisor::scheduler(daemon.clone()));
    let slurm_watcher = tokio::spawn(crate::executor::slurm::watcher::run(daemon.clone()));
    crate::retention::at_start(&daemon, removing).await;
    let retention = tokio::spawn(crate::retention::run(daemon.clone()));

    let d = daemon.clone();
    let stop = async move {
        tokio::select! {
            _ = stop => d.request_shutdown(ShutdownJobs::Keep),
            _ = d.shutting_down() => {}
        }
    };
    let connections = server::serve(listener, daemon.clone(), stop).await;
    scheduler.abort();
    retention.abort();
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);

    if daemon.shutdown_requested() == Some(ShutdownJobs::Kill) {
        kill_all(&daemon).await;
    }
    // After the kills: a killed Slurm job's end is learned by the watcher.
    slurm_watcher.abort();
    daemon.close_connections();
    server::drain(connections).await;
    daemon.store.flush().await;
    tracing::info!("agentd stopped");
    Ok(())
}

/// Moves an old state dir's job files to the current layout
/// ([`supervisor::layout::migrate`]; `live`: running, paused and queued jobs) and
/// opens the exit journal.
///
/// Errors: either failed (a state dir that cannot be written).
async fn open_journal(
    state_dir: &std::path::Path,
    live: HashSet<String>,
) -> anyhow::Result<supervisor::journal::Journal> {
    let state_dir = state_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let migrated = supervisor::layout::migrate(&state_dir, &live).with_context(|| {
            format!(
                "cannot move the job files in {} to the current layout",
                state_dir.join("jobs").display()
            )
        })?;
        if migrated.logs > 0 {
            tracing::info!(
                logs = migrated.logs,
                kept_dirs = migrated.kept.len(),
                "moved the job files to the current layout (one file per job)"
            );
        }
        supervisor::journal::Journal::open(&state_dir, migrated.kept).with_context(|| {
            format!(
                "cannot open the exit journal in {}",
                state_dir.join("exits").display()
            )
        })
    })
    .await
    .context("the state dir's set-up panicked")?
}

/// Fills the job table (live jobs only) and queues from the database. Jobs recorded as
/// running are returned, to be adopted, finished from their exit records or
/// marked lost once the daemon is up ([`supervisor::adopt::recover`]), and
/// the ids of queued jobs whose environment was not kept, for
/// [`fail_unkept`].
fn restore(shared: &Shared, loaded: Loaded) -> (Vec<Orphan>, Vec<String>) {
    let mut orphans = Vec::new();
    let mut unkept = Vec::new();
    let mut jobs = shared.jobs.lock().expect("job table poisoned");
    shared
        .next_ord
        .store(loaded.max_ord + 1, std::sync::atomic::Ordering::Relaxed);
    for l in loaded.jobs {
        let job = l.job;
        // A paused job that had started is stopped under its shim: adopted
        // like a running one, it stays paused.
        let started = job.state == JobState::Running
            || (job.state == JobState::Paused && (l.shim.is_some() || job.started_at.is_some()));
        if started {
            orphans.push(Orphan {
                job: job.clone(),
                shim: l.shim,
                recorded: true,
            });
        }
        // Not started yet: waiting in the queue, or held there.
        let queued = !started && !job.state.is_finished();
        if queued && l.env_not_kept {
            unkept.push(job.id.clone());
        }
        let env = queued.then_some(l.env).flatten();
        let on_disk = env.is_some();
        let idx = jobs.insert(
            l.ord,
            JobEntry::new(job, l.tail_bytes, env),
            &loaded.ended_deps,
        );
        jobs.entry_mut(idx).env_on_disk = on_disk;
    }
    jobs.set_total(loaded.total);
    let mut queues = shared.queues.lock().expect("queues poisoned");
    for n in loaded.pending {
        queues.push(n);
    }
    for (session, up_to, count) in loaded.dropped {
        queues.record_dropped(&session, up_to, count);
    }
    (orphans, unkept)
}

/// Fails the queued jobs that an earlier agentd was starting when it
/// stopped, before their start was recorded, and that were not found
/// started ([`supervisor::adopt::claim_unrecorded`] took those): their
/// environment was never stored (docs/survival.md, "A job's environment"),
/// so they cannot run as they were asked to.
async fn fail_unkept(daemon: &Daemon, ids: Vec<String>) {
    for id in ids {
        let job = {
            let mut jobs = daemon.shared.jobs.lock().expect("job table poisoned");
            let Some(idx) = jobs.by_id(&id) else { continue };
            if !jobs.dequeue(idx) {
                continue;
            }
            let entry = jobs.entry_mut(idx);
            entry.env = None;
            entry.env_on_disk = false;
            entry.job.clone()
        };
        let mut job = job;
        tracing::warn!(job = %job.short_id, "agentd stopped while starting this job; its environment was not kept, so it is not started");
        job.state = JobState::Failed;
        job.reason = Some(
            "agentd stopped while starting the job, and a job's environment is kept on disk only while it waits in the queue; submit it again".into(),
        );
        job.finished_at = Some(timefmt::now());
        supervisor::finish(daemon, job, None).await;
    }
}

/// Kills every running job (TERM, KILL after 5 s) and waits until each end
/// is recorded.
async fn kill_all(daemon: &Daemon) {
    let waiters: Vec<_> = {
        let jobs = daemon.shared.jobs.lock().expect("job table poisoned");
        jobs.with_control()
            .into_iter()
            .filter_map(|idx| {
                let entry = jobs.entry(idx);
                let sent = entry.control.as_ref()?.send(Control::Kill {
                    signal: rustix::process::Signal::TERM,
                    grace: supervisor::TIMEOUT_GRACE,
                });
                sent.ok().map(|_| entry.done.subscribe())
            })
            .collect()
    };
    tracing::info!("killing {} running jobs before exiting", waiters.len());
    for mut done in waiters {
        let _ = tokio::time::timeout(Duration::from_secs(15), done.wait_for(|d| *d)).await;
    }
}

/// Marks every descriptor above stderr that agentd inherited close-on-exec
/// (the sockets systemd passes are taken over by [`listener::inherited`]).
/// Whatever opened them — a shell, a test harness — meant them for agentd
/// at most, and a job (or a shim that outlives agentd) holding, say, the
/// write end of its caller's pipe would keep that caller waiting for an end
/// of file. Call before any other thread starts.
pub fn cloexec_inherited_fds() {
    use std::os::fd::BorrowedFd;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    // Collected first: the directory listing itself holds a descriptor.
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: only used for this fcntl; a descriptor that was the
        // listing's and is closed by now makes it fail with EBADF, ignored.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = rustix::io::fcntl_getfd(fd) {
            let _ = rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC);
        }
    }
}

/// Raises the soft limit on open files to the hard limit, as systemd does
/// for its services: every connection, job output log and process watch
/// takes a descriptor, and the common soft default of 1024 is below
/// [`server::MAX_CONNECTIONS`] plus the jobs.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
}
