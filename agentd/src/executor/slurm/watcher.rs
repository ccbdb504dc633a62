//! The one task that asks Slurm how agentd's Slurm jobs stand.
//!
//! While at least one Slurm job is live it runs `squeue -t all -h -o
//! '%i|%T|%r' -j IDS` every `[slurm] poll_interval_ms` (at most
//! [`SQUEUE_BATCH`] ids per run); for a job in a
//! final state it adds `scontrol show job -o ID` for the exit code; for a
//! job `squeue` no longer lists, `scontrol`, then the jobcomp record
//! (`JobCompType=jobcomp/filetxt`, its end read backwards, see
//! [`jobcomp`](super::jobcomp)). What it learns goes to each job's
//! supervising task through a [`watch`] channel. With no Slurm job live it
//! waits on a [`Notify`]: no timer, no process, no CPU.

use super::command::{self, QUERY_TIMEOUT};
use super::status::{self, Ended};
use crate::daemon::Daemon;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OnceCell, watch};

/// What the watcher last learned of one Slurm job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Seen {
    /// Not asked yet.
    #[default]
    Unknown,
    /// Slurm has not started it (`PENDING`, ...).
    Waiting,
    /// Running (`RUNNING`, `COMPLETING`, `SUSPENDED`, ...).
    Running,
    /// Ended, as Slurm (or its jobcomp record) tells.
    Ended(Ended),
    /// Slurm no longer knows it and no jobcomp record names it.
    Gone,
}

/// One followed job: where its news goes, and the name Slurm knows it by
/// (to tell it from another job with the same id in the jobcomp record).
struct Followed {
    seen: watch::Sender<Seen>,
    name: String,
}

/// The Slurm executor's shared state: the followed jobs by Slurm id.
#[derive(Default)]
pub struct Slurm {
    followed: Mutex<HashMap<String, Followed>>,
    /// Woken when a job is registered, so an idle watcher starts polling.
    wake: Notify,
    /// Where the jobcomp records are, once asked (`None`: not a file).
    jobcomp: OnceCell<Option<PathBuf>>,
    /// The Slurm jobs of this user that Slurm knew when first asked after
    /// this agentd started, by `--comment` (see [`Slurm::submitted_earlier`]).
    known_at_start: OnceCell<HashMap<String, String>>,
}

impl Slurm {
    /// Follows Slurm job `id` (named `name` in Slurm); the receiver sees
    /// what the watcher learns of it.
    pub fn register(&self, id: &str, name: String) -> watch::Receiver<Seen> {
        let (seen, rx) = watch::channel(Seen::Unknown);
        self.followed
            .lock()
            .expect("followed jobs poisoned")
            .insert(id.to_string(), Followed { seen, name });
        self.wake.notify_one();
        rx
    }

    /// The Slurm id of a job an earlier agentd submitted (its `--comment`
    /// names `job`) but did not record; `None` when Slurm knows no such
    /// job. Asks Slurm once per agentd run (`squeue -t all --me`), and only
    /// for jobs recorded before this agentd started.
    pub async fn submitted_earlier(
        &self,
        daemon: &Daemon,
        job: &agentd_proto::Job,
    ) -> Option<String> {
        let known = self
            .known_at_start
            .get_or_init(|| async {
                let args = ["-t", "all", "-h", "--me", "-o", "%i|%k"].map(String::from);
                match command::run(&daemon.config.slurm, "squeue", &args, None, QUERY_TIMEOUT).await
                {
                    Ok(out) if out.success => out
                        .stdout
                        .lines()
                        .filter_map(|l| {
                            let (id, comment) = l.trim().split_once('|')?;
                            Some((comment.to_string(), id.to_string()))
                        })
                        .collect(),
                    _ => HashMap::new(),
                }
            })
            .await;
        known.get(&super::submit::comment(job)).cloned()
    }

    /// Stops following Slurm job `id` (its end is being recorded).
    pub fn forget(&self, id: &str) {
        self.followed
            .lock()
            .expect("followed jobs poisoned")
            .remove(id);
    }

    /// The ids of the jobs whose end is not known yet, with their names.
    fn open(&self) -> Vec<(String, String)> {
        self.followed
            .lock()
            .expect("followed jobs poisoned")
            .iter()
            .filter(|(_, f)| !matches!(*f.seen.borrow(), Seen::Ended(_) | Seen::Gone))
            .map(|(id, f)| (id.clone(), f.name.clone()))
            .collect()
    }

    fn publish(&self, id: &str, seen: Seen) {
        if let Some(f) = self
            .followed
            .lock()
            .expect("followed jobs poisoned")
            .get(id)
        {
            f.seen.send_if_modified(|s| {
                let changed = *s != seen;
                *s = seen;
                changed
            });
        }
    }
}

/// The watcher task; runs for the daemon's lifetime.
pub async fn run(daemon: Arc<Daemon>) {
    let slurm = &daemon.slurm;
    let mut warned = false;
    loop {
        let open = slurm.open();
        if open.is_empty() {
            slurm.wake.notified().await;
            continue;
        }
        match poll(&daemon, &open).await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                warned = true;
                tracing::warn!("cannot ask Slurm how its jobs stand (retrying every poll): {e}");
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(daemon.config.slurm.poll_interval) => {}
            _ = slurm.wake.notified() => {}
        }
    }
}

/// How many Slurm job ids go into one `squeue -j` argument: more live jobs
/// take more `squeue` runs, each with a bounded command line.
pub const SQUEUE_BATCH: usize = 500;

/// One round: `squeue` for all (in batches of [`SQUEUE_BATCH`] ids), `scontrol`/jobcomp for the ended and the
/// vanished.
async fn poll(daemon: &Daemon, open: &[(String, String)]) -> Result<(), String> {
    let config = &daemon.config.slurm;
    let mut listed = HashMap::new();
    for batch in open.chunks(SQUEUE_BATCH) {
        let ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
        let args = ["-t", "all", "-h", "-o", "%i|%T|%r", "-j", &ids.join(",")].map(String::from);
        let out = command::run(config, "squeue", &args, None, QUERY_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if out.success {
            listed.extend(status::parse_squeue(&out.stdout));
        } else if !out.stderr.contains("Invalid job id") {
            return Err(format!("squeue failed: {}", out.stderr));
        }
    }
    for (id, name) in open {
        let seen = match listed.get(id) {
            Some((state, _)) if status::is_waiting(state) => Seen::Waiting,
            Some((state, _)) if !status::is_final(state) => Seen::Running,
            _ => match scontrol(daemon, id).await? {
                Some(seen) => seen,
                None => match jobcomp(daemon, id, name).await {
                    Some(e) => Seen::Ended(e),
                    None => Seen::Gone,
                },
            },
        };
        daemon.slurm.publish(id, seen);
    }
    Ok(())
}

/// `scontrol show job -o ID`: `None` when Slurm no longer knows the job.
async fn scontrol(daemon: &Daemon, id: &str) -> Result<Option<Seen>, String> {
    let args = ["show", "job", "-o", id].map(String::from);
    let out = command::run(&daemon.config.slurm, "scontrol", &args, None, QUERY_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if !out.success {
        if out.stderr.contains("Invalid job id") {
            return Ok(None);
        }
        return Err(format!("scontrol show job {id} failed: {}", out.stderr));
    }
    let line = out.stdout.lines().next().unwrap_or("");
    let f = status::fields(line);
    let Some(state) = f.get("JobState") else {
        return Ok(None);
    };
    Ok(Some(if let Some(e) = Ended::from_fields(&f) {
        Seen::Ended(e)
    } else if status::is_waiting(state) {
        Seen::Waiting
    } else {
        Seen::Running
    }))
}

/// How the jobcomp record says job `id` named `name` ended; `None` when
/// there is no such record in the file's last
/// [`MAX_SCAN`](super::jobcomp::MAX_SCAN) bytes (or no jobcomp file).
async fn jobcomp(daemon: &Daemon, id: &str, name: &str) -> Option<Ended> {
    let path = daemon
        .slurm
        .jobcomp
        .get_or_init(|| jobcomp_path(daemon))
        .await
        .clone()?;
    let (id, name) = (id.to_string(), name.to_string());
    tokio::task::spawn_blocking(move || super::jobcomp::find(&path, &id, &name))
        .await
        .ok()
        .flatten()
}

/// `JobCompLoc` from `scontrol show config`, when `JobCompType` is
/// `jobcomp/filetxt`.
async fn jobcomp_path(daemon: &Daemon) -> Option<PathBuf> {
    let args = ["show", "config"].map(String::from);
    let out = command::run(&daemon.config.slurm, "scontrol", &args, None, QUERY_TIMEOUT)
        .await
        .ok()?;
    let value = |key: &str| {
        out.stdout.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    (value("JobCompType")? == "jobcomp/filetxt").then(|| value("JobCompLoc").map(PathBuf::from))?
}
