//! The SQLite schema, its version check and loading the tables at start.
//!
//! Version history (`PRAGMA user_version`):
//! 1 — jobs, notifications, meta.
//! 2 — `jobs.shim_pid`, `jobs.shim_start`: the running job's shim, so a
//!     restarted agentd can adopt it (docs/survival.md). A version-1
//!     database is migrated in place with `ALTER TABLE … ADD COLUMN`.
//! 3 — `jobs.reason`: why a job ended as it did, in words (`Job.reason`).
//! 4 — `jobs.env` moves to its own table, `job_env`, which holds a
//!     queued job's environment only while it waits (README, "Security"):
//!     agentd wipes it before the job starts, with `secure_delete` on and a
//!     `wal_checkpoint(TRUNCATE)` after the commit, so no byte of it stays
//!     in the database, its free pages or its WAL. The migration carries
//!     queued jobs' environments over, then drops the column and rewrites
//!     the file (`VACUUM`), which also clears what earlier versions left in
//!     free pages.
//! 5 — `jobs.sandbox`, `jobs.limits`: a job's sandbox and resource
//!     limits (docs/sandbox.md).
//! 6 — retention (DESIGN.md, "A daemon for a lifetime"): `removing`, the
//!     ids of removed jobs whose output is still to be deleted (so a crash
//!     mid-removal leaves no orphan output); `dropped`, what the pending cap
//!     dropped that a session has not acknowledged yet; an index on
//!     `notifications.job_id` for removing a job's notification.
//! 7 — executors (DESIGN.md, "Jobs on a cluster"): `jobs.executor`
//!     (`local` or `slurm`; NULL reads as `local`), `jobs.external_id`
//!     (the Slurm job id) and `jobs.slurm` (the resources asked, JSON).
//! 8 — queue control (DESIGN.md, "Queue control"): `jobs.job_group`
//!     (default `'default'`), `jobs.after_ids` (JSON array of full ids, or
//!     NULL), the state `paused`, and `job_groups`, the per-group
//!     `max_running` set by `job.group_set` (NULL: no limit).
//! 9 — finished jobs are served from the database, not held in memory
//!     (docs/limits.md): indexes `jobs_session (session, ord)` and
//!     `jobs_state (state, ord)`, so `job.list` filtered by session or
//!     state walks its jobs newest first and a restart reads only the live
//!     ones. `ord` (the rowid) rises with creation, so the table itself is
//!     the created-time order.
//!
//! A database with a newer version is refused, never rewritten.

use super::StoreError;
use agentd_proto::{Executor, Job, JobState, Notification};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;

/// How long the store's connection waits for a lock held by a reader
/// (a `wal_checkpoint(TRUNCATE)` waits until no reader uses the WAL).
pub const WRITER_BUSY: std::time::Duration = std::time::Duration::from_secs(10);

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 9;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    ord          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    command      TEXT NOT NULL,
    cwd          TEXT NOT NULL,
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
    reason       TEXT,
    sandbox      TEXT,
    limits       TEXT,
    executor     TEXT,
    external_id  TEXT,
    slurm        TEXT,
    job_group    TEXT NOT NULL DEFAULT 'default',
    after_ids    TEXT
);
CREATE TABLE IF NOT EXISTS job_groups (
    name        TEXT PRIMARY KEY,
    max_running INTEGER
);
CREATE TABLE IF NOT EXISTS notifications (
    seq     INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    body    TEXT NOT NULL,
    acked   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_env (
    job_id TEXT PRIMARY KEY,
    env    TEXT
);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (session, seq) WHERE acked = 0;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0);
CREATE TABLE IF NOT EXISTS removing (
    job_id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS dropped (
    session   TEXT NOT NULL,
    up_to_seq INTEGER NOT NULL,
    count     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_job ON notifications (job_id);
CREATE INDEX IF NOT EXISTS jobs_session ON jobs (session, ord);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, ord);
";

/// Version 8 to 9: indexes for serving finished jobs from the database.
const MIGRATE_8_TO_9: &str = "
CREATE INDEX jobs_session ON jobs (session, ord);
CREATE INDEX jobs_state ON jobs (state, ord);
";

/// Version 5 to 6: retention's tables and index.
const MIGRATE_5_TO_6: &str = "
CREATE TABLE removing (
    job_id TEXT PRIMARY KEY
);
CREATE TABLE dropped (
    session   TEXT NOT NULL,
    up_to_seq INTEGER NOT NULL,
    count     INTEGER NOT NULL
);
CREATE INDEX notifications_job ON notifications (job_id);
";

/// Version 6 to 7: a job's executor, its id there, its Slurm resources.
const MIGRATE_6_TO_7: &str = "
ALTER TABLE jobs ADD COLUMN executor TEXT;
ALTER TABLE jobs ADD COLUMN external_id TEXT;
ALTER TABLE jobs ADD COLUMN slurm TEXT;
";

/// Version 7 to 8: groups and dependencies.
const MIGRATE_7_TO_8: &str = "
ALTER TABLE jobs ADD COLUMN job_group TEXT NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN after_ids TEXT;
CREATE TABLE job_groups (
    name        TEXT PRIMARY KEY,
    max_running INTEGER
);
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

/// Version 3 to 4: queued jobs' environments in their own table; the
/// column goes (the file is then rewritten, see [`open`]).
const MIGRATE_3_TO_4: &str = "
CREATE TABLE job_env (
    job_id TEXT PRIMARY KEY,
    env    TEXT
);
INSERT INTO job_env (job_id, env) SELECT id, env FROM jobs WHERE state = 'queued' AND env IS NOT NULL;
ALTER TABLE jobs DROP COLUMN env;
";

/// Version 4 to 5: a job's sandbox and limits.
const MIGRATE_4_TO_5: &str = "
ALTER TABLE jobs ADD COLUMN sandbox TEXT;
ALTER TABLE jobs ADD COLUMN limits TEXT;
";

/// A job as loaded at start, with what is needed to run it if it is queued.
pub struct LoadedJob {
    /// Its key: `jobs.ord`, rising with creation.
    pub ord: u64,
    /// The job.
    pub job: Job,
    /// Its notification tail size in bytes.
    pub tail_bytes: u64,
    /// Its environment overlay (queued jobs only).
    pub env: Option<BTreeMap<String, String>>,
    /// A queued job that was given an environment agentd did not keep on
    /// disk, because it was starting the job (see [`insert_job`]): it
    /// cannot run as it was asked to, and fails at start unless it is found
    /// already started.
    pub env_not_kept: bool,
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
    /// The live jobs (queued, running), oldest first.
    pub jobs: Vec<LoadedJob>,
    /// The highest `ord` in the table (0 when it is empty).
    pub max_ord: u64,
    /// How many jobs the table holds, live and finished.
    pub total: u64,
    /// The finished jobs live ones depend on (`after`), by id, so the
    /// run queue can judge them without holding every job.
    pub ended_deps: std::collections::HashMap<String, Job>,
    /// Unacknowledged notifications, in `seq` order.
    pub pending: Vec<Notification>,
    /// The highest `seq` ever assigned.
    pub last_seq: u64,
    /// Removed jobs whose output may still be on disk.
    pub removing: Vec<String>,
    /// Unacknowledged drops of the pending cap: session, highest `seq`
    /// dropped, how many.
    pub dropped: Vec<(String, u64, u64)>,
    /// Per-group `max_running` set by `job.group_set` (`None`: no limit).
    pub group_limits: Vec<(String, Option<usize>)>,
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
    private_files(path).map_err(|e| {
        open_err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("cannot make it private (0600): {e}")),
        ))
    })?;
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
    // Deleted content is overwritten with zeros (in pages and in freed
    // pages alike), so a wiped environment leaves nothing in the file.
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(open_err)?;
    // A wipe's checkpoint waits this long for readers to leave the WAL.
    conn.busy_timeout(WRITER_BUSY).map_err(open_err)?;
    // Create or migrate, and stamp the version, in one transaction.
    let upgrade = match version {
        0 => format!("BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"),
        1 => format!(
            "BEGIN; {MIGRATE_1_TO_2} {MIGRATE_2_TO_3} {MIGRATE_3_TO_4} {MIGRATE_4_TO_5} {MIGRATE_5_TO_6} {MIGRATE_6_TO_7} {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        2 => format!(
            "BEGIN; {MIGRATE_2_TO_3} {MIGRATE_3_TO_4} {MIGRATE_4_TO_5} {MIGRATE_5_TO_6} {MIGRATE_6_TO_7} {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        3 => format!(
            "BEGIN; {MIGRATE_3_TO_4} {MIGRATE_4_TO_5} {MIGRATE_5_TO_6} {MIGRATE_6_TO_7} {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        4 => format!(
            "BEGIN; {MIGRATE_4_TO_5} {MIGRATE_5_TO_6} {MIGRATE_6_TO_7} {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        5 => format!(
            "BEGIN; {MIGRATE_5_TO_6} {MIGRATE_6_TO_7} {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        6 => format!(
            "BEGIN; {MIGRATE_6_TO_7} {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        7 => format!(
            "BEGIN; {MIGRATE_7_TO_8} {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ),
        8 => format!("BEGIN; {MIGRATE_8_TO_9} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"),
        _ => String::new(),
    };
    if !upgrade.is_empty() {
        if let Err(e) = conn.execute_batch(&upgrade) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(open_err(e));
        }
        if version != 0 && version < 4 {
            // Earlier versions kept environments in `jobs.env`: their bytes
            // may linger in free pages, which only a rewrite clears.
            conn.execute_batch("VACUUM").map_err(open_err)?;
        }
        if version != 0 {
            tracing::info!(
                "migrated the job database {} from schema {version} to {SCHEMA_VERSION}",
                path.display()
            );
        }
    }
    // A crash between a wipe's commit and its checkpoint leaves old frames
    // in the WAL; this clears them.
    wipe_wal(&conn).map_err(open_err)?;
    Ok(conn)
}

/// Copies the WAL into the database and truncates it to nothing, so no
/// frame written before (a wiped environment's included) stays in the
/// file. SQLite's `PRAGMA wal_checkpoint(TRUNCATE)`. Readers of finished
/// jobs ([`super::read`]) hold the WAL only for one short query; the
/// checkpoint waits for them (the writer's busy timeout, [`WRITER_BUSY`]).
///
/// Errors: SQLite's (an I/O error).
pub fn wipe_wal(conn: &Connection) -> rusqlite::Result<()> {
    let (busy, _, _): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        tracing::warn!(
            "the job database's WAL could not be checkpointed (busy); it is retried after the next wipe"
        );
    }
    Ok(())
}

/// Makes the database and its WAL and shared-memory files mode 0600:
/// creates the database file so (SQLite gives the WAL and `-shm` files the
/// database file's mode), and tightens files an older agentd left looser.
///
/// Errors: a file cannot be created or its mode changed.
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mut names = vec![path.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(name.into());
    }
    for name in names {
        match std::fs::metadata(&name) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600))?
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn parse_state(s: &str) -> rusqlite::Result<JobState> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// The columns [`job_row`] decodes, in its order, for `SELECT … FROM jobs`.
pub const JOB_COLUMNS: &str = "id, command, cwd, state, exit_code, signal, pid, session, label,
    created_at, started_at, finished_at, duration_ms, timeout_secs,
    tail_bytes, output_bytes, shim_pid, shim_start, reason, ord, sandbox, limits,
    executor, external_id, slurm, job_group, after_ids";

/// One `jobs` row selected with [`JOB_COLUMNS`]: its `ord`, the job, its
/// notification tail size and its shim.
///
/// Errors: a column that does not decode (an unknown state, bad JSON).
pub fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, Job, u64, Option<ShimId>)> {
    let id: String = r.get(0)?;
    let job = Job {
        short_id: id[..8.min(id.len())].to_string(),
        id,
        command: r.get(1)?,
        cwd: r.get(2)?,
        state: parse_state(&r.get::<_, String>(3)?)?,
        exit_code: r.get(4)?,
        signal: r.get(5)?,
        pid: r.get(6)?,
        session: r.get(7)?,
        label: r.get(8)?,
        created_at: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
        duration_ms: r.get::<_, Option<i64>>(12)?.map(|d| d as u64),
        timeout_secs: r.get(13)?,
        output_bytes: r.get::<_, i64>(15)? as u64,
        reason: r.get(18)?,
        sandbox: json_column(r, 20)?,
        limits: json_column(r, 21)?,
        executor: match r.get::<_, Option<String>>(22)? {
            Some(e) => e.parse().map_err(|e: String| {
                rusqlite::Error::FromSqlConversionFailure(22, rusqlite::types::Type::Text, e.into())
            })?,
            None => Executor::Local,
        },
        external_id: r.get(23)?,
        slurm: json_column(r, 24)?,
        group: r.get(25)?,
        after: json_column(r, 26)?.unwrap_or_default(),
    };
    let shim = match (r.get::<_, Option<i64>>(16)?, r.get::<_, Option<i64>>(17)?) {
        (Some(pid), Some(start)) => Some(ShimId {
            pid: pid as u32,
            start: start as u64,
        }),
        _ => None,
    };
    Ok((
        r.get::<_, i64>(19)? as u64,
        job,
        r.get::<_, i64>(14)? as u64,
        shim,
    ))
}

/// The states a job is live in (not finished), as an SQL list: `'queued',
/// 'running'`. Built from [`JobState::ALL`], so a new live state is
/// included.
pub fn live_states_sql() -> String {
    states_sql(JobState::ALL.into_iter().filter(|s| !s.is_finished()))
}

/// The finished states, as an SQL list (see [`live_states_sql`]).
pub fn finished_states_sql() -> String {
    states_sql(JobState::ALL.into_iter().filter(|s| s.is_finished()))
}

/// States as an SQL list of string literals (their wire names hold no
/// quote).
pub fn states_sql(states: impl IntoIterator<Item = JobState>) -> String {
    states
        .into_iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads what a starting agentd holds in memory: the live (queued,
/// running) jobs, the pending notifications, the drops and removals not
/// finished, and counters. Finished jobs stay in the database
/// ([`super::read`]); this reads none of them.
///
/// Errors: SQLite errors, or a row that does not decode.
pub fn load(conn: &Connection) -> Result<Loaded, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({}) ORDER BY ord",
        live_states_sql()
    ))?;
    let jobs = stmt
        .query_map([], |r| {
            let (ord, job, tail_bytes, shim) = job_row(r)?;
            Ok(LoadedJob {
                ord,
                job,
                tail_bytes,
                env: None,
                env_not_kept: false,
                shim,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut jobs = jobs;
    let mut stmt = conn.prepare("SELECT job_id, env FROM job_env")?;
    let envs = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if !envs.is_empty() {
        for l in jobs.iter_mut().filter(|l| !l.job.state.is_finished()) {
            match envs.get(&l.job.id) {
                Some(Some(env)) => l.env = serde_json::from_str(env).ok(),
                Some(None) => l.env_not_kept = true,
                None => {}
            }
        }
    }
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
    let removing = conn
        .prepare("SELECT job_id FROM removing")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let dropped = conn
        .prepare("SELECT session, up_to_seq, count FROM dropped ORDER BY up_to_seq")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let group_limits = conn
        .prepare("SELECT name, max_running FROM job_groups ORDER BY name")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.map(|n| n as usize),
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let max_ord: Option<i64> = conn.query_row("SELECT MAX(ord) FROM jobs", [], |r| r.get(0))?;
    let total: i64 =
        conn.query_row("SELECT COUNT(*) FROM jobs INDEXED BY jobs_state", [], |r| {
            r.get(0)
        })?;
    let mut ended_deps = std::collections::HashMap::new();
    {
        let live: std::collections::HashSet<&str> =
            jobs.iter().map(|l| l.job.id.as_str()).collect();
        let mut stmt = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
        for dep in jobs.iter().flat_map(|l| &l.job.after) {
            if live.contains(dep.as_str()) || ended_deps.contains_key(dep) {
                continue;
            }
            if let Some((_, job, ..)) = stmt.query_row([dep], job_row).optional()? {
                ended_deps.insert(dep.clone(), job);
            }
        }
    }
    Ok(Loaded {
        jobs,
        ended_deps,
        max_ord: max_ord.unwrap_or(0) as u64,
        total: total as u64,
        pending,
        last_seq: last_seq.unwrap_or(0) as u64,
        removing,
        dropped,
        group_limits,
    })
}

/// A nullable JSON column as a value (`sandbox`, `limits`).
fn json_column<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<T>> {
    r.get::<_, Option<String>>(i)?
        .map(|s| {
            serde_json::from_str(&s).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
            })
        })
        .transpose()
}

/// Inserts a new job row under key `ord`. `env_given`: the job was given an environment;
/// a `job_env` row without a value then says so until the job starts (at
/// [`keep_env`] it gets the value if the job must wait in the queue), so
/// that an agentd that stops before starting the job knows it cannot start
/// it as asked.
pub fn insert_job(
    conn: &Connection,
    ord: u64,
    job: &Job,
    env_given: bool,
    tail_bytes: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO jobs (id, command, cwd, state, session, label, created_at,
                           timeout_secs, tail_bytes, ord, sandbox, limits, executor, slurm, job_group, after_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        job.id,
        job.command,
        job.cwd,
        job.state.as_str(),
        job.session,
        job.label,
        job.created_at,
        job.timeout_secs,
        tail_bytes as i64,
        ord as i64,
        job.sandbox
            .as_ref()
            .map(|s| serde_json::to_string(s).expect("a sandbox always serialises")),
        job.limits
            .as_ref()
            .map(|l| serde_json::to_string(l).expect("limits always serialise")),
        job.executor.as_str(),
        job.slurm
            .as_ref()
            .map(|s| serde_json::to_string(s).expect("Slurm options always serialise")),
        job.group,
        (!job.after.is_empty())
            .then(|| serde_json::to_string(&job.after).expect("ids always serialise")),
    ])?;
    if env_given {
        conn.prepare_cached("INSERT INTO job_env (job_id, env) VALUES (?1, NULL)")?
            .execute(params![job.id])?;
    }
    Ok(())
}

/// Stores the environment (JSON) of a job that waits in the queue, so it
/// survives a restart of agentd. Does nothing when the job's `job_env` row
/// is gone (it started or ended meanwhile).
pub fn keep_env(conn: &Connection, id: &str, env: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE job_env SET env = ?2 WHERE job_id = ?1")?
        .execute(params![id, env])?;
    Ok(())
}

/// Overwrites a queued job's stored environment before it starts (the row
/// stays, without a value, until the start is recorded). Returns whether a
/// value was there, i.e. whether the WAL must be wiped after the commit.
pub fn wipe_env(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("UPDATE job_env SET env = NULL WHERE job_id = ?1 AND env IS NOT NULL")?
        .execute(params![id])?;
    Ok(n > 0)
}

/// Removes a job's `job_env` row (it started or ended). Returns whether it
/// still held an environment, i.e. whether the WAL must be wiped after the
/// commit.
fn forget_env(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM job_env WHERE job_id = ?1 RETURNING env IS NOT NULL")?;
    let mut rows = stmt.query(params![id])?;
    let mut had_env = false;
    while let Some(row) = rows.next()? {
        had_env |= row.get::<_, bool>(0)?;
    }
    Ok(had_env)
}

/// Records that a job started under `shim` and forgets its environment.
/// Returns whether an environment was still stored (see [`forget_env`]).
pub fn mark_started(
    conn: &Connection,
    id: &str,
    pid: u32,
    started_at: &str,
    shim: ShimId,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'running', pid = ?2, started_at = ?3,
                shim_pid = ?4, shim_start = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, pid, started_at, shim.pid, shim.start as i64])?;
    forget_env(conn, id)
}

/// Records that a job was submitted to another executor under
/// `external_id` (and started at `started_at`, when known), and forgets
/// its stored environment. Returns whether one was still stored.
pub fn mark_submitted(
    conn: &Connection,
    id: &str,
    external_id: &str,
    started_at: Option<&str>,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'running', external_id = ?2,
                started_at = COALESCE(?3, started_at)
         WHERE id = ?1",
    )?
    .execute(params![id, external_id, started_at])?;
    forget_env(conn, id)
}

/// Records a job's end, forgets its environment and queues its
/// notification. Returns whether an environment was still stored (a
/// queued job cancelled or failing to start; see [`forget_env`]).
pub fn finish_job(conn: &Connection, job: &Job, n: &Notification) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, exit_code = ?3, signal = ?4, pid = ?5, started_at = ?6,
                finished_at = ?7, duration_ms = ?8, output_bytes = ?9,
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
    forget_env(conn, &job.id)
}

/// Sets a live job's state (`job.pause`, `job.resume`); a job that has
/// ended meanwhile keeps its final state.
pub fn set_state(conn: &Connection, id: &str, state: JobState) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2 WHERE id = ?1 AND state IN ('queued', 'running', 'paused')",
    )?
    .execute(params![id, state.as_str()])?;
    Ok(())
}

/// Stores a group's `max_running` (`job.group_set`; `None`: no limit).
pub fn set_group_limit(conn: &Connection, name: &str, max: Option<usize>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO job_groups (name, max_running) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running",
    )?
    .execute(params![name, max.map(|n| n as i64)])?;
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
    conn.prepare_cached("DELETE FROM dropped WHERE session = ?1 AND up_to_seq <= ?2")?
        .execute(params![session, up_to as i64])?;
    Ok(n as u64)
}

/// Drops `session`'s pending notifications up to `up_to` (they stop being
/// pending) and records the drop; returns how many were dropped.
pub fn drop_pending(conn: &Connection, session: &str, up_to: u64) -> rusqlite::Result<u64> {
    let n = conn
        .prepare_cached(
            "UPDATE notifications SET acked = 1 WHERE session = ?1 AND seq <= ?2 AND acked = 0",
        )?
        .execute(params![session, up_to as i64])? as u64;
    if n > 0 {
        conn.prepare_cached("INSERT INTO dropped (session, up_to_seq, count) VALUES (?1, ?2, ?3)")?
            .execute(params![session, up_to as i64, n as i64])?;
    }
    Ok(n)
}

/// Deletes jobs' rows and notifications and records their ids in
/// `removing`; returns the jobs whose rows were deleted: id and session.
pub fn remove_jobs(conn: &Connection, ids: &[String]) -> rusqlite::Result<Vec<(String, String)>> {
    let mut removed = Vec::new();
    for id in ids {
        let session: Option<String> = conn
            .prepare_cached("DELETE FROM jobs WHERE id = ?1 RETURNING session")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        if let Some(session) = session {
            removed.push((id.clone(), session));
        }
        conn.prepare_cached("DELETE FROM notifications WHERE job_id = ?1")?
            .execute(params![id])?;
        conn.prepare_cached("DELETE FROM job_env WHERE job_id = ?1")?
            .execute(params![id])?;
        conn.prepare_cached("INSERT OR IGNORE INTO removing (job_id) VALUES (?1)")?
            .execute(params![id])?;
    }
    Ok(removed)
}

/// Forgets removed jobs whose output is gone.
pub fn forget_removed(conn: &Connection, ids: &[String]) -> rusqlite::Result<()> {
    for id in ids {
        conn.prepare_cached("DELETE FROM removing WHERE job_id = ?1")?
            .execute(params![id])?;
    }
    Ok(())
}
