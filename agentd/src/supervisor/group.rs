//! Process groups: finding a group's live members and waiting for them to
//! exit without polling (one pidfd per member, readable when it exits).

use rustix::fd::OwnedFd;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Sends `sig` to every process in group `pgid`; a group that no longer
/// exists is not an error.
pub fn signal(pgid: u32, sig: Signal) {
    let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, sig)
        && e != rustix::io::Errno::SRCH
    {
        tracing::warn!("cannot signal process group {pgid}: {e}");
    }
}

/// Live (not zombie) processes whose process group is `pgid`, from `/proc`.
/// Blocking: call from a blocking thread.
pub fn live_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the command name, which ends at the last ')':
            // state ppid pgrp ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
            pgrp == Some(pgid) && !matches!(state, Some("Z" | "X"))
        })
        .collect()
}

/// A process's state letter (`R`, `S`, `Z`, ...) and start time (field 22
/// of `/proc/<pid>/stat`, `starttime`: clock ticks after boot); `None` when
/// there is no such process. Together with the pid, the start time names a
/// process unambiguously: a recycled pid has a later one.
pub fn stat_start(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends at the last ')': field 3
    // (state) is the first, so field 22 is the 20th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Waits until every process in `pids` has exited, or `deadline`. Returns
/// true when all exited in time. A pid that is already gone counts as
/// exited.
pub async fn wait_exit(pids: &[u32], deadline: Instant) -> bool {
    let mut fds = Vec::new();
    for &pid in pids {
        let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        match pidfd_open(p, PidfdFlags::NONBLOCK) {
            Ok(fd) => match async_fd(fd) {
                Ok(afd) => fds.push(afd),
                Err(e) => tracing::warn!("cannot watch pid {pid}: {e}"),
            },
            Err(_) => continue, // gone already
        }
    }
    tokio::time::timeout_at(deadline, async {
        for fd in &fds {
            let _ = readable(fd).await;
        }
    })
    .await
    .is_ok()
}

/// A pidfd for `pid`, registered with tokio, if the process still exists
/// and started at `start` (see [`stat_start`]) and has not exited. The pidfd
/// is opened before the check, so it refers to the checked process even if
/// the pid is recycled right after.
pub fn watch_if_same(pid: u32, start: u64) -> Option<AsyncFd<OwnedFd>> {
    let p = i32::try_from(pid).ok().and_then(Pid::from_raw)?;
    let fd = pidfd_open(p, PidfdFlags::NONBLOCK).ok()?;
    match stat_start(pid) {
        Some((state, s)) if s == start && !matches!(state, 'Z' | 'X') => async_fd(fd).ok(),
        _ => None,
    }
}

/// Registers an owned fd with tokio's reactor for readability.
///
/// Errors: the reactor refuses the fd.
pub fn async_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor that stays open, and
    // keeps returning the same raw fd, for as long as it is owned, which is
    // the `AsyncFd`'s whole lifetime.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

async fn readable(fd: &AsyncFd<OwnedFd>) -> std::io::Result<()> {
    fd.readable().await.map(|_| ())
}

/// Makes sure no process of group `pgid` outlives a kill: waits for the
/// members until `grace_end`, sends SIGKILL to whatever is left then (or
/// was forked meanwhile), and waits up to 5 s more for those.
pub async fn reap(pgid: u32, grace_end: Instant) {
    const AFTER_KILL: Duration = Duration::from_secs(5);
    let members = members_async(pgid).await;
    if members.is_empty() {
        return;
    }
    if wait_exit(&members, grace_end).await && members_async(pgid).await.is_empty() {
        return;
    }
    signal(pgid, Signal::KILL);
    let left = members_async(pgid).await;
    wait_exit(&left, Instant::now() + AFTER_KILL).await;
}

async fn members_async(pgid: u32) -> Vec<u32> {
    tokio::task::spawn_blocking(move || live_members(pgid))
        .await
        .unwrap_or_default()
}
