//! Job output on disk: `STATE_DIR/jobs/<id>/output.log`, written by the
//! job's processes directly (stdout and stderr share one file description),
//! read here by byte range or tail, and watched with inotify so readers wake
//! when bytes arrive instead of polling.
//!
//! The reading functions block: call them from a blocking thread.

use rustix::fd::OwnedFd;
use rustix::fs::inotify;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

/// The output log of job `id`.
pub fn path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("jobs").join(id).join("output.log")
}

/// Creates the job's directory and an empty output log.
///
/// Errors: the directory or file cannot be created (disk full, read-only).
pub fn create(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path).map(|_| ())
}

/// Opens the output log for the job's processes to append to.
///
/// Errors: as [`File::open`].
pub fn open_for_job(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
}

/// Bytes `[offset, offset + limit)` and the file's size. A missing file
/// reads as empty.
///
/// Errors: the file exists but cannot be read.
pub fn read_range(path: &Path, offset: u64, limit: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let total = file.metadata()?.len();
    if offset >= total {
        return Ok((Vec::new(), total));
    }
    file.seek(SeekFrom::Start(offset))?;
    let want = limit.min(total - offset);
    let mut data = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut data)?;
    Ok((data, total))
}

/// The last `n` bytes and the file's size.
///
/// Errors: as [`read_range`].
pub fn read_tail(path: &Path, n: u64) -> io::Result<(Vec<u8>, u64)> {
    let total = size(path)?;
    let start = total.saturating_sub(n);
    let (data, total) = read_range(path, start, total - start)?;
    Ok((data, total))
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

/// An inotify watch on one output log: [`Growth::changed`] returns once the
/// file was written to (or closed by a writer) after the watch was set.
pub struct Growth {
    fd: AsyncFd<OwnedFd>,
}

impl Growth {
    /// Starts watching `path`.
    ///
    /// Errors: inotify is unavailable or the file does not exist.
    pub fn watch(path: &Path) -> io::Result<Growth> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            path,
            inotify::WatchFlags::MODIFY | inotify::WatchFlags::CLOSE_WRITE,
        )?;
        Ok(Growth {
            fd: super::group::async_fd(fd)?,
        })
    }

    /// Waits for the next write to the file.
    pub async fn changed(&self) {
        let _ = self.fd.readable().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "job");
        assert_eq!(read_range(&p, 0, 10).unwrap(), (vec![], 0));
        create(&p).unwrap();
        append_line(&p, "hello world").unwrap();
        assert_eq!(read_range(&p, 6, 5).unwrap(), (b"world".to_vec(), 12));
        assert_eq!(read_range(&p, 50, 5).unwrap(), (vec![], 12));
        assert_eq!(read_tail(&p, 6).unwrap(), (b"world\n".to_vec(), 12));
        assert_eq!(read_tail(&p, 100).unwrap().0.len(), 12);
    }
}
