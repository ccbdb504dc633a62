//! The exit journal: where job shims record how their jobs ended, so that a
//! job costs one file of its own (its output log) instead of a directory,
//! a log and an exit record (docs/survival.md, "Files").
//!
//! The journal is a series of segments, `STATE_DIR/exits/<n>.journal`. Each
//! job is assigned the current segment when it starts (the path goes to its
//! shim in the spawn request); its shim appends one line to it when the job
//! ends ([`record::append`]: `O_APPEND`, `fdatasync`). Up to
//! [`SEGMENT_JOBS`] jobs share a segment; then new jobs go to the next one,
//! which agentd created beforehand (off the request path), so a shim never
//! has to. agentd reads a segment from where it last stopped, when a job
//! assigned to it ended, and deletes a segment once the end of every job
//! assigned to it is committed to the database: the journal holds at most
//! the records of live jobs, plus one segment's worth.
//!
//! At start, every segment found is read whole. The jobs an earlier agentd
//! assigned to them are not known (that was only in its memory), so they
//! are kept until every job adopted at this start has ended ([`seal`],
//! [`Journal::done`]); records they hold for jobs whose end the database
//! already has are then dropped with them.
//!
//! Jobs started by an agentd older than the journal have their exit record
//! in their own directory, `jobs/<id>/exit.json` ([`record::read_legacy`]);
//! [`Journal::take`] looks there when the journal has no record, and the
//! directory is deleted once the job's end is committed.
//!
//! [`seal`]: Journal::seal

use super::record::{self, ExitRecord};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Jobs assigned to one segment before the next is used: about 150 KB of
/// records.
pub const SEGMENT_JOBS: usize = 1024;

/// The exit journal of one state dir.
pub struct Journal {
    /// `STATE_DIR/exits`.
    dir: PathBuf,
    /// `STATE_DIR/jobs`, for the old layout's records.
    jobs_dir: PathBuf,
    /// Everything else, behind one lock (held for reads of new lines,
    /// which are small and in the page cache).
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The segment new jobs are assigned to.
    current: u64,
    /// Jobs assigned to it so far.
    in_current: usize,
    /// Segment `current + 1` exists and may be assigned.
    next_ready: bool,
    /// Its creation was handed to a caller and has not been reported.
    creating: bool,
    /// Every segment on disk, by number.
    segments: BTreeMap<u64, Segment>,
    /// Records read and not yet taken, with their segment.
    records: HashMap<String, (u64, ExitRecord)>,
    /// The segment each job started by this agentd was assigned.
    assigned: HashMap<String, u64>,
    /// Jobs adopted at start whose end is not yet committed: they keep the
    /// segments found at start.
    pinned: HashSet<String>,
    /// Adoption at start is over ([`Journal::seal`]).
    sealed: bool,
    /// Jobs with a directory of the old layout to delete once their end is
    /// committed.
    legacy_dirs: HashSet<String>,
}

struct Segment {
    /// Opened on first read.
    file: Option<File>,
    /// Bytes read and parsed (up to a line's end).
    read_to: u64,
    /// Jobs assigned and not yet done.
    open: usize,
    /// Found at start: written by an earlier agentd's shims.
    found: bool,
}

/// Where a starting job's shim records its end.
pub struct Assignment {
    /// The segment to append to.
    pub segment: PathBuf,
    /// A segment the caller must create ([`create`], off the async
    /// runtime) and then report with [`Journal::created`].
    pub create: Option<(u64, PathBuf)>,
    /// Files the caller must delete ([`delete`]): the segment that stopped
    /// being current, when every job assigned to it is done already.
    pub gone: Vec<PathBuf>,
}

impl Journal {
    /// Opens the journal in `state_dir` (creating `exits/`, mode 0700),
    /// reads every segment there, and creates the first two segments of
    /// this agentd. `legacy_dirs`: jobs whose old-layout directory was kept
    /// at the upgrade ([`super::layout::migrate`]). Blocking.
    ///
    /// Errors: the directory or a segment cannot be created or read.
    pub fn open(state_dir: &Path, legacy_dirs: HashSet<String>) -> io::Result<Journal> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = state_dir.join("exits");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let mut inner = Inner {
            legacy_dirs,
            ..Inner::default()
        };
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".journal"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            inner.segments.insert(
                n,
                Segment {
                    file: None,
                    read_to: 0,
                    open: 0,
                    found: true,
                },
            );
        }
        let journal = Journal {
            jobs_dir: state_dir.join("jobs"),
            inner: Mutex::new(Inner::default()),
            dir,
        };
        let found: Vec<u64> = inner.segments.keys().copied().collect();
        for n in found {
            journal.read_segment(&mut inner, n)?;
        }
        inner.current = inner.segments.keys().next_back().map_or(1, |n| n + 1);
        for n in [inner.current, inner.current + 1] {
            create(&journal.segment_path(n))?;
            inner.segments.insert(n, Segment::new());
        }
        File::open(&journal.dir)?.sync_all()?;
        inner.next_ready = true;
        *journal.inner.lock().expect("journal poisoned") = inner;
        Ok(journal)
    }

    /// The path of segment `n`.
    fn segment_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n}.journal"))
    }

    /// Assigns starting job `id` the current segment. When the current
    /// segment is full and the next one is ready, that one becomes current
    /// and the caller gets the one after it to create. Memory only.
    pub fn assign(&self, id: &str) -> Assignment {
        let mut inner = self.inner.lock().expect("journal poisoned");
        let mut create = None;
        let mut gone = Vec::new();
        if inner.in_current >= SEGMENT_JOBS && inner.next_ready {
            let old = inner.current;
            if inner.segments.get(&old).is_some_and(|s| s.open == 0) {
                inner.segments.remove(&old);
                inner.records.retain(|_, (s, _)| *s != old);
                gone.push(self.segment_path(old));
            }
            inner.current += 1;
            inner.in_current = 0;
            inner.next_ready = false;
        }
        if !inner.next_ready && !inner.creating {
            inner.creating = true;
            let next = inner.current + 1;
            create = Some((next, self.segment_path(next)));
        }
        let current = inner.current;
        inner.in_current += 1;
        inner
            .segments
            .entry(current)
            .or_insert_with(Segment::new)
            .open += 1;
        inner.assigned.insert(id.to_owned(), current);
        Assignment {
            segment: self.segment_path(current),
            create,
            gone,
        }
    }

    /// Reports the creation of segment `n` that [`Journal::assign`] asked
    /// for: `ok` when it exists durably (else it is asked for again).
    pub fn created(&self, n: u64, ok: bool) {
        let mut inner = self.inner.lock().expect("journal poisoned");
        inner.creating = false;
        if ok && n == inner.current + 1 {
            inner.next_ready = true;
            inner.segments.entry(n).or_insert_with(Segment::new);
        }
    }

    /// Takes job `id`'s exit record: from the lines read already, else
    /// from new lines of its segment (of every segment found at start, for
    /// a job this agentd did not start), else from its directory in the old
    /// layout. `None` when its shim wrote none. Blocking.
    ///
    /// Errors: a segment or an old-layout record cannot be read.
    pub fn take(&self, id: &str) -> io::Result<Option<ExitRecord>> {
        let mut inner = self.inner.lock().expect("journal poisoned");
        if let Some((_, rec)) = inner.records.remove(id) {
            return Ok(Some(rec));
        }
        self.refresh(&mut inner, id)?;
        if let Some((_, rec)) = inner.records.remove(id) {
            return Ok(Some(rec));
        }
        let dir = self.jobs_dir.join(id);
        let rec = record::read_legacy(&dir)?;
        if rec.is_some() {
            inner.legacy_dirs.insert(id.to_owned());
        }
        Ok(rec)
    }

    /// Whether an exit record of job `id` exists (in the journal or the
    /// old layout). Blocking.
    ///
    /// Errors: a segment cannot be read.
    pub fn has_record(&self, id: &str) -> io::Result<bool> {
        let mut inner = self.inner.lock().expect("journal poisoned");
        if !inner.records.contains_key(id) {
            self.refresh(&mut inner, id)?;
        }
        Ok(inner.records.contains_key(id) || record::legacy_path(&self.jobs_dir.join(id)).exists())
    }

    /// Reads the new lines of the segment job `id` was assigned, or of every
    /// segment found at start.
    fn refresh(&self, inner: &mut Inner, id: &str) -> io::Result<()> {
        let segments: Vec<u64> = match inner.assigned.get(id) {
            Some(&n) => vec![n],
            None => inner
                .segments
                .iter()
                .filter(|(_, s)| s.found)
                .map(|(&n, _)| n)
                .collect(),
        };
        for n in segments {
            self.read_segment(inner, n)?;
        }
        Ok(())
    }

    /// Reads segment `n`'s complete lines past what was read before.
    fn read_segment(&self, inner: &mut Inner, n: u64) -> io::Result<()> {
        let path = self.segment_path(n);
        let Some(seg) = inner.segments.get_mut(&n) else {
            return Ok(());
        };
        if seg.file.is_none() {
            match File::open(&path) {
                Ok(f) => seg.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let file = seg.file.as_mut().expect("opened above");
        file.seek(SeekFrom::Start(seg.read_to))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, used) = record::parse_lines(&bytes);
        seg.read_to += used as u64;
        for (id, rec) in records {
            inner.records.insert(id, (n, rec));
        }
        Ok(())
    }

    /// Job `id` was adopted at start: the segments found at start are kept
    /// until its end is committed ([`Journal::done`]).
    pub fn pin(&self, id: &str) {
        let mut inner = self.inner.lock().expect("journal poisoned");
        inner.pinned.insert(id.to_owned());
    }

    /// Adoption at start is over: every job that may still write to a
    /// segment found at start was [`pin`](Journal::pin)ned. Returns the
    /// files to delete ([`delete`]) when none was.
    pub fn seal(&self) -> Vec<PathBuf> {
        let mut inner = self.inner.lock().expect("journal poisoned");
        inner.sealed = true;
        if inner.pinned.is_empty() {
            self.retire_found(&mut inner)
        } else {
            Vec::new()
        }
    }

    /// Job `id`'s end is committed to the database: its record is no
    /// longer needed. Returns the files to delete ([`delete`]): a segment
    /// whose every job is done, the job's old-layout directory. Memory
    /// only.
    pub fn done(&self, id: &str) -> Vec<PathBuf> {
        let mut inner = self.inner.lock().expect("journal poisoned");
        let mut gone = Vec::new();
        inner.records.remove(id);
        if inner.legacy_dirs.remove(id) {
            gone.push(self.jobs_dir.join(id));
        }
        if let Some(n) = inner.assigned.remove(id) {
            let current = inner.current;
            if let Some(seg) = inner.segments.get_mut(&n) {
                seg.open = seg.open.saturating_sub(1);
                if seg.open == 0 && n < current && !seg.found {
                    inner.segments.remove(&n);
                    inner.records.retain(|_, (s, _)| *s != n);
                    gone.push(self.segment_path(n));
                }
            }
        }
        if inner.pinned.remove(id) && inner.sealed && inner.pinned.is_empty() {
            gone.extend(self.retire_found(&mut inner));
        }
        gone
    }

    /// Forgets the segments found at start and their records; returns
    /// their paths.
    fn retire_found(&self, inner: &mut Inner) -> Vec<PathBuf> {
        let found: Vec<u64> = inner
            .segments
            .iter()
            .filter(|(_, s)| s.found)
            .map(|(&n, _)| n)
            .collect();
        for n in &found {
            inner.segments.remove(n);
        }
        inner.records.retain(|_, (s, _)| !found.contains(s));
        found.into_iter().map(|n| self.segment_path(n)).collect()
    }

    /// How many segments exist and how many records are read and not yet
    /// taken (for tests and logs).
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("journal poisoned");
        (inner.segments.len(), inner.records.len())
    }
}

impl Segment {
    fn new() -> Segment {
        Segment {
            file: None,
            read_to: 0,
            open: 0,
            found: false,
        }
    }
}

/// Creates an empty segment (mode 0600) and makes its name durable (an
/// `fsync` of its directory). Blocking.
///
/// Errors: it cannot be created, or the directory cannot be synced.
pub fn create(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Deletes what [`Journal::done`] or [`Journal::seal`] returned: segment
/// files and old-layout job directories. Failures are logged. Blocking.
pub fn delete(paths: &[PathBuf]) {
    for path in paths {
        let result = if path.extension().is_some_and(|e| e == "journal") {
            std::fs::remove_file(path)
        } else {
            std::fs::remove_dir_all(path)
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!("cannot delete {}: {e}", path.display());
            }
            _ => {}
        }
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
            duration_ms: 1,
        }
    }

    #[test]
    fn segments_rotate_and_go_once_their_jobs_are_done() {
        let state = tempfile::tempdir().unwrap();
        let j = Journal::open(state.path(), HashSet::new()).unwrap();
        assert!(j.seal().is_empty());
        let mut first = None;
        let mut ids = Vec::new();
        for i in 0..=SEGMENT_JOBS {
            let id = format!("job{i}");
            let a = j.assign(&id);
            if let Some((n, path)) = a.create {
                create(&path).unwrap();
                j.created(n, true);
            }
            record::append(&a.segment, &id, &rec(i as i32 % 256)).unwrap();
            first.get_or_insert(a.segment.clone());
            ids.push((id, a.segment));
        }
        let first = first.unwrap();
        assert_ne!(
            ids.last().unwrap().1,
            first,
            "the 1025th job is in the next segment"
        );
        for (i, (id, _)) in ids.iter().enumerate() {
            assert_eq!(j.take(id).unwrap(), Some(rec(i as i32 % 256)));
            let gone = j.done(id);
            if i == SEGMENT_JOBS - 1 {
                assert_eq!(gone, vec![first.clone()]);
            } else {
                assert!(gone.is_empty(), "{i} {gone:?}");
            }
        }
        assert_eq!(j.take("job0").unwrap(), None);
    }

    #[test]
    fn segments_found_at_start_stay_until_the_adopted_jobs_are_done() {
        let state = tempfile::tempdir().unwrap();
        let seg = {
            let j = Journal::open(state.path(), HashSet::new()).unwrap();
            let a = j.assign("ended");
            j.assign("running");
            record::append(&a.segment, "ended", &rec(3)).unwrap();
            a.segment
        };
        let j = Journal::open(state.path(), HashSet::new()).unwrap();
        assert!(j.has_record("ended").unwrap());
        assert!(!j.has_record("running").unwrap());
        assert_eq!(j.take("ended").unwrap(), Some(rec(3)));
        assert!(j.done("ended").is_empty());
        j.pin("running");
        assert!(j.seal().is_empty());
        // The adopted job's shim appends to the segment it was given.
        record::append(&seg, "running", &rec(0)).unwrap();
        assert_eq!(j.take("running").unwrap(), Some(rec(0)));
        let gone = j.done("running");
        assert!(gone.contains(&seg), "{gone:?}");
        delete(&gone);
        assert!(!seg.exists());
    }

    #[test]
    fn old_layout_records_are_read_and_their_directories_go_when_done() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("jobs").join("old");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            record::legacy_path(&dir),
            br#"{"exit_code":3,"signal":null,"finished_at":"2026-11-22T04:14:50.123Z","duration_ms":1}"#,
        )
        .unwrap();
        let j = Journal::open(state.path(), HashSet::new()).unwrap();
        assert!(j.has_record("old").unwrap());
        assert_eq!(j.take("old").unwrap(), Some(rec(3)));
        let gone = j.done("old");
        assert_eq!(gone, vec![dir.clone()]);
        delete(&gone);
        assert!(!dir.exists());
    }
}
