//! Finding a job's record in Slurm's jobcomp file (`JobCompType=
//! jobcomp/filetxt`), which grows for the site's life: it is read backwards
//! from its end in [`CHUNK`]-byte pieces, newest record first, and at most
//! its last [`MAX_SCAN`] bytes are looked at (a job agentd follows ended
//! recently, so its record is near the end).

use super::status::{self, Ended};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from the file at a time.
pub const CHUNK: u64 = 64 * 1024;

/// How far back from the file's end a record is looked for (16 MiB): older
/// records are not found, and the job ends `lost` as if there were none.
pub const MAX_SCAN: u64 = 16 * 1024 * 1024;

/// How the newest record of Slurm job `id` named `name` in the jobcomp file
/// at `path` says it ended; `None` without such a record in the file's
/// last [`MAX_SCAN`] bytes, or when the file cannot be read. Blocking;
/// memory is one chunk plus the line it cuts (at most [`MAX_SCAN`]).
pub fn find(path: &Path, id: &str, name: &str) -> Option<Ended> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let stop = len.saturating_sub(MAX_SCAN);
    let prefix = format!("JobId={id} ");
    let mut pos = len;
    // The start of the line cut at the previous chunk's start.
    let mut carry: Vec<u8> = Vec::new();
    while pos > stop {
        let start = pos.saturating_sub(CHUNK).max(stop);
        let mut buf = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start)).ok()?;
        file.read_exact(&mut buf).ok()?;
        buf.extend_from_slice(&carry);
        pos = start;
        let mut lines = buf.split(|b| *b == b'\n');
        // Unless this is the first byte looked at, the first piece may be
        // the end of a line that starts in the next (earlier) chunk.
        let first = lines.next().unwrap_or_default().to_vec();
        let rest: Vec<&[u8]> = lines.collect();
        if let Some(e) = rest.iter().rev().find_map(|l| matching(l, &prefix, name)) {
            return Some(e);
        }
        carry = first;
    }
    // The line at `stop` is whole only when `stop` is the file's start.
    (stop == 0)
        .then(|| matching(&carry, &prefix, name))
        .flatten()
}

/// The end a record line says, when it is job `prefix`'s and named `name`.
fn matching(line: &[u8], prefix: &str, name: &str) -> Option<Ended> {
    if !line.starts_with(prefix.as_bytes()) {
        return None;
    }
    let line = String::from_utf8_lossy(line);
    let f = status::fields(&line);
    (f.get("Name") == Some(&name)).then(|| Ended::from_fields(&f))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, name: &str, state: &str, code: &str) -> String {
        format!(
            "JobId={id} UserId=u(1) GroupId=g(1) Name={name} JobState={state} Partition=debug TimeLimit=1 StartTime=2026-01-01T00:00:00 EndTime=2026-01-01T00:00:01 NodeList=n NodeCnt=1 ProcCnt=1 WorkDir=/ ExitCode={code}\n"
        )
    }

    fn outcome(text: &str, id: &str, name: &str) -> Option<Ended> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobcomp.txt");
        std::fs::write(&path, text).unwrap();
        find(&path, id, name)
    }

    #[test]
    fn finds_records_across_chunk_boundaries_newest_first() {
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&record(i, &format!("agentd-{i}"), "COMPLETED", "0:0"));
        }
        // A later record of a reused id under another name, and one of the
        // same name: the newest matching one wins.
        text.push_str(&record(17, "someone-else", "FAILED", "9:0"));
        text.push_str(&record(17, "agentd-17", "FAILED", "3:0"));
        assert!(text.len() as u64 > 4 * CHUNK, "{}", text.len());
        let ended = |id: &str, name: &str| outcome(&text, id, name);
        let first = ended("0", "agentd-0").expect("the file's first record");
        assert_eq!(first.exit_code, Some(0));
        assert_eq!(ended("17", "agentd-17").unwrap().exit_code, Some(3));
        for i in [1u32, 1234, 2500, 4999] {
            assert!(
                ended(&i.to_string(), &format!("agentd-{i}")).is_some(),
                "{i}"
            );
        }
        assert_eq!(ended("5000", "agentd-5000"), None);
        assert_eq!(ended("1", "agentd-2"), None);
        // "JobId=1 " is not a prefix of "JobId=12 ...".
        assert_eq!(
            outcome(&record(12, "x", "COMPLETED", "0:0"), "1", "x"),
            None
        );
    }

    #[test]
    fn a_missing_file_has_no_record() {
        assert_eq!(find(Path::new("/nonexistent/jobcomp"), "1", "x"), None);
    }
}
