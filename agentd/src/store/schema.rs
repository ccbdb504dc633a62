//! The SQLite schema, its version check and loading the tables at start.
//!
//! Version history (`PRAGMA user_version`):
//! 1 — jobs, notifications, meta.
//! 2 — `jobs.shim_pid`, `jobs.shim_start`: the running job's shim, so a
//!     restarted agentd can adopt it (docs/survival.md). A version-1
//!     database is migrated in place with `ALTER TABLE … ADD COLUMN`.
//! 3 — `jobs.reason`: why a job ended as it did, in words (`Job.reason`).
//!
//! A database with a newer version is refused, never rewritten.

use super::StoreError;
use agentd_proto::{Job, JobState, Notification};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    ord          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    command      TEXT NOT NULL,
    cwd          TEXT NOT NULL,
    env          TEXT,
    state        TEXT NOT NULL,
    exit_code    INTEGER,
    signal       TEXT,
    pid          INTEGER,
    session      TEXT NOT NULL,
    label        TEXT,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    duration_ms  INTEGER,
    timeout_secs REAL,
    tail_bytes   INTEGER NOT NULL,
    output_bytes INTEGER NOT NULL DEFAULT 0,
    shim_pid     INTEGER,
    shim_start   INTEGER,
    reason       TEXT
);
CREATE TABLE IF NOT EXISTS notifications (
    seq     INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    body    TEXT NOT NULL,
    acked   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (session, seq) WHERE acked = 0;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0);
";

/// Version 1 to 2: the shim of a running job.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE jobs ADD COLUMN shim_pid INTEGER;
ALTER TABLE jobs ADD COLUMN shim_start INTEGER;
";

/// Version 2 to 3: why a job ended.
const MIGRATE_2_TO_3: &str = "
ALTER TABLE jobs ADD COLUMN reason TEXT;
";

/// A job as loaded at start, with what is needed to run it if it is queued.
pub struct LoadedJob {
    /// The job.
    pub job: Job,
    /// Its notification tail size in bytes.
    pub tail_bytes: u64,
    /// Its environment overlay (queued jobs only).
    pub env: Option<BTreeMap<String, String>>,
    /// The shim supervising it, when it was started by an agentd that
    /// records shims (schema 2): `None` for jobs that never ran and for
    /// jobs a version-1 agentd started.
    pub shim: Option<ShimId>,
}

/// A job's shim process, identified so that a reused pid is never mistaken
/// for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShimId {
    /// The shim's pid.
    pub pid: u32,
    /// Its start time: field 22 (`starttime`) of `/proc/<pid>/stat`, in clock
    /// ticks since boot.
    pub start: u64,
}

/// Everything read at start.
pub struct Loaded {
    /// All jobs, oldest first.
    pub jobs: Vec<LoadedJob>,
    /// Unacknowledged notifications, in `seq` order.
    pub pending: Vec<Notification>,
    /// The highest `seq` ever assigned.
    pub last_seq: u64,
}

/// Opens (creating if needed) the database at `path` in WAL mode with full
/// synchronous commits.
///
/// Errors: [`StoreError::Open`] when the file cannot be opened or is not a
/// database; [`StoreError::NewerSchema`] when another agentd version wrote
/// it.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    // Create or migrate, and stamp the version, in one transaction.
    let upgrade = match version {
        0 => format!("BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"),
        1 => format!(
            "BEGIN; {MIGRATE_1_TO_2} {MIGRATE_2_TO_3} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        2 => format!("BEGIN; {MIGRATE_2_TO_3} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"),
        _ => String::new(),
    };
    if !upgrade.is_empty() {
        if let Err(e) = conn.execute_batch(&upgrade) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(open_err(e));
        }
        if version != 0 {
            tracing::info!(
                "migrated the job database {} from schema {version} to {SCHEMA_VERSION}",
                path.display()
            );
        }
    }
    Ok(conn)
}

fn parse_state(s: &str) -> rusqlite::Result<JobState> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// Reads every job and the pending notifications.
///
/// Errors: SQLite errors, or a row that does not decode.
pub fn load(conn: &Connection) -> Result<Loaded, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, command, cwd, env, state, exit_code, signal, pid, session, label,
                created_at, started_at, finished_at, duration_ms, timeout_secs,
                tail_bytes, output_bytes, shim_pid, shim_start, reason
         FROM jobs ORDER BY ord",
    )?;
    let jobs = stmt
        .query_map([], |r| {
            let id: String = r.get(0)?;
            let env: Option<String> = r.get(3)?;
            Ok(LoadedJob {
                job: Job {
                    short_id: id[..8.min(id.len())].to_string(),
                    id,
                    command: r.get(1)?,
                    cwd: r.get(2)?,
                    state: parse_state(&r.get::<_, String>(4)?)?,
                    exit_code: r.get(5)?,
                    signal: r.get(6)?,
                    pid: r.get(7)?,
                    session: r.get(8)?,
                    label: r.get(9)?,
                    created_at: r.get(10)?,
                    started_at: r.get(11)?,
                    finished_at: r.get(12)?,
                    duration_ms: r.get::<_, Option<i64>>(13)?.map(|d| d as u64),
                    timeout_secs: r.get(14)?,
                    output_bytes: r.get::<_, i64>(16)? as u64,
                    reason: r.get(19)?,
                },
                tail_bytes: r.get::<_, i64>(15)? as u64,
                env: env.and_then(|e| serde_json::from_str(&e).ok()),
                shim: match (r.get::<_, Option<i64>>(17)?, r.get::<_, Option<i64>>(18)?) {
                    (Some(pid), Some(start)) => Some(ShimId {
                        pid: pid as u32,
                        start: start as u64,
                    }),
                    _ => None,
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare("SELECT body FROM notifications WHERE acked = 0 ORDER BY seq")?;
    let pending = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .map(|body| Ok(serde_json::from_str(&body?)?))
        .collect::<Result<Vec<Notification>, StoreError>>()?;
    let last_seq: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(Loaded {
        jobs,
        pending,
        last_seq: last_seq.unwrap_or(0) as u64,
    })
}

/// Inserts a new job row.
pub fn insert_job(
    conn: &Connection,
    job: &Job,
    env: Option<&str>,
    tail_bytes: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO jobs (id, command, cwd, env, state, session, label, created_at,
                           timeout_secs, tail_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        job.id,
        job.command,
        job.cwd,
        env,
        job.state.as_str(),
        job.session,
        job.label,
        job.created_at,
        job.timeout_secs,
        tail_bytes as i64,
    ])?;
    Ok(())
}

/// Records that a job started under `shim` (and forgets its environment).
pub fn mark_started(
    conn: &Connection,
    id: &str,
    pid: u32,
    started_at: &str,
    shim: ShimId,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'running', pid = ?2, started_at = ?3, env = NULL,
                shim_pid = ?4, shim_start = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, pid, started_at, shim.pid, shim.start as i64])?;
    Ok(())
}

/// Records a job's end and queues its notification.
pub fn finish_job(conn: &Connection, job: &Job, n: &Notification) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, exit_code = ?3, signal = ?4, pid = ?5, started_at = ?6,
                finished_at = ?7, duration_ms = ?8, output_bytes = ?9, env = NULL,
                reason = ?10
         WHERE id = ?1",
    )?
    .execute(params![
        job.id,
        job.state.as_str(),
        job.exit_code,
        job.signal,
        job.pid,
        job.started_at,
        job.finished_at,
        job.duration_ms.map(|d| d as i64),
        job.output_bytes as i64,
        job.reason,
    ])?;
    let body = serde_json::to_string(n).expect("a notification always serialises");
    conn.prepare_cached(
        "INSERT INTO notifications (seq, session, job_id, body) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![n.seq as i64, n.session, n.job_id, body])?;
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_seq'")?
        .execute(params![n.seq as i64])?;
    Ok(())
}

/// Acknowledges a session's notifications up to `seq`; returns how many
/// were pending.
pub fn ack(conn: &Connection, session: &str, up_to: u64) -> rusqlite::Result<u64> {
    let n = conn
        .prepare_cached(
            "UPDATE notifications SET acked = 1 WHERE session = ?1 AND seq <= ?2 AND acked = 0",
        )?
        .execute(params![session, up_to as i64])?;
    Ok(n as u64)
}
