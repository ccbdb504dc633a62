//! The exit-code rules of `agentctl wait` and `agentctl run --wait`, as a
//! shell reports a foreground command's end:
//!
//! | the job | exit code |
//! | --- | --- |
//! | `succeeded` | 0 |
//! | `timed_out` (its own `--timeout`) | 124, as `timeout(1)` |
//! | ended by signal N (`"signal": "SIGTERM"`) | 128 + N (143) |
//! | exited with code C | C (a job that did not succeed never gives 0: 1) |
//! | `lost`, or `failed` without an exit code (could not start) | 1 |
//! | still running when `wait --timeout` expired | [`STILL_RUNNING`] (75) |

use agentd_proto::{Job, JobState};

/// Exit code of `wait` when its own `--timeout` expired with a job still
/// queued or running: 75, `EX_TEMPFAIL` of sysexits.h ("try again later").
/// Distinct from 124, which means the job's own timeout ended it.
pub const STILL_RUNNING: u8 = 75;

/// Exit code of a job that hit its own timeout, as `timeout(1)`.
pub const TIMED_OUT: u8 = 124;

/// The exit code `wait` reports for `job` (see the module's table).
pub fn job_exit_code(job: &Job) -> u8 {
    match job.state {
        JobState::Succeeded => 0,
        JobState::Queued | JobState::Running | JobState::Paused => STILL_RUNNING,
        JobState::TimedOut => TIMED_OUT,
        JobState::Failed | JobState::Killed | JobState::Lost => {
            if let Some(num) = job.signal.as_deref().and_then(signal_number) {
                128u8.saturating_add(num)
            } else {
                match job.exit_code {
                    Some(code @ 1..=255) => code as u8,
                    _ => 1,
                }
            }
        }
    }
}

/// The number of a Linux signal named as the protocol writes it
/// (`"SIGTERM"` → 15, `"SIG40"` → 40); `None` for an unknown name.
pub use agentd_proto::signal::number as signal_number;

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: JobState, exit_code: Option<i32>, signal: Option<&str>) -> Job {
        Job {
            id: "0123abcd-0000-4000-8000-000000000000".into(),
            short_id: "0123abcd".into(),
            command: "true".into(),
            cwd: "/".into(),
            state,
            exit_code,
            signal: signal.map(str::to_string),
            pid: None,
            session: "default".into(),
            label: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            timeout_secs: None,
            output_bytes: 0,
            reason: None,
            sandbox: None,
            limits: None,
            executor: Default::default(),
            external_id: None,
            slurm: None,
            group: "default".into(),
            after: Vec::new(),
        }
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(job_exit_code(&job(JobState::Succeeded, Some(0), None)), 0);
        assert_eq!(job_exit_code(&job(JobState::Failed, Some(3), None)), 3);
        assert_eq!(
            job_exit_code(&job(JobState::Killed, None, Some("SIGTERM"))),
            143
        );
        assert_eq!(
            job_exit_code(&job(JobState::Killed, None, Some("SIGKILL"))),
            137
        );
        assert_eq!(
            job_exit_code(&job(JobState::TimedOut, None, Some("SIGTERM"))),
            124
        );
        assert_eq!(job_exit_code(&job(JobState::Lost, None, None)), 1);
        assert_eq!(job_exit_code(&job(JobState::Failed, None, None)), 1);
        assert_eq!(job_exit_code(&job(JobState::Killed, Some(0), None)), 1);
        assert_eq!(job_exit_code(&job(JobState::Running, None, None)), 75);
    }

    #[test]
    fn signal_names_map_to_numbers() {
        assert_eq!(signal_number("SIGHUP"), Some(1));
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("SIGSYS"), Some(31));
        assert_eq!(signal_number("SIG40"), Some(40));
        assert_eq!(signal_number("SIGNOPE"), None);
    }
}
