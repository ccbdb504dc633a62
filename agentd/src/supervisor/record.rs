//! The exit record: `STATE_DIR/jobs/<id>/exit.json`, written durably by the
//! job's shim when the job's leader process ends, read by agentd — at once
//! when it watched the shim exit, or at its next start when the job ended
//! while no agentd ran.
//!
//! The format is part of the contract between an agentd and the shims a
//! previous agentd (maybe an older build) left running: fields may be added,
//! never renamed or removed.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the exit record inside a job's directory.
pub const FILE_NAME: &str = "exit.json";

/// How a job's leader process (`/bin/sh -c COMMAND`) ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status (0–255) when it exited; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, named as the protocol names signals
    /// (`"SIGKILL"`); `None` when it exited.
    pub signal: Option<String>,
    /// When the shim reaped it (RFC 3339 UTC, milliseconds).
    pub finished_at: String,
    /// Milliseconds from the shim's spawn of the leader to its reaping,
    /// measured on the monotonic clock.
    pub duration_ms: u64,
    /// Why the job's process could not `exec` `/bin/sh`, when it could not
    /// (its sandbox or limits could not be applied): the job's `reason`.
    /// Absent from earlier shims' records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The exit record's path in job directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the exit record of the job whose directory is `dir`; `Ok(None)`
/// when there is none (the job has not ended, or its shim died first).
/// Blocking.
///
/// Errors: the file exists but cannot be read or does not parse.
pub fn read(dir: &Path) -> io::Result<Option<ExitRecord>> {
    match std::fs::read(path(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the exit record into `dir` so that it is either absent or whole
/// after a crash or power loss: a temporary file, fsync, rename over the
/// final name, fsync of the directory. The file is mode 0600. Blocking.
///
/// Errors: any of those steps failed (disk full, read-only, directory
/// removed).
pub fn write(dir: &Path, record: &ExitRecord) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(".exit.json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
    f.write_all(&bytes)?;
    // Data and size; the name is made durable by the directory's fsync.
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path(dir))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_records_read_back_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let r = ExitRecord {
            reason: None,
            exit_code: None,
            signal: Some("SIGKILL".into()),
            finished_at: "2026-11-22T04:14:50.123Z".into(),
            duration_ms: 42,
        };
        write(dir.path(), &r).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(r));
        assert!(!dir.path().join(".exit.json.tmp").exists());
    }
}
