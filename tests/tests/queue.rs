//! Queue control end to end (DESIGN.md, "Queue control"): dependencies
//! (`after`), groups with their own `max_running`, pause/resume (also
//! across `kill -9` of agentd) and `agentctl restart`. Jobs block on FIFOs
//! the test opens, so every ordering is decided by the test, never by
//! timing.

use agentd_proto::methods::*;
use agentd_proto::{Client, Job, JobState, codes};
use agentd_tests::rpc::{get, output, wait};
use agentd_tests::{TestEnv, group_members, parent_of, run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A FIFO in the test's temp dir for a job to block on.
fn fifo(env: &TestEnv, name: &str) -> PathBuf {
    let path = env.root().join(name);
    rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::RWXU).unwrap();
    path
}

/// Unblocks a job doing `read x < FIFO` (the open waits for its reader).
fn release(fifo: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
}

async fn submit(c: &Client, command: &str, after: &[&Job], group: Option<&str>) -> Job {
    c.call::<JobSubmit>(&SubmitParams {
        command: command.into(),
        after: (!after.is_empty()).then(|| after.iter().map(|j| j.id.clone()).collect()),
        group: group.map(str::to_string),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("job.submit of {command:?}: {e}"))
}

async fn pending(c: &Client) -> Vec<agentd_proto::Notification> {
    c.call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications
}

#[tokio::test]
async fn a_chain_runs_in_order_once_each_dependency_succeeded() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let gate = fifo(&env, "gate");
    let order = env.root().join("order");
    let o = order.display();
    let a = submit(
        &c,
        &format!("read x < {}; echo a >> {o}", gate.display()),
        &[],
        None,
    )
    .await;
    let b = submit(&c, &format!("echo b >> {o}"), &[&a], None).await;
    let cc = submit(&c, &format!("echo c >> {o}"), &[&b], None).await;
    assert_eq!(b.state, JobState::Queued);
    assert_eq!(b.after, vec![a.id.clone()]);
    // Neither starts while `a` runs, whatever the free slots.
    assert_eq!(get(&c, &b.id).await.state, JobState::Queued);
    assert_eq!(get(&c, &cc.id).await.state, JobState::Queued);
    release(&gate);
    let done = wait(&c, &cc.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "a\nb\nc\n");
    for (before, after) in [(&a, &b), (&b, &cc)] {
        let (before, after) = (get(&c, &before.id).await, get(&c, &after.id).await);
        assert!(
            before.finished_at.unwrap() <= after.started_at.unwrap(),
            "a dependent started before its dependency ended"
        );
    }
    // A dependency that already succeeded is no reason to wait.
    let d = submit(&c, "true", &[&a], None).await;
    assert_eq!(wait(&c, &d.id).await.state, JobState::Succeeded);
}

#[tokio::test]
async fn a_failed_dependency_fails_the_chain_with_reasons_and_one_notification_each() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let gate = fifo(&env, "gate");
    let a = submit(
        &c,
        &format!("read x < {}; exit 3", gate.display()),
        &[],
        None,
    )
    .await;
    let b = submit(&c, "echo b-ran", &[&a], None).await;
    let cc = submit(&c, "echo c-ran", &[&b], None).await;
    release(&gate);
    let cc = wait(&c, &cc.id).await;
    let b = get(&c, &b.id).await;
    assert_eq!(wait(&c, &a.id).await.state, JobState::Failed);
    assert_eq!(b.state, JobState::Failed);
    assert_eq!(
        b.reason.as_deref(),
        Some(format!("dependency {} failed", a.short_id).as_str())
    );
    assert_eq!(cc.state, JobState::Failed);
    assert_eq!(
        cc.reason.as_deref(),
        Some(format!("dependency {} failed", b.short_id).as_str())
    );
    for j in [&b, &cc] {
        assert_eq!((j.started_at.as_deref(), j.pid), (None, None), "{j:?} ran");
    }
    let notes = pending(&c).await;
    for j in [&a, &b, &cc] {
        let mine: Vec<_> = notes.iter().filter(|n| n.job_id == j.id).collect();
        assert_eq!(mine.len(), 1, "notifications of {}: {notes:?}", j.short_id);
        assert_eq!(mine[0].state, JobState::Failed);
    }
    assert_eq!(notes.len(), 3, "{notes:?}");
    // A dependency that failed already decides at once.
    let d = submit(&c, "echo d-ran", &[&a], None).await;
    let d = wait(&c, &d.id).await;
    assert_eq!(d.state, JobState::Failed);
    assert_eq!(
        d.reason.as_deref(),
        Some(format!("dependency {} failed", a.short_id).as_str())
    );
    // An unknown dependency is refused at submit, naming the id.
    let err = c
        .call::<JobSubmit>(&SubmitParams {
            command: "true".into(),
            after: Some(vec!["ffffffff".into()]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let agentd_proto::ClientError::Rpc(e) = err else {
        panic!("{err}")
    };
    assert_eq!(e.code, codes::JOB_NOT_FOUND);
    // In words on the command line, and nothing is submitted.
    let (code, _, stderr) = run(env
        .agentctl()
        .args(["run", "--after", "ffffffff", "--", "true"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("--after ffffffff: no such job"), "{stderr}");
}

#[tokio::test]
async fn a_group_limit_keeps_its_jobs_apart_while_other_groups_run() {
    let env = TestEnv::new();
    env.write_agentd_config("[groups.gpu]\nmax_running = 1\n");
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let gate = fifo(&env, "gate");
    let side = fifo(&env, "side");
    let stamp = |name: &str| format!("date +%s%N > {}", env.root().join(name).display());
    let g1 = submit(
        &c,
        &format!(
            "{}; read x < {}; {}",
            stamp("g1.start"),
            gate.display(),
            stamp("g1.end")
        ),
        &[],
        Some("gpu"),
    )
    .await;
    let g2 = submit(
        &c,
        &format!("{}; {}", stamp("g2.start"), stamp("g2.end")),
        &[],
        Some("gpu"),
    )
    .await;
    assert_eq!(g1.state, JobState::Running);
    assert_eq!(g2.state, JobState::Queued, "the gpu group is full");
    // The default group is not held up by it.
    let d = submit(
        &c,
        &format!("{}; read x < {}", stamp("d.start"), side.display()),
        &[],
        None,
    )
    .await;
    assert_eq!(d.state, JobState::Running);
    let groups = c.call::<JobGroupList>(&Empty {}).await.unwrap().groups;
    let gpu = groups.iter().find(|g| g.name == "gpu").unwrap();
    assert_eq!((gpu.max_running, gpu.running, gpu.queued), (Some(1), 1, 1));
    // `jobs` shows GROUP when more than one group is listed; --group filters.
    let (_, all, _) = run(env.agentctl().args(["jobs"]));
    assert!(all.lines().next().unwrap().contains("GROUP"), "{all}");
    let (_, gpu_only, _) = run(env.agentctl().args(["jobs", "--group", "gpu"]));
    assert!(
        !gpu_only.lines().next().unwrap().contains("GROUP"),
        "{gpu_only}"
    );
    assert!(gpu_only.contains(&g1.short_id) && gpu_only.contains(&g2.short_id));
    assert!(!gpu_only.contains(&d.short_id), "{gpu_only}");
    release(&gate);
    assert_eq!(wait(&c, &g2.id).await.state, JobState::Succeeded);
    assert_eq!(get(&c, &d.id).await.state, JobState::Running);
    let read = |name: &str| -> u128 {
        std::fs::read_to_string(env.root().join(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        read("g1.end") <= read("g2.start"),
        "the two gpu jobs overlapped"
    );
    assert!(
        read("d.start") <= read("g1.end"),
        "the default job waited for the gpu job"
    );
    release(&side);
    assert_eq!(wait(&c, &d.id).await.state, JobState::Succeeded);

    // `group set` changes the limit, and it is kept across restarts.
    let (code, out, err) = run(env
        .agentctl()
        .args(["group", "set", "gpu", "--parallel", "2"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gpu: at most 2 at once"), "{out}");
    drop(c);
    daemon.kill9();
    let _daemon = env.start_daemon();
    let (code, out, _) = run(env.agentctl().args(["group", "list"]));
    assert_eq!(code, 0);
    let line = out.lines().find(|l| l.starts_with("gpu ")).unwrap();
    assert_eq!(line.split_whitespace().nth(1), Some("2"), "{out}");
}

/// Waits until every process of group `pgid` is stopped (`T` in
/// `/proc/PID/stat`, or `D` for a shell waiting on a stopped vfork child)
/// or, with `stopped` false, none is: the kernel's report of the
/// signal's effect.
async fn until_group(pgid: u32, stopped: bool) {
    let state = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let members = group_members(pgid);
        assert!(!members.is_empty(), "the job's processes are gone");
        let states: Vec<Option<String>> = members.iter().map(|&p| state(p)).collect();
        let is = |s: &Option<String>, want: &str| s.as_deref() == Some(want);
        // A shell stopped between vfork and its child's exec stays in `D`
        // (waiting for the stopped child): stopped all the same.
        let done = if stopped {
            members.iter().zip(&states).all(|(&p, s)| {
                is(s, "T")
                    || (is(s, "D")
                        && members
                            .iter()
                            .zip(&states)
                            .any(|(&q, t)| is(t, "T") && parent_of(q) == p))
            })
        } else {
            !states.iter().any(|s| is(s, "T"))
        };
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group {pgid} not {} after 30 s: {:?}",
            if stopped { "stopped" } else { "continued" },
            members
                .iter()
                .map(|&p| (
                    p,
                    state(p),
                    std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Output bytes of the job so far, waiting (long-poll) for more than
/// `after` when `grow`.
async fn output_size(c: &Client, id: &str, after: u64, grow: bool) -> u64 {
    c.call::<JobOutput>(&OutputParams {
        id: id.into(),
        offset: Some(after),
        limit: None,
        tail: None,
        wait_ms: grow.then_some(30_000),
    })
    .await
    .unwrap()
    .total_bytes
}

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done";

#[tokio::test]
async fn a_paused_job_stops_counting_and_goes_on_when_resumed() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, COUNTER, &[], None).await;
    let pid = job.pid.unwrap();
    output_size(&c, &job.id, 0, true).await;
    let (code, out, err) = run(env.agentctl().args(["pause", &job.short_id]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{} paused", job.short_id));
    until_group(pid, true).await;
    let paused = get(&c, &job.id).await;
    assert_eq!(paused.state, JobState::Paused);
    let (code, status, err) = run(env.agentctl().args(["daemon", "status"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        status.contains("jobs:       0 running, 1 paused, 0 queued, 1 in all"),
        "{status}"
    );
    let at_pause = output_size(&c, &job.id, 0, false).await;
    // A stopped counter writes nothing; give it ample time to (10 ticks).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(output_size(&c, &job.id, 0, false).await, at_pause);
    let (code, out, _) = run(env.agentctl().args(["resume", &job.short_id]));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("{} running", job.short_id));
    until_group(pid, false).await;
    assert!(output_size(&c, &job.id, at_pause, true).await > at_pause);
    // A paused job can still be killed.
    c.call::<JobPause>(&IdParams { id: job.id.clone() })
        .await
        .unwrap();
    until_group(pid, true).await;
    let killed = c
        .call::<JobKill>(&KillParams {
            id: job.id.clone(),
            signal: None,
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Killed);
}

#[tokio::test]
async fn a_paused_job_stays_paused_across_kill_9_of_agentd_and_resumes() {
    let env = TestEnv::new();
    env.write_agentd_config("[groups.one]\nmax_running = 1\n");
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, COUNTER, &[], Some("one")).await;
    let pid = job.pid.unwrap();
    output_size(&c, &job.id, 0, true).await;
    // A second job of the group waits for the slot; pausing it holds it.
    let held = submit(&c, "echo held-ran", &[], Some("one")).await;
    assert_eq!(held.state, JobState::Queued);
    let held = c
        .call::<JobPause>(&IdParams {
            id: held.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(held.state, JobState::Paused);
    let paused = c
        .call::<JobPause>(&IdParams { id: job.id.clone() })
        .await
        .unwrap();
    assert_eq!(paused.state, JobState::Paused);
    until_group(pid, true).await;
    drop(c);
    daemon.kill9();

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    assert_eq!(get(&c, &job.id).await.state, JobState::Paused);
    let h = get(&c, &held.id).await;
    assert_eq!((h.state, h.started_at.as_deref()), (JobState::Paused, None));
    until_group(pid, true).await;
    let at_pause = output_size(&c, &job.id, 0, false).await;
    let resumed = c
        .call::<JobResume>(&IdParams { id: job.id.clone() })
        .await
        .unwrap();
    assert_eq!(resumed.state, JobState::Running);
    assert!(output_size(&c, &job.id, at_pause, true).await > at_pause);
    // Released, the held job waits for the group's slot, then runs.
    let h = c
        .call::<JobResume>(&IdParams {
            id: held.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(h.state, JobState::Queued);
    c.call::<JobKill>(&KillParams {
        id: job.id.clone(),
        signal: Some("KILL".into()),
        grace_secs: None,
    })
    .await
    .unwrap();
    let h = wait(&c, &held.id).await;
    assert_eq!(h.state, JobState::Succeeded, "{h:?}");
}

#[tokio::test]
async fn restart_runs_the_same_command_in_the_same_place_with_the_callers_environment() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let dir = env.root().join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    let (code, id, err) = run(env
        .agentctl()
        .env("QUEUE_TEST_VAR", "first")
        .args(["run", "--cwd"])
        .arg(&dir)
        .args([
            "--label",
            "again",
            "--group",
            "builds",
            "--",
            "pwd; echo $QUEUE_TEST_VAR",
        ]));
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    let (code, out, _) = run(env.agentctl().args(["wait", &id]));
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = run(env
        .agentctl()
        .env("QUEUE_TEST_VAR", "second")
        .args(["restart", "--wait", &id]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}\nsecond\n", dir.display()));
    let (code, new_id, _) = run(env.agentctl().args(["restart", &id]));
    assert_eq!(code, 0);
    let new_id = new_id.trim();
    assert_ne!(new_id, id);
    let c = _daemon.client().await;
    let (old, new) = (get(&c, &id).await, wait(&c, new_id).await);
    assert_eq!(new.command, old.command);
    assert_eq!(new.cwd, dir.display().to_string());
    assert_eq!(
        (&new.session, &new.group, &new.label),
        (&old.session, &old.group, &old.label)
    );
    assert_eq!(new.group, "builds");
}

#[tokio::test]
async fn dependencies_that_end_while_agentd_is_down_decide_their_chains_at_restart() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let (gate_ok, gate_bad) = (fifo(&env, "ok"), fifo(&env, "bad"));
    let ok = submit(&c, &format!("read x < {}", gate_ok.display()), &[], None).await;
    let bad = submit(
        &c,
        &format!("read x < {}; exit 3", gate_bad.display()),
        &[],
        None,
    )
    .await;
    let after_ok = submit(&c, "echo after-ok-ran", &[&ok], None).await;
    let after_bad = submit(&c, "echo after-bad-ran", &[&bad], None).await;
    for j in [&after_ok, &after_bad] {
        assert_eq!(j.state, JobState::Queued, "{j:?}");
    }
    drop(c);
    daemon.kill9();
    // Both dependencies end while no agentd runs; their shims record it.
    release(&gate_ok);
    release(&gate_bad);
    agentd_tests::wait_gone(ok.pid.unwrap()).await;
    agentd_tests::wait_gone(bad.pid.unwrap()).await;

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let after_ok = wait(&c, &after_ok.id).await;
    assert_eq!(after_ok.state, JobState::Succeeded, "{after_ok:?}");
    assert_eq!(output(&c, &after_ok.id).await, "after-ok-ran\n");
    let after_bad = wait(&c, &after_bad.id).await;
    assert_eq!(after_bad.state, JobState::Failed);
    assert_eq!(
        after_bad.reason.as_deref(),
        Some(format!("dependency {} failed", bad.short_id).as_str())
    );
    assert_eq!(after_bad.started_at, None, "{after_bad:?} ran");
    let ok = get(&c, &ok.id).await;
    let bad = get(&c, &bad.id).await;
    assert_eq!((ok.state, ok.exit_code), (JobState::Succeeded, Some(0)));
    assert_eq!((bad.state, bad.exit_code), (JobState::Failed, Some(3)));
    // Each of the four ends is told once.
    let notes = pending(&c).await;
    for j in [&ok, &bad, &after_ok, &after_bad] {
        let mine = notes.iter().filter(|n| n.job_id == j.id).count();
        assert_eq!(mine, 1, "notifications of {}: {notes:?}", j.short_id);
    }
    assert_eq!(notes.len(), 4, "{notes:?}");
}
