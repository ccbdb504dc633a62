//! Handing an agent session's finished jobs to its model exactly once, in
//! a `<background-results>` block (the same block agentctl's own agent
//! gets: [`crate::agent::notifications::block`]).
//!
//! The hook and the MCP `results` tool run in separate processes, each of
//! which may die at any point, so the hand-over is recorded in a file
//! before anything is shown: [`take`] peeks the pending notifications,
//! writes the highest `seq` it is about to hand over to
//! `<state>/integrations/<session>/injected` (fsynced), and returns the
//! block; the caller shows it and then calls [`finish`], which acks in
//! agentd and removes the record. A run that died between the two finds
//! the record next time and acks it without showing anything again, so a
//! result is shown at most once and, unless a process dies in that window,
//! exactly once.
//!
//! Results the model has already seen in a tool answer (`run` with
//! `wait_secs`, `wait`) are listed in `<session>/shown` by the MCP server;
//! they are acked without being shown again.
//!
//! Bounds: `shown` keeps the newest [`SHOWN_KEEP`] job ids (a hand-over
//! runs before every model call, so an id older than that has long been
//! acked). A session's directory that nothing has touched for
//! [`SESSION_DIR_MAX_AGE_DAYS`] days, with no hand-over in flight, is
//! deleted when another session's directory is created, so the
//! directories of ended agent sessions do not pile up.
//!
//! Size: a block stays under [`MAX_BLOCK_CHARS`]. Each result keeps its
//! output tail while that fits; later ones show their header and a pointer
//! to the `output` tool; what does not fit at all stays pending for the
//! next hand-over, and the block says how many are left.
//!
//! Dropped results: when agentd's pending cap (`[retention]
//! max_pending_per_session`) dropped older results unread, the peek says
//! how many, and the block opens with the same line agentctl's own agent
//! gets ([`crate::agent::notifications::dropped_line`]); the hand-over's
//! ack reaches the peek's `dropped_up_to_seq` and clears the count, so it
//! is told once, also when no result is left to show (their jobs were
//! removed).

use crate::agent::notifications;
use agentd_proto::methods::{AckParams, NotificationsAck, NotificationsPeek, PeekParams};
use agentd_proto::{Client, Notification};
use anyhow::Context;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest block handed over, in characters: agents put hook output into
/// the model's context as it is (Claude Code caps hook output at 10,000
/// characters), so longer output is left to the `output` tool.
pub const MAX_BLOCK_CHARS: usize = 9_500;
/// Job ids a session's `shown` file keeps: the newest this many. The file
/// is cut back to them when it passes [`SHOWN_TRIM_BYTES`].
pub const SHOWN_KEEP: usize = 1_000;
/// Size past which `shown` is cut back to [`SHOWN_KEEP`] ids, in bytes
/// (a job id and its newline take 33 bytes: about 2,000 ids).
pub const SHOWN_TRIM_BYTES: u64 = 64 * 1024;
/// Age, in days, after which an untouched session directory is deleted
/// (the same as `[retention] max_age_days`'s default in agentd).
pub const SESSION_DIR_MAX_AGE_DAYS: u64 = 30;

/// Longest command shown in a result's header, in characters.
const MAX_COMMAND_CHARS: usize = 200;
/// Most notifications looked at per hand-over.
const PEEK_MAX: u64 = 50;

/// A block ready to show and what to ack once it is shown.
#[derive(Debug)]
pub struct Handover {
    /// The `<background-results>` block.
    pub block: String,
    /// Ack up to this `seq` once the block is shown.
    pub up_to_seq: u64,
    /// The jobs shown, oldest first.
    pub shown: Vec<Notification>,
    /// How many older results agentd dropped unread (the block says so).
    pub dropped: u64,
}

/// The directory holding the hand-over records of agentd session
/// `session`: `$AGENTCTL_STATE_DIR/integrations/<session>`, else the same
/// under agentctl's state directory (`~/.local/state/agentctl`).
///
/// Errors: no home directory and no `AGENTCTL_STATE_DIR`.
pub fn state_dir(session: &str) -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("AGENTCTL_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => directories::ProjectDirs::from("", "", "agentctl")
            .and_then(|d| d.state_dir().map(Path::to_path_buf))
            .context("cannot find the home directory; set AGENTCTL_STATE_DIR")?,
    };
    Ok(base.join("integrations").join(session))
}

/// Takes the session's pending results for showing: completes a hand-over
/// an earlier run recorded but did not ack, then peeks, records the new
/// hand-over durably and returns it. `None` when there is nothing to show
/// (results the model already saw in a tool answer are acked here).
///
/// Errors: agentd errors; the record cannot be read or written (then
/// nothing must be shown).
pub async fn take(client: &Client, session: &str) -> anyhow::Result<Option<Handover>> {
    let dir = state_dir(session)?;
    let record = dir.join("injected");
    let recorded = read_record(&record).await?;
    if let Some(seq) = recorded {
        ack(client, session, seq).await?;
        remove(&record).await;
    }
    let page = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some(session.to_string()),
            after_seq: recorded,
            max: Some(PEEK_MAX),
        })
        .await?;
    let seen = read_shown(&dir.join("shown")).await;
    let drops = (page.dropped, page.dropped_up_to_seq);
    let Some(handover) = compose(page.notifications, drops, &seen) else {
        return Ok(None);
    };
    if handover.shown.is_empty() && handover.dropped == 0 {
        // Only results the model saw already: consume them quietly.
        ack(client, session, handover.up_to_seq).await?;
        return Ok(None);
    }
    write_record(&dir, &record, handover.up_to_seq).await?;
    Ok(Some(handover))
}

/// Acks a shown hand-over and drops its record.
///
/// Errors: agentd errors (the record stays, so the next [`take`] acks it).
pub async fn finish(client: &Client, session: &str, handover: &Handover) -> anyhow::Result<()> {
    ack(client, session, handover.up_to_seq).await?;
    remove(&state_dir(session)?.join("injected")).await;
    Ok(())
}

/// Notes that the model saw job `job_id`'s result in a tool answer, so no
/// hand-over shows it again.
///
/// Errors: the file cannot be written.
pub async fn note_shown(session: &str, job_id: &str) -> anyhow::Result<()> {
    let dir = state_dir(session)?;
    let job_id = job_id.to_string();
    tokio::task::spawn_blocking(move || append_shown(&dir, &job_id)).await?
}

/// Appends `job_id` to `dir/shown` and, past [`SHOWN_TRIM_BYTES`], cuts
/// the file back to its newest [`SHOWN_KEEP`] ids: written to a temporary
/// file, fsynced and renamed over it, so a reader sees either the old list
/// or the new one. Appends and cuts hold an exclusive `flock` on
/// `dir/lock` (a regular file opened for writing, so that NFS's emulation
/// of `flock` works too), so an id another process appends is never lost
/// in a cut. Where the lock cannot be taken the id is still appended, and
/// the cut waits for a later append that gets the lock. Blocking.
///
/// Errors: the directory or the file cannot be written.
fn append_shown(dir: &Path, job_id: &str) -> anyhow::Result<()> {
    create_dir(dir)?;
    let locked = lock(dir, rustix::fs::FlockOperation::LockExclusive);
    let path = dir.join("shown");
    let context = || format!("cannot write {}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(context)?;
    // One short O_APPEND write: lines from two processes never mix.
    f.write_all(format!("{job_id}\n").as_bytes())
        .with_context(context)?;
    if locked.is_none() || f.metadata().with_context(context)?.len() <= SHOWN_TRIM_BYTES {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).with_context(context)?;
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(SHOWN_KEEP)..].join("\n") + "\n";
    let tmp = dir.join("shown.tmp");
    let mut t = std::fs::File::create(&tmp).with_context(context)?;
    t.write_all(kept.as_bytes()).with_context(context)?;
    t.sync_all().with_context(context)?;
    std::fs::rename(&tmp, &path).with_context(context)?;
    Ok(())
}

/// Takes `op` (an exclusive `flock`, blocking or not) on `dir/lock`,
/// creating it; the lock holds while the returned file is open. `None`
/// when it cannot be opened or locked (or, non-blocking, is held).
fn lock(dir: &Path, op: rustix::fs::FlockOperation) -> Option<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join("lock"))
        .ok()?;
    rustix::fs::flock(&f, op).ok()?;
    Some(f)
}

/// Builds the hand-over from pending notifications (oldest first): which
/// to show, within [`MAX_BLOCK_CHARS`], and the `seq` to ack up to. The
/// block opens with the count of older results agentd dropped unread,
/// when `drops` (peek's `dropped` and `dropped_up_to_seq`) says some were,
/// and the ack then covers the drops too, even with nothing pending (their
/// jobs were removed). `None` when `pending` is empty and nothing was
/// dropped.
pub fn compose(
    pending: Vec<Notification>,
    drops: (u64, Option<u64>),
    seen: &HashSet<String>,
) -> Option<Handover> {
    let (dropped, mut up_to_seq) = match drops {
        (n, Some(seq)) if n > 0 => (n, Some(seq)),
        _ => (0, None),
    };
    let mut shown: Vec<Notification> = Vec::new();
    let mut used = notifications::block_with_dropped(&[], dropped).len();
    let total = pending.len();
    let mut taken = 0;
    for mut n in pending {
        if seen.contains(&n.job_id) {
            up_to_seq = up_to_seq.max(Some(n.seq));
            taken += 1;
            continue;
        }
        if n.command.chars().count() > MAX_COMMAND_CHARS {
            n.command = n
                .command
                .chars()
                .take(MAX_COMMAND_CHARS)
                .collect::<String>()
                + "…";
        }
        let full = entry_len(&n);
        // Room kept for the "N more" line.
        let room = MAX_BLOCK_CHARS.saturating_sub(used + 120);
        if full > room {
            n.output_tail = format!(
                "(output left out to keep this short: call the agentd `output` tool with id {})",
                n.short_id
            );
            if entry_len(&n) > room {
                break;
            }
        }
        used += entry_len(&n);
        up_to_seq = up_to_seq.max(Some(n.seq));
        shown.push(n);
        taken += 1;
    }
    let up_to_seq = up_to_seq?;
    let mut block = notifications::block_with_dropped(&shown, dropped);
    if taken < total {
        let more = format!(
            "({} more results pending: they come with the next prompt, or call the agentd `results` tool)\n",
            total - taken
        );
        let at = block.len() - "</background-results>".len();
        block.insert_str(at, &more);
    }
    Some(Handover {
        block,
        up_to_seq,
        shown,
        dropped,
    })
}

/// Characters one notification adds to a block.
fn entry_len(n: &Notification) -> usize {
    notifications::block(std::slice::from_ref(n)).len() - notifications::block(&[]).len()
}

async fn ack(client: &Client, session: &str, up_to_seq: u64) -> anyhow::Result<()> {
    client
        .call::<NotificationsAck>(&AckParams {
            session: Some(session.to_string()),
            up_to_seq,
        })
        .await?;
    Ok(())
}

/// The recorded `seq`, `None` when there is no record.
async fn read_record(path: &Path) -> anyhow::Result<Option<u64>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{} holds no sequence number", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    })
    .await?
}

/// Writes `seq` to `path` so that it survives a crash: a temp file,
/// fsynced, renamed over the record, the directory fsynced.
async fn write_record(dir: &Path, path: &Path, seq: u64) -> anyhow::Result<()> {
    let (dir, path) = (dir.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        create_dir(&dir)?;
        let tmp = dir.join(format!("injected.{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(format!("{seq}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })
    .await?
}

async fn remove(path: &Path) {
    let path = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
}

/// Job ids listed in the `shown` file (empty when there is none).
async fn read_shown(path: &Path) -> HashSet<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Creates a session's directory (mode 0700) when it does not exist yet,
/// and then deletes the directories of sessions gone quiet
/// ([`expire_sessions`]).
fn create_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Only among the sessions' directories (a name is never a path; see
    // binding::sanitize and session::validate_name).
    if let Some(root) = dir.parent().filter(|r| r.ends_with("integrations")) {
        let max_age = std::time::Duration::from_secs(SESSION_DIR_MAX_AGE_DAYS * 86_400);
        expire_sessions(root, dir, std::time::SystemTime::now(), max_age);
    }
    Ok(())
}

/// Deletes the session directories under `root` (but `keep`) that have no
/// hand-over in flight (no `injected` record) and whose newest change (of
/// the directory or of its `shown` file) is older than `max_age` at `now`.
/// Only the files a session's directory holds are deleted (`shown`,
/// `shown.tmp`, `lock`), then the directory itself, which fails and stays
/// when anything else is in it, such as a record a hook resuming that
/// session has just written. A directory whose lock is held is left alone.
/// Best effort: what cannot be read or deleted is left as it is. Returns
/// how many were deleted. Blocking.
fn expire_sessions(
    root: &Path,
    keep: &Path,
    now: std::time::SystemTime,
    max_age: std::time::Duration,
) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let modified = |p: &Path| std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok();
    let mut deleted = 0;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path == keep || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if path.join("injected").exists() {
            continue;
        }
        let newest = [modified(&path), modified(&path.join("shown"))]
            .into_iter()
            .flatten()
            .max();
        let old = newest.is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > max_age));
        if !old {
            continue;
        }
        let Some(_held) = lock(&path, rustix::fs::FlockOperation::NonBlockingLockExclusive) else {
            continue;
        };
        for file in ["shown", "shown.tmp", "lock"] {
            let _ = std::fs::remove_file(path.join(file));
        }
        if std::fs::remove_dir(&path).is_ok() {
            deleted += 1;
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::JobState;

    fn note(seq: u64, tail: &str) -> Notification {
        Notification {
            seq,
            job_id: format!("job-{seq}"),
            short_id: format!("{seq:08x}"),
            session: "s".into(),
            state: JobState::Succeeded,
            exit_code: Some(0),
            signal: None,
            command: format!("echo {seq}"),
            duration_ms: Some(5),
            output_tail: tail.into(),
            finished_at: "2026-01-01T00:00:00Z".into(),
            reason: None,
        }
    }

    #[test]
    fn small_results_are_shown_whole() {
        let h = compose(
            vec![note(1, "one\n"), note(2, "two\n")],
            (0, None),
            &HashSet::new(),
        )
        .unwrap();
        assert_eq!(h.up_to_seq, 2);
        assert_eq!(
            h.block,
            "<background-results>\n[bg:00000001] succeeded (exit 0): echo 1\none\n\
             [bg:00000002] succeeded (exit 0): echo 2\ntwo\n</background-results>"
        );
    }

    #[test]
    fn results_already_seen_are_consumed_not_shown() {
        let seen = HashSet::from(["job-1".to_string()]);
        let h = compose(vec![note(1, "one"), note(2, "two")], (0, None), &seen).unwrap();
        assert_eq!(h.up_to_seq, 2);
        assert_eq!(h.shown.len(), 1);
        assert!(!h.block.contains("echo 1"));
        let h = compose(vec![note(1, "one")], (0, None), &seen).unwrap();
        assert!(h.shown.is_empty());
        assert_eq!(h.up_to_seq, 1);
    }

    #[test]
    fn a_long_batch_stays_under_the_limit_and_leaves_the_rest_pending() {
        let tail = "x".repeat(1000);
        let pending: Vec<_> = (1..=50).map(|s| note(s, &tail)).collect();
        let h = compose(pending, (0, None), &HashSet::new()).unwrap();
        assert!(h.block.len() <= MAX_BLOCK_CHARS, "{}", h.block.len());
        assert!(h.block.ends_with("</background-results>"));
        assert!(h.block.contains("call the agentd `output` tool with id"));
        let left = 50 - h.shown.len();
        assert!(left > 0);
        assert!(
            h.block.contains(&format!("({left} more results pending")),
            "{}",
            h.block
        );
        assert_eq!(h.up_to_seq, h.shown.len() as u64);
    }

    #[test]
    fn a_drop_opens_the_block_with_the_agent_loops_words() {
        let h = compose(vec![note(7, "seven\n")], (4, Some(3)), &HashSet::new()).unwrap();
        assert_eq!(
            h.block,
            notifications::block_with_dropped(&h.shown, 4),
            "the same block agentctl's own agent gets"
        );
        assert!(h.block.contains(&notifications::dropped_line(4)));
        assert_eq!(h.dropped, 4);
        // Told even when every kept result was seen already.
        let seen = HashSet::from(["job-7".to_string()]);
        let h = compose(vec![note(7, "seven")], (4, Some(3)), &seen).unwrap();
        assert!(h.shown.is_empty());
        assert_eq!(
            h.block,
            format!(
                "<background-results>\n{}\n</background-results>",
                notifications::dropped_line(4)
            )
        );
    }

    #[test]
    fn a_drop_is_told_and_acked_with_nothing_left_pending() {
        let h = compose(Vec::new(), (4, Some(3)), &HashSet::new()).unwrap();
        assert_eq!(h.up_to_seq, 3, "the ack must reach the drop");
        assert_eq!(h.block, notifications::block_with_dropped(&[], 4));
        assert!(compose(Vec::new(), (0, None), &HashSet::new()).is_none());
    }

    #[test]
    fn shown_keeps_the_newest_ids_and_loses_none_of_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("integrations/s");
        let id = |i: usize| format!("{i:032x}");
        let n = 5_000;
        for i in 0..n {
            append_shown(&dir, &id(i)).unwrap();
        }
        let path = dir.join("shown");
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= SHOWN_TRIM_BYTES, "shown is {len} bytes");
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().collect();
        assert!(kept.len() >= SHOWN_KEEP, "{} ids kept", kept.len());
        // The newest ids, in order, without a gap, up to the last one.
        let first = n - kept.len();
        let want: Vec<String> = (first..n).map(id).collect();
        assert_eq!(kept, want);
        assert!(!dir.join("shown.tmp").exists());
    }

    #[test]
    fn appends_from_many_writers_at_once_lose_no_id_across_cuts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("integrations/s");
        let (writers, each) = (4, 1_500);
        std::thread::scope(|scope| {
            for w in 0..writers {
                let dir = &dir;
                scope.spawn(move || {
                    for i in 0..each {
                        append_shown(dir, &format!("{w:016x}{i:016x}")).unwrap();
                    }
                });
            }
        });
        // 6,000 ids of 33 bytes: cut several times. A cut keeps the newest
        // ids, so what is left of each writer is the end of what it wrote,
        // without a gap: an id lost in a cut would leave one.
        let text = std::fs::read_to_string(dir.join("shown")).unwrap();
        let kept: Vec<(usize, usize)> = text
            .lines()
            .map(|l| {
                let (w, i) = l.split_at(16);
                let n = |h| usize::from_str_radix(h, 16).unwrap();
                (n(w), n(i))
            })
            .collect();
        assert!(kept.len() >= SHOWN_KEEP, "{} ids kept", kept.len());
        for w in 0..writers {
            let mine: Vec<usize> = kept.iter().filter(|k| k.0 == w).map(|k| k.1).collect();
            let want: Vec<usize> = (each - mine.len()..each).collect();
            assert_eq!(mine, want, "writer {w}'s ids");
        }
    }

    /// Sets the modification time of `path` (a file or a directory).
    fn age(path: &Path, days: u64) {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
        std::fs::File::open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn quiet_session_dirs_go_when_a_new_one_is_made_and_busy_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("integrations");
        let make = |name: &str, files: &[&str], days: u64| {
            let d = root.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for f in files {
                std::fs::write(d.join(f), "x\n").unwrap();
                age(&d.join(f), days);
            }
            age(&d, days);
            d
        };
        let old = make("old", &["shown", "lock"], 40);
        let in_flight = make("in-flight", &["shown", "injected"], 40);
        let recent = make("recent", &["shown"], 3);
        // The directory is old but its `shown` was appended to lately.
        let appended = make("appended", &["shown"], 40);
        age(&appended.join("shown"), 1);
        // Not a session's directory: something else in it, so it stays.
        let foreign = make("foreign", &["notes.txt"], 40);
        // Making a new session's directory expires the others.
        append_shown(&root.join("new"), "id").unwrap();
        assert!(!old.exists());
        assert!(in_flight.exists() && recent.exists() && appended.exists());
        assert!(foreign.join("notes.txt").exists());
        // An existing one does not look again.
        let old = make("old", &["shown"], 40);
        append_shown(&root.join("new"), "id2").unwrap();
        assert!(old.exists());
        // A held lock keeps a directory too.
        let held = lock(&old, rustix::fs::FlockOperation::LockExclusive).unwrap();
        age(&old, 40);
        let later = std::time::SystemTime::now();
        let max_age = std::time::Duration::from_secs(30 * 86_400);
        assert_eq!(expire_sessions(&root, &root.join("new"), later, max_age), 0);
        drop(held);
        assert_eq!(expire_sessions(&root, &root.join("new"), later, max_age), 1);
        assert!(!old.exists());
    }
}
