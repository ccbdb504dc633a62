//! Finding a job by id wherever it is: live jobs in the job table
//! ([`crate::state::JobTable`]), finished ones in the database
//! ([`crate::store::read`]).
//!
//! The table is looked at first, then the database. A job leaves the table
//! only after its end is committed, so a job missing from the table is
//! found in the database as it finished; a job found in both (it finished
//! between the two looks) is one job.

use crate::daemon::Daemon;
use crate::state::{self, Candidate, SHORT_ID_LEN};
use agentd_proto::{Job, RpcError};

/// Matches read from the database for a prefix shorter than a short id:
/// enough to list 10 candidates of an ambiguous one.
const SHORT_PREFIX_MATCHES: usize = 11;

/// Matches read for a prefix of a short id or longer: in any real history
/// a handful share one; all are needed to choose the newest.
const LONG_PREFIX_MATCHES: usize = 10_000;

/// Resolves `id` (a full id or a prefix of at least 4 hex characters) to
/// the full id of the job it names, by the rule of [`state::pick`].
///
/// Errors: -32602 for a malformed id, -32001 when no job matches, -32002
/// when a short prefix matches several; -32603 when the database cannot be
/// read.
pub async fn resolve(d: &Daemon, id: &str) -> Result<String, RpcError> {
    let key = state::id_key(id)?;
    let in_table = {
        let jobs = d.shared.jobs.lock().expect("job table poisoned");
        jobs.matches(&key, LONG_PREFIX_MATCHES)
    };
    // A full id, or a short id that names a live job: the database cannot
    // change the answer (a live match wins, and ids are unique).
    if key.len() >= SHORT_ID_LEN && in_table.iter().any(|c| c.live || c.id == key) {
        return Ok(state::pick(id, in_table)?);
    }
    let limit = if key.len() >= SHORT_ID_LEN {
        LONG_PREFIX_MATCHES
    } else {
        SHORT_PREFIX_MATCHES
    };
    let stored = d
        .store
        .reader
        .with_prefix(key, limit)
        .await
        .map_err(read_error)?;
    let mut candidates = in_table;
    candidates.extend(stored.into_iter().map(|(ord, id, st)| Candidate {
        ord,
        id,
        live: !st.is_finished(),
    }));
    Ok(state::pick(id, candidates)?)
}

/// The job with full id `id` as it stands: from the table when it is there,
/// else from the database.
///
/// Errors: -32001 when it is in neither (it was removed); -32603 when the
/// database cannot be read.
pub async fn job(d: &Daemon, id: &str) -> Result<Job, RpcError> {
    {
        let jobs = d.shared.jobs.lock().expect("job table poisoned");
        if let Some(idx) = jobs.by_id(id) {
            return Ok(jobs.entry(idx).job.clone());
        }
    }
    match d
        .store
        .reader
        .job(id.to_string())
        .await
        .map_err(read_error)?
    {
        Some((_, job)) => Ok(job),
        None => Err(state::LookupError::NotFound(id.to_string()).into()),
    }
}

/// [`resolve`], then [`job`].
///
/// Errors: as theirs.
pub async fn find(d: &Daemon, id: &str) -> Result<Job, RpcError> {
    let full = resolve(d, id).await?;
    job(d, &full).await
}

/// A failed read of the database, as a reply.
pub fn read_error(e: crate::store::StoreError) -> RpcError {
    RpcError::internal(format!("cannot read the job database: {e}"))
}
