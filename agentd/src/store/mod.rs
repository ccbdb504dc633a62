//! The durable store: one SQLite database (WAL, `synchronous=FULL`) owned by
//! one thread, fed through a channel.
//!
//! Group commit: the thread takes every command waiting in the channel (up
//! to [`MAX_BATCH`]), runs them in one transaction, commits once (one
//! fsync), then applies the committed changes to [`Shared`] in order and
//! answers each caller. Pipelined submits from many clients therefore share
//! commits instead of each paying for its own.
//!
//! Environments: a job's environment is stored (table `job_env`) only while
//! the job waits in the queue. A transaction that removed one is followed
//! by `PRAGMA wal_checkpoint(TRUNCATE)` before anyone is answered, and the
//! database runs with `secure_delete`, so once a job has started no byte of
//! its environment is left in the database file or its WAL.

pub mod read;
pub mod schema;

use crate::state::Shared;
use agentd_proto::{Job, Notification};
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub use read::Reader;
pub use schema::{Loaded, LoadedJob, ShimId};

/// Most commands committed in one transaction.
pub const MAX_BATCH: usize = 4096;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or is not a database.
    #[error("cannot open the job database {path}: {source}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A newer agentd wrote this database.
    #[error(
        "the job database {path} has schema version {found}, newer than this agentd supports ({supported}); upgrade agentd or use another --state-dir"
    )]
    NewerSchema {
        /// The database path.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Version this build supports.
        supported: i64,
    },
    /// A statement or the commit failed (disk full, read-only, ...).
    #[error("job database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A command or its transaction failed in the store thread (disk full,
    /// read-only file system, ...); the text is SQLite's.
    #[error("job database error: {0}")]
    Failed(String),
    /// A stored notification does not decode.
    #[error("job database holds an unreadable notification: {0}")]
    Decode(#[from] serde_json::Error),
    /// The store thread has stopped.
    #[error("the job database is closed")]
    Closed,
}

enum Op {
    InsertJob {
        ord: u64,
        job: Box<Job>,
        env_given: bool,
        tail_bytes: u64,
    },
    KeepEnv {
        id: String,
        env: String,
    },
    WipeEnv {
        id: String,
    },
    MarkStarted {
        id: String,
        pid: u32,
        started_at: String,
        shim: ShimId,
    },
    /// A job handed to another executor (Slurm): its id there, and its
    /// start once seen.
    MarkSubmitted {
        id: String,
        external_id: String,
        started_at: Option<String>,
    },
    Finish {
        job: Box<Job>,
        output_tail: String,
    },
    Ack {
        session: String,
        up_to: u64,
    },
    /// Retention's pending cap: `session`'s notifications up to `up_to`
    /// stop being pending, recorded as dropped.
    DropPending {
        session: String,
        up_to: u64,
    },
    /// Removes jobs (rows, notifications) and records their ids in
    /// `removing` until their output is deleted.
    RemoveJobs {
        ids: Vec<String>,
    },
    /// Their output is deleted: forget the ids in `removing`.
    ForgetRemoved {
        ids: Vec<String>,
    },
    SetState {
        id: String,
        state: agentd_proto::JobState,
    },
    SetGroupLimit {
        group: String,
        max: Option<usize>,
    },
    Barrier,
}

enum Output {
    Done,
    /// A finished job's notification and, when the session then held more
    /// than the pending cap, the drop made in the same transaction: the
    /// highest `seq` dropped and how many.
    Notification(Box<Notification>, Option<(u64, u64)>),
    Acked(u64),
    /// Rows removed or notifications dropped.
    Count(u64),
    /// Jobs whose rows were removed: id and session.
    Removed(Vec<(String, String)>),
}

struct Command {
    op: Op,
    reply: Option<oneshot::Sender<Result<Output, String>>>,
}

/// A handle to the store thread. Cloning is cheap; the thread stops when the
/// last handle is dropped, after finishing what was sent.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Command>,
    /// Reads finished jobs ([`read`]), beside the store thread.
    pub reader: Reader,
}

impl Store {
    /// Opens the database, loads it and starts the store thread, which
    /// applies committed job ends and acks to `shared`.
    ///
    /// Errors: as [`schema::open`] and [`schema::load`].
    ///
    /// `pending_cap` is `[retention] max_pending_per_session`: a job's end
    /// that leaves its session with more pending notifications drops the
    /// oldest in the same transaction.
    pub fn open(
        path: PathBuf,
        shared: Arc<Shared>,
        pending_cap: Option<usize>,
    ) -> Result<(Store, Loaded), StoreError> {
        let conn = schema::open(&path)?;
        let loaded = schema::load(&conn)?;
        let reader = Reader::new(path.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let last_seq = loaded.last_seq;
        std::thread::Builder::new()
            .name("agentd-store".into())
            .spawn(move || run(conn, rx, shared, last_seq, pending_cap))
            .map_err(|e| StoreError::Open {
                path,
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok((Store { tx, reader }, loaded))
    }

    async fn exec(&self, op: Op) -> Result<Output, StoreError> {
        self.send(op)?.await
    }

    /// Sends `op` now; the future answers once it is committed.
    fn send(
        &self,
        op: Op,
    ) -> Result<impl Future<Output = Result<Output, StoreError>> + use<>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command {
                op,
                reply: Some(reply),
            })
            .map_err(|_| StoreError::Closed)?;
        Ok(async move {
            match rx.await {
                Ok(Ok(out)) => Ok(out),
                Ok(Err(msg)) => Err(StoreError::Failed(msg)),
                Err(_) => Err(StoreError::Closed),
            }
        })
    }

    /// Records a new job under key `ord` ([`Shared::next_ord`]); returns once it is committed. Its environment is
    /// not stored: `env_given` only records that it has one (see
    /// [`schema::insert_job`]); [`Store::keep_env`] stores it if the job
    /// must wait in the queue.
    ///
    /// Errors: the commit failed (the job is not recorded).
    pub async fn insert_job(
        &self,
        ord: u64,
        job: Job,
        env_given: bool,
        tail_bytes: u64,
    ) -> Result<(), StoreError> {
        self.exec(Op::InsertJob {
            ord,
            job: Box::new(job),
            env_given,
            tail_bytes,
        })
        .await
        .map(|_| ())
    }

    /// Sends the environment of a job that waits in the queue to be stored
    /// (until [`Store::wipe_env`], the job's start or its end); the returned
    /// future resolves once it is committed. Sending happens at the call,
    /// so a caller holding the job table's lock orders it before any later
    /// start of the job.
    ///
    /// Errors: the commit failed (the environment is then only in memory).
    pub fn keep_env(
        &self,
        id: String,
        env: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), StoreError>> + use<> {
        let env = serde_json::to_string(env).expect("a string map always serialises");
        let rx = self.send(Op::KeepEnv { id, env });
        async move { rx?.await.map(|_| ()) }
    }

    /// Overwrites a queued job's stored environment and wipes the WAL;
    /// returns once that is committed, so a job started after it never has
    /// its environment on disk.
    ///
    /// Errors: the commit or the wipe failed.
    pub async fn wipe_env(&self, id: String) -> Result<(), StoreError> {
        self.exec(Op::WipeEnv { id }).await.map(|_| ())
    }

    /// Records that a job started, with its pid and the shim supervising
    /// it. Not awaited: a later finish of the same job is committed after
    /// it, as the channel keeps order.
    pub fn mark_started(&self, id: String, pid: u32, started_at: String, shim: ShimId) {
        let _ = self.tx.send(Command {
            op: Op::MarkStarted {
                id,
                pid,
                started_at,
                shim,
            },
            reply: None,
        });
    }

    /// Records that a job was handed to another executor (Slurm) under
    /// `external_id`, and its start time once known; the job counts as
    /// running from then on (a restarted agentd re-adopts it by that id).
    /// Not awaited: a later write of the same job is committed after it,
    /// as the channel keeps order.
    pub fn mark_submitted_later(
        &self,
        id: String,
        external_id: String,
        started_at: Option<String>,
    ) {
        let _ = self.tx.send(Command {
            op: Op::MarkSubmitted {
                id,
                external_id,
                started_at,
            },
            reply: None,
        });
    }

    /// Records a job's end and its notification in one transaction; after
    /// the commit the store thread updates the job table and queues the
    /// notification. Returns the notification.
    ///
    /// Errors: the commit failed; the job's end is still applied in memory
    /// (its process is gone either way) but not durable.
    pub async fn finish(&self, job: Job, output_tail: String) -> Result<Notification, StoreError> {
        match self
            .exec(Op::Finish {
                job: Box::new(job),
                output_tail,
            })
            .await?
        {
            Output::Notification(n, _) => Ok(*n),
            _ => unreachable!("finish answers with a notification"),
        }
    }

    /// Acknowledges `session`'s notifications up to `up_to`; after the
    /// commit they leave the in-memory queue. Returns how many were pending.
    ///
    /// Errors: the commit failed (nothing is acknowledged).
    pub async fn ack(&self, session: String, up_to: u64) -> Result<u64, StoreError> {
        match self.exec(Op::Ack { session, up_to }).await? {
            Output::Acked(n) => Ok(n),
            _ => unreachable!("ack answers with a count"),
        }
    }

    /// Drops `session`'s pending notifications up to `up_to` (the pending
    /// cap, [`crate::retention`]) and records how many, so the session's
    /// next peek says so; after the commit they leave the in-memory queue.
    /// Returns how many were dropped.
    ///
    /// Errors: the commit failed (nothing is dropped).
    pub async fn drop_pending(&self, session: String, up_to: u64) -> Result<u64, StoreError> {
        match self.exec(Op::DropPending { session, up_to }).await? {
            Output::Count(n) => Ok(n),
            _ => unreachable!("drop_pending answers with a count"),
        }
    }

    /// Removes finished jobs `ids`: their rows and notifications go in one
    /// transaction, which also records the ids in the `removing` table;
    /// after the commit they leave the job table and queues. The caller
    /// then deletes their output and calls [`Store::forget_removed`].
    /// Returns how many rows were removed.
    ///
    /// Errors: the commit failed (nothing is removed).
    pub async fn remove_jobs(&self, ids: Vec<String>) -> Result<u64, StoreError> {
        match self.exec(Op::RemoveJobs { ids }).await? {
            Output::Removed(r) => Ok(r.len() as u64),
            _ => unreachable!("remove_jobs answers with a count"),
        }
    }

    /// Forgets removed jobs whose output is deleted. Not awaited: a crash
    /// before the commit only makes the next start delete (nothing) again.
    pub fn forget_removed(&self, ids: Vec<String>) {
        let _ = self.tx.send(Command {
            op: Op::ForgetRemoved { ids },
            reply: None,
        });
    }

    /// Records a live job's new state (`paused`, or back to `running` or
    /// `queued`); returns once it is committed. A job that ended
    /// meanwhile keeps its final state.
    ///
    /// Errors: the commit failed.
    pub async fn set_state(
        &self,
        id: String,
        state: agentd_proto::JobState,
    ) -> Result<(), StoreError> {
        self.exec(Op::SetState { id, state }).await.map(|_| ())
    }

    /// Sends a live job's new state to be recorded, without waiting (see
    /// [`Store::set_state`]); ordered after everything sent before.
    pub fn set_state_later(&self, id: String, state: agentd_proto::JobState) {
        let _ = self.tx.send(Command {
            op: Op::SetState { id, state },
            reply: None,
        });
    }

    /// Stores a group's `max_running` (`None`: no limit of its own);
    /// returns once it is committed.
    ///
    /// Errors: the commit failed.
    pub async fn set_group_limit(
        &self,
        group: String,
        max: Option<usize>,
    ) -> Result<(), StoreError> {
        self.exec(Op::SetGroupLimit { group, max })
            .await
            .map(|_| ())
    }

    /// Returns once everything sent before it is committed.
    pub async fn flush(&self) {
        let _ = self.exec(Op::Barrier).await;
    }
}

/// The store thread's loop: batch, execute, commit, apply, reply.
fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    mut last_seq: u64,
    pending_cap: Option<usize>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        let outcome = execute(&mut conn, &mut batch, &mut last_seq, &shared, pending_cap);
        for (cmd, result) in batch.drain(..).zip(outcome.results) {
            let result = match (outcome.commit.as_ref(), result) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), r) => r,
            };
            apply(&shared, cmd.op, &result, outcome.commit.is_ok());
            if let Some(reply) = cmd.reply {
                let _ = reply.send(result);
            }
        }
    }
}

struct BatchOutcome {
    results: Vec<Result<Output, String>>,
    commit: Result<(), String>,
}

fn execute(
    conn: &mut Connection,
    batch: &mut [Command],
    last_seq: &mut u64,
    shared: &Shared,
    pending_cap: Option<usize>,
) -> BatchOutcome {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!("cannot begin a transaction: {e}");
            return BatchOutcome {
                results: batch.iter().map(|_| Err(e.to_string())).collect(),
                commit: Err(e.to_string()),
            };
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    let mut cap = PendingCap::default();
    // Set when an environment was removed: the WAL then still holds it.
    let mut wipe = false;
    let mut wiped = |had_env: bool| wipe |= had_env;
    for cmd in batch.iter_mut() {
        let result = match &mut cmd.op {
            Op::InsertJob {
                ord,
                job,
                env_given,
                tail_bytes,
            } => schema::insert_job(&tx, *ord, job, *env_given, *tail_bytes).map(|_| Output::Done),
            Op::KeepEnv { id, env } => schema::keep_env(&tx, id, env).map(|_| Output::Done),
            Op::WipeEnv { id } => schema::wipe_env(&tx, id).map(|w| {
                wiped(w);
                Output::Done
            }),
            Op::MarkStarted {
                id,
                pid,
                started_at,
                shim,
            } => schema::mark_started(&tx, id, *pid, started_at, *shim).map(|w| {
                wiped(w);
                Output::Done
            }),
            Op::MarkSubmitted {
                id,
                external_id,
                started_at,
            } => schema::mark_submitted(&tx, id, external_id, started_at.as_deref()).map(|w| {
                wiped(w);
                Output::Done
            }),
            Op::Finish { job, output_tail } => {
                *last_seq += 1;
                let n = Notification::of_job(job, *last_seq, std::mem::take(output_tail));
                schema::finish_job(&tx, job, &n)
                    .and_then(|w| {
                        wiped(w);
                        let drop = match pending_cap {
                            Some(max) => cap.enforce(&tx, shared, &n, max)?,
                            None => None,
                        };
                        Ok(drop)
                    })
                    .map(|drop| Output::Notification(Box::new(n), drop))
            }
            Op::Ack { session, up_to } => schema::ack(&tx, session, *up_to).map(Output::Acked),
            Op::DropPending { session, up_to } => {
                schema::drop_pending(&tx, session, *up_to).map(Output::Count)
            }
            Op::RemoveJobs { ids } => schema::remove_jobs(&tx, ids).map(Output::Removed),
            Op::ForgetRemoved { ids } => schema::forget_removed(&tx, ids).map(|_| Output::Done),
            Op::SetState { id, state } => schema::set_state(&tx, id, *state).map(|_| Output::Done),
            Op::SetGroupLimit { group, max } => {
                schema::set_group_limit(&tx, group, *max).map(|_| Output::Done)
            }
            Op::Barrier => Ok(Output::Done),
        };
        if let Err(e) = &result {
            tracing::error!("job database statement failed: {e}");
        }
        results.push(result.map_err(|e| e.to_string()));
    }
    let commit = tx.commit().map_err(|e| {
        tracing::error!("job database commit failed: {e}");
        e.to_string()
    });
    if wipe && commit.is_ok() {
        // Before anyone is answered: a job whose environment was wiped
        // starts only after this.
        if let Err(e) = schema::wipe_wal(conn) {
            tracing::error!(
                "cannot checkpoint the job database's WAL; a wiped environment may stay in it until the next wipe: {e}"
            );
        }
    }
    BatchOutcome { results, commit }
}

/// The pending cap within one batch: what this batch queued and dropped
/// per session, on top of the in-memory queues (which see the batch only
/// after its commit).
#[derive(Default)]
struct PendingCap {
    /// Per session: `seq`s queued by this batch and not dropped.
    queued: HashMap<String, Vec<u64>>,
    /// Per session: the highest `seq` this batch dropped.
    dropped_up_to: HashMap<String, u64>,
}

impl PendingCap {
    /// After `n` is queued: when its session holds more than `max`
    /// pending, drops the oldest down to `max` (in `tx`). Returns the drop.
    fn enforce(
        &mut self,
        tx: &Connection,
        shared: &Shared,
        n: &Notification,
        max: usize,
    ) -> rusqlite::Result<Option<(u64, u64)>> {
        let queued = self.queued.entry(n.session.clone()).or_default();
        queued.push(n.seq);
        let floor = self.dropped_up_to.get(&n.session).copied().unwrap_or(0);
        let queues = shared.queues.lock().expect("queues poisoned");
        let in_memory = queues.pending_after(&n.session, floor);
        let total = in_memory + queued.len();
        if total <= max {
            return Ok(None);
        }
        // The newest of the ones to drop: index `total - max - 1`.
        let k = total - max - 1;
        let up_to = match queues.nth_pending_after(&n.session, floor, k) {
            Some(seq) => seq,
            None => queued[k - in_memory],
        };
        drop(queues);
        let count = schema::drop_pending(tx, &n.session, up_to)?;
        self.dropped_up_to.insert(n.session.clone(), up_to);
        queued.retain(|&s| s > up_to);
        Ok(Some((up_to, count)))
    }
}

/// Applies one command's effect to memory after its transaction.
fn apply(shared: &Shared, op: Op, result: &Result<Output, String>, committed: bool) {
    match (op, result) {
        // A job's end is applied even when the commit failed: the process is
        // gone, and the notification still reaches this daemon's clients.
        (Op::Finish { job, .. }, _) => {
            let (n, drop) = match result {
                Ok(Output::Notification(n, drop)) => ((**n).clone(), *drop),
                _ => (Notification::of_job(&job, 0, String::new()), None),
            };
            if n.seq == 0 {
                // Not in the database as finished: the table keeps it.
                shared
                    .jobs
                    .lock()
                    .expect("job table poisoned")
                    .finish(*job, false);
            } else {
                shared.apply_finish(*job, n, drop);
            }
        }
        (Op::Ack { session, up_to }, Ok(_)) if committed => {
            shared
                .queues
                .lock()
                .expect("queues poisoned")
                .ack(&session, up_to);
        }
        (Op::DropPending { session, up_to }, Ok(Output::Count(n))) if committed => {
            shared
                .queues
                .lock()
                .expect("queues poisoned")
                .record_dropped(&session, up_to, *n);
        }
        (Op::RemoveJobs { .. }, Ok(Output::Removed(removed))) if committed => {
            let mut jobs = shared.jobs.lock().expect("job table poisoned");
            let mut queues = shared.queues.lock().expect("queues poisoned");
            for (id, session) in removed {
                jobs.removed(id);
                queues.remove_job(session, id);
            }
        }
        _ => {}
    }
}
