//! The upgrade of a state dir from the layout of agentd versions before the
//! exit journal — a directory per job, `jobs/<id>/output.log` and
//! `jobs/<id>/exit.json` — to the current one: `jobs/<id>.log` and the
//! shared journal in `exits/` ([`super::journal`]).
//!
//! It runs once, at the first start of an agentd with the journal (a state
//! dir without `exits/`), before any job is adopted: each job's log is
//! renamed to its new name (a rename keeps the file: the processes of a
//! job still running keep writing to it), and the directory is deleted,
//! except for a job that is live (running or queued), whose shim — an
//! older agentd's — will write its exit record there; that directory goes
//! when the job's end is recorded. Interrupted, it runs again at the next
//! start (`exits/` is created after it).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::Path;

/// What [`migrate`] did.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Logs moved to the new layout.
    pub logs: usize,
    /// Directories of live jobs kept for their shims' exit records.
    pub kept: HashSet<String>,
}

/// Moves a state dir's job files to the current layout when it has none of
/// it yet (no `exits/`); `live`: the ids of running and queued jobs.
/// Creates `jobs/` (mode 0700) when missing. Blocking.
///
/// Errors: `jobs/` cannot be listed or created, or a log cannot be moved.
pub fn migrate(state_dir: &Path, live: &HashSet<String>) -> io::Result<Migrated> {
    use std::os::unix::fs::DirBuilderExt;
    let jobs = state_dir.join("jobs");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&jobs)?;
    let mut done = Migrated::default();
    if state_dir.join("exits").exists() {
        return Ok(done);
    }
    for entry in std::fs::read_dir(&jobs)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let dir = entry.path();
        let old_log = dir.join("output.log");
        let new_log = jobs.join(format!("{id}.log"));
        match std::fs::rename(&old_log, &new_log) {
            Ok(()) => done.logs += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if live.contains(&id) {
            done.kept.insert(id);
        } else if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("cannot delete {}: {e}", dir.display());
        }
    }
    // The renames are durable before `exits/` says they are done.
    File::open(&jobs)?.sync_all()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_directories_become_logs_and_live_ones_stay_for_their_records() {
        let state = tempfile::tempdir().unwrap();
        for id in ["done", "running"] {
            let dir = state.path().join("jobs").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("output.log"), id).unwrap();
            std::fs::write(dir.join("exit.json"), "{}").unwrap();
        }
        let live = HashSet::from(["running".to_string()]);
        let m = migrate(state.path(), &live).unwrap();
        assert_eq!(m.logs, 2);
        assert_eq!(m.kept, live);
        let jobs = state.path().join("jobs");
        assert_eq!(
            std::fs::read_to_string(jobs.join("done.log")).unwrap(),
            "done"
        );
        assert_eq!(
            std::fs::read_to_string(jobs.join("running.log")).unwrap(),
            "running"
        );
        assert!(!jobs.join("done").exists());
        assert!(jobs.join("running/exit.json").exists());
        // Once `exits/` exists, nothing is looked at again.
        std::fs::create_dir(state.path().join("exits")).unwrap();
        std::fs::create_dir_all(jobs.join("late")).unwrap();
        std::fs::write(jobs.join("late/output.log"), "").unwrap();
        assert_eq!(migrate(state.path(), &live).unwrap().logs, 0);
        assert!(jobs.join("late/output.log").exists());
    }
}
