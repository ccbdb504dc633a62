//! Job output on disk: `STATE_DIR/jobs/<id>.log`, written by the
//! job's processes directly (stdout and stderr share one file description),
//! read here by byte range or tail, and watched with inotify so readers wake
//! when bytes arrive instead of polling: one inotify instance for the whole
//! daemon, one watch per log, however many wait on it.
//!
//! The reading functions block: call them from a blocking thread.

use rustix::fd::OwnedFd;
use rustix::fs::inotify;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

/// The output log of job `id`: the one file a job has of its own
/// (docs/survival.md, "Files").
pub fn path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("jobs").join(format!("{id}.log"))
}

/// Deletes everything job `id` keeps on disk: its output log, a Slurm
/// job's environment file `<id>.slurm-env` (and, for a
/// job of an agentd before the exit journal, what is left of its
/// directory). A job with nothing on disk is not an error.
///
/// Errors: the log or directory exists but cannot be deleted.
pub fn remove(state_dir: &Path, id: &str) -> io::Result<()> {
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    let log = path(state_dir, id);
    gone(std::fs::remove_file(&log))?;
    // A Slurm job's environment file, if agentd stopped before removing it.
    gone(std::fs::remove_file(log.with_extension("slurm-env")))?;
    gone(std::fs::remove_dir_all(state_dir.join("jobs").join(id)))
}

/// Creates the job's empty output log (mode 0600) in `jobs/` (made with
/// mode 0700 at start; again here if it was deleted since).
///
/// Errors: the file cannot be created (disk full, read-only).
pub fn create(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map(|_| ())
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            open()
        }
        r => r,
    }
}

/// Opens the output log for the job's processes to append to (creating it
/// with mode 0600 if needed).
///
/// Errors: as [`File::open`].
pub fn open_for_job(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// What a read of the output log returned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes read.
    pub data: Vec<u8>,
    /// Offset of the first byte in `data`: the one asked for, or the end of
    /// the dropped range when the read started inside it.
    pub offset: u64,
    /// The log's size: every byte the job wrote, dropped ones included.
    pub total: u64,
    /// Bytes `[from, to)` dropped by the output cap ([`super::cap`]).
    pub dropped: Option<(u64, u64)>,
}

/// Bytes `[offset, offset + limit)`, skipping what the output cap dropped
/// (a read starting inside the dropped range starts at its end; one
/// reaching it stops at its start). A missing file reads as empty.
///
/// Errors: the file exists but cannot be read.
pub fn read_range(path: &Path, offset: u64, limit: u64) -> io::Result<Chunk> {
    let Some(mut file) = open_existing(path)? else {
        return Ok(Chunk {
            offset,
            ..Chunk::default()
        });
    };
    let total = file.metadata()?.len();
    let dropped = super::cap::dropped(&file, total)?;
    read_at(&mut file, offset, limit, total, dropped)
}

/// The last `n` bytes (fewer when they would reach into the dropped
/// range).
///
/// Errors: as [`read_range`].
pub fn read_tail(path: &Path, n: u64) -> io::Result<Chunk> {
    let Some(mut file) = open_existing(path)? else {
        return Ok(Chunk::default());
    };
    let total = file.metadata()?.len();
    let dropped = super::cap::dropped(&file, total)?;
    let start = total.saturating_sub(n);
    read_at(&mut file, start, total - start, total, dropped)
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_at(
    file: &mut File,
    offset: u64,
    limit: u64,
    total: u64,
    dropped: Option<(u64, u64)>,
) -> io::Result<Chunk> {
    let mut start = offset;
    let mut end = offset.saturating_add(limit).min(total);
    if let Some((from, to)) = dropped {
        if (from..to).contains(&start) {
            start = to;
            end = to.saturating_add(limit).min(total);
        } else if start < from {
            end = end.min(from);
        }
    }
    let mut data = Vec::new();
    if start < end {
        file.seek(SeekFrom::Start(start))?;
        data.reserve((end - start) as usize);
        file.take(end - start).read_to_end(&mut data)?;
    }
    Ok(Chunk {
        data,
        offset: start,
        total,
        dropped,
    })
}

/// The file's size; 0 when it does not exist.
///
/// Errors: the file exists but cannot be examined.
pub fn size(path: &Path) -> io::Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Appends a line to the output log (used for a spawn failure's reason).
///
/// Errors: as [`open_for_job`] and the write.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = open_for_job(path)?;
    writeln!(f, "{line}")
}

/// The daemon's one inotify instance, shared by every wait for output: one
/// watch per output log being waited on, however many requests wait on it,
/// and one thread that reads the events and wakes that log's waiters. (An
/// instance per wait would run into `fs.inotify.max_user_instances`, 128 by
/// default, at the 129th concurrent wait.)
struct Watcher {
    /// The inotify instance (blocking reads, on the watcher's own thread).
    fd: Arc<OwnedFd>,
    /// The logs being watched.
    logs: Mutex<Logs>,
}

/// The watched logs, by path and by watch descriptor.
#[derive(Default)]
struct Logs {
    /// One entry per watched log.
    by_path: HashMap<PathBuf, Watched>,
    /// The path of each watch descriptor.
    by_wd: HashMap<i32, PathBuf>,
}

/// One watched log.
struct Watched {
    /// Its inotify watch descriptor.
    wd: i32,
    /// Bumped on every write to the log; its waiters hold receivers.
    writes: watch::Sender<u64>,
    /// How many [`Growth`]s use this watch; at 0 the watch is removed.
    users: usize,
}

/// The shared watcher, started on first use.
///
/// Errors: inotify is unavailable, or its thread cannot start.
fn watcher() -> io::Result<&'static Watcher> {
    static WATCHER: OnceLock<Result<Watcher, String>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            let fd = Arc::new(
                inotify::init(inotify::CreateFlags::CLOEXEC)
                    .map_err(|e| format!("cannot start inotify: {e}"))?,
            );
            let reader = fd.clone();
            std::thread::Builder::new()
                .name("agentd-inotify".into())
                .spawn(move || read_events(&reader))
                .map_err(|e| format!("cannot start the inotify thread: {e}"))?;
            Ok(Watcher {
                fd,
                logs: Mutex::new(Logs::default()),
            })
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// The watcher thread: reads events until the instance fails, waking the
/// waiters of each written log (all of them when the kernel's event queue
/// overflowed).
fn read_events(fd: &OwnedFd) {
    let mut buf = [std::mem::MaybeUninit::uninit(); 8192];
    let mut events = inotify::Reader::new(fd, &mut buf);
    loop {
        let event = match events.next() {
            Ok(event) => event,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!("inotify failed; waits for output end only at their deadline: {e}");
                return;
            }
        };
        let Some(watcher) = watcher().ok() else {
            return;
        };
        let logs = watcher.logs.lock().expect("watched logs poisoned");
        if event.events().contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
            for log in logs.by_path.values() {
                log.writes.send_modify(|n| *n += 1);
            }
        } else if let Some(log) = logs
            .by_wd
            .get(&event.wd())
            .and_then(|p| logs.by_path.get(p))
        {
            log.writes.send_modify(|n| *n += 1);
        }
    }
}

/// A wait on one output log: [`Growth::changed`] returns once the file was
/// written to (or closed by a writer) after the `Growth` was made. Many
/// `Growth`s of one log share one inotify watch.
pub struct Growth {
    /// The watched log.
    path: PathBuf,
    /// Sees the log's write counter move.
    writes: watch::Receiver<u64>,
}

impl Growth {
    /// Starts watching `path`.
    ///
    /// Errors: inotify is unavailable, the file does not exist, or no
    /// watch can be added (`fs.inotify.max_user_watches` reached).
    pub fn watch(path: &Path) -> io::Result<Growth> {
        let watcher = watcher()?;
        let mut logs = watcher.logs.lock().expect("watched logs poisoned");
        if let Some(log) = logs.by_path.get_mut(path) {
            log.users += 1;
            return Ok(Growth {
                path: path.to_owned(),
                writes: log.writes.subscribe(),
            });
        }
        let wd = inotify::add_watch(
            &*watcher.fd,
            path,
            inotify::WatchFlags::MODIFY | inotify::WatchFlags::CLOSE_WRITE,
        )?;
        let (writes, rx) = watch::channel(0);
        logs.by_wd.insert(wd, path.to_owned());
        logs.by_path.insert(
            path.to_owned(),
            Watched {
                wd,
                writes,
                users: 1,
            },
        );
        Ok(Growth {
            path: path.to_owned(),
            writes: rx,
        })
    }

    /// Waits for the next write to the file.
    pub async fn changed(&mut self) {
        if self.writes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Growth {
    fn drop(&mut self) {
        let Ok(watcher) = watcher() else { return };
        let mut logs = watcher.logs.lock().expect("watched logs poisoned");
        let Some(log) = logs.by_path.get_mut(&self.path) else {
            return;
        };
        log.users -= 1;
        if log.users == 0 {
            let wd = log.wd;
            logs.by_path.remove(&self.path);
            logs.by_wd.remove(&wd);
            // Fails harmlessly when the file is gone (the kernel already
            // dropped the watch).
            let _ = inotify::remove_watch(&*watcher.fd, wd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "job");
        let read = |o, l| {
            let c = read_range(&p, o, l).unwrap();
            (c.data, c.total)
        };
        assert_eq!(read(0, 10), (vec![], 0));
        create(&p).unwrap();
        append_line(&p, "hello world").unwrap();
        assert_eq!(read(6, 5), (b"world".to_vec(), 12));
        assert_eq!(read(50, 5), (vec![], 12));
        let tail = read_tail(&p, 6).unwrap();
        assert_eq!(
            (tail.data, tail.offset, tail.total),
            (b"world\n".to_vec(), 6, 12)
        );
        assert_eq!(read_tail(&p, 100).unwrap().data.len(), 12);
    }
}
