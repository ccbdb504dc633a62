//! The daemon's in-memory view: the live jobs and the per-session
//! notification queues. SQLite (see [`crate::store`]) is the durable copy.
//! Finished jobs are not held here: once a job's end is committed it leaves
//! the table and is read from the database ([`crate::store::read`],
//! [`crate::lookup`]), so memory is bounded by the live set, not by the
//! history (docs/limits.md).
//!
//! Changes that must be durable first (a job's end, an ack) are applied here
//! by the store thread right after their transaction commits, in commit
//! order. That keeps each session's queue in `seq` order, so an ack up to
//! `seq` N can never cover a notification that is not visible yet.

use agentd_proto::methods::JobCounts;
use agentd_proto::{Job, JobState, Notification, RpcError, codes};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::runqueue::RunQueue;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;
use tokio::sync::{Notify, mpsc, watch};

use crate::supervisor::Control;

/// One job and what the daemon needs to run it.
pub struct JobEntry {
    /// The job as reported on the wire.
    pub job: Job,
    /// Size of the notification's `output_tail`, in bytes.
    pub tail_bytes: u64,
    /// Environment overlay, kept only until the job starts.
    pub env: Option<BTreeMap<String, String>>,
    /// True when `env` is also stored in the database (the job waited in
    /// the queue): it is wiped there before the job starts.
    pub env_on_disk: bool,
    /// Sends kill requests to the job's supervising task; set from the moment
    /// the job is taken off the queue until it finishes.
    pub control: Option<mpsc::UnboundedSender<Control>>,
    /// Becomes `true` once the job's end is committed; `job.wait` and
    /// `job.output` wait on it.
    pub done: watch::Sender<bool>,
    /// Monotonic start time, for `duration_ms`.
    pub started: Option<Instant>,
    /// True while the job counts against `max_running`.
    pub holds_slot: bool,
}

impl JobEntry {
    /// A new entry; `done` starts as `job.state.is_finished()`.
    pub fn new(job: Job, tail_bytes: u64, env: Option<BTreeMap<String, String>>) -> Self {
        let finished = job.state.is_finished();
        JobEntry {
            job,
            tail_bytes,
            env,
            env_on_disk: false,
            control: None,
            done: watch::channel(finished).0,
            started: None,
            holds_slot: false,
        }
    }
}

/// Why an id did not name exactly one job.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Shorter than 4 characters, or not hex (and hyphens).
    #[error("job id {0:?} is not a job id or a prefix of at least 4 hex characters")]
    Malformed(String),
    /// No job matches.
    #[error("no job with id {0:?}")]
    NotFound(String),
    /// Several jobs match the prefix.
    #[error("job id prefix {prefix:?} is ambiguous: it matches {}", .candidates.join(", "))]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The short ids it matches (up to 10).
        candidates: Vec<String>,
    },
}

impl From<LookupError> for RpcError {
    fn from(e: LookupError) -> Self {
        let message = e.to_string();
        match e {
            LookupError::Malformed(id) => RpcError::invalid_params(message, Some("id"))
                .with_data(json!({ "field": "id", "id": id })),
            LookupError::NotFound(id) => {
                RpcError::new(codes::JOB_NOT_FOUND, message).with_data(json!({ "id": id }))
            }
            LookupError::Ambiguous { prefix, candidates } => {
                RpcError::new(codes::AMBIGUOUS_ID, message)
                    .with_data(json!({ "id": prefix, "candidates": candidates }))
            }
        }
    }
}

/// The live (queued, paused, running) jobs by their key (creation order),
/// with an index by id for prefix lookups and the queue of jobs not started
/// yet ([`RunQueue`]: groups, dependencies, held jobs). A finished job
/// stays only when its end could not be committed (disk full, ...): then
/// memory is the only place it is finished.
#[derive(Default)]
pub struct JobTable {
    entries: BTreeMap<JobIdx, JobEntry>,
    by_id: BTreeMap<String, JobIdx>,
    queue: RunQueue,
    /// Queued jobs whose dependency ended without succeeding, with the
    /// reason: taken out of the queue, to be failed (durably, with a
    /// notification) by [`crate::supervisor::settle`].
    doomed: Vec<(JobIdx, String)>,
    /// How many jobs exist: rows in the database (live and finished).
    total: u64,
}

/// Length of a short id: the first 8 hex characters of the job id.
pub const SHORT_ID_LEN: usize = 8;

/// A job's key in the table: its `ord` in the database, rising with
/// creation, never reused. Stable while the job is in the table; a live
/// (queued or running) job is never removed.
pub type JobIdx = u64;

/// A job an id prefix matches, wherever it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its key (`ord`).
    pub ord: JobIdx,
    /// Its full id.
    pub id: String,
    /// True when it is live (not finished).
    pub live: bool,
}

/// Checks that `id` is a full id or a prefix of 4+ hex chars (hyphens
/// allowed) and returns it in lowercase, as ids are stored.
///
/// Errors: [`LookupError::Malformed`].
pub fn id_key(id: &str) -> Result<String, LookupError> {
    let key = id.to_ascii_lowercase();
    if key.len() < 4 || !key.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(LookupError::Malformed(id.to_string()));
    }
    Ok(key)
}

/// Chooses the job `id` names among the jobs its prefix matches (any
/// order, duplicates allowed): returns its full id.
///
/// A prefix of 4 to 7 characters must be unique. A prefix of 8 or more
/// (a short id as agentd shows it) that several jobs share names the
/// newest live (running or queued) one among them, else the newest
/// one: in a long history an old job may share a recent job's short
/// id, and the short id the user just saw must keep naming the recent
/// job.
///
/// Errors: [`LookupError::NotFound`], [`LookupError::Ambiguous`] (with up
/// to 10 candidates' short ids, in id order).
pub fn pick(id: &str, mut candidates: Vec<Candidate>) -> Result<String, LookupError> {
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    candidates.dedup_by(|a, b| a.id == b.id);
    match candidates.len() {
        0 => Err(LookupError::NotFound(id.to_string())),
        1 => Ok(candidates.remove(0).id),
        _ if id.len() >= SHORT_ID_LEN => Ok(candidates
            .into_iter()
            .max_by_key(|c| (c.live, c.ord))
            .expect("two matches")
            .id),
        _ => Err(LookupError::Ambiguous {
            prefix: id.to_string(),
            candidates: candidates
                .iter()
                .take(10)
                .map(|c| c.id[..SHORT_ID_LEN.min(c.id.len())].to_string())
                .collect(),
        }),
    }
}

impl JobTable {
    /// Adds a job under `idx` (its database `ord`). One not started yet
    /// joins the queue: at the back of its group's FIFO, or waiting on its
    /// dependencies (`after`), or held when it is `paused`. A dependency
    /// that already ended without succeeding dooms it at once (see
    /// [`JobTable::take_doomed`]). A dependency not in the table has
    /// finished: `ended` must hold it as the database has it (see
    /// [`JobTable::missing_deps`]); one in neither was removed and counts
    /// as succeeded (only finished jobs are removed, and a failed one
    /// failed its dependents when it ended). Counts the job in
    /// [`JobTable::counts`]' total.
    pub fn insert(&mut self, idx: JobIdx, entry: JobEntry, ended: &HashMap<String, Job>) -> JobIdx {
        self.by_id.insert(entry.job.id.clone(), idx);
        let not_started = entry.job.state == JobState::Queued
            || (entry.job.state == JobState::Paused && entry.job.started_at.is_none());
        if not_started {
            let mut pending = 0;
            let mut failed = None;
            for dep in &entry.job.after {
                let d = match self.by_id.get(dep).and_then(|i| self.entries.get(i)) {
                    Some(d) => &d.job,
                    None => match ended.get(dep) {
                        Some(j) => j,
                        None => continue,
                    },
                };
                match d.state {
                    JobState::Succeeded => {}
                    s if s.is_finished() => {
                        failed.get_or_insert_with(|| dependency_reason(d));
                    }
                    _ => {
                        pending += 1;
                        self.queue.wait_on(dep, idx);
                    }
                }
            }
            match failed {
                Some(reason) => self.doomed.push((idx, reason)),
                None => self.queue.add(
                    idx,
                    &entry.job.group,
                    pending,
                    entry.job.state == JobState::Paused,
                ),
            }
        }
        self.total += 1;
        self.entries.insert(idx, entry);
        idx
    }

    /// The ids in `after` that name no job in the table: finished (or
    /// removed). [`JobTable::insert`] needs their ends.
    pub fn missing_deps(&self, after: &[String]) -> Vec<String> {
        after
            .iter()
            .filter(|d| !self.by_id.contains_key(*d))
            .cloned()
            .collect()
    }

    /// Queued jobs to fail because a dependency ended without succeeding,
    /// with their reasons; each is out of the queue already.
    pub fn take_doomed(&mut self) -> Vec<(JobIdx, String)> {
        std::mem::take(&mut self.doomed)
    }

    /// Sets a group's `max_running` (`None`: no limit of its own).
    pub fn set_group_limit(&mut self, group: &str, max: Option<usize>) {
        self.queue.set_limit(group, max);
    }

    /// The groups to list: `default`, those with a limit set and those
    /// with a live job; each with its limit, slots held and jobs not
    /// started.
    pub fn groups(&self) -> Vec<agentd_proto::methods::Group> {
        let mut groups: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        groups.insert(agentd_proto::DEFAULT_GROUP, (0, 0));
        for g in self.queue.configured_groups() {
            groups.entry(g).or_default();
        }
        for e in self.entries.values().filter(|e| !e.job.state.is_finished()) {
            let counts = groups.entry(&e.job.group).or_default();
            if e.holds_slot {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
        groups
            .into_iter()
            .map(|(name, (running, queued))| agentd_proto::methods::Group {
                name: name.to_string(),
                max_running: self.queue.limit(name).map(|n| n as u64),
                running,
                queued,
            })
            .collect()
    }

    /// Holds a job that has not started (`job.pause`): out of its FIFO,
    /// state `paused`. False when it is not in the queue.
    pub fn hold(&mut self, idx: JobIdx) -> bool {
        let group = self.entries[&idx].job.group.clone();
        if !self.queue.hold(idx, &group) {
            return false;
        }
        self.entry_mut(idx).job.state = JobState::Paused;
        true
    }

    /// Releases a held job (`job.resume`): state `queued`, back in its
    /// FIFO unless it still waits on dependencies. False when it was not
    /// held.
    pub fn release(&mut self, idx: JobIdx) -> bool {
        let group = self.entries[&idx].job.group.clone();
        if !self.queue.release(idx, &group) {
            return false;
        }
        self.entry_mut(idx).job.state = JobState::Queued;
        true
    }

    /// How many dependencies the queued job `idx` still waits on.
    pub fn pending_deps(&self, idx: JobIdx) -> usize {
        self.queue.pending_deps(idx)
    }

    /// Sets how many jobs exist in all (at start, from the database).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// The key of the job with full id `id`, when the table holds it.
    pub fn by_id(&self, id: &str) -> Option<JobIdx> {
        self.by_id.get(id).copied()
    }

    /// The jobs in the table whose id starts with `key` (lowercase, see
    /// [`id_key`]), at most `limit`.
    pub fn matches(&self, key: &str, limit: usize) -> Vec<Candidate> {
        self.by_id
            .range(key.to_string()..)
            .take_while(|(k, _)| k.starts_with(key))
            .take(limit)
            .map(|(id, &ord)| Candidate {
                ord,
                id: id.clone(),
                live: !self.entries[&ord].job.state.is_finished(),
            })
            .collect()
    }

    /// The entry at `idx`.
    ///
    /// Panics when no job has that key: callers hold keys of live jobs, or
    /// use them under the same lock they resolved them under.
    pub fn entry(&self, idx: JobIdx) -> &JobEntry {
        &self.entries[&idx]
    }

    /// The entry at `idx`, mutably. Panics as [`JobTable::entry`].
    pub fn entry_mut(&mut self, idx: JobIdx) -> &mut JobEntry {
        self.entries
            .get_mut(&idx)
            .expect("a live job stays in the table")
    }

    /// The entry at `idx`, if that job is still in the table.
    pub fn get(&self, idx: JobIdx) -> Option<&JobEntry> {
        self.entries.get(&idx)
    }

    /// The entry at `idx` mutably, if that job is still in the table.
    pub fn get_mut(&mut self, idx: JobIdx) -> Option<&mut JobEntry> {
        self.entries.get_mut(&idx)
    }

    /// A job's row was removed from the database (only finished jobs are
    /// removed): forgets it, and drops it from the table if it was held
    /// there (a finished job whose end was not committed).
    pub fn removed(&mut self, id: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(&idx) = self.by_id.get(id)
            && self.entries[&idx].job.state.is_finished()
        {
            self.by_id.remove(id);
            self.entries.remove(&idx);
        }
    }

    /// How many finished jobs exist (in the database, or held here).
    pub fn finished_count(&self) -> usize {
        let live = self
            .entries
            .values()
            .filter(|e| !e.job.state.is_finished())
            .count() as u64;
        self.total.saturating_sub(live) as usize
    }

    /// Takes the oldest ready job whose group has a free slot, if the
    /// daemon-wide `max_running` has one too, reserving the slot and
    /// marking it running (pid not yet known).
    pub fn take_startable(&mut self, max_running: Option<usize>) -> Option<JobIdx> {
        let idx = self.queue.take(max_running)?;
        let entry = self.entry_mut(idx);
        entry.holds_slot = true;
        entry.job.state = JobState::Running;
        Some(idx)
    }

    /// Takes over a running job left by an earlier agentd: its supervising
    /// task gets kill requests through `control`, and it holds a running
    /// slot (counts against `max_running`) until it finishes. Unknown ids
    /// are ignored.
    pub fn adopt(&mut self, id: &str, control: mpsc::UnboundedSender<Control>, started: Instant) {
        let Some(&idx) = self.by_id.get(id) else {
            return;
        };
        let entry = self.entry_mut(idx);
        entry.control = Some(control);
        entry.started = Some(started);
        let newly = !entry.holds_slot;
        entry.holds_slot = true;
        if newly {
            let group = entry.job.group.clone();
            self.queue.hold_slot(&group);
        }
    }

    /// Takes a job that has not started out of the queue (ready, waiting
    /// on dependencies, or held); false when it was not there.
    pub fn dequeue(&mut self, idx: JobIdx) -> bool {
        let group = self.entries[&idx].job.group.clone();
        self.queue.remove(idx, Some(&group))
    }

    /// Jobs in the table matching the filters, newest first, older than
    /// the job keyed `before` (all when `None`), at most `limit`, each with
    /// its key. `job.list` merges them with the finished jobs read from the
    /// database ([`crate::store::read::Reader::list`]).
    pub fn list(
        &self,
        states: Option<&[JobState]>,
        session: Option<&str>,
        group: Option<&str>,
        before: Option<JobIdx>,
        limit: usize,
    ) -> Vec<(JobIdx, Job)> {
        self.entries
            .range(..before.unwrap_or(JobIdx::MAX))
            .rev()
            .filter(|(_, e)| states.is_none_or(|s| s.contains(&e.job.state)))
            .filter(|(_, e)| session.is_none_or(|s| e.job.session == s))
            .filter(|(_, e)| group.is_none_or(|g| e.job.group == g))
            .take(limit)
            .map(|(&idx, e)| (idx, e.job.clone()))
            .collect()
    }

    /// Keys of the jobs whose supervising task is live.
    pub fn with_control(&self) -> Vec<JobIdx> {
        self.entries
            .iter()
            .filter(|(_, e)| e.control.is_some())
            .map(|(&i, _)| i)
            .collect()
    }

    /// The jobs not started that an earlier agentd may have started
    /// unrecorded: the ready ones, first in line first, then the held ones
    /// (a job paused while it was being started has `paused` recorded but
    /// may run); key and id. Jobs still waiting on dependencies were never
    /// taken to start.
    pub fn startable_ids(&self) -> Vec<(JobIdx, String)> {
        let mut ids = self.queue.ready_ids();
        ids.extend(self.queue.held_ids());
        ids.into_iter()
            .map(|i| (i, self.entries[&i].job.id.clone()))
            .collect()
    }

    /// How many jobs have not started (ready, waiting on dependencies, or
    /// held).
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Counts for `daemon.info`.
    pub fn counts(&self) -> JobCounts {
        let count = |st| self.entries.values().filter(|e| e.job.state == st).count() as u64;
        JobCounts {
            queued: count(JobState::Queued),
            running: count(JobState::Running),
            paused: count(JobState::Paused),
            total: self.total,
        }
    }

    /// Records a job's end: replaces the job, frees its slot, drops its
    /// control channel and wakes its waiters. The jobs waiting on it move
    /// on: on success those with no dependency left become ready; on any
    /// other end they are doomed ([`JobTable::take_doomed`]). When the end
    /// is `durable` (committed) the job then leaves the table (it is read
    /// from the database from now on); otherwise it stays here, finished,
    /// as the only place that knows.
    pub fn finish(&mut self, job: Job, durable: bool) {
        let Some(&idx) = self.by_id.get(&job.id) else {
            return;
        };
        let entry = self.entry_mut(idx);
        let was_finished = entry.job.state.is_finished();
        let held = std::mem::replace(&mut entry.holds_slot, false);
        let group = entry.job.group.clone();
        entry.job = job;
        entry.control = None;
        entry.env = None;
        entry.done.send_replace(true);
        if held {
            self.queue.free_slot(&group);
        }
        if !was_finished {
            let job = &self.entries[&idx].job;
            let entries = &self.entries;
            let doomed =
                self.queue
                    .dependency_ended(&job.id, job.state == JobState::Succeeded, |i| {
                        entries[&i].job.group.clone()
                    });
            if !doomed.is_empty() {
                let reason = dependency_reason(job);
                self.doomed
                    .extend(doomed.into_iter().map(|i| (i, reason.clone())));
            }
        }
        if durable {
            let id = self.entries[&idx].job.id.clone();
            self.by_id.remove(&id);
            self.entries.remove(&idx);
        }
    }
}

/// The `reason` of a job failed because its dependency `dep` ended
/// without succeeding: "dependency <short_id> <state>".
pub fn dependency_reason(dep: &Job) -> String {
    format!("dependency {} {}", dep.short_id, dep.state)
}

/// Pending (unacknowledged) notifications per session, oldest first, and
/// what the pending cap dropped that the session has not been told yet.
#[derive(Default)]
pub struct Queues {
    by_session: HashMap<String, VecDeque<Notification>>,
    /// Per session, each drop not yet acknowledged: the highest `seq` it
    /// dropped and how many it dropped. An ack up to that `seq` (or past
    /// it) clears it.
    dropped: HashMap<String, Vec<(u64, u64)>>,
    /// Pending notifications in all sessions.
    len: usize,
}

impl Queues {
    /// Appends a notification; callers push in rising `seq` order.
    pub fn push(&mut self, n: Notification) {
        self.len += 1;
        self.by_session
            .entry(n.session.clone())
            .or_default()
            .push_back(n);
    }

    /// Pending notifications in all sessions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no session has a pending notification.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The job ids of every pending notification.
    pub fn job_ids(&self) -> impl Iterator<Item = &str> {
        self.by_session
            .values()
            .flatten()
            .map(|n| n.job_id.as_str())
    }

    /// How many notifications of `session` with `seq > floor` are pending.
    pub fn pending_after(&self, session: &str, floor: u64) -> usize {
        self.by_session
            .get(session)
            .map_or(0, |q| q.len() - q.partition_point(|n| n.seq <= floor))
    }

    /// The `seq` of the `k`-th (from 0, oldest first) pending notification
    /// of `session` with `seq > floor`.
    pub fn nth_pending_after(&self, session: &str, floor: u64, k: usize) -> Option<u64> {
        let q = self.by_session.get(session)?;
        q.get(q.partition_point(|n| n.seq <= floor) + k)
            .map(|n| n.seq)
    }

    /// Sessions holding more than `cap` pending notifications, each with
    /// the `seq` up to which the oldest must go to leave `cap`.
    pub fn over_cap(&self, cap: usize) -> Vec<(String, u64)> {
        self.by_session
            .iter()
            .filter(|(_, q)| q.len() > cap)
            .map(|(s, q)| (s.clone(), q[q.len() - cap - 1].seq))
            .collect()
    }

    /// Records that `count` notifications of `session` up to `up_to` were
    /// dropped (they are no longer pending).
    pub fn record_dropped(&mut self, session: &str, up_to: u64, count: u64) {
        self.remove_up_to(session, up_to);
        if count > 0 {
            self.dropped
                .entry(session.to_string())
                .or_default()
                .push((up_to, count));
        }
    }

    /// How many notifications of `session` were dropped and not yet
    /// acknowledged, and the highest `seq` among them.
    pub fn dropped(&self, session: &str) -> (u64, Option<u64>) {
        let drops = self.dropped.get(session).map(Vec::as_slice).unwrap_or(&[]);
        (
            drops.iter().map(|d| d.1).sum(),
            drops.iter().map(|d| d.0).max(),
        )
    }

    /// Forgets the drops of `session` up to `up_to` (an ack covered them).
    fn clear_dropped(&mut self, session: &str, up_to: u64) {
        if let Some(d) = self.dropped.get_mut(session) {
            d.retain(|&(seq, _)| seq > up_to);
            if d.is_empty() {
                self.dropped.remove(session);
            }
        }
    }

    /// Removes the pending notification of job `job_id` in `session` (its
    /// job was removed).
    pub fn remove_job(&mut self, session: &str, job_id: &str) {
        let Some(q) = self.by_session.get_mut(session) else {
            return;
        };
        let before = q.len();
        q.retain(|n| n.job_id != job_id);
        self.len -= before - q.len();
        if q.is_empty() {
            self.by_session.remove(session);
        }
    }

    /// Up to `max` pending notifications of `session` with `seq > after`,
    /// oldest first and, past the first, at most `max_bytes` of JSON
    /// together; and whether more are pending after them.
    pub fn peek(
        &self,
        session: &str,
        after: u64,
        max: usize,
        max_bytes: usize,
    ) -> (Vec<Notification>, bool) {
        let Some(q) = self.by_session.get(session) else {
            return (Vec::new(), false);
        };
        let start = q.partition_point(|n| n.seq <= after);
        let mut page = Vec::new();
        let mut bytes = 0;
        for n in q.range(start..) {
            if page.len() >= max {
                return (page, true);
            }
            bytes += crate::page::json_len(n);
            if !page.is_empty() && bytes > max_bytes {
                return (page, true);
            }
            page.push(n.clone());
        }
        (page, false)
    }

    /// True when `session` has a pending notification.
    pub fn has_pending(&self, session: &str) -> bool {
        self.by_session.get(session).is_some_and(|q| !q.is_empty())
    }

    /// Removes and returns the pending notifications of `session` with
    /// `seq <= up_to`.
    pub fn remove_up_to(&mut self, session: &str, up_to: u64) -> Vec<Notification> {
        let Some(q) = self.by_session.get_mut(session) else {
            return Vec::new();
        };
        let n = q.iter().take_while(|n| n.seq <= up_to).count();
        let removed: Vec<Notification> = q.drain(..n).collect();
        self.len -= removed.len();
        if q.is_empty() {
            self.by_session.remove(session);
        }
        removed
    }

    /// Applies a committed ack: the notifications and the drops up to
    /// `up_to` leave.
    pub fn ack(&mut self, session: &str, up_to: u64) {
        self.remove_up_to(session, up_to);
        self.clear_dropped(session, up_to);
    }

    /// Puts notifications back at the front (after a failed durable ack).
    pub fn restore(&mut self, mut notifications: Vec<Notification>) {
        let Some(first) = notifications.first() else {
            return;
        };
        self.len += notifications.len();
        let q = self.by_session.entry(first.session.clone()).or_default();
        notifications.extend(q.drain(..));
        *q = notifications.into();
    }
}

/// What the request handlers, the supervisors and the store thread share.
#[derive(Default)]
pub struct Shared {
    /// The job table.
    pub jobs: Mutex<JobTable>,
    /// The notification queues.
    pub queues: Mutex<Queues>,
    /// Woken (all waiters) whenever a notification is queued.
    pub queue_changed: Notify,
    /// The key (`jobs.ord`) the next submitted job gets; one past the
    /// highest in the database at start.
    pub next_ord: AtomicU64,
}

impl Shared {
    /// Applies a committed job end: the job and its notification change
    /// together, under both locks (taken in the order job table, then
    /// queues, as everywhere), so whoever sees the notification also sees
    /// the finished job, and a `job.wait` that returns the finished job is
    /// answered only once its notification can be peeked.
    ///
    /// `drop`: the pending cap dropped the session's notifications up to
    /// that `seq` (how many) in the same transaction.
    pub fn apply_finish(&self, job: Job, notification: Notification, drop: Option<(u64, u64)>) {
        {
            let mut jobs = self.jobs.lock().expect("job table poisoned");
            let mut queues = self.queues.lock().expect("queues poisoned");
            let session = notification.session.clone();
            jobs.finish(job, true);
            queues.push(notification);
            if let Some((up_to, count)) = drop {
                queues.record_dropped(&session, up_to, count);
            }
        }
        self.queue_changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, state: JobState) -> Job {
        Job {
            id: id.into(),
            short_id: id[..8].into(),
            command: "true".into(),
            cwd: "/".into(),
            state,
            exit_code: None,
            signal: None,
            pid: None,
            session: "default".into(),
            label: None,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            timeout_secs: None,
            output_bytes: 0,
            reason: None,
            sandbox: None,
            limits: None,
            executor: Default::default(),
            external_id: None,
            slurm: None,
            group: "default".into(),
            after: Vec::new(),
        }
    }

    fn cand(ord: JobIdx, id: &str, live: bool) -> Candidate {
        Candidate {
            ord,
            id: id.into(),
            live,
        }
    }

    #[test]
    fn prefixes_resolve_uniquely_or_name_the_problem() {
        let a = cand(0, "abcd1234-0000", false);
        let b = cand(1, "abcd9999-0000", false);
        let pick_of = |id: &str, c: &[Candidate]| {
            let key = id_key(id)?;
            let matching = c.iter().filter(|c| c.id.starts_with(&key)).cloned();
            pick(id, matching.collect())
        };
        let two = [a.clone(), b.clone()];
        assert_eq!(pick_of("abcd1", &two), Ok(a.id.clone()));
        assert_eq!(pick_of("ABCD9", &two), Ok(b.id.clone()));
        assert!(matches!(
            pick_of("abcd", &two),
            Err(LookupError::Ambiguous { .. })
        ));
        assert!(matches!(
            pick_of("ffff", &two),
            Err(LookupError::NotFound(_))
        ));
        assert!(matches!(
            pick_of("abc", &two),
            Err(LookupError::Malformed(_))
        ));
        // A short id shared with an older job names the newer one, and a
        // live one before any finished one; the same job found twice (in
        // memory and in the database) is one match.
        let c = cand(2, "abcd1234-1111", false);
        let three = [a.clone(), b.clone(), c.clone(), c.clone()];
        assert_eq!(pick_of("abcd1234", &three), Ok(c.id.clone()));
        assert!(matches!(
            pick_of("abcd12", &three),
            Err(LookupError::Ambiguous { .. })
        ));
        let d = cand(3, "abcd1234-2222", false);
        let live_a = cand(0, "abcd1234-0000", true);
        let four = [live_a.clone(), b, c, d.clone()];
        assert_eq!(pick_of("abcd1234", &four), Ok(live_a.id));
        assert_eq!(pick_of("abcd1234-2", &four), Ok(d.id));
        assert!(matches!(
            pick_of("xyz12", &four),
            Err(LookupError::Malformed(_))
        ));
    }

    #[test]
    fn a_committed_end_leaves_the_table_an_uncommitted_one_stays() {
        let mut t = JobTable::default();
        t.insert(
            0,
            JobEntry::new(job("aaaa0000", JobState::Running), 0, None),
            &HashMap::new(),
        );
        t.insert(
            1,
            JobEntry::new(job("bbbb0000", JobState::Running), 0, None),
            &HashMap::new(),
        );
        let mut done = t.entry(0).job.clone();
        done.state = JobState::Succeeded;
        let mut rx = t.entry(0).done.subscribe();
        t.finish(done, true);
        assert!(*rx.borrow_and_update(), "waiters see the end");
        assert_eq!(t.by_id("aaaa0000"), None);
        assert_eq!(t.matches("aaaa", 10), vec![]);
        let mut lost = t.entry(1).job.clone();
        lost.state = JobState::Failed;
        t.finish(lost, false);
        assert_eq!(t.entry(1).job.state, JobState::Failed);
        assert_eq!(t.matches("bbbb", 10), vec![cand(1, "bbbb0000", false)]);
        assert_eq!(t.counts().total, 2);
        assert_eq!(t.finished_count(), 2);
        t.removed("bbbb0000");
        assert_eq!(t.by_id("bbbb0000"), None);
        assert_eq!(t.counts().total, 1);
    }

    #[test]
    fn queue_slots_respect_max_running() {
        let mut t = JobTable::default();
        for (i, id) in ["aaaa0000", "bbbb0000", "cccc0000"].into_iter().enumerate() {
            t.insert(
                i as JobIdx,
                JobEntry::new(job(id, JobState::Queued), 0, None),
                &HashMap::new(),
            );
        }
        assert_eq!(t.take_startable(Some(2)), Some(0));
        assert_eq!(t.take_startable(Some(2)), Some(1));
        assert_eq!(t.take_startable(Some(2)), None);
        let mut done = t.entry(0).job.clone();
        done.state = JobState::Succeeded;
        t.finish(done, true);
        assert_eq!(t.take_startable(Some(2)), Some(2));
    }

    #[test]
    fn a_job_paused_before_it_started_is_startable_at_a_restart() {
        // claim_unrecorded looks at these: a job paused while agentd was
        // starting it may run; one waiting on a dependency was never taken.
        let mut t = JobTable::default();
        t.insert(
            0,
            JobEntry::new(job("aaaa0000", JobState::Running), 0, None),
            &HashMap::new(),
        );
        t.insert(
            1,
            JobEntry::new(job("bbbb0000", JobState::Queued), 0, None),
            &HashMap::new(),
        );
        t.insert(
            2,
            JobEntry::new(job("cccc0000", JobState::Paused), 0, None),
            &HashMap::new(),
        );
        let mut waits = job("dddd0000", JobState::Queued);
        waits.after = vec!["aaaa0000".into()];
        t.insert(3, JobEntry::new(waits, 0, None), &HashMap::new());
        let ids: Vec<JobIdx> = t.startable_ids().into_iter().map(|(i, _)| i).collect();
        assert_eq!(ids, vec![1, 2]);
    }
}
