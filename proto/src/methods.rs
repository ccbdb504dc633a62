//! One params/result pair per method of protocol v1, tied together by the
//! [`Method`] trait so that a call is typed end to end:
//! `client.call::<JobSubmit>(&params)` returns a [`Job`].
//!
//! Params structs reject unknown fields, so a misspelt field is an
//! `Invalid params` error naming it rather than silently ignored.

use crate::sandbox::{Limits, Sandbox, SandboxSupport};
use crate::types::{Job, JobState, Notification};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;

/// A method: its wire name and the types of its params and result.
pub trait Method {
    /// The wire name, e.g. `"job.submit"`.
    const NAME: &'static str;
    /// The params object.
    type Params: Serialize + DeserializeOwned + Send + Sync;
    /// The result object.
    type Result: Serialize + DeserializeOwned + Send;
}

macro_rules! method {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty, $result:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $ty {}
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
}

/// An empty object `{}`: the params of `daemon.info`, the result of
/// `daemon.shutdown`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

method!(
    /// `daemon.info`: version, pid, paths and job counts.
    DaemonInfo, "daemon.info", Empty, InfoResult);
method!(
    /// `daemon.shutdown`: the daemon replies `{}` and exits.
    DaemonShutdown, "daemon.shutdown", ShutdownParams, Empty);
method!(
    /// `job.submit`: replies once the job is durably recorded.
    JobSubmit, "job.submit", SubmitParams, Job);
method!(
    /// `job.get`: one job by id or unique prefix.
    JobGet, "job.get", IdParams, Job);
method!(
    /// `job.list`: jobs newest first.
    JobList, "job.list", ListParams, ListResult);
method!(
    /// `job.output`: a byte range of a job's output.
    JobOutput, "job.output", OutputParams, OutputResult);
method!(
    /// `job.kill`: signals the job's process group.
    JobKill, "job.kill", KillParams, Job);
method!(
    /// `job.wait`: long-polls until the job finishes or the timeout.
    JobWait, "job.wait", WaitParams, Job);
method!(
    /// `job.remove`: removes finished jobs with their notification and
    /// output.
    JobRemove, "job.remove", RemoveParams, RemoveResult);
method!(
    /// `job.prune`: removes finished jobs by age, count, session, state.
    JobPrune, "job.prune", PruneParams, PruneResult);
method!(
    /// `job.pause`: stops a running job's process group (SIGSTOP) or holds
    /// a queued job; state `paused`.
    JobPause, "job.pause", IdParams, Job);
method!(
    /// `job.resume`: continues a paused job (SIGCONT) or releases a held
    /// one into the queue.
    JobResume, "job.resume", IdParams, Job);
method!(
    /// `job.group_set`: sets a group's `max_running` (persisted).
    JobGroupSet, "job.group_set", GroupSetParams, Group);
method!(
    /// `job.group_list`: every group with its limit and counts.
    JobGroupList, "job.group_list", Empty, GroupListResult);
method!(
    /// `notifications.peek`: pending notifications without consuming them.
    NotificationsPeek, "notifications.peek", PeekParams, NotificationsResult);
method!(
    /// `notifications.ack`: consumes notifications up to a `seq`.
    NotificationsAck, "notifications.ack", AckParams, AckResult);
method!(
    /// `notifications.drain`: peek and ack in one step (at-most-once).
    NotificationsDrain, "notifications.drain", DrainParams, NotificationsResult);
method!(
    /// `notifications.wait`: long-polls until a notification is pending.
    NotificationsWait, "notifications.wait", NotificationsWaitParams, NotificationsResult);

/// Job counts in [`InfoResult`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Jobs waiting for a slot.
    pub queued: u64,
    /// Jobs running now.
    pub running: u64,
    /// Jobs paused (`job.pause`); absent from earlier daemons.
    #[serde(default)]
    pub paused: u64,
    /// All jobs in the table.
    pub total: u64,
}

/// Result of `daemon.info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoResult {
    /// The daemon's version (its crate version).
    pub version: String,
    /// Always 1 for this protocol.
    pub protocol_version: u32,
    /// The daemon's process id.
    pub pid: u32,
    /// The socket path it listens on.
    pub socket: String,
    /// Its state directory.
    pub state_dir: String,
    /// When it started (RFC 3339 UTC).
    pub started_at: String,
    /// Job counts.
    pub jobs: JobCounts,
    /// What this kernel lets the daemon enforce for `job.submit`
    /// `sandbox` and `limits`; absent from earlier daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxSupport>,
}

/// What `daemon.shutdown` does to running jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownJobs {
    /// Leave them running (the default).
    #[default]
    Keep,
    /// Kill every running job's process group first.
    Kill,
}

/// Params of `daemon.shutdown`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownParams {
    /// `keep` (default) or `kill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<ShutdownJobs>,
}

/// Params of `job.submit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitParams {
    /// Non-empty shell command, run as `/bin/sh -c COMMAND`.
    pub command: String,
    /// Absolute, existing directory; default the daemon's cwd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Variables laid over the daemon's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Seconds (> 0) before the process group gets SIGTERM, then SIGKILL 5 s
    /// later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    /// Session name (default `"default"`): 1–128 chars of `[A-Za-z0-9._-]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Free-form label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Size in bytes of the notification's `output_tail` (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_bytes: Option<u64>,
    /// File-system and network restrictions (docs/sandbox.md); absent or
    /// mode `none` with network on: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    /// Per-process resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Where to run it: `local` or `slurm` (default: the daemon's config
    /// `executor`, else `local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<crate::Executor>,
    /// Resources asked of Slurm (`executor: "slurm"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::SlurmOptions>,
    /// Jobs (full ids or unique prefixes) this one runs after: it stays
    /// queued until all of them succeeded; when one ends `failed`,
    /// `killed`, `timed_out` or `lost`, this job ends `failed` with
    /// `reason` "dependency <short_id> <state>". An unknown id is -32001.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// The job's group (default `"default"`; same characters as a session
    /// name): its `max_running` caps how many of its jobs run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Params of `job.group_set`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSetParams {
    /// The group's name (1–128 chars of `[A-Za-z0-9._-]`); it need not
    /// have jobs yet.
    pub group: String,
    /// At most this many of its jobs run (or are paused) at once; `null`
    /// or 0: no limit of its own (the daemon-wide `max_running` still
    /// applies).
    pub max_running: Option<u64>,
}

/// A group of jobs: result of `job.group_set`, entry of `job.group_list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// Its own cap on running (and paused) jobs; `null`: none.
    pub max_running: Option<u64>,
    /// Its jobs holding a slot now (running or paused after starting).
    pub running: u64,
    /// Its jobs not started yet (waiting for a slot, a dependency, or held).
    pub queued: u64,
}

/// Result of `job.group_list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupListResult {
    /// Every group that has a limit or a live job, by name; `default`
    /// always.
    pub groups: Vec<Group>,
}

/// Params naming one job: the full id or a unique prefix of 4+ hex chars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdParams {
    /// Full id or unique prefix.
    pub id: String,
}

/// Params of `job.list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only jobs in these states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<Vec<JobState>>,
    /// Only jobs of this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Only jobs of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// At most this many (the newest); absent means at most
    /// [`DEFAULT_LIST_LIMIT`]. A page also ends early when its reply
    /// reaches [`MAX_PAGE_BYTES`]; `next_cursor` then continues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Continue after the last job of an earlier page: that page's
    /// `next_cursor`, opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Most jobs `job.list` returns when no `limit` is given (docs/protocol.md, "Methods").
pub const DEFAULT_LIST_LIMIT: u64 = 1000;
/// Default `max` of the `notifications.*` methods (docs/protocol.md, "Methods").
pub const DEFAULT_NOTIFICATIONS_MAX: u64 = 100;
/// Paged replies (`job.list`, `notifications.peek/drain/wait`) stop adding
/// entries once their JSON reaches this many bytes (4 MiB), and say that
/// more follow (`next_cursor`, `more`). One entry always fits: a page holds
/// at least one whatever its size. The largest single entry (a job with a
/// 128 KiB command of control characters, each escaped to 6 bytes) is under
/// 1 MiB, so no page exceeds 5 MiB, well inside [`crate::client::MAX_REPLY_BYTES`].
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Result of `job.list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListResult {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to get the next page; `null` when this page is the
    /// last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Params of `job.remove`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    /// Full ids or unique prefixes of finished jobs. A live one makes the
    /// whole call fail with -32006 and removes nothing.
    pub ids: Vec<String>,
}

/// Result of `job.remove`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoveResult {
    /// The full ids of the jobs removed.
    pub removed: Vec<String>,
}

/// Params of `job.prune`: which finished jobs to remove. Jobs whose
/// notification is still pending are never pruned (their result has not
/// been taken); live jobs never are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneParams {
    /// Only jobs that finished more than this many seconds ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_secs: Option<f64>,
    /// Keep the newest N of the matching finished jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u64>,
    /// Only jobs of this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Only jobs in these (finished) states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<Vec<JobState>>,
    /// Count what would go, remove nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// Result of `job.prune`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PruneResult {
    /// Jobs removed (with `dry_run`: that would be).
    pub removed: u64,
    /// Their output, in bytes (`output_bytes` summed).
    pub bytes_freed: u64,
}

/// Params of `job.output`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputParams {
    /// Full id or unique prefix.
    pub id: String,
    /// First byte to return (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Bytes to return (default 65536, at most 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Return the last N bytes instead of a range (at most 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u64>,
    /// While the job runs, wait up to this many milliseconds for bytes past
    /// `offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Result of `job.output`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputResult {
    /// The bytes as lossy UTF-8.
    pub data: String,
    /// Offset of the first byte returned.
    pub offset: u64,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// Size of the output log now, in bytes.
    pub total_bytes: u64,
    /// True when the job has finished and `next_offset == total_bytes`.
    pub complete: bool,
    /// The bytes agentd dropped to keep the log within `[output] max_bytes`
    /// (the job wrote more: its head and newest tail are kept), or `null`
    /// when nothing was dropped. A read never returns them: one that starts
    /// inside the range starts at its end (`offset` says where), one that
    /// reaches it stops at its start. An agentd without the cap leaves it
    /// out.
    #[serde(default)]
    pub dropped: Option<DroppedRange>,
}

/// A range of a job's output that was dropped: bytes `[from, to)`, offsets
/// counted over everything the job wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedRange {
    /// Offset of the first dropped byte.
    pub from: u64,
    /// Offset just past the last dropped byte (where the kept tail starts).
    pub to: u64,
}

/// Params of `job.kill`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillParams {
    /// Full id or unique prefix.
    pub id: String,
    /// `TERM` (default), `INT`, `HUP` or `KILL` (a `SIG` prefix is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Seconds before SIGKILL follows (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_secs: Option<f64>,
}

/// Params of `job.wait`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// Full id or unique prefix.
    pub id: String,
    /// Give up after this many seconds and return the job as it stands;
    /// absent means wait until it finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
}

/// Params of `notifications.peek`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeekParams {
    /// Session (default `"default"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Only notifications with a greater `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    /// At most this many, oldest first (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

/// Params of `notifications.ack`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckParams {
    /// Session (default `"default"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Acknowledge every pending notification with `seq <= up_to_seq`.
    pub up_to_seq: u64,
}

/// Result of `notifications.ack`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckResult {
    /// How many notifications were acknowledged by this call.
    pub acked: u64,
}

/// Params of `notifications.drain`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainParams {
    /// Session (default `"default"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// At most this many, oldest first (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

/// Params of `notifications.wait`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsWaitParams {
    /// Session (default `"default"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// How long to wait, in milliseconds.
    pub timeout_ms: u64,
    /// At most this many, oldest first (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

/// Result of the `notifications.*` methods that return notifications.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotificationsResult {
    /// Oldest first (rising `seq`), at most `max` of them (default 100)
    /// and at most [`MAX_PAGE_BYTES`] of JSON.
    pub notifications: Vec<Notification>,
    /// True when more are pending after these (for `drain`: after these
    /// were taken).
    #[serde(default)]
    pub more: bool,
    /// How many older notifications of the session were dropped, unread,
    /// because it held more than `[retention] max_pending_per_session`.
    /// Reported until an ack (or drain) covers them: an ack with
    /// `up_to_seq` at or past `dropped_up_to_seq`.
    #[serde(default)]
    pub dropped: u64,
    /// The highest `seq` among the `dropped` notifications (absent when
    /// `dropped` is 0). A client that told its user of the drop acks up to
    /// at least this `seq`, which clears `dropped` even when no
    /// notification is pending any more (their jobs were removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_up_to_seq: Option<u64>,
}
