//! `job.submit`, `job.get`, `job.list`, `job.output`, `job.kill`,
//! `job.wait`.

use super::params;
use crate::daemon::Daemon;
use crate::lookup;
use crate::state::{JobEntry, JobIdx};
use crate::store::read::ListFilter;
use crate::supervisor::{self, Control, output};
use crate::timefmt;
use agentd_proto::methods::{
    DEFAULT_LIST_LIMIT, IdParams, KillParams, ListParams, ListResult, MAX_PAGE_BYTES, OutputParams,
    OutputResult, SubmitParams, WaitParams,
};
use agentd_proto::{Job, JobState, RpcError, codes};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Default `job.output` `limit`, in bytes.
pub const DEFAULT_OUTPUT_LIMIT: u64 = 64 * 1024;
/// Largest `job.output` `limit` or `tail`, in bytes (4 MiB); more is -32003.
pub const MAX_OUTPUT_LIMIT: u64 = 4 * 1024 * 1024;
/// Default `tail_bytes` of a notification.
pub const DEFAULT_TAIL_BYTES: u64 = 1000;
/// Largest `tail_bytes`, in bytes (64 KiB), so notifications stay small.
pub const MAX_TAIL_BYTES: u64 = 64 * 1024;
/// Longest command, in bytes: Linux refuses a single exec argument of
/// 128 KiB or more (`MAX_ARG_STRLEN`).
pub const MAX_COMMAND_BYTES: usize = 128 * 1024 - 1;
/// Largest environment overlay, in bytes of `NAME=value` strings: 1 MiB,
/// half of Linux's usual 2 MiB budget for arguments and environment
/// together, leaving room for the daemon's own environment.
pub const MAX_ENV_BYTES: usize = 1024 * 1024;
/// Longest `label`, in bytes: a label names a job in listings, it is no
/// place for data.
pub const MAX_LABEL_BYTES: usize = 4096;
/// Most jobs waiting in the queue at once; more is -32003.
pub const MAX_QUEUED: usize = 100_000;
/// Default `job.kill` grace before SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// `job.submit`: checks the params, records the job durably, then starts it
/// if a slot is free. Returns the job as it stands (usually `running`).
pub async fn submit(d: &Arc<Daemon>, p: SubmitParams) -> Result<Job, RpcError> {
    let invalid = |msg: String, field: &str| RpcError::invalid_params(msg, Some(field));
    if p.command.trim().is_empty() {
        return Err(invalid("command must not be empty".into(), "command"));
    }
    if p.command.len() > MAX_COMMAND_BYTES {
        return Err(invalid(
            format!(
                "command is {} bytes; at most {MAX_COMMAND_BYTES} fit in one exec argument",
                p.command.len()
            ),
            "command",
        ));
    }
    if p.command.contains('\0') {
        return Err(invalid(
            "command must not contain a NUL byte".into(),
            "command",
        ));
    }
    if let Some(env) = &p.env {
        let total: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        if total > MAX_ENV_BYTES {
            return Err(invalid(
                format!("env is {total} bytes; at most {MAX_ENV_BYTES} (1 MiB)"),
                "env",
            ));
        }
        for (k, v) in env {
            if k.len() + v.len() + 1 > MAX_COMMAND_BYTES {
                return Err(invalid(
                    format!(
                        "env variable {k:?} is over {MAX_COMMAND_BYTES} bytes, more than one exec string may hold"
                    ),
                    "env",
                ));
            }
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(invalid(
                    format!(
                        "env variable {k:?} must have a non-empty name without '=' or NUL, and a value without NUL"
                    ),
                    "env",
                ));
            }
        }
    }
    if let Some(label) = &p.label
        && label.len() > MAX_LABEL_BYTES
    {
        return Err(invalid(
            format!("label is {} bytes; at most {MAX_LABEL_BYTES}", label.len()),
            "label",
        ));
    }
    crate::sandbox::check_params(p.sandbox.as_ref(), p.limits.as_ref())
        .map_err(|(msg, field)| invalid(msg, field))?;
    let executor = p.executor.unwrap_or(d.config.default_executor);
    crate::executor::check_submit(executor, &p).map_err(|(msg, field)| invalid(msg, field))?;
    let timeout_secs = p
        .timeout_secs
        .map(|t| params::seconds("timeout_secs", t, false))
        .transpose()?;
    let session = params::session(p.session)?;
    let group = params::group(p.group)?;
    let (after, deps) = resolve_after(d, p.after.unwrap_or_default()).await?;
    let tail_bytes = p.tail_bytes.unwrap_or(DEFAULT_TAIL_BYTES);
    if tail_bytes > MAX_TAIL_BYTES {
        return Err(invalid(
            format!("tail_bytes must be at most {MAX_TAIL_BYTES}, got {tail_bytes}"),
            "tail_bytes",
        ));
    }
    let cwd = match p.cwd {
        Some(cwd) if !Path::new(&cwd).is_absolute() => {
            return Err(invalid(
                format!("cwd {cwd:?} must be an absolute path"),
                "cwd",
            ));
        }
        Some(cwd) => cwd,
        None => std::env::current_dir()
            .map_err(|e| {
                RpcError::new(
                    codes::CANNOT_SPAWN,
                    format!("agentd has no current directory to run in: {e}"),
                )
            })?
            .display()
            .to_string(),
    };
    let queued = d
        .shared
        .jobs
        .lock()
        .expect("job table poisoned")
        .queued_len();
    if queued >= MAX_QUEUED {
        return Err(RpcError::new(
            codes::LIMIT_EXCEEDED,
            format!("too many queued jobs (at most {MAX_QUEUED}); wait for some to start"),
        ));
    }

    let id = uuid::Uuid::new_v4().to_string();
    let job = Job {
        short_id: id[..8].to_string(),
        id,
        command: p.command,
        cwd,
        state: JobState::Queued,
        exit_code: None,
        signal: None,
        pid: None,
        session,
        label: p.label,
        created_at: timefmt::now(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        timeout_secs,
        output_bytes: 0,
        reason: None,
        sandbox: p.sandbox,
        limits: p.limits,
        executor,
        external_id: None,
        slurm: p.slurm,
        group,
        after,
    };
    // One trip to a blocking thread for both: each trip is a thread
    // wake-up on the way to the reply (docs/benchmarks.md).
    let log = d.output_path(&job.id);
    let cwd = job.cwd.clone();
    let writable = job
        .sandbox
        .as_ref()
        .map(|s| s.writable.clone())
        .unwrap_or_default();
    let slurm = (executor == agentd_proto::Executor::Slurm).then(|| d.config.slurm.clone());
    let Some(turn) = crate::memory::user_path_turn().await else {
        return Err(RpcError::new(
            codes::LIMIT_EXCEEDED,
            format!(
                "agentd has waited {} s for the path checks of {} earlier submits (a hung network mount?); try again once they return",
                crate::memory::USER_PATH_WAIT_SECS,
                crate::memory::USER_PATH_CHECKS
            ),
        ));
    };
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        if let Some(slurm) = slurm
            && slurm.locate("sbatch").is_none()
        {
            return Err(RpcError::new(
                codes::CANNOT_SPAWN,
                format!(
                    "cannot submit to Slurm: sbatch was not found ({}); install Slurm's client commands (Debian: slurm-client) or set [slurm] bin_dir in agentd's config",
                    match &slurm.bin_dir {
                        Some(dir) => format!("not in {}", dir.display()),
                        None => "not on agentd's PATH".into(),
                    }
                ),
            )
            .with_data(json!({ "field": "executor" })));
        }
        match std::fs::metadata(&cwd) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(cannot_spawn(format!("cwd {cwd} is not a directory"))),
            Err(e) => return Err(cannot_spawn(format!("cwd {cwd} cannot be used: {e}"))),
        }
        for path in &writable {
            if let Err(e) = std::fs::metadata(path) {
                return Err(cannot_spawn(format!(
                    "sandbox writable path {path} cannot be used: {e}"
                )));
            }
        }
        output::create(&log).map_err(|e| {
            RpcError::internal(format!(
                "cannot create the job's output log {} in the state dir: {e}",
                log.display()
            ))
        })
    })
    .await
    .map_err(RpcError::internal)??;
    let env = p.env.filter(|e| !e.is_empty());
    let ord = d
        .shared
        .next_ord
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = d
        .store
        .insert_job(ord, job.clone(), env.is_some(), tail_bytes)
        .await
    {
        // Leave no log behind for a job that does not exist.
        let log = d.output_path(&job.id);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(log)).await;
        return Err(RpcError::internal(format!(
            "cannot record the job in {}: {e}",
            d.config.state_dir.join("agentd.db").display()
        )));
    }
    let id = job.id.clone();
    let idx = insert_live(d, ord, JobEntry::new(job, tail_bytes, env), deps).await;
    // A dependency that already failed fails this job now.
    supervisor::settle(d).await;
    supervisor::start_queued(d).await;
    // A job that must wait keeps its environment on disk until it starts,
    // so that it survives a restart; one that started never stored it.
    let (job, keep) = {
        let mut jobs = d.shared.jobs.lock().expect("job table poisoned");
        match jobs.get_mut(idx) {
            Some(entry) => {
                let keep = match (&entry.env, entry.job.state) {
                    (Some(env), JobState::Queued) => {
                        entry.env_on_disk = true;
                        Some(d.store.keep_env(entry.job.id.clone(), env))
                    }
                    _ => None,
                };
                (Some(entry.job.clone()), keep)
            }
            // It has already finished, and left the table.
            None => (None, None),
        }
    };
    let job = match job {
        Some(job) => job,
        None => lookup::job(d, &id).await?,
    };
    if let Some(keep) = keep
        && let Err(e) = keep.await
    {
        tracing::error!(job = %job.short_id, "cannot store a queued job's environment; a restart of agentd before it starts would fail it: {e}");
    }
    Ok(job)
}

/// Resolves `job.submit` `after` to full ids, without duplicates, with
/// each dependency as it stood when looked up (from the table, or from
/// the database when it finished).
///
/// Errors: -32001 for an id no job has (a dependency must exist before it
/// is named, so no cycle can form; also one removed while this looked it
/// up), -32002 for an ambiguous prefix, -32602 for a malformed one, -32603
/// when the database cannot be read; each names the field `after`.
async fn resolve_after(
    d: &Daemon,
    ids: Vec<String>,
) -> Result<(Vec<String>, HashMap<String, Job>), RpcError> {
    let after_err = |mut e: RpcError| {
        e.message = format!("after: {}", e.message);
        match &mut e.data {
            Some(serde_json::Value::Object(data)) => {
                data.insert("field".into(), json!("after"));
            }
            _ => e.data = Some(json!({ "field": "after" })),
        }
        e
    };
    let mut full = Vec::with_capacity(ids.len());
    let mut deps = HashMap::with_capacity(ids.len());
    for id in ids {
        let id = lookup::resolve(d, &id).await.map_err(after_err)?;
        if !full.contains(&id) {
            let job = lookup::job(d, &id).await.map_err(after_err)?;
            deps.insert(id.clone(), job);
            full.push(id);
        }
    }
    Ok((full, deps))
}

/// Inserts a new job into the table. `deps` holds its dependencies as
/// [`resolve_after`] found them: a finished one is final, so the table
/// judges it by that ([`crate::state::JobTable::insert`]). One live then
/// and gone from the table now finished meanwhile and is read from the
/// database. The job is recorded already, so it is inserted whatever
/// happens; a dependency whose end cannot be read (the database failing,
/// or removed in between) never counts as succeeded: it counts as `lost`,
/// which fails the job, and is logged.
async fn insert_live(
    d: &Daemon,
    ord: JobIdx,
    entry: JobEntry,
    deps: HashMap<String, Job>,
) -> JobIdx {
    let mut ended: HashMap<String, Job> = deps
        .iter()
        .filter(|(_, j)| j.state.is_finished())
        .map(|(id, j)| (id.clone(), j.clone()))
        .collect();
    let mut entry = Some(entry);
    loop {
        let missing = {
            let mut jobs = d.shared.jobs.lock().expect("job table poisoned");
            let e = entry.as_ref().expect("inserted once");
            let missing: Vec<String> = jobs
                .missing_deps(&e.job.after)
                .into_iter()
                .filter(|id| !ended.contains_key(id))
                .collect();
            if missing.is_empty() {
                let e = entry.take().expect("inserted once");
                return jobs.insert(ord, e, &ended);
            }
            missing
        };
        for id in missing {
            // A job not in the table has its end committed: read it as it
            // finished.
            let why = match d.store.reader.job(id.clone()).await {
                Ok(Some((_, job))) if job.state.is_finished() => {
                    ended.insert(id, job);
                    continue;
                }
                Ok(Some(_)) => "the database has it live, the table does not".to_string(),
                Ok(None) => "it was removed before this job was recorded".to_string(),
                Err(e) => format!("cannot read the database: {e}"),
            };
            tracing::error!(dependency = %id, "cannot learn how a dependency ended ({why}); counting it as lost");
            let mut lost = deps
                .get(&id)
                .cloned()
                .expect("every dependency was resolved");
            lost.state = JobState::Lost;
            ended.insert(id, lost);
        }
    }
}

fn cannot_spawn(msg: String) -> RpcError {
    RpcError::new(codes::CANNOT_SPAWN, msg).with_data(json!({ "field": "cwd" }))
}

/// Resolves `id` and, while the job is live (in the table), applies `f` to
/// its entry. Returns the full id and `f`'s result, `None` for a finished
/// job (read from the database).
///
/// Errors: as [`lookup::resolve`].
async fn with_live<T>(
    d: &Daemon,
    id: &str,
    f: impl FnOnce(&JobEntry) -> T,
) -> Result<(String, Option<T>), RpcError> {
    let full = lookup::resolve(d, id).await?;
    let jobs = d.shared.jobs.lock().expect("job table poisoned");
    let out = jobs.by_id(&full).map(|idx| f(jobs.entry(idx)));
    Ok((full, out))
}

/// Fills in `output_bytes` of running jobs from their output logs' sizes.
async fn with_live_sizes(d: &Daemon, mut jobs: Vec<Job>) -> Vec<Job> {
    let running: Vec<(usize, std::path::PathBuf)> = jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| matches!(j.state, JobState::Running | JobState::Paused))
        .map(|(i, j)| (i, d.output_path(&j.id)))
        .collect();
    if running.is_empty() {
        return jobs;
    }
    let sizes = tokio::task::spawn_blocking(move || {
        running
            .into_iter()
            .map(|(i, p)| (i, output::size(&p).unwrap_or(0)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (i, size) in sizes {
        jobs[i].output_bytes = size;
    }
    jobs
}

/// The job `id` names, as it stands now.
pub(super) async fn current(d: &Daemon, id: &str) -> Result<Job, RpcError> {
    let full = lookup::resolve(d, id).await?;
    as_now(d, &full).await
}

/// The job with full id `full`, as it stands now.
pub(super) async fn as_now(d: &Daemon, full: &str) -> Result<Job, RpcError> {
    let job = lookup::job(d, full).await?;
    Ok(with_live_sizes(d, vec![job]).await.remove(0))
}

/// `job.get`.
pub async fn get(d: &Arc<Daemon>, p: IdParams) -> Result<Job, RpcError> {
    current(d, &p.id).await
}

/// `job.list`: newest first, filtered by states and session, one page at
/// a time: at most `limit` jobs (default 1000) and about
/// [`MAX_PAGE_BYTES`] of JSON; `next_cursor` continues after the last.
pub async fn list(d: &Arc<Daemon>, p: ListParams) -> Result<ListResult, RpcError> {
    let session = p.session.map(|s| params::session(Some(s))).transpose()?;
    let group = p.group.map(|g| params::group(Some(g))).transpose()?;
    let limit = p.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    let before = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // One more than a page from each source tells whether more follow.
    let fetch = limit.saturating_add(1);
    // Live jobs from the table first, then finished ones from the
    // database: a job that finishes in between is then found in both (and
    // kept once, as finished), never in neither.
    let mut page = d.shared.jobs.lock().expect("job table poisoned").list(
        p.states.as_deref(),
        session.as_deref(),
        group.as_deref(),
        before,
        fetch,
    );
    let finished_wanted = p
        .states
        .as_ref()
        .is_none_or(|s| s.iter().any(|s| s.is_finished()));
    if finished_wanted && limit > 0 {
        let filter = ListFilter {
            states: p.states.clone(),
            session: session.clone(),
            group: group.clone(),
            before,
        };
        let stored = d
            .store
            .reader
            .list(filter, fetch)
            .await
            .map_err(lookup::read_error)?;
        // Stored first, so that the stable sort keeps the database's copy
        // of a job found in both.
        page.splice(0..0, stored);
        page.sort_by_key(|p| std::cmp::Reverse(p.0));
        page.dedup_by_key(|(ord, _)| *ord);
    }
    let mut jobs = Vec::new();
    let mut bytes = 0;
    let mut last = None;
    let mut more = false;
    for (ord, job) in page {
        bytes += crate::page::json_len(&job);
        if jobs.len() >= limit || (!jobs.is_empty() && bytes > MAX_PAGE_BYTES) {
            more = true;
            break;
        }
        jobs.push(job);
        last = Some(ord);
    }
    Ok(ListResult {
        jobs: with_live_sizes(d, jobs).await,
        next_cursor: if more {
            last.map(|k| k.to_string())
        } else {
            None
        },
    })
}

/// A `job.list` cursor: the key of the last job of the page before.
///
/// Errors: -32602 naming `cursor` when it is not one this daemon gave.
fn parse_cursor(c: &str) -> Result<JobIdx, RpcError> {
    c.parse().map_err(|_| {
        RpcError::invalid_params(
            format!("cursor {c:?} is not one job.list returned as next_cursor"),
            Some("cursor"),
        )
    })
}

/// `job.output`: a byte range, or the tail, of the output log; with
/// `wait_ms`, waits for bytes past `offset` while the job runs (woken by
/// the daemon's shared inotify watcher or the job's end).
pub async fn output(d: &Arc<Daemon>, p: OutputParams) -> Result<OutputResult, RpcError> {
    let (id, live) = with_live(d, &p.id, |e| (e.done.subscribe(), e.job.executor)).await?;
    // A finished job's channel: `true`, and no sender left.
    let (mut done, executor) =
        live.unwrap_or_else(|| (watch::channel(true).1, agentd_proto::Executor::Local));
    // A Slurm job writes from a cluster node: where the state dir is a
    // shared file system, inotify does not see those writes, so its
    // readers also look again at this bound (docs/slurm.md).
    let recheck = (executor == agentd_proto::Executor::Slurm)
        .then_some(crate::executor::slurm::OUTPUT_RECHECK);
    let log = d.output_path(&id);
    for (field, value) in [("limit", p.limit), ("tail", p.tail)] {
        if let Some(v) = value
            && v > MAX_OUTPUT_LIMIT
        {
            return Err(RpcError::new(
                codes::LIMIT_EXCEEDED,
                format!("{field} is {v} bytes; at most {MAX_OUTPUT_LIMIT} (4 MiB) per request"),
            )
            .with_data(json!({ "field": field })));
        }
    }
    let wait_ms = p.wait_ms.unwrap_or(0);
    let deadline = Instant::now() + params::millis("wait_ms", wait_ms)?;

    if let Some(n) = p.tail {
        let finished = *done.borrow();
        let chunk = read(&log, move |l| output::read_tail(l, n)).await?;
        return Ok(result(chunk, finished));
    }
    let offset = p.offset.unwrap_or(0);
    let limit = p.limit.unwrap_or(DEFAULT_OUTPUT_LIMIT);
    // Watch before the first read, so a write between the read and the
    // wait still wakes it.
    let mut growth = if wait_ms == 0 || *done.borrow() {
        None
    } else {
        match output::Growth::watch(&log) {
            Ok(g) => Some(g),
            // No log (yet): nothing can be written to it; the job's end or
            // the deadline ends the wait.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(RpcError::internal(format!(
                    "cannot watch the output log for new bytes (wait_ms): {e}"
                )));
            }
        }
    };
    loop {
        let finished = *done.borrow_and_update();
        let chunk = read(&log, move |l| output::read_range(l, offset, limit)).await?;
        if !chunk.data.is_empty() || finished || Instant::now() >= deadline {
            return Ok(result(chunk, finished));
        }
        tokio::select! {
            _ = async { match &mut growth { Some(g) => g.changed().await, None => std::future::pending().await } } => {}
            _ = done.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = async { match recheck { Some(t) => tokio::time::sleep(t).await, None => std::future::pending().await } } => {}
            _ = d.shutting_down() => {}
        }
        if d.shutdown_requested().is_some() {
            let chunk = read(&log, move |l| output::read_range(l, offset, limit)).await?;
            return Ok(result(chunk, *done.borrow()));
        }
    }
}

async fn read(
    log: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<output::Chunk> + Send + 'static,
) -> Result<output::Chunk, RpcError> {
    let log = log.to_owned();
    tokio::task::spawn_blocking(move || f(&log))
        .await
        .map_err(RpcError::internal)?
        .map_err(|e| RpcError::internal(format!("cannot read the output log: {e}")))
}

fn result(chunk: output::Chunk, finished: bool) -> OutputResult {
    let next_offset = chunk.offset + chunk.data.len() as u64;
    OutputResult {
        data: String::from_utf8_lossy(&chunk.data).into_owned(),
        offset: chunk.offset,
        next_offset,
        total_bytes: chunk.total,
        complete: finished && next_offset >= chunk.total,
        dropped: chunk
            .dropped
            .map(|(from, to)| agentd_proto::methods::DroppedRange { from, to }),
    }
}

/// `job.kill`: a queued job is cancelled; a running job's process group
/// gets the signal, then SIGKILL after the grace. Returns the job once it
/// has ended (or after the grace plus 10 s if it has not); a finished job
/// is returned unchanged.
pub async fn kill(d: &Arc<Daemon>, p: KillParams) -> Result<Job, RpcError> {
    let signal = match &p.signal {
        None => rustix::process::Signal::TERM,
        Some(name) => supervisor::signal::parse(name).ok_or_else(|| {
            RpcError::invalid_params(
                format!(
                    "unknown signal {name:?}; expected one of {}",
                    supervisor::signal::accepted()
                ),
                Some("signal"),
            )
        })?,
    };
    let grace = match p.grace_secs {
        Some(g) => Duration::from_secs_f64(params::seconds("grace_secs", g, true)?),
        None => DEFAULT_GRACE,
    };
    enum Action {
        Finished,
        Cancel(Box<Job>),
        Wait(watch::Receiver<bool>),
    }
    let full = lookup::resolve(d, &p.id).await?;
    let action = {
        let mut jobs = d.shared.jobs.lock().expect("job table poisoned");
        match jobs.by_id(&full) {
            None => Action::Finished,
            Some(idx) if jobs.entry(idx).job.state.is_finished() => Action::Finished,
            Some(idx) if jobs.dequeue(idx) => Action::Cancel(Box::new(jobs.entry(idx).job.clone())),
            Some(idx) => {
                let entry = jobs.entry(idx);
                if let Some(ctl) = &entry.control {
                    let _ = ctl.send(Control::Kill { signal, grace });
                }
                Action::Wait(entry.done.subscribe())
            }
        }
    };
    match action {
        Action::Finished => {}
        Action::Cancel(mut job) => {
            job.state = JobState::Killed;
            job.finished_at = Some(timefmt::now());
            supervisor::finish(d, *job, None).await;
        }
        Action::Wait(mut done) => {
            let bound = grace + Duration::from_secs(10);
            let _ = tokio::time::timeout(bound, done.wait_for(|&f| f)).await;
        }
    }
    as_now(d, &full).await
}

/// `job.wait`: returns when the job has finished, at `timeout_secs`, or at
/// shutdown, with the job as it stands.
pub async fn wait(d: &Arc<Daemon>, p: WaitParams) -> Result<Job, RpcError> {
    let timeout = p
        .timeout_secs
        .map(|t| params::seconds("timeout_secs", t, true))
        .transpose()?
        .map(Duration::from_secs_f64);
    let (full, done) = with_live(d, &p.id, |e| e.done.subscribe()).await?;
    let Some(mut done) = done else {
        return as_now(d, &full).await;
    };
    tokio::select! {
        _ = done.wait_for(|&f| f) => {}
        _ = async { match timeout { Some(t) => tokio::time::sleep(t).await, None => std::future::pending().await } } => {}
        _ = d.shutting_down() => {}
    }
    as_now(d, &full).await
}
