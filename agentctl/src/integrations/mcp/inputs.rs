//! The tools' inputs, with the JSON schemas (schemars) the server
//! publishes in `tools/list`. Unknown fields are refused, so a misspelt
//! argument is a tool error naming it rather than silently ignored.

use schemars::JsonSchema;
use serde::Deserialize;

/// `run`: start a shell command as an agentd job.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// Shell command, run as `/bin/sh -c COMMAND`.
    pub command: String,
    /// Working directory: absolute, or relative to the project directory
    /// (the default).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Seconds after which the job's process group gets SIGTERM (then
    /// SIGKILL 5 s later). Default: no timeout.
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Seconds to wait for the job to finish before answering (default 0:
    /// answer at once). A job that ends within this time comes back with
    /// its output; one that does not keeps running and its result is
    /// delivered later.
    #[serde(default)]
    pub wait_secs: Option<f64>,
    /// Free-form label shown in job lists.
    #[serde(default)]
    pub label: Option<String>,
}

/// `jobs`: this agent session's jobs.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsInput {
    /// Also list finished jobs (default: only queued and running ones).
    #[serde(default)]
    pub all: Option<bool>,
}

/// `output`: a job's output (stdout and stderr interleaved).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputInput {
    /// Job id or a unique prefix of it (4+ hex characters).
    pub id: String,
    /// The last this many bytes (default 8000 when neither `offset` nor
    /// `limit` is given).
    #[serde(default)]
    pub tail_bytes: Option<u64>,
    /// First byte to return (a range instead of the tail).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Bytes to return from `offset` (default 8000, at most 100000).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `wait`: wait for a job to finish.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitInput {
    /// Job id or a unique prefix of it.
    pub id: String,
    /// Give up after this many seconds and report the job as it stands
    /// (default 300, at most 3600).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
}

/// `kill`: signal a job's process group (a queued job is cancelled).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillInput {
    /// Job id or a unique prefix of it.
    pub id: String,
    /// `TERM` (default), `INT`, `HUP` or `KILL`.
    #[serde(default)]
    pub signal: Option<String>,
}

/// `results`: no arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsInput {}
