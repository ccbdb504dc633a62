//! What Slurm says about a job, parsed, and how its states map to agentd's
//! (DESIGN.md, "Jobs on a cluster"; docs/slurm.md, "States").
//!
//! Sources, in the order the watcher asks them: `squeue -t all -h -o
//! '%i|%T|%r' -j IDS` (one line per job Slurm still knows), `scontrol show
//! job -o ID` (the exit code, `ExitCode=3:0`), and once Slurm has purged
//! the job (after `MinJobAge`) the `jobcomp/filetxt` record, one
//! `Key=Value` line per finished job.

use agentd_proto::JobState;
use std::collections::HashMap;

/// Slurm states that are final. `COMPLETING` is not: the job's processes
/// may still run (and write output).
const FINAL: [&str; 11] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "BOOT_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "DEADLINE",
    "REVOKED",
    "SPECIAL_EXIT",
];

/// Slurm states in which the job has not started: agentd shows `queued`.
const WAITING: [&str; 6] = [
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
];

/// True for a final Slurm state (`CANCELLED by 0` counts as `CANCELLED`).
pub fn is_final(state: &str) -> bool {
    FINAL.contains(&base(state))
}

/// True while Slurm has not started the job.
pub fn is_waiting(state: &str) -> bool {
    WAITING.contains(&base(state))
}

fn base(state: &str) -> &str {
    state.split_whitespace().next().unwrap_or("")
}

/// One line of `squeue -h -o '%i|%T|%r'`: job id, state, reason.
pub fn parse_squeue(out: &str) -> HashMap<String, (String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, '|');
            let id = f.next()?.to_string();
            let state = f.next()?.to_string();
            let reason = f.next().unwrap_or("").to_string();
            (!id.is_empty()).then_some((id, (state, reason)))
        })
        .collect()
}

/// The `Key=Value` fields of a `scontrol show job -o` or jobcomp line. A
/// value with spaces is cut at the first one; the fields read here
/// (`JobState`, `Reason`, `ExitCode`, `StartTime`, `EndTime`) have none,
/// and agentd's job names never hold a space or `=`.
pub fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect()
}

/// How a Slurm job ended, as far as Slurm tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Slurm's final state (`COMPLETED`, `TIMEOUT`, ...).
    pub state: String,
    /// `ExitCode=C:S`: the exit code, when it exited.
    pub exit_code: Option<i32>,
    /// `ExitCode=C:S`: the signal number, when non-zero.
    pub signal: Option<i32>,
    /// Slurm's `Reason`, unless `None`.
    pub reason: Option<String>,
    /// Milliseconds from `StartTime` to `EndTime` (whole seconds).
    pub run_ms: Option<u64>,
}

impl Ended {
    /// From a `scontrol show job -o` or jobcomp line; `None` when the line
    /// names no final state.
    pub fn from_fields(f: &HashMap<&str, &str>) -> Option<Ended> {
        let state = f.get("JobState")?.to_string();
        if !is_final(&state) {
            return None;
        }
        let (code, sig) = match f.get("ExitCode").and_then(|e| e.split_once(':')) {
            Some((c, s)) => (c.parse().ok(), s.parse().ok().filter(|&s: &i32| s != 0)),
            None => (None, None),
        };
        let reason = f
            .get("Reason")
            .filter(|r| !matches!(**r, "None" | "(null)" | ""))
            .map(|r| r.to_string());
        let run_ms = match (f.get("StartTime"), f.get("EndTime")) {
            (Some(s), Some(e)) => seconds_between(s, e).map(|s| s * 1000),
            _ => None,
        };
        Some(Ended {
            state,
            exit_code: code,
            signal: sig,
            reason,
            run_ms,
        })
    }
}

/// Seconds from `start` to `end`, both Slurm timestamps in the same
/// (local) zone, `YYYY-MM-DDTHH:MM:SS`.
fn seconds_between(start: &str, end: &str) -> Option<u64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let s = time::PrimitiveDateTime::parse(start, fmt).ok()?;
    let e = time::PrimitiveDateTime::parse(end, fmt).ok()?;
    u64::try_from((e - s).whole_seconds()).ok()
}

/// A finished job's state, exit code, signal name and reason from how
/// Slurm ended it. `killed`: agentd cancelled it (`job.kill`), which makes
/// it `killed` whatever Slurm recorded, as for a local job.
pub fn outcome(e: &Ended, killed: bool) -> (JobState, Option<i32>, Option<String>, Option<String>) {
    let signal = e.signal.map(agentd_proto::signal::name);
    let why = |what: &str| match &e.reason {
        Some(r) => format!("Slurm: {what} ({r})"),
        None => format!("Slurm: {what}"),
    };
    if killed {
        return (JobState::Killed, None, None, None);
    }
    match base(&e.state) {
        "COMPLETED" => (JobState::Succeeded, Some(0), None, None),
        "FAILED" if e.signal.is_some() => (
            JobState::Killed,
            None,
            signal,
            Some(why("the job was ended by a signal")),
        ),
        "FAILED" => (JobState::Failed, e.exit_code, None, None),
        "CANCELLED" => (
            JobState::Killed,
            None,
            None,
            Some(
                "Slurm: the job was cancelled outside agentd (scancel, or an administrator)".into(),
            ),
        ),
        "TIMEOUT" => (
            JobState::TimedOut,
            None,
            None,
            Some("Slurm: the job reached its time limit (--time)".into()),
        ),
        "OUT_OF_MEMORY" => (
            JobState::Failed,
            e.exit_code,
            None,
            Some(why(
                "OUT_OF_MEMORY: the job used more memory than it asked for (--mem)",
            )),
        ),
        other => (JobState::Failed, e.exit_code, None, Some(why(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_lines_give_state_exit_code_and_run_time() {
        let line = "JobId=1 JobName=t1 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 \
                    RunTime=00:00:02 StartTime=2026-12-02T01:55:04 EndTime=2026-12-02T01:55:06 WorkDir=/tmp";
        let e = Ended::from_fields(&fields(line)).unwrap();
        assert_eq!(e.exit_code, Some(3));
        assert_eq!(e.run_ms, Some(2000));
        assert_eq!(outcome(&e, false).0, JobState::Failed);
        assert_eq!(outcome(&e, true).0, JobState::Killed);
        let live = fields("JobId=2 JobState=COMPLETING ExitCode=0:0");
        assert_eq!(Ended::from_fields(&live), None);
    }

    #[test]
    fn a_jobcomp_record_as_slurm_22_writes_it_gives_the_end() {
        // A line of jobcomp/filetxt (Slurm 22.05), as written for a job
        // that exited 3.
        let line = "JobId=1 UserId=root(0) GroupId=root(0) Name=t1 JobState=FAILED Partition=debug \
                    TimeLimit=UNLIMITED StartTime=2026-12-02T01:55:04 EndTime=2026-12-02T01:55:04 \
                    NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp ReservationName= \
                    Tres=cpu=1,mem=24105M,node=1,billing=1 Account= QOS= WcKey= Cluster=unknown \
                    SubmitTime=2026-12-02T01:55:02 EligibleTime=2026-12-02T01:55:02 \
                    DerivedExitCode=0:0 ExitCode=3:0 ";
        let f = fields(line);
        assert_eq!(f.get("Name"), Some(&"t1"));
        let e = Ended::from_fields(&f).unwrap();
        assert_eq!((e.exit_code, e.signal, e.run_ms), (Some(3), None, Some(0)));
        assert_eq!(outcome(&e, false).0, JobState::Failed);
    }

    #[test]
    fn states_map_as_the_design_says() {
        let end = |s: &str| Ended {
            state: s.into(),
            exit_code: Some(0),
            signal: None,
            reason: None,
            run_ms: None,
        };
        assert_eq!(outcome(&end("COMPLETED"), false).0, JobState::Succeeded);
        assert_eq!(outcome(&end("CANCELLED by 0"), false).0, JobState::Killed);
        assert_eq!(outcome(&end("TIMEOUT"), false).0, JobState::TimedOut);
        let (st, _, _, reason) = outcome(&end("NODE_FAIL"), false);
        assert_eq!(st, JobState::Failed);
        assert!(reason.unwrap().contains("NODE_FAIL"));
        assert!(!is_final("COMPLETING"));
        assert!(is_waiting("PENDING"));
        let q = parse_squeue("7|RUNNING|None\n8|PENDING|Resources\n");
        assert_eq!(q["8"], ("PENDING".to_string(), "Resources".to_string()));
    }
}
