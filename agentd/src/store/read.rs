//! Reading finished jobs from the database: agentd holds only live jobs in
//! memory ([`crate::state::JobTable`]); `job.get`, `job.list`, id
//! resolution, `job.prune` and retention read the finished ones here.
//!
//! Reads go through a small pool of read-only connections, each used by one
//! blocking thread at a time ([`tokio::task::spawn_blocking`]), never on the
//! runtime's threads and never through the store thread, so a long read
//! does not hold up commits (WAL readers and the writer do not block each
//! other). A read sees what is committed; the store thread changes memory
//! only after its commit, so a job that has left the job table is always
//! found here as it finished.

use super::StoreError;
use super::schema::{JOB_COLUMNS, finished_states_sql, job_row};
use agentd_proto::{Job, JobState};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Idle read connections kept for reuse; more are opened while more reads
/// run at once, and closed after.
const POOL: usize = 4;

/// How long a read waits for a lock SQLite holds briefly (a WAL reset).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The read-only connection pool. Cloning is cheap.
#[derive(Clone)]
pub struct Reader {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

/// Filters of a `job.list` page, as the database applies them.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only these states (finished ones; live ones are never read here).
    /// `None`: every finished state.
    pub states: Option<Vec<JobState>>,
    /// Only this session.
    pub session: Option<String>,
    /// Only this group.
    pub group: Option<String>,
    /// Only jobs with a lower `ord` (older); `None`: from the newest.
    pub before: Option<u64>,
}

/// Filters of `job.prune`, as the database applies them.
#[derive(Clone, Debug, Default)]
pub struct PruneFilter {
    /// Only this session.
    pub session: Option<String>,
    /// Only these (finished) states; `None`: every finished state.
    pub states: Option<Vec<JobState>>,
    /// Only jobs that finished before this RFC 3339 time.
    pub finished_before: Option<String>,
    /// Never the newest this many of the matching jobs.
    pub keep_last: u64,
}

impl Reader {
    /// A pool reading the database at `path` (which the store has opened
    /// and migrated). Opens no connection yet.
    pub fn new(path: PathBuf) -> Reader {
        Reader {
            path: Arc::new(path),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs `f` with a read connection on a blocking thread.
    ///
    /// Errors: a connection cannot be opened, `f`'s SQLite error, or the
    /// blocking thread panicked.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = pool.idle.lock().expect("read pool poisoned").pop();
            let conn = match taken {
                Some(c) => c,
                None => open_read_only(&pool.path)?,
            };
            let out = f(&conn);
            let mut idle = pool.idle.lock().expect("read pool poisoned");
            if idle.len() < POOL {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Failed(format!("a database read failed: {e}")))?
    }

    /// The job with full id `id`, with its `ord`, in whatever state the
    /// database has it; `None` when there is none.
    ///
    /// Errors: SQLite's.
    pub async fn job(&self, id: String) -> Result<Option<(u64, Job)>, StoreError> {
        self.with(move |c| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
            Ok(c.prepare_cached(&sql)?
                .query_row([&id], |r| job_row(r).map(|(ord, job, ..)| (ord, job)))
                .optional()?)
        })
        .await
    }

    /// The jobs whose id starts with `prefix` (lowercase), in id order, at
    /// most `limit`: their `ord`, id and state.
    ///
    /// Errors: SQLite's.
    pub async fn with_prefix(
        &self,
        prefix: String,
        limit: usize,
    ) -> Result<Vec<(u64, String, JobState)>, StoreError> {
        self.with(move |c| {
            // Every id that starts with `prefix` sorts between it and
            // `prefix~` ('~' is above every hex digit and '-').
            let upper = format!("{prefix}~");
            let mut stmt = c.prepare_cached(
                "SELECT ord, id, state FROM jobs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                rusqlite::params![prefix, upper, limit.min(i64::MAX as usize) as i64],
                |r| {
                    let state: String = r.get(2)?;
                    Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, state))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (ord, id, state) = row?;
                let state = state.parse().map_err(|e: String| StoreError::Failed(e))?;
                out.push((ord, id, state));
            }
            Ok(out)
        })
        .await
    }

    /// Finished jobs matching `filter`, newest first, at most `limit`, each
    /// with its `ord`.
    ///
    /// Without a state filter the table is walked newest first (by session
    /// through `jobs_session`); with one, each state is read through
    /// `jobs_state` newest first and the lists are merged, so no page
    /// sorts more than `limit` jobs per state.
    ///
    /// Errors: SQLite's, or a row that does not decode.
    pub async fn list(
        &self,
        filter: ListFilter,
        limit: usize,
    ) -> Result<Vec<(u64, Job)>, StoreError> {
        self.with(move |c| {
            let limit = limit.min(i64::MAX as usize) as i64;
            let before = filter
                .before
                .unwrap_or(i64::MAX as u64)
                .min(i64::MAX as u64) as i64;
            // ?1 before, ?2 limit, then session and group when given, then
            // the state.
            let mut extra = String::new();
            let mut args: Vec<rusqlite::types::Value> = vec![before.into(), limit.into()];
            if let Some(s) = &filter.session {
                args.push(s.clone().into());
                extra += &format!(" AND session = ?{}", args.len());
            }
            if let Some(g) = &filter.group {
                args.push(g.clone().into());
                extra += &format!(" AND job_group = ?{}", args.len());
            }
            let state_param = args.len() + 1;
            let mut out: Vec<(u64, Job)> = Vec::new();
            let mut run = |state_sql: String, state: Option<&str>| -> Result<(), StoreError> {
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE ord < ?1 AND {state_sql}{extra}
                     ORDER BY ord DESC LIMIT ?2"
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let mut args = args.clone();
                if let Some(st) = state {
                    args.push(st.to_string().into());
                }
                let rows = stmt.query_map(params_from_iter(args), |r| {
                    job_row(r).map(|(ord, job, ..)| (ord, job))
                })?;
                for row in rows {
                    out.push(row?);
                }
                Ok(())
            };
            match &filter.states {
                None => run(format!("+state IN ({})", finished_states_sql()), None)?,
                Some(states) => {
                    let mut seen = Vec::new();
                    for s in states.iter().filter(|s| s.is_finished()) {
                        if seen.contains(s) {
                            continue;
                        }
                        seen.push(*s);
                        run(format!("state = ?{state_param}"), Some(s.as_str()))?;
                    }
                    out.sort_by_key(|j| std::cmp::Reverse(j.0));
                    out.truncate(limit as usize);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Up to `limit` ids of finished jobs whose notification is not
    /// pending, oldest first: the first `excess` of them, then, with
    /// `finished_before`, those that finished before it (retention,
    /// [`crate::retention`]).
    ///
    /// Errors: SQLite's.
    pub async fn retention_victims(
        &self,
        excess: usize,
        finished_before: Option<String>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.with(move |c| {
            let base = format!(
                "FROM jobs WHERE +state IN ({}) AND ord > ?1
                   AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.job_id = jobs.id AND n.acked = 0)",
                finished_states_sql()
            );
            let mut victims = Vec::new();
            let mut last = 0i64;
            let first = excess.min(limit);
            if first > 0 {
                let mut stmt =
                    c.prepare_cached(&format!("SELECT ord, id {base} ORDER BY ord LIMIT ?2"))?;
                let rows = stmt.query_map(rusqlite::params![last, first as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (ord, id) = row?;
                    last = ord;
                    victims.push(id);
                }
            }
            if let Some(cutoff) = finished_before
                && victims.len() < limit
            {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT id {base} AND finished_at < ?3 ORDER BY ord LIMIT ?2"
                ))?;
                let rows = stmt.query_map(
                    rusqlite::params![last, (limit - victims.len()) as i64, cutoff],
                    |r| r.get::<_, String>(0),
                )?;
                for row in rows {
                    victims.push(row?);
                }
            }
            Ok(victims)
        })
        .await
    }

    /// `job.prune`'s choice: finished jobs matching `filter` except the
    /// newest `keep_last` of them and those whose notification is pending,
    /// oldest first. Returns the highest `ord` a victim may have (`None`:
    /// there is none); pass it to [`Reader::prune_page`] and
    /// [`Reader::prune_totals`], so the choice stays what it was at this
    /// call while newer jobs finish.
    ///
    /// Errors: SQLite's.
    pub async fn prune_bound(&self, filter: PruneFilter) -> Result<Option<u64>, StoreError> {
        self.with(move |c| {
            let (where_sql, args) = prune_where(&filter, None);
            if filter.keep_last == 0 {
                let max: Option<i64> =
                    c.query_row(&format!("SELECT MAX(ord) FROM jobs WHERE {where_sql}"), params_from_iter(args), |r| r.get(0))?;
                return Ok(max.map(|m| m as u64));
            }
            let nth: Option<i64> = c
                .query_row(
                    &format!(
                        "SELECT ord FROM jobs WHERE {where_sql} ORDER BY ord DESC LIMIT 1 OFFSET {}",
                        filter.keep_last
                    ),
                    params_from_iter(args),
                    |r| r.get(0),
                )
                .optional()?;
            Ok(nth.map(|o| o as u64))
        })
        .await
    }

    /// How many jobs a prune up to `bound` ([`Reader::prune_bound`])
    /// removes, and the sum of their `output_bytes`.
    ///
    /// Errors: SQLite's.
    pub async fn prune_totals(
        &self,
        filter: PruneFilter,
        bound: u64,
    ) -> Result<(u64, u64), StoreError> {
        self.with(move |c| {
            let (where_sql, args) = prune_where(&filter, Some(bound));
            let (n, bytes): (i64, i64) = c.query_row(
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM(output_bytes), 0) FROM jobs WHERE {where_sql}
                       AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.job_id = jobs.id AND n.acked = 0)"
                ),
                params_from_iter(args),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((n as u64, bytes as u64))
        })
        .await
    }

    /// The next up to `limit` jobs a prune up to `bound` removes, oldest
    /// first, with `ord` above `after`: ord, id, `output_bytes`.
    ///
    /// Errors: SQLite's.
    pub async fn prune_page(
        &self,
        filter: PruneFilter,
        bound: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String, u64)>, StoreError> {
        self.with(move |c| {
            let (where_sql, mut args) = prune_where(&filter, Some(bound));
            args.push((after as i64).into());
            let mut stmt = c.prepare(&format!(
                "SELECT ord, id, output_bytes FROM jobs WHERE {where_sql} AND ord > ?{}
                   AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.job_id = jobs.id AND n.acked = 0)
                 ORDER BY ord LIMIT {limit}",
                args.len()
            ))?;
            let rows = stmt.query_map(params_from_iter(args), |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// The `WHERE` of a prune: finished, session, states and, with `bound`,
/// `ord` at most it and finished before the cutoff. Returns the SQL and
/// its positional parameters (`?1`…).
fn prune_where(filter: &PruneFilter, bound: Option<u64>) -> (String, Vec<rusqlite::types::Value>) {
    let states = match &filter.states {
        Some(s) => super::schema::states_sql(s.iter().copied().filter(|s| s.is_finished())),
        None => finished_states_sql(),
    };
    let states = if states.is_empty() {
        "NULL".to_string()
    } else {
        states
    };
    let mut sql = format!("+state IN ({states})");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = &filter.session {
        args.push(s.clone().into());
        sql += &format!(" AND session = ?{}", args.len());
    }
    if let Some(bound) = bound {
        args.push((bound as i64).into());
        sql += &format!(" AND ord <= ?{}", args.len());
        if let Some(cutoff) = &filter.finished_before {
            args.push(cutoff.clone().into());
            sql += &format!(" AND finished_at < ?{}", args.len());
        }
    }
    (sql, args)
}

/// Opens a read-only connection to the database at `path`.
///
/// Errors: SQLite's.
fn open_read_only(path: &std::path::Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}
