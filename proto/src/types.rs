//! The objects of protocol v1: [`Job`], [`JobState`] and [`Notification`]
//! (docs/protocol.md, "Objects"). Timestamps are RFC 3339 strings in UTC.

use crate::executor::Executor;
use crate::sandbox::{Limits, Sandbox};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a job is in its life. `queued`, `running` and `paused` are live
/// ([`JobState::LIVE`]); the others are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, waiting for a slot (`max_running`).
    Queued,
    /// Its process group is running.
    Running,
    /// Held by `job.pause`: a started job's process group is stopped
    /// (SIGSTOP) and keeps its slot; a job paused before it started
    /// (`started_at` null) is held out of the queue. `job.resume` continues
    /// it (SIGCONT) or puts it back in the queue.
    Paused,
    /// Exited with code 0.
    Succeeded,
    /// Exited non-zero, or could not be spawned.
    Failed,
    /// Ended by `job.kill` or by a signal.
    Killed,
    /// Ended by its timeout.
    TimedOut,
    /// The daemon could not learn how it ended.
    Lost,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 8] = [
        JobState::Queued,
        JobState::Running,
        JobState::Paused,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Killed,
        JobState::TimedOut,
        JobState::Lost,
    ];

    /// The wire name, e.g. `timed_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Killed => "killed",
            JobState::TimedOut => "timed_out",
            JobState::Lost => "lost",
        }
    }

    /// The live states: a job in one of them has not ended.
    pub const LIVE: [JobState; 3] = [JobState::Queued, JobState::Running, JobState::Paused];

    /// True for every state but the live ones ([`JobState::LIVE`]).
    pub fn is_finished(self) -> bool {
        !JobState::LIVE.contains(&self)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    /// Parses a wire name; the error lists the valid ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown state {s:?} (expected one of {})", names.join(", "))
            })
    }
}

/// A job as the daemon reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// UUID v4, hyphenated lowercase.
    pub id: String,
    /// The first 8 hex characters of `id`.
    pub short_id: String,
    /// The shell command, run as `/bin/sh -c COMMAND`.
    pub command: String,
    /// Absolute working directory.
    pub cwd: String,
    /// Current state.
    pub state: JobState,
    /// Exit code when the process exited normally.
    pub exit_code: Option<i32>,
    /// Signal name (`"SIGKILL"`) when a signal ended the process.
    pub signal: Option<String>,
    /// Process id of the job's `/bin/sh` (also its process group id) once
    /// started.
    pub pid: Option<u32>,
    /// The session whose notification queue gets this job's end.
    pub session: String,
    /// A free-form label given at submit.
    pub label: Option<String>,
    /// When the job was accepted (RFC 3339 UTC).
    pub created_at: String,
    /// When its process started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
    /// Milliseconds from start to finish (finished jobs only).
    pub duration_ms: Option<u64>,
    /// Timeout in seconds, if any.
    pub timeout_secs: Option<f64>,
    /// Bytes of output so far (stdout and stderr interleaved).
    pub output_bytes: u64,
    /// Why the job ended as it did, in words, when the exit code does not
    /// tell (a spawn error, the daemon losing track of it, output
    /// truncated); `null` otherwise. Absent from a first-round daemon's
    /// replies, hence the default.
    #[serde(default)]
    pub reason: Option<String>,
    /// The sandbox given at submit (`null`: none). Absent from earlier
    /// daemons' replies, hence the default.
    #[serde(default)]
    pub sandbox: Option<Sandbox>,
    /// The resource limits given at submit (`null`: none).
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Where the job runs: `local` or `slurm` (DESIGN.md, "Jobs on a
    /// cluster"). Absent from earlier daemons' replies: `local`.
    #[serde(default)]
    pub executor: Executor,
    /// The job's id in its executor, once it has one: the Slurm job id
    /// (`"4211"`); `null` for local jobs.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The resources asked of Slurm at submit (`executor: "slurm"`);
    /// `null` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::SlurmOptions>,
    /// The job's group (`job.submit` `group`, default `"default"`): the
    /// group's `max_running` caps how many of its jobs run at once.
    /// Absent from earlier daemons' replies, hence the default.
    #[serde(default = "default_group")]
    pub group: String,
    /// Full ids of the jobs this one runs after (`job.submit` `after`): it
    /// stays queued until every one of them has succeeded, and fails when
    /// one of them ends otherwise. Empty for most jobs.
    #[serde(default)]
    pub after: Vec<String>,
}

/// The group a job is in when `job.submit` names none.
pub const DEFAULT_GROUP: &str = "default";

fn default_group() -> String {
    DEFAULT_GROUP.to_string()
}

/// One finished job, queued for its session until acknowledged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Strictly rising sequence number, across daemon restarts too.
    pub seq: u64,
    /// The job's full id.
    pub job_id: String,
    /// The job's short id.
    pub short_id: String,
    /// The job's session.
    pub session: String,
    /// The job's final state.
    pub state: JobState,
    /// The job's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if any (`"SIGTERM"`).
    pub signal: Option<String>,
    /// The job's command.
    pub command: String,
    /// Milliseconds from start to finish, if it started.
    pub duration_ms: Option<u64>,
    /// The last `tail_bytes` bytes of output (default 1000), lossy UTF-8.
    pub output_tail: String,
    /// When the job finished (RFC 3339 UTC).
    pub finished_at: String,
    /// The job's `reason` (why it ended as it did, in words), if any.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Notification {
    /// The notification of the finished `job`, numbered `seq`, with
    /// `output_tail` (the last `tail_bytes` of its output); `finished_at`
    /// is empty for a job that has none.
    pub fn of_job(job: &Job, seq: u64, output_tail: String) -> Notification {
        Notification {
            seq,
            job_id: job.id.clone(),
            short_id: job.short_id.clone(),
            session: job.session.clone(),
            state: job.state,
            exit_code: job.exit_code,
            signal: job.signal.clone(),
            command: job.command.clone(),
            duration_ms: job.duration_ms,
            output_tail,
            finished_at: job.finished_at.clone().unwrap_or_default(),
            reason: job.reason.clone(),
        }
    }
}
