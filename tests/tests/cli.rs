//! End-to-end tests of the `agentctl` job CLI against the real `agentd`:
//! every command, every exit-code rule of `wait`, the JSON shapes of
//! docs/protocol.md, error messages that name what went wrong, and auto-start.
//!
//! Jobs that must still be running when the test looks block on a FIFO the
//! test opens when it is ready, never on a timer.

use agentd_tests::{TestEnv, parent_of, release, run};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;

/// Helpers shared by the tests below.
mod helpers {
    use super::*;

    /// `agentctl ARGS…` in `env`: (exit code, stdout, stderr).
    pub fn agentctl(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
        run(env.agentctl().args(args))
    }

    /// `agentctl ARGS…` that must exit 0; returns stdout.
    pub fn ok(env: &TestEnv, args: &[&str]) -> String {
        let (code, out, err) = agentctl(env, args);
        assert_eq!(code, 0, "agentctl {args:?} failed: {err}");
        out
    }

    /// `agentctl run ARGS…`: checks that stdout is exactly a short id and
    /// returns it.
    pub fn submit(env: &TestEnv, args: &[&str]) -> String {
        let out = ok(env, &[&["run"], args].concat());
        short_id(&out)
    }

    /// `agentctl run --wait ARGS…` that must exit `code`; returns the
    /// short id (from the status line on stderr).
    pub fn submit_wait(env: &TestEnv, args: &[&str], code: i32) -> String {
        let (got, _, err) = agentctl(env, &[&["run", "--wait"], args].concat());
        assert_eq!(got, code, "agentctl run --wait {args:?}: {err}");
        status_id(&err)
    }

    /// The short id that starts the last line of `err`, the status line
    /// of `wait` and `run --wait` (`1a2b3c4d succeeded (exit 0) …`).
    pub fn status_id(err: &str) -> String {
        let last = err.lines().last().unwrap_or_else(|| panic!("{err:?}"));
        short_id(&format!("{}\n", last.split(' ').next().unwrap()))
    }

    /// The short id that is the whole of `out` (8 hex chars and a newline).
    pub fn short_id(out: &str) -> String {
        let id = out.strip_suffix('\n').unwrap_or_else(|| panic!("{out:?}"));
        assert!(
            id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "stdout must be only the short id, got {out:?}"
        );
        id.to_string()
    }

    /// `agentctl show --json ID` parsed.
    pub fn job(env: &TestEnv, id: &str) -> Value {
        serde_json::from_str(&ok(env, &["show", "--json", id])).unwrap()
    }

    /// A job command that blocks until [`release`] opens `fifo`.
    pub fn blocked_on(fifo: &Path) -> String {
        format!("read x < {}", fifo.display())
    }
}

use helpers::*;

/// The Job keys of docs/protocol.md, "Objects".
const JOB_KEYS: [&str; 23] = [
    "id",
    "short_id",
    "command",
    "cwd",
    "state",
    "exit_code",
    "signal",
    "pid",
    "session",
    "label",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "timeout_secs",
    "output_bytes",
    "reason",
    "sandbox",
    "limits",
    "executor",
    "external_id",
    "group",
    "after",
];

fn assert_job_shape(job: &Value) {
    let obj = job.as_object().expect("a Job is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = JOB_KEYS.to_vec();
    want.sort();
    assert_eq!(keys, want, "Job keys as docs/protocol.md lists them");
    let id = job["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(job["short_id"].as_str().unwrap(), &id[..8]);
    assert!(job["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(job["output_bytes"].is_u64());
}

#[test]
fn run_prints_only_the_short_id_and_sends_the_callers_env_and_cwd() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    std::fs::create_dir(env.workdir().join("sub")).unwrap();
    let (code, out, err) = run(env
        .agentctl()
        .env("CALLER_VAR", "from-caller")
        .env("OVERRIDDEN", "old")
        .args(["run", "--wait", "--cwd", "sub", "--env", "OVERRIDDEN=new"])
        .args([
            "--label",
            "greeting",
            "--",
            "echo",
            "$CALLER_VAR",
            "$OVERRIDDEN;",
            "pwd",
        ]));
    assert_eq!(code, 0, "{err}");
    let id = status_id(&err);
    let job = job(&env, &id);
    assert_eq!(job["command"], "echo $CALLER_VAR $OVERRIDDEN; pwd");
    let sub = env.workdir().join("sub").display().to_string();
    assert_eq!(job["cwd"], sub.as_str());
    assert_eq!(job["label"], "greeting");
    // --wait streams the job's output to stdout.
    assert_eq!(out, format!("from-caller new\n{sub}\n"));
    assert_eq!(ok(&env, &["logs", &id]), out);
}

#[test]
fn run_wait_exits_as_the_job_did() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    for (command, want) in [
        ("true", 0),
        ("exit 3", 3),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
    ] {
        let (code, out, err) = agentctl(&env, &["run", "--wait", "--", command]);
        assert_eq!((code, out.as_str()), (want, ""), "{command}: {err}");
        status_id(&err);
    }
    // The job's own timeout: 124, as timeout(1).
    let (code, _, err) = agentctl(
        &env,
        &["run", "--wait", "--timeout", "0.2", "--", "exec sleep 300"],
    );
    assert_eq!(code, 124, "{err}");
    assert_eq!(job(&env, &status_id(&err))["state"], "timed_out");
    assert!(err.contains("timed_out"), "{err}");
}

#[test]
fn jobs_lists_live_jobs_by_default_and_filters_and_json() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let done = submit_wait(&env, &["--session", "s1", "--", "exit 7"], 7);
    let gate = env.fifo("gate");
    let live = submit(&env, &["--session", "s2", "--", &blocked_on(&gate)]);

    let table = ok(&env, &["jobs"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "STATE", "EXIT", "STARTED", "DURATION", "SESSION", "COMMAND"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(rows[0].starts_with(&live) && rows[0].contains("running"));
    assert!(!table.contains("\x1b["), "no colour when not a terminal");

    let all = ok(&env, &["jobs", "--all"]);
    assert_eq!(all.lines().count(), 3, "{all}");
    let finished_row = all.lines().find(|l| l.starts_with(&done)).unwrap();
    let cells: Vec<&str> = finished_row.split_whitespace().collect();
    assert_eq!(&cells[1..3], ["failed", "7"]);
    assert!(finished_row.ends_with("exit 7"));

    let failed = ok(&env, &["jobs", "--state", "failed", "--state", "killed"]);
    assert_eq!(failed.lines().count(), 2);
    assert!(failed.contains(&done) && !failed.contains(&live));
    let s2 = ok(&env, &["jobs", "--all", "--session", "s2"]);
    assert!(s2.contains(&live) && !s2.contains(&done));

    let json: Value = serde_json::from_str(&ok(&env, &["jobs", "--all", "--json"])).unwrap();
    let jobs = json.as_array().expect("a JSON array of jobs");
    assert_eq!(jobs.len(), 2);
    jobs.iter().for_each(assert_job_shape);
    // Newest first.
    assert_eq!(jobs[0]["short_id"], live.as_str());
    assert_eq!(jobs[0]["state"], "running");
    assert!(jobs[0]["pid"].is_u64() && jobs[0]["exit_code"].is_null());
    assert_eq!(jobs[1]["short_id"], done.as_str());
    assert_eq!(jobs[1]["state"], "failed");
    assert_eq!(jobs[1]["exit_code"], 7);
    assert_eq!(jobs[1]["session"], "s1");
    assert!(jobs[1]["duration_ms"].is_u64() && jobs[1]["finished_at"].is_string());

    let live_only: Value = serde_json::from_str(&ok(&env, &["jobs", "--json"])).unwrap();
    assert_eq!(live_only.as_array().unwrap().len(), 1);
    release(&gate);
    assert_eq!(agentctl(&env, &["wait", &live]).0, 0);
    let (code, out, err) = agentctl(&env, &["jobs"]);
    assert_eq!(
        (code, out.lines().count()),
        (0, 1),
        "only the header: {out}"
    );
    assert!(err.contains("--all"), "{err}");
}

#[test]
fn show_prints_one_job_in_full() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let id = submit_wait(&env, &["--timeout", "60", "--", "echo hi"], 0);
    let text = ok(&env, &["show", &id]);
    for line in [
        "state:      succeeded",
        "exit code:  0",
        "command:    echo hi",
        "session:    default",
        "timeout:    60 s",
        "output:     3 bytes",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with(&format!("id:         {id}"))
    );
    let json = job(&env, &id);
    assert_job_shape(&json);
    assert_eq!(json["timeout_secs"], 60.0);
}

#[test]
fn logs_prints_output_and_the_last_lines() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let id = submit_wait(&env, &["--", "seq 1 20000; printf end"], 0);
    let all: String = (1..=20000).map(|i| format!("{i}\n")).collect::<String>() + "end";
    assert_eq!(ok(&env, &["logs", &id]), all);
    assert_eq!(ok(&env, &["logs", "--tail", "3", &id]), "19999\n20000\nend");
    assert_eq!(ok(&env, &["logs", "-n", "1", &id]), "end");
    assert_eq!(ok(&env, &["logs", "-n", "0", &id]), "");
    assert_eq!(ok(&env, &["logs", "-n", "30000", &id]), all);
    // Lines longer than the first byte tail: reaches further back.
    let long = submit_wait(
        &env,
        &[
            "--",
            "echo first; head -c 300000 /dev/zero | tr '\\0' y; echo; echo last",
        ],
        0,
    );
    let two = ok(&env, &["logs", "--tail", "2", &long]);
    assert_eq!(two.len(), 300_001 + 5);
    assert!(two.starts_with("yyy") && two.ends_with("y\nlast\n"));
    // A finished job's output with -f: printed, then exit.
    assert_eq!(ok(&env, &["logs", "-f", "-n", "1", &id]), "end");
}

#[test]
fn logs_follow_shows_output_while_the_job_runs_and_exits_when_it_ends() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let cmd = format!("echo first; {}; echo second", blocked_on(&gate));
    let id = submit(&env, &["--", &cmd]);
    let mut follower = env
        .agentctl()
        .args(["logs", "-f", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(follower.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    // The job is still blocked on the FIFO, so this arrived while it ran.
    assert_eq!(job(&env, &id)["state"], "running");
    assert!(follower.try_wait().unwrap().is_none(), "-f keeps following");
    release(&gate);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert!(follower.wait().unwrap().success());
    assert_eq!(job(&env, &id)["state"], "succeeded");
}

#[test]
fn wait_applies_the_exit_code_rules_to_several_jobs() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let two = submit(&env, &["--", "exit 2"]);
    let ok1 = submit(&env, &["--", "true"]);
    let five = submit(&env, &["--", "exit 5"]);
    let (code, out, err) = agentctl(&env, &["wait", &two, &ok1, &five]);
    assert_eq!((code, out.as_str()), (5, ""), "the last non-zero: {err}");
    assert_eq!(err.lines().count(), 3, "one line per job: {err}");
    assert!(err.contains(&format!("{five} failed (exit 5)")), "{err}");
    assert_eq!(agentctl(&env, &["wait", &five, &two, &ok1]).0, 2);
    assert_eq!(agentctl(&env, &["wait", &ok1, &ok1[..5]]).0, 0);

    // wait's own --timeout with the job still running: 75 and a message.
    let gate = env.fifo("gate");
    let live = submit(&env, &["--", &blocked_on(&gate)]);
    let (code, _, err) = agentctl(&env, &["wait", "--timeout", "0.2", &ok1, &live]);
    assert_eq!(code, 75, "{err}");
    assert!(err.contains(&format!("{live} still running")), "{err}");
    release(&gate);
    assert_eq!(agentctl(&env, &["wait", &live]).0, 0);
}

#[test]
fn wait_exits_1_for_jobs_without_exit_code_or_signal() {
    let env = TestEnv::new();
    let config = env.root().join("config/one.toml");
    std::fs::write(&config, "max_running = 1\n").unwrap();
    let _daemon = env.start_daemon_with(|cmd| {
        cmd.env("AGENTD_CONFIG", &config);
    });
    let gate = env.fifo("gate");
    let first = submit(&env, &["--", &blocked_on(&gate)]);
    // Cancelled while queued: killed, no exit code, no signal.
    let cancelled = submit(&env, &["--", "true"]);
    assert_eq!(job(&env, &cancelled)["state"], "queued");
    assert_eq!(
        ok(&env, &["kill", &cancelled]),
        format!("{cancelled} killed\n")
    );
    assert_eq!(agentctl(&env, &["wait", &cancelled]).0, 1);
    // Could not start: its cwd vanished while it was queued.
    let doomed = env.workdir().join("doomed");
    std::fs::create_dir(&doomed).unwrap();
    let unstartable = submit(&env, &["--cwd", "doomed", "--", "true"]);
    std::fs::remove_dir(&doomed).unwrap();
    release(&gate);
    assert_eq!(agentctl(&env, &["wait", &first]).0, 0);
    let (code, _, err) = agentctl(&env, &["wait", &unstartable]);
    assert_eq!(code, 1, "{err}");
    let job = job(&env, &unstartable);
    assert_eq!(
        (job["state"].as_str(), job["exit_code"].as_i64()),
        (Some("failed"), None)
    );
}

#[test]
fn kill_signals_jobs_and_reports_each_state() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let a = submit(
        &env,
        &["--", &format!("{}; echo unreachable", blocked_on(&gate))],
    );
    let b = submit(&env, &["--", "exec sleep 300"]);
    let done = submit_wait(&env, &["--", "true"], 0);
    let (code, out, err) = agentctl(
        &env,
        &["kill", "--signal", "INT", &a, "ffffffff", &b, &done],
    );
    assert_eq!(code, 1, "an unknown id fails the command: {err}");
    assert!(err.contains("ffffffff"), "{err}");
    assert_eq!(
        out,
        format!("{a} killed (SIGINT)\n{b} killed (SIGINT)\n{done} succeeded (exit 0)\n")
    );
    assert_eq!(agentctl(&env, &["wait", &a]).0, 130);
    assert!(!ok(&env, &["logs", &a]).contains("unreachable"));
    let (code, _, err) = agentctl(&env, &["kill", "--signal", "USR1", &a]);
    assert_eq!(code, 1);
    assert!(err.contains("USR1"), "{err}");
}

#[test]
fn notifications_peek_leaves_them_and_drain_consumes_them() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let id = submit_wait(&env, &["--session", "nt", "--", "echo out; exit 4"], 4);
    let want = format!("[bg:{id}] failed (exit 4): echo out; exit 4\nout\n");
    assert_eq!(ok(&env, &["notifications", "--session", "nt"]), want);
    assert_eq!(
        ok(&env, &["notifications", "--session", "nt"]),
        want,
        "peek leaves them"
    );
    let peeked: Value =
        serde_json::from_str(&ok(&env, &["notifications", "--session", "nt", "--json"])).unwrap();
    assert_eq!(peeked.as_array().unwrap().len(), 1);
    assert_eq!(peeked[0]["short_id"], id.as_str());
    assert_eq!(peeked[0]["exit_code"], 4);
    assert_eq!(peeked[0]["output_tail"], "out\n");
    // Other sessions do not see it.
    let (_, out, err) = agentctl(&env, &["notifications"]);
    assert_eq!(out, "");
    assert!(err.contains("no notifications pending for session default"));

    let drained: Value =
        serde_json::from_str(&ok(&env, &["drain", "--session", "nt", "--json"])).unwrap();
    assert_eq!(drained, peeked);
    assert_eq!(
        ok(&env, &["drain", "--session", "nt", "--json"]).trim(),
        "[]"
    );
    assert_eq!(ok(&env, &["notifications", "--session", "nt"]), "");

    let id = submit_wait(&env, &["--session", "nt", "--", "kill -TERM $$"], 143);
    assert_eq!(
        ok(&env, &["drain", "--session", "nt"]),
        format!("[bg:{id}] killed (SIGTERM): kill -TERM $$\n")
    );
}

#[test]
fn unknown_ambiguous_and_malformed_ids_are_named_in_one_line_errors() {
    let env = TestEnv::new();
    let config = env.root().join("config/one.toml");
    std::fs::write(&config, "max_running = 1\n").unwrap();
    let daemon = env.start_daemon_with(|cmd| {
        cmd.env("AGENTD_CONFIG", &config);
    });
    for args in [
        &["show", "ffffffff"][..],
        &["logs", "ffffffff"],
        &["wait", "ffffffff"],
        &["kill", "ffffffff"],
    ] {
        let (code, out, err) = agentctl(&env, args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}");
        assert_eq!(
            err, "agentctl: no job ffffffff (agentctl jobs --all lists them)\n",
            "{args:?}"
        );
    }
    let (code, _, err) = agentctl(&env, &["show", "xyz"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("agentctl: xyz is not a job id: "), "{err}");

    // Queue jobs (max_running = 1 keeps them from running) until two share
    // a 4-hex-char prefix; about 300 are needed on average.
    let gate = env.fifo("gate");
    submit(&env, &["--", &blocked_on(&gate)]);
    let prefix = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use agentd_proto::methods::{JobSubmit, SubmitParams};
        let client = std::sync::Arc::new(daemon.client().await);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..40 {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..64 {
                let client = client.clone();
                batch.spawn(async move {
                    let params = SubmitParams {
                        command: "true".into(),
                        ..Default::default()
                    };
                    client.call::<JobSubmit>(&params).await.unwrap().short_id
                });
            }
            for short in batch.join_all().await {
                if !seen.insert(short[..4].to_string()) {
                    return short[..4].to_string();
                }
            }
        }
        panic!("no two of 2560 job ids share a 4-char prefix");
    });
    let (code, _, err) = agentctl(&env, &["show", &prefix]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("agentctl: {prefix} could be any of {prefix}"))
            && err.ends_with("; give more of the id\n"),
        "{err}"
    );
    release(&gate);
}

#[test]
fn no_daemon_and_no_autostart_is_a_one_line_error_naming_the_socket() {
    let env = TestEnv::new();
    for args in [&["jobs"][..], &["run", "--", "true"], &["drain"]] {
        let (code, out, err) = agentctl(&env, args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("agentctl: "), "{err}");
        assert!(err.contains(&env.socket.display().to_string()), "{err}");
    }
    let (code, out, err) = agentctl(&env, &["daemon", "status"]);
    assert_eq!(
        (code, out.as_str()),
        (1, ""),
        "status without a daemon fails"
    );
    assert_eq!(
        err,
        format!(
            "agentctl: no agentd is running on {} (start one with `agentctl daemon start` or `agentd`)\n",
            env.socket.display()
        )
    );
    // --socket wins over AGENTD_SOCKET.
    let (_, _, err) = agentctl(
        &env,
        &["--socket", "/nonexistent/a.sock", "daemon", "status"],
    );
    assert!(err.contains("running on /nonexistent/a.sock "), "{err}");
    let (code, _, err) = agentctl(&env, &["daemon", "stop"]);
    assert_eq!(code, 0, "stop is idempotent");
    assert_eq!(
        err,
        format!(
            "agentctl: no agentd is running on {}; nothing to stop\n",
            env.socket.display()
        )
    );
    assert!(!env.socket.exists(), "status and stop never start a daemon");
}

#[test]
fn run_auto_starts_the_daemon_and_daemon_commands_manage_it() {
    let env = TestEnv::new();
    let (code, out, err) = run(env.agentctl().env_remove("AGENTCTL_NO_AUTOSTART").args([
        "run",
        "--wait",
        "--",
        "echo started",
    ]));
    assert_eq!((code, out.as_str()), (0, "started\n"), "{err}");
    let id = status_id(&err);
    assert_eq!(ok(&env, &["logs", &id]), "started\n");

    let status = ok(&env, &["daemon", "status"]);
    assert!(
        status.starts_with("agentd ") && status.contains("is running"),
        "{status}"
    );
    assert!(
        status.contains(&env.socket.display().to_string()),
        "{status}"
    );
    let info: Value = serde_json::from_str(&ok(&env, &["daemon", "status", "--json"])).unwrap();
    assert_eq!(info["protocol_version"], 1);
    assert_eq!(info["jobs"]["total"], 1);
    let pid = info["pid"].as_u64().unwrap() as u32;
    assert!(ok(&env, &["daemon", "log"]).contains("listening"));

    let (code, _, err) = agentctl(&env, &["daemon", "start"]);
    assert_eq!(code, 0);
    assert!(err.contains("already running"), "{err}");

    let (code, _, err) = agentctl(&env, &["daemon", "stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !agentd_tests::is_alive(pid),
        "stop returns once agentd has exited"
    );
    assert_eq!(agentctl(&env, &["daemon", "status"]).0, 1);

    // Explicit start works even with auto-start off.
    let (code, _, err) = agentctl(&env, &["daemon", "start"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("agentd started"), "{err}");
    assert_eq!(agentctl(&env, &["daemon", "status"]).0, 0);
    assert_eq!(agentctl(&env, &["daemon", "stop"]).0, 0);
}

#[test]
fn daemon_stop_kill_jobs_ends_running_jobs_first() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let id = submit(&env, &["--", &blocked_on(&gate)]);
    let pid = job(&env, &id)["pid"].as_u64().unwrap() as u32;
    let (code, _, err) = agentctl(&env, &["daemon", "stop", "--kill-jobs"]);
    assert_eq!(code, 0, "{err}");
    assert!(daemon.wait().success());
    assert!(
        agentd_tests::group_members(pid).is_empty(),
        "the job's group is gone"
    );
    assert_eq!(agentctl(&env, &["daemon", "status"]).0, 1);
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    for args in [
        &["run"][..],
        &["jobs", "--state", "sleeping"],
        &["wait"],
        &["wait", "--timeout", "-1", "abcd"],
        &["completions", "tcsh"],
        &["no-such-command"],
        &["run", "--env", "NOEQUALS", "--", "true"],
    ] {
        let (code, _, err) = agentctl(&env, args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // AGENTD_SOCKET (set here) does not make --socket look given or
    // required in the usage line.
    let (_, _, err) = agentctl(&env, &["wait"]);
    let usage = err.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert_eq!(usage, "Usage: agentctl wait <ID>...", "{err}");
    let (code, out, _) = agentctl(&env, &["run", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Examples:"), "{out}");
}

/// Reads one line from `reader`, panicking at the end of the stream.
fn next_line(reader: &mut impl BufRead, what: &str) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).unwrap();
    assert!(n > 0, "{what} ended its output early");
    line
}

#[test]
fn wait_and_logs_follow_carry_on_when_agentd_is_killed_and_restarted() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let first_gate = env.fifo("first");
    let gate = env.fifo("gate");
    let first = submit(&env, &["--", &blocked_on(&first_gate)]);
    let cmd = format!("echo a; {}; echo b; echo c; exit 6", blocked_on(&gate));
    let id = submit(&env, &["--", &cmd]);
    let piped = |args: &[&str]| {
        env.agentctl()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut waiter = piped(&["wait", &first, &id]);
    let mut follower = piped(&["logs", "-f", &id]);
    let mut followed = BufReader::new(follower.stdout.take().unwrap());
    // Both are connected and waiting on the job: the follower has printed
    // its first line, the waiter has reported the first job's end.
    assert_eq!(next_line(&mut followed, "logs -f"), "a\n");
    release(&first_gate);
    let mut wait_err = BufReader::new(waiter.stderr.take().unwrap());
    let line = next_line(&mut wait_err, "wait");
    assert!(line.starts_with(&format!("{first} succeeded")), "{line}");

    daemon.kill9();
    let line = next_line(&mut wait_err, "wait");
    assert!(
        line.starts_with("agentctl: ")
            && line.contains("waiting up to 30 s for agentd to come back")
            && line.contains("auto-start is off"),
        "{line}"
    );
    // The job prints the rest and ends while no agentd runs.
    release(&gate);
    let _daemon = env.start_daemon();

    let mut rest = String::new();
    followed.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "b\nc\n", "every byte once, none repeated");
    let follower = follower.wait_with_output().unwrap();
    let follow_err = String::from_utf8_lossy(&follower.stderr);
    assert!(follower.status.success(), "{follow_err}");
    assert!(follow_err.contains("waiting up to 30 s"), "{follow_err}");

    let mut wait_rest = String::new();
    wait_err.read_to_string(&mut wait_rest).unwrap();
    let status = waiter.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(6),
        "the job's true exit code: {wait_rest}"
    );
    assert!(
        wait_rest.contains(&format!("{id} failed (exit 6)")),
        "{wait_rest}"
    );
}

#[test]
fn run_wait_and_logs_follow_auto_start_agentd_again_after_it_stops() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let cmd = format!("echo a; {}; echo b; exit 6", blocked_on(&gate));
    let piped = |args: &[&str]| {
        env.agentctl()
            .env_remove("AGENTCTL_NO_AUTOSTART")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut runner = piped(&["run", "--wait", "--", &cmd]);
    let mut run_out = BufReader::new(runner.stdout.take().unwrap());
    // The job's output streams as it comes; then it waits.
    assert_eq!(next_line(&mut run_out, "run --wait"), "a\n");
    let listed: Value = serde_json::from_str(&ok(&env, &["jobs", "--json"])).unwrap();
    let id = listed[0]["short_id"].as_str().unwrap().to_string();
    let mut follower = piped(&["logs", "-f", &id]);
    let mut followed = BufReader::new(follower.stdout.take().unwrap());
    assert_eq!(next_line(&mut followed, "logs -f"), "a\n");

    // A clean stop: agentd answers "shutting down", then closes.
    let (code, _, err) = agentctl(&env, &["daemon", "stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(daemon.wait().success());
    release(&gate);

    let mut rest = String::new();
    followed.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "b\n", "every byte once, none repeated");
    let follower = follower.wait_with_output().unwrap();
    let follow_err = String::from_utf8_lossy(&follower.stderr);
    assert!(follower.status.success(), "{follow_err}");
    assert!(
        follow_err.contains("reconnecting to agentd"),
        "{follow_err}"
    );
    let mut run_rest = String::new();
    run_out.read_to_string(&mut run_rest).unwrap();
    assert_eq!(run_rest, "b\n", "run --wait too: every byte once");
    let runner = runner.wait_with_output().unwrap();
    let run_err = String::from_utf8_lossy(&runner.stderr);
    assert_eq!(runner.status.code(), Some(6), "{run_err}");
    assert!(
        run_err.contains(&format!("{id} failed (exit 6)")),
        "{run_err}"
    );
    // The daemon they started serves the job's full record.
    assert_eq!(ok(&env, &["logs", &id]), "a\nb\n");
    assert_eq!(job(&env, &id)["exit_code"], 6);
}

#[test]
fn wait_exits_1_and_says_lost_when_a_jobs_shim_is_killed() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let id = submit(&env, &["--", "echo started; exec sleep 300"]);
    let mut follower = env
        .agentctl()
        .args(["logs", "-f", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut followed = BufReader::new(follower.stdout.take().unwrap());
    assert_eq!(next_line(&mut followed, "logs -f"), "started\n");
    let pid = job(&env, &id)["pid"].as_u64().unwrap() as u32;
    let shim = parent_of(pid);
    assert_ne!(shim, pid);
    let p = rustix::process::Pid::from_raw(shim as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::KILL).unwrap();

    let (code, out, err) = agentctl(&env, &["wait", &id]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.starts_with(&format!("{id} lost")), "{err}");
    assert_eq!(job(&env, &id)["state"], "lost");
    // logs -f ends too: a lost job's output is complete.
    assert!(follower.wait().unwrap().success());
}

/// A copy of agentctl alone in a directory of its own (no agentd beside
/// it), and a command running it in `env` with auto-start on and `PATH`
/// set to `path`.
fn lone_agentctl(env: &TestEnv, path: &str) -> std::process::Command {
    let dir = env.root().join("lone");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("agentctl");
    if !copy.exists() {
        // Copied by `cp`, not std::fs::copy: a write descriptor open in this
        // process would be inherited by any child another test thread forks
        // meanwhile, and exec of the copy then fails with ETXTBSY.
        let status = std::process::Command::new("cp")
            .arg(agentd_tests::bin("agentctl"))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "cp agentctl");
    }
    let mut cmd = env.command(copy);
    cmd.env_remove("AGENTCTL_NO_AUTOSTART").env("PATH", path);
    cmd
}

#[test]
fn auto_start_finds_agentd_on_path_when_it_is_not_next_to_agentctl() {
    let env = TestEnv::new();
    let agentd = agentd_tests::bin("agentd");
    let path = format!("{}:/usr/bin:/bin", agentd.parent().unwrap().display());
    let (code, out, err) = run(lone_agentctl(&env, &path).args(["run", "--wait", "--", "echo hi"]));
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    assert_eq!(ok(&env, &["logs", &status_id(&err)]), "hi\n");
    let info: Value = serde_json::from_str(&ok(&env, &["daemon", "status", "--json"])).unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", info["pid"])).unwrap();
    assert_eq!(
        exe,
        agentd.canonicalize().unwrap(),
        "the agentd found on PATH"
    );
    assert_eq!(agentctl(&env, &["daemon", "stop"]).0, 0);
}

#[test]
fn auto_start_without_any_agentd_says_where_it_looked_in_one_line() {
    let env = TestEnv::new();
    let empty = env.root().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let (code, out, err) = run(lone_agentctl(&env, &empty.display().to_string()).args(["jobs"]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err.lines().count(), 1, "{err}");
    let beside = env.root().join("lone/agentd");
    assert!(
        err.starts_with("agentctl: cannot start agentd: no agentd next to agentctl")
            && err.contains(&format!("({})", beside.display()))
            && err.contains("nor on PATH")
            && err.contains("install agentd"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn auto_start_of_an_agentd_that_exits_at_once_names_its_log() {
    let env = TestEnv::new();
    let fake = env.root().join("fake-bin");
    std::fs::create_dir(&fake).unwrap();
    let script = fake.join("agentd");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'fake agentd: cannot open the store' >&2\nexit 3\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", fake.display());
    let (code, out, err) = run(lone_agentctl(&env, &path).args(["jobs"]));
    assert_eq!((code, out.as_str()), (1, ""));
    let log = env.state_dir.join("agentd.log");
    assert!(
        err.starts_with(&format!(
            "agentctl: {} exited (exit status: 3) before it was ready; see its log {}",
            script.display(),
            log.display()
        )),
        "{err}"
    );
    assert!(err.contains("fake agentd: cannot open the store"), "{err}");
}

/// `text` without ANSI SGR sequences (`ESC [ … m`).
fn strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        rest = tail.find('m').map_or("", |m| &tail[m + 1..]);
    }
    out.push_str(rest);
    out
}

/// `agentctl ARGS` on a pseudo-terminal `cols` columns wide (util-linux
/// `script`), `NO_COLOR` as given; what it wrote there, lines ending in
/// `\n`. `None` when `script` is not installed.
fn on_terminal(env: &TestEnv, cols: u16, args: &str, no_color: Option<&str>) -> Option<String> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: util-linux `script` (for a pseudo-terminal) is not installed");
        return None;
    }
    // `exec`, so that no shell stays in the terminal's foreground group.
    let inner = format!(
        "stty cols {cols} rows 20; exec {} {args}",
        agentd_tests::bin("agentctl").display()
    );
    let mut cmd = env.command("script");
    cmd.args(["-qfec", &inner, "/dev/null"])
        .env("TERM", "xterm");
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "agentctl {args} on a terminal: {out}{err}");
    Some(out.replace("\r\n", "\n"))
}

#[test]
fn state_colours_only_on_a_terminal_without_no_color_and_command_cut_to_its_width() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let failed = submit_wait(&env, &["--", "exit 3"], 3);
    let gate = env.fifo("gate");
    let long = format!(
        "{}; echo a command far too long to fit on one line of a terminal sixty columns wide",
        blocked_on(&gate)
    );
    let live = submit(&env, &["--", &long]);

    // Piped, even without NO_COLOR: no colour, nothing cut.
    let (code, out, err) = run(env
        .agentctl()
        .env_remove("NO_COLOR")
        .args(["jobs", "--all"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.contains(&long), "{out}");
    let (_, _, err) = run(env
        .agentctl()
        .env_remove("NO_COLOR")
        .args(["wait", &failed]));
    assert!(
        err.contains("failed (exit 3)") && !err.contains('\x1b'),
        "{err:?}"
    );

    // On a terminal: states coloured, every line within its 60 columns.
    let Some(tty) = on_terminal(&env, 60, "jobs --all", None) else {
        return release(&gate);
    };
    assert!(tty.contains("\x1b[36mrunning\x1b[0m"), "{tty:?}");
    assert!(tty.contains("\x1b[31mfailed\x1b[0m"), "{tty:?}");
    let plain = strip_sgr(&tty);
    for line in plain.lines() {
        assert!(line.chars().count() <= 60, "{line:?} is wider than 60");
    }
    let row = plain.lines().find(|l| l.starts_with(&live)).unwrap();
    assert_eq!(row.chars().count(), 60, "COMMAND fills the width: {row:?}");
    assert!(row.ends_with('…'), "{row:?}");
    assert!(row.contains(&blocked_on(&gate)[..5]), "{row:?}");

    // NO_COLOR on a terminal: none.
    let tty = on_terminal(&env, 60, "jobs --all", Some("1")).unwrap();
    assert!(!tty.contains('\x1b'), "{tty:?}");
    assert!(tty.contains(&live) && tty.contains("running"), "{tty}");
    release(&gate);
}

#[test]
fn on_a_narrow_terminal_jobs_leaves_out_columns_rather_than_wrapping() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let live = submit(&env, &["--", &blocked_on(&gate)]);
    let Some(tty) = on_terminal(&env, 40, "jobs", Some("1")) else {
        return release(&gate);
    };
    let mut lines = tty.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "STATE", "EXIT", "COMMAND"], "{tty}");
    let row = lines.next().unwrap();
    assert_eq!(row.chars().count(), 40, "{row:?}");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        [live.as_str(), "running", "-", "read"],
        "{row:?}"
    );
    assert!(row.ends_with('…'), "{row:?}");
    // At 80 columns every column is there.
    let tty = on_terminal(&env, 80, "jobs", Some("1")).unwrap();
    let header: Vec<&str> = tty.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header.len(), 7, "{tty}");
    for line in tty.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    release(&gate);
}
