//! Which job starts next (DESIGN.md, "Queue control"): the jobs that have
//! not started, per group, and the slots held per group.
//!
//! A job that has not started is in exactly one of these places:
//!
//! - **ready**: its dependencies (`after`) all succeeded and it is not
//!   held; it waits in its group's FIFO for a slot;
//! - **waiting**: some dependency has not ended yet (the count of those
//!   is kept; each dependency's end lowers it, see
//!   [`RunQueue::dependency_ended`]);
//! - **held**: paused before it started (`job.pause`); it may be waiting
//!   on dependencies too, and goes back to ready on `job.resume` once none
//!   is left.
//!
//! A job starts when the daemon-wide `max_running` and its group's
//! `max_running` both have room; among the groups with room, the job
//! submitted first goes first. Nothing here polls: the scheduler asks for
//! the next job after each submit, job end, resume and limit change.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::state::JobIdx;

/// The queue of jobs not started yet and the running slots, per group.
#[derive(Default)]
pub struct RunQueue {
    /// Per group: jobs ready to start, first in line first.
    ready: BTreeMap<String, VecDeque<JobIdx>>,
    /// Per group: jobs holding a slot (running, or paused after starting).
    running: HashMap<String, usize>,
    /// Jobs holding a slot, all groups together.
    running_total: usize,
    /// Per-group `max_running` (config `[groups.NAME]`, `job.group_set`);
    /// a group not listed has no limit of its own.
    limits: BTreeMap<String, usize>,
    /// Groups `job.group_set` set to "no limit": listed so that
    /// `job.group_list` still shows them.
    unlimited: HashSet<String>,
    /// Jobs waiting on dependencies: how many of their dependencies have
    /// not ended yet.
    waiting: HashMap<JobIdx, usize>,
    /// Per dependency (full job id): the jobs waiting on it.
    dependents: HashMap<String, Vec<JobIdx>>,
    /// Jobs paused before they started.
    held: HashSet<JobIdx>,
    /// How many jobs are ready, waiting or held.
    not_started: usize,
}

impl RunQueue {
    /// A queue with the per-group limits `limits` (group name to
    /// `max_running`; `None` is a group set to "no limit").
    pub fn with_limits(limits: impl IntoIterator<Item = (String, Option<usize>)>) -> Self {
        let mut q = RunQueue::default();
        for (group, max) in limits {
            q.set_limit(&group, max);
        }
        q
    }

    /// Sets a group's `max_running` (`None`: no limit of its own).
    pub fn set_limit(&mut self, group: &str, max: Option<usize>) {
        match max {
            Some(n) => {
                self.unlimited.remove(group);
                self.limits.insert(group.to_string(), n);
            }
            None => {
                self.limits.remove(group);
                self.unlimited.insert(group.to_string());
            }
        }
    }

    /// A group's own `max_running`, if it has one.
    pub fn limit(&self, group: &str) -> Option<usize> {
        self.limits.get(group).copied()
    }

    /// Groups that have a limit set (or set to none), by name.
    pub fn configured_groups(&self) -> impl Iterator<Item = &str> {
        self.limits
            .keys()
            .chain(self.unlimited.iter())
            .map(String::as_str)
    }

    /// How many jobs of `group` hold a slot.
    pub fn running_in(&self, group: &str) -> usize {
        self.running.get(group).copied().unwrap_or(0)
    }

    /// Adds a job that has not started: ready unless it waits on
    /// `pending_deps` dependencies (each registered with
    /// [`RunQueue::wait_on`]) or is `held`.
    pub fn add(&mut self, idx: JobIdx, group: &str, pending_deps: usize, held: bool) {
        self.not_started += 1;
        if pending_deps > 0 {
            self.waiting.insert(idx, pending_deps);
        }
        if held {
            self.held.insert(idx);
        } else if pending_deps == 0 {
            self.ready
                .entry(group.to_string())
                .or_default()
                .push_back(idx);
        }
    }

    /// Records that job `idx` waits on the job with full id `dep`.
    pub fn wait_on(&mut self, dep: &str, idx: JobIdx) {
        self.dependents
            .entry(dep.to_string())
            .or_default()
            .push(idx);
    }

    /// The job with full id `dep` ended; `succeeded` says how. Returns the
    /// jobs that waited on it and are still not started: on success each
    /// has one dependency fewer to wait for, and `ready_group` is asked
    /// the group of those left with none so they join its FIFO (unless
    /// held); on failure they are all returned, taken out of the queue, to
    /// be failed by the caller.
    pub fn dependency_ended(
        &mut self,
        dep: &str,
        succeeded: bool,
        mut ready_group: impl FnMut(JobIdx) -> String,
    ) -> Vec<JobIdx> {
        let Some(dependents) = self.dependents.remove(dep) else {
            return Vec::new();
        };
        let mut doomed = Vec::new();
        for idx in dependents {
            let Some(left) = self.waiting.get_mut(&idx) else {
                continue; // cancelled, or failed by another dependency
            };
            if !succeeded {
                self.remove(idx, None);
                doomed.push(idx);
                continue;
            }
            *left -= 1;
            if *left == 0 {
                self.waiting.remove(&idx);
                if !self.held.contains(&idx) {
                    let group = ready_group(idx);
                    self.ready.entry(group).or_default().push_back(idx);
                }
            }
        }
        doomed
    }

    /// Takes the next job to start when a slot is free under the
    /// daemon-wide `max_total` and its group's limit, reserving the slot.
    /// Returns it and its group.
    pub fn take(&mut self, max_total: Option<usize>) -> Option<JobIdx> {
        if max_total.is_some_and(|max| self.running_total >= max) {
            return None;
        }
        let group = self
            .ready
            .iter()
            .filter(|(g, q)| {
                !q.is_empty()
                    && self
                        .limits
                        .get(*g)
                        .is_none_or(|&max| self.running_in(g) < max)
            })
            .min_by_key(|(_, q)| q[0])
            .map(|(g, _)| g.clone())?;
        let q = self.ready.get_mut(&group).expect("picked from the map");
        let idx = q.pop_front().expect("not empty");
        if q.is_empty() {
            self.ready.remove(&group);
        }
        self.not_started -= 1;
        self.hold_slot(&group);
        Some(idx)
    }

    /// Counts a slot as held by a job of `group` (a started or adopted job).
    pub fn hold_slot(&mut self, group: &str) {
        *self.running.entry(group.to_string()).or_default() += 1;
        self.running_total += 1;
    }

    /// Frees a slot of `group`.
    pub fn free_slot(&mut self, group: &str) {
        if let Some(n) = self.running.get_mut(group) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(group);
            }
            self.running_total -= 1;
        }
    }

    /// Takes a job that has not started out of the queue (cancelled,
    /// failed, or found started). `group` is needed to find a ready job;
    /// `None` when the caller knows it is not ready. Returns false when
    /// the job was not in the queue.
    pub fn remove(&mut self, idx: JobIdx, group: Option<&str>) -> bool {
        let mut found = self.waiting.remove(&idx).is_some();
        found |= self.held.remove(&idx);
        if let Some(group) = group
            && let Some(q) = self.ready.get_mut(group)
            && let Some(pos) = q.iter().position(|&i| i == idx)
        {
            q.remove(pos);
            if q.is_empty() {
                self.ready.remove(group);
            }
            found = true;
        }
        if found {
            self.not_started -= 1;
        }
        found
    }

    /// Holds a job that has not started (`job.pause`); false when it is
    /// not in the queue.
    pub fn hold(&mut self, idx: JobIdx, group: &str) -> bool {
        if self.held.contains(&idx) || self.waiting.contains_key(&idx) {
            // A waiting job is in no FIFO: holding it is only marking it.
            self.held.insert(idx);
            return true;
        }
        let Some(q) = self.ready.get_mut(group) else {
            return false;
        };
        let Some(pos) = q.iter().position(|&i| i == idx) else {
            return false;
        };
        q.remove(pos);
        if q.is_empty() {
            self.ready.remove(group);
        }
        self.held.insert(idx);
        true
    }

    /// Releases a held job (`job.resume`): ready unless it still waits on
    /// dependencies. False when it was not held.
    pub fn release(&mut self, idx: JobIdx, group: &str) -> bool {
        if !self.held.remove(&idx) {
            return false;
        }
        if !self.waiting.contains_key(&idx) {
            self.ready
                .entry(group.to_string())
                .or_default()
                .push_back(idx);
        }
        true
    }

    /// True when `idx` is held.
    pub fn is_held(&self, idx: JobIdx) -> bool {
        self.held.contains(&idx)
    }

    /// How many dependencies `idx` still waits on (0 when none or not
    /// queued).
    pub fn pending_deps(&self, idx: JobIdx) -> usize {
        self.waiting.get(&idx).copied().unwrap_or(0)
    }

    /// The ready jobs, first in line first (across groups, by key).
    pub fn ready_ids(&self) -> Vec<JobIdx> {
        let mut all: Vec<JobIdx> = self.ready.values().flatten().copied().collect();
        all.sort_unstable();
        all
    }

    /// The held jobs (paused before they started), by key.
    pub fn held_ids(&self) -> Vec<JobIdx> {
        let mut all: Vec<JobIdx> = self.held.iter().copied().collect();
        all.sort_unstable();
        all
    }

    /// How many jobs have not started (ready, waiting or held).
    pub fn len(&self) -> usize {
        self.not_started
    }

    /// True when no job waits to start.
    pub fn is_empty(&self) -> bool {
        self.not_started == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_group_does_not_block_other_groups() {
        let mut q = RunQueue::with_limits([("gpu".to_string(), Some(1))]);
        q.add(0, "gpu", 0, false);
        q.add(1, "gpu", 0, false);
        q.add(2, "default", 0, false);
        assert_eq!(q.take(None), Some(0));
        assert_eq!(q.take(None), Some(2));
        assert_eq!(q.take(None), None);
        q.free_slot("gpu");
        assert_eq!(q.take(None), Some(1));
        assert!(q.is_empty());
    }

    #[test]
    fn the_daemon_wide_limit_caps_all_groups() {
        let mut q = RunQueue::default();
        q.add(0, "a", 0, false);
        q.add(1, "b", 0, false);
        assert_eq!(q.take(Some(1)), Some(0));
        assert_eq!(q.take(Some(1)), None);
        q.free_slot("a");
        assert_eq!(q.take(Some(1)), Some(1));
    }

    #[test]
    fn dependents_become_ready_or_are_doomed() {
        let mut q = RunQueue::default();
        q.add(5, "default", 2, false);
        q.wait_on("a", 5);
        q.wait_on("b", 5);
        q.add(6, "default", 1, false);
        q.wait_on("a", 6);
        assert!(
            q.dependency_ended("a", true, |_| "default".into())
                .is_empty()
        );
        assert_eq!(q.take(None), Some(6));
        assert_eq!(q.take(None), None);
        assert_eq!(q.dependency_ended("b", false, |_| "default".into()), [5]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_held_job_waits_for_its_release() {
        let mut q = RunQueue::default();
        q.add(1, "default", 0, false);
        assert!(q.hold(1, "default"));
        assert_eq!(q.take(None), None);
        assert!(q.release(1, "default"));
        assert_eq!(q.take(None), Some(1));
        // Held while waiting on a dependency: ready only once both are over.
        q.add(2, "default", 1, false);
        q.wait_on("x", 2);
        assert!(q.hold(2, "default"));
        assert!(
            q.dependency_ended("x", true, |_| "default".into())
                .is_empty()
        );
        assert_eq!(q.take(None), None);
        assert!(q.release(2, "default"));
        assert_eq!(q.take(None), Some(2));
    }
}
