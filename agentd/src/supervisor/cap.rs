//! The output cap (`[output] max_bytes`, docs/limits.md): a job that writes
//! more than the cap keeps the head of its output and the newest tail, and
//! the middle is dropped by punching a hole in its log
//! (`fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`). The hole frees
//! the disk blocks but keeps every offset and the log's size, which stays
//! the count of every byte the job wrote (`output_bytes`), and the job's
//! processes go on appending to the same file.
//!
//! The job's shim enforces the cap ([`Watch`]): on its one thread it waits
//! for an inotify watch of the log as well as for its children, woken only
//! when the log is written (and, while the job writes, at most every so
//! often: [`Watch::quiet_for`]), so a quiet job costs no CPU, and the cap
//! holds whether or not agentd runs. Readers
//! find the dropped range in the file itself ([`dropped`], with `SEEK_HOLE`
//! and `SEEK_DATA`): there is no second record to keep in step.
//!
//! What is kept, with `M` the cap: the head, the first `M/4` bytes, and
//! the newest bytes. The shim lets the log grow to `7M/8` on disk, then
//! drops the middle down to `5M/8` (the newest `3M/8` kept), in steps of
//! `M/4`: few hole punches, and `M/8` of headroom for what the job writes
//! while the shim waits to run, so the log stays within the cap even
//! under a fast writer. (Sizes are rounded to the file system's blocks.)

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FallocateFlags, SeekFrom};
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Smallest cap accepted (64 KiB): below it the head and the tail would be
/// a few blocks each.
pub const MIN_MAX_BYTES: u64 = 64 * 1024;

/// Default cap: 1 GiB (DESIGN.md, "A daemon for a lifetime").
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Bytes kept at the head of a capped log: a quarter of `max`, rounded
/// down to a multiple of `block` (a hole frees whole blocks only).
pub fn head(max: u64, block: u64) -> u64 {
    max / 4 / block * block
}

/// Drops the middle of the log `file` when it holds more than `7 max / 8`
/// bytes on disk: punches a hole from the head's end up to where the
/// newest bytes fitting in `5 max / 8` begin (rounded up to a block).
/// Punching again what is a hole already is harmless, so any caller may
/// trim at any time. Returns the headroom: how many more bytes the job may
/// write before the log needs trimming again (`u64::MAX` without a cap).
///
/// Errors: the file cannot be examined, or the file system cannot punch
/// holes (`EOPNOTSUPP`).
pub fn trim(file: &File, max: u64) -> io::Result<u64> {
    let meta = file.metadata()?;
    let size = meta.len();
    let high = max / 8 * 7;
    if max == 0 {
        return Ok(u64::MAX);
    }
    if size <= high {
        return Ok(high - size);
    }
    let kept = match dropped(file, size)? {
        Some((from, to)) => size - (to - from),
        None => size,
    };
    if kept <= high {
        return Ok(high - kept);
    }
    let block = meta.blksize().max(512);
    let from = head(max, block);
    let low = max / 8 * 5;
    let to = (size - (low - from)).div_ceil(block) * block;
    // Never into the block the job is appending to.
    let to = to.min(size / block * block);
    if to > from {
        rustix::fs::fallocate(
            file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            from,
            to - from,
        )?;
        return Ok(high.saturating_sub(from + (size - to)));
    }
    Ok(0)
}

/// The range `[from, to)` of the log that the cap dropped, found as the
/// log's first hole; `None` when it has none. `total` is the log's size.
///
/// Errors: the file cannot be examined.
pub fn dropped(file: &File, total: u64) -> io::Result<Option<(u64, u64)>> {
    if total == 0 {
        return Ok(None);
    }
    let from = match rustix::fs::seek(file, SeekFrom::Hole(0)) {
        Ok(from) => from,
        // No holes on this file system, or none to report.
        Err(Errno::NXIO | Errno::INVAL | Errno::OPNOTSUPP) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if from >= total {
        return Ok(None);
    }
    let to = match rustix::fs::seek(file, SeekFrom::Data(from)) {
        Ok(to) => to.min(total),
        // Hole to the end: the tail is being written.
        Err(Errno::NXIO) => total,
        Err(e) => return Err(e.into()),
    };
    Ok(Some((from, to)))
}

/// A watch on a job's output log: an inotify descriptor woken at each
/// write to the log, and the log opened for trimming. The shim polls it
/// beside its SIGCHLD descriptor on its one thread (a second thread made
/// every job's end reach agentd about 7 ms later; docs/benchmarks.md).
///
/// After a wake-up the shim need not look again until the job can have
/// written the headroom [`Watch::woken`] returns: it stops polling the
/// watch for `headroom /` [`MAX_WRITE_RATE`] ([`Watch::quiet_for`]), then
/// trims once and waits for the next write. A job writing fast then wakes
/// its shim a few times per second instead of at every write, and a quiet
/// job never (the pause starts only after a write).
pub struct Watch {
    /// Readable when the log was written since the last [`Watch::woken`].
    inotify: OwnedFd,
    /// The log, opened for writing (hole punching).
    file: File,
    /// `[output] max_bytes`.
    max: u64,
}

/// The fastest a job is assumed to append to its log, in bytes per second
/// (16 GiB/s: several times what one writer reaches through the page
/// cache here); it decides how long the shim may look away after a trim.
pub const MAX_WRITE_RATE: u64 = 16 << 30;

impl Watch {
    /// How long the shim may skip the watch after [`Watch::woken`]
    /// returned `headroom`: the time the job needs to write it at
    /// [`MAX_WRITE_RATE`]; `None` when under a millisecond.
    pub fn quiet_for(headroom: u64) -> Option<std::time::Duration> {
        let quiet = std::time::Duration::from_secs_f64(headroom as f64 / MAX_WRITE_RATE as f64);
        (quiet >= std::time::Duration::from_millis(1)).then_some(quiet)
    }

    /// Watches the log at `path`, to keep it within `max` bytes.
    ///
    /// Errors: the log cannot be opened or inotify cannot watch it (the
    /// job then runs uncapped).
    pub fn new(path: &Path, max: u64) -> io::Result<Watch> {
        use rustix::fs::inotify;
        let file = File::options().write(true).open(path)?;
        let inotify =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(&inotify, path, inotify::WatchFlags::MODIFY)?;
        Ok(Watch { inotify, file, max })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Takes the pending events and trims the log (see [`trim`]); returns
    /// the headroom [`trim`] returned.
    ///
    /// Errors: reading the events or trimming failed; the caller stops
    /// watching.
    pub fn woken(&self) -> io::Result<u64> {
        let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
        let mut events = rustix::fs::inotify::Reader::new(&self.inotify, &mut buf);
        loop {
            match events.next() {
                Ok(_) => {}
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(e) => return Err(e.into()),
            }
        }
        trim(&self.file, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_trimmed_log_keeps_its_size_head_and_tail_and_reports_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut f = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .unwrap();
        let chunk: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
        for _ in 0..16 {
            f.write_all(&chunk).unwrap();
        }
        let max = 256 * 1024;
        trim(&f, max).unwrap();
        let total = f.metadata().unwrap().len();
        assert_eq!(total, 16 * 64 * 1024, "the size counts every byte");
        let (from, to) = dropped(&f, total)
            .unwrap()
            .expect("a hole (this file system must punch holes)");
        let block = f.metadata().unwrap().blksize();
        assert_eq!(from, head(max, block));
        assert!(total - to <= max / 8 * 5 - from, "{from} {to}");
        assert!(f.metadata().unwrap().blocks() * 512 <= max + block);
        // Trimming again changes nothing, nor does appending less than a
        // quarter of the cap; appending more moves the gap's end.
        trim(&f, max).unwrap();
        assert_eq!(dropped(&f, total).unwrap(), Some((from, to)));
        f.write_all(&chunk[..16 * 1024]).unwrap();
        trim(&f, max).unwrap();
        assert_eq!(dropped(&f, total).unwrap(), Some((from, to)));
        f.write_all(&chunk).unwrap();
        trim(&f, max).unwrap();
        let total = f.metadata().unwrap().len();
        let (_, to2) = dropped(&f, total).unwrap().unwrap();
        assert!(to2 > to && total - to2 <= max / 8 * 5 - from);
    }

    #[test]
    fn the_shim_looks_away_for_as_long_as_the_headroom_takes_to_write() {
        assert_eq!(Watch::quiet_for(0), None);
        assert_eq!(Watch::quiet_for(MAX_WRITE_RATE / 10_000), None);
        assert_eq!(
            Watch::quiet_for(MAX_WRITE_RATE / 4),
            Some(std::time::Duration::from_millis(250))
        );
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("log")).unwrap();
        assert_eq!(trim(&f, 1 << 20).unwrap(), (1 << 20) / 8 * 7);
        assert_eq!(trim(&f, 0).unwrap(), u64::MAX);
    }
}
