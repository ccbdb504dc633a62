//! The exit record: how a job's leader process ended, written durably by
//! the job's shim when it reaps the leader, read by agentd — at once when
//! it watched the shim exit, or at its next start when the job ended while
//! no agentd ran.
//!
//! A shim appends its record as one line to a shared exit journal segment
//! (`STATE_DIR/exits/<n>.journal`, see [`super::journal`]): the job's id
//! beside the fields below, as JSON, then `fdatasync`. Shims of agentd
//! versions before the journal wrote the same fields to
//! `STATE_DIR/jobs/<id>/exit.json` instead ([`read_legacy`]), and an agentd
//! adopting such a shim after an upgrade reads it there.
//!
//! The format is part of the contract between an agentd and the shims a
//! previous agentd (maybe an older build) left running: fields may be added,
//! never renamed or removed.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the exit record inside a job's directory, in the layout
/// of agentd versions before the exit journal.
pub const LEGACY_FILE_NAME: &str = "exit.json";

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

/// One line of the exit journal: the job's id and its record's fields.
#[derive(Serialize, Deserialize)]
struct Entry {
    /// The job's full id.
    id: String,
    /// How it ended.
    #[serde(flatten)]
    record: ExitRecord,
}

/// The journal line for job `id`: `{"id":"…","exit_code":…,…}` and a
/// newline.
pub fn encode_line(id: &str, record: &ExitRecord) -> Vec<u8> {
    let entry = Entry {
        id: id.to_owned(),
        record: record.clone(),
    };
    let mut line = serde_json::to_vec(&entry).expect("an exit record serialises");
    line.push(b'\n');
    line
}

/// Parses the complete lines at the start of `bytes` (up to the last
/// newline); returns the records and how many bytes they took. A line that
/// does not parse (torn by a power loss, or holding the zeros a crash can
/// leave in a file) is skipped, except that a record following a torn one
/// on the same line is still found.
pub fn parse_lines(bytes: &[u8]) -> (Vec<(String, ExitRecord)>, usize) {
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return (Vec::new(), 0);
    };
    let records = bytes[..end]
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let parse = |l: &[u8]| serde_json::from_slice::<Entry>(l).ok();
            parse(line)
                .or_else(|| {
                    let marker = br#"{"id":"#;
                    let at = line.windows(marker.len()).rposition(|w| w == marker)?;
                    parse(&line[at..])
                })
                .map(|e| (e.id, e.record))
        })
        .collect();
    (records, end + 1)
}

/// Appends job `id`'s record to the journal segment `segment` durably: one
/// `write` of one line (`O_APPEND`, so lines of concurrent shims never
/// interleave), then `fdatasync`. agentd creates each segment before it
/// names it to a shim; should it be missing anyway, the shim creates it
/// (mode 0600) and makes its name durable with an `fsync` of the
/// directory. Blocking.
///
/// Errors: the segment cannot be opened or created, or the write or sync
/// failed (disk full, read-only).
pub fn append(segment: &Path, id: &str, record: &ExitRecord) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = match std::fs::OpenOptions::new().append(true).open(segment) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(segment)?;
            if let Some(dir) = segment.parent() {
                File::open(dir)?.sync_all()?;
            }
            f
        }
        Err(e) => return Err(e),
    };
    let line = encode_line(id, record);
    // One write: a short write to a regular file only happens when the
    // disk is full, and is then an error like any other.
    let n = f.write(&line)?;
    if n != line.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the exit record was written only in part",
        ));
    }
    f.sync_data()
}

/// The exit record's path in the old layout, in job directory `dir`.
pub fn legacy_path(dir: &Path) -> PathBuf {
    dir.join(LEGACY_FILE_NAME)
}

/// Reads the exit record a shim of an agentd before the exit journal wrote
/// into job directory `dir`; `Ok(None)` when there is none. Blocking.
///
/// Errors: the file exists but cannot be read or does not parse.
pub fn read_legacy(dir: &Path) -> io::Result<Option<ExitRecord>> {
    match std::fs::read(legacy_path(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(code: i32) -> ExitRecord {
        ExitRecord {
            reason: None,
            exit_code: Some(code),
            signal: None,
            finished_at: "2026-11-22T04:14:50.123Z".into(),
            duration_ms: 42,
        }
    }

    #[test]
    fn appended_records_parse_back_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("1.journal");
        append(&seg, "a", &rec(0)).unwrap();
        let mut killed = rec(0);
        killed.exit_code = None;
        killed.signal = Some("SIGKILL".into());
        killed.reason = Some("why\nnot".into());
        append(&seg, "b", &killed).unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        // A torn line, a line of zeros, a record after a torn one on the
        // same line, and an incomplete last line.
        bytes.extend_from_slice(br#"{"id":"c","exit_co"#);
        bytes.extend_from_slice(&encode_line("d", &rec(3)));
        bytes.extend_from_slice(&[0; 7]);
        bytes.push(b'\n');
        let whole = bytes.len();
        bytes.extend_from_slice(br#"{"id":"e""#);
        let (records, used) = parse_lines(&bytes);
        assert_eq!(used, whole);
        assert_eq!(
            records,
            vec![
                ("a".into(), rec(0)),
                ("b".into(), killed),
                ("d".into(), rec(3))
            ]
        );
        assert_eq!(parse_lines(b"{\"id\":\"x\"").1, 0);
    }

    #[test]
    fn legacy_records_read_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_legacy(dir.path()).unwrap(), None);
        std::fs::write(
            legacy_path(dir.path()),
            r#"{"exit_code": 3, "signal": null, "finished_at": "2026-11-22T04:14:50.123Z", "duration_ms": 42}"#,
        )
        .unwrap();
        assert_eq!(read_legacy(dir.path()).unwrap(), Some(rec(3)));
    }
}
