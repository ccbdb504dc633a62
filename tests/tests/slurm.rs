//! The Slurm executor against a real single-node Slurm (docs/slurm.md):
//! each test starts its own cluster with `tests/slurm/cluster.sh` and an
//! agentd pointed at it by `SLURM_CONF`. Where Slurm cannot be installed
//! each test says `skipped: WHY`; `.ci/run` sets `AGENTD_REQUIRE_SLURM=1`,
//! which turns a missing Slurm into a failure.

use agentd_proto::methods::*;
use agentd_proto::{Client, Executor, Job, JobState, Notification, codes};
use agentd_tests::rpc::{get, wait};
use agentd_tests::slurm::Cluster;
use agentd_tests::{Daemon, TestEnv, run};
use std::collections::BTreeMap;
use std::path::Path;

/// Starts agentd in `env` talking to `cluster`.
fn start(env: &TestEnv, cluster: &Cluster) -> Daemon {
    env.write_agentd_config("[slurm]\npoll_interval_ms = 200\n");
    env.start_daemon_with(|cmd| {
        cmd.env("SLURM_CONF", &cluster.conf);
    })
}

/// `job.submit` of `command` to Slurm in the test's workdir.
async fn submit(c: &Client, env: &TestEnv, command: &str) -> Job {
    submit_with(c, env, command, |_| {}).await
}

async fn submit_with(
    c: &Client,
    env: &TestEnv,
    command: &str,
    adjust: impl FnOnce(&mut SubmitParams),
) -> Job {
    let mut p = SubmitParams {
        command: command.into(),
        cwd: Some(env.workdir().display().to_string()),
        executor: Some(Executor::Slurm),
        ..Default::default()
    };
    adjust(&mut p);
    let job = c
        .call::<JobSubmit>(&p)
        .await
        .unwrap_or_else(|e| panic!("job.submit of {command:?}: {e}"));
    assert_eq!(job.executor, Executor::Slurm);
    assert!(job.external_id.is_some(), "no Slurm job id: {job:?}");
    job
}

/// The job's output, as it stands.
async fn output(c: &Client, id: &str) -> String {
    agentd_tests::rpc::output(c, id).await
}

/// Waits (long-polling `job.output`) until the job's output holds `needle`.
async fn output_holds(c: &Client, id: &str, needle: &str) {
    let mut text = String::new();
    let mut offset = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !text.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in the output within 60 s: {text:?}"
        );
        let out = c
            .call::<JobOutput>(&OutputParams {
                id: id.into(),
                offset: Some(offset),
                limit: None,
                tail: None,
                wait_ms: Some(5000),
            })
            .await
            .unwrap();
        text.push_str(&out.data);
        offset = out.next_offset;
        assert!(
            !out.complete || text.contains(needle),
            "the job ended without {needle:?}: {text:?}"
        );
    }
}

/// The pending notifications of the default session for job `id`.
async fn notifications_of(c: &Client, id: &str) -> Vec<Notification> {
    c.call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications
        .into_iter()
        .filter(|n| n.job_id == id)
        .collect()
}

#[tokio::test]
async fn slurm_jobs_end_with_their_exit_codes_and_one_notification_each() {
    let Some(cluster) = Cluster::start("slurm_jobs_end_with_their_exit_codes") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let ok = submit(&c, &env, "echo hello from slurm; pwd").await;
    let three = submit(&c, &env, "echo failing; exit 3").await;
    assert_ne!(ok.external_id, three.external_id);
    let ok = wait(&c, &ok.id).await;
    assert_eq!((ok.state, ok.exit_code), (JobState::Succeeded, Some(0)));
    let out = output(&c, &ok.id).await;
    assert!(out.contains("hello from slurm"), "{out:?}");
    assert!(
        out.contains(&env.workdir().display().to_string()),
        "{out:?}"
    );
    let three = wait(&c, &three.id).await;
    assert_eq!((three.state, three.exit_code), (JobState::Failed, Some(3)));
    assert!(three.finished_at.is_some() && three.duration_ms.is_some());
    for job in [&ok, &three] {
        let ns = notifications_of(&c, &job.id).await;
        assert_eq!(ns.len(), 1, "{ns:?}");
        assert_eq!(ns[0].state, job.state);
        assert_eq!(ns[0].exit_code, job.exit_code);
    }
    assert!(
        notifications_of(&c, &three.id).await[0]
            .output_tail
            .contains("failing")
    );
    // `agentctl wait` exits with the job's code; `show` names the executor.
    let (code, _, _) = run(env.agentctl().args(["wait", &three.short_id]));
    assert_eq!(code, 3);
    let (_, shown, _) = run(env.agentctl().args(["show", &three.short_id]));
    let slurm_id = three.external_id.clone().unwrap();
    assert!(
        shown.contains("slurm") && shown.contains(&slurm_id),
        "{shown}"
    );
}

#[tokio::test]
async fn killing_a_slurm_job_ends_it_and_its_children() {
    let Some(cluster) = Cluster::start("killing_a_slurm_job") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let job = submit(
        &c,
        &env,
        "sleep 300 & echo child $!; sh -c 'sleep 301 & echo grandchild $!; wait'",
    )
    .await;
    output_holds(&c, &job.id, "grandchild").await;
    let text = output(&c, &job.id).await;
    let pids: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{text:?}");
    let killed = c
        .call::<JobKill>(&KillParams {
            id: job.id.clone(),
            signal: None,
            grace_secs: Some(2.0),
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Killed, "{killed:?}");
    for pid in pids {
        agentd_tests::wait_gone(pid).await;
    }
    assert_eq!(notifications_of(&c, &job.id).await.len(), 1);
}

#[tokio::test]
async fn a_slurm_time_limit_ends_the_job_timed_out() {
    let Some(cluster) = Cluster::start("a_slurm_time_limit") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    // 10 s is rounded up to Slurm's one minute: TIMEOUT after 61-72 s.
    let job = submit_with(&c, &env, "echo started; sleep 600", |p| {
        p.timeout_secs = Some(10.0)
    })
    .await;
    let end = c
        .call::<JobWait>(&WaitParams {
            id: job.id.clone(),
            timeout_secs: Some(150.0),
        })
        .await
        .unwrap();
    assert_eq!(end.state, JobState::TimedOut, "{end:?}");
    assert!(end.reason.as_deref().unwrap_or("").contains("time limit"));
    assert_eq!(notifications_of(&c, &job.id).await.len(), 1);
}

#[tokio::test]
async fn a_missing_cwd_is_refused_at_submit() {
    let Some(cluster) = Cluster::start("a_missing_cwd_is_refused") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let err = c
        .call::<JobSubmit>(&SubmitParams {
            command: "pwd".into(),
            cwd: Some(env.root().join("no/such/dir").display().to_string()),
            executor: Some(Executor::Slurm),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::CANNOT_SPAWN), "{err}");
    let jobs = c
        .call::<JobList>(&ListParams::default())
        .await
        .unwrap()
        .jobs;
    assert!(jobs.is_empty(), "{jobs:?}");
}

#[tokio::test]
async fn a_missing_sbatch_is_a_clear_error_at_submit() {
    // Needs no cluster: the commands are looked for where the config says.
    let env = TestEnv::new();
    let empty = env.root().join("no-slurm-here");
    std::fs::create_dir_all(&empty).unwrap();
    env.write_agentd_config(&format!(
        "[slurm]\nbin_dir = {:?}\n",
        empty.display().to_string()
    ));
    let d = env.start_daemon();
    let c = d.client().await;
    let err = c
        .call::<JobSubmit>(&SubmitParams {
            command: "true".into(),
            executor: Some(Executor::Slurm),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::CANNOT_SPAWN), "{err}");
    assert!(err.to_string().contains("sbatch"), "{err}");
}

#[tokio::test]
async fn environment_values_with_commas_reach_the_job_and_stay_nowhere() {
    let Some(cluster) = Cluster::start("environment_values_with_commas") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let secret = format!("sekrit-{}-{}", std::process::id(), "x,y");
    let vars = BTreeMap::from([
        ("LIST".to_string(), "a,b,c".to_string()),
        (
            "QUOTED".to_string(),
            "it's \"quoted\" $HOME `x`".to_string(),
        ),
        ("TOKEN".to_string(), secret.clone()),
    ]);
    let job = submit_with(
        &c,
        &env,
        "printf '%s|%s|%s\\n' \"$LIST\" \"$QUOTED\" \"$(printf %s \"$TOKEN\" | tr a-z A-Z)\"",
        |p| p.env = Some(vars),
    )
    .await;
    let job = wait(&c, &job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let out = output(&c, &job.id).await;
    assert_eq!(
        out,
        format!(
            "a,b,c|it's \"quoted\" $HOME `x`|{}\n",
            secret.to_uppercase()
        )
    );
    // No copy of the secret at rest: not in agentd's state dir, not in
    // Slurm's (which keeps job scripts and environments).
    for dir in [env.state_dir.as_path(), cluster.dir()] {
        let found = files_holding(dir, &secret);
        assert!(found.is_empty(), "{secret} found in {found:?}");
    }
}

/// Files under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(t)
                    if t.is_file()
                        && std::fs::read(&p).is_ok_and(|b| {
                            b.windows(needle.len()).any(|w| w == needle.as_bytes())
                        }) =>
                {
                    out.push(p)
                }
                _ => {}
            }
        }
    }
    out
}

#[tokio::test]
async fn a_slurm_job_survives_agentd_kill_9_and_ends_with_its_true_state() {
    let Some(cluster) = Cluster::start("a_slurm_job_survives_agentd_kill_9") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let go = env.workdir().join("go");
    let job = submit(
        &c,
        &env,
        "echo waiting; while [ ! -e go ]; do sleep 0.1; done; echo released; exit 4",
    )
    .await;
    output_holds(&c, &job.id, "waiting").await;
    drop(c);
    d.kill9();
    // The job goes on in Slurm without agentd, and ends.
    std::fs::write(&go, "").unwrap();
    let slurm_id = job.external_id.clone().unwrap();
    let squeue_done = || {
        let (_, out, _) = run(std::process::Command::new("scontrol")
            .args(["show", "job", "-o", &slurm_id])
            .env("SLURM_CONF", &cluster.conf));
        out.contains("JobState=FAILED")
    };
    // Waiting on Slurm, which has no event to wait on: bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !squeue_done() {
        assert!(
            std::time::Instant::now() < deadline,
            "Slurm did not end the job"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d = start(&env, &cluster);
    let c = d.client().await;
    let end = wait(&c, &job.id).await;
    assert_eq!(
        (end.state, end.exit_code),
        (JobState::Failed, Some(4)),
        "{end:?}"
    );
    assert_eq!(end.external_id.as_deref(), Some(slurm_id.as_str()));
    assert!(output(&c, &job.id).await.contains("released"));
    assert_eq!(notifications_of(&c, &job.id).await.len(), 1);
    // And once more: a restart after the end adds no second notification.
    drop(c);
    d.kill9();
    let d = start(&env, &cluster);
    let c = d.client().await;
    assert_eq!(get(&c, &job.id).await.state, JobState::Failed);
    assert_eq!(notifications_of(&c, &job.id).await.len(), 1);
}

#[tokio::test]
async fn a_slurm_job_running_through_a_restart_is_followed_to_its_end() {
    let Some(cluster) = Cluster::start("a_slurm_job_running_through_a_restart") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let job = submit(
        &c,
        &env,
        "echo waiting; while [ ! -e go ]; do sleep 0.1; done; echo released",
    )
    .await;
    output_holds(&c, &job.id, "waiting").await;
    drop(c);
    d.kill9();
    let d = start(&env, &cluster);
    let c = d.client().await;
    assert_eq!(get(&c, &job.id).await.state, JobState::Running);
    std::fs::write(env.workdir().join("go"), "").unwrap();
    let end = wait(&c, &job.id).await;
    assert_eq!(end.state, JobState::Succeeded, "{end:?}");
    assert_eq!(notifications_of(&c, &job.id).await.len(), 1);
}

#[tokio::test]
async fn logs_follow_a_slurm_job_to_its_end() {
    let Some(cluster) = Cluster::start("logs_follow_a_slurm_job") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    let job = submit(&c, &env, "for i in 1 2 3; do echo line$i; sleep 0.5; done").await;
    let (code, out, err) = run(env.agentctl().args(["logs", "-f", &job.short_id]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "line1\nline2\nline3\n");
    assert_eq!(get(&c, &job.id).await.state, JobState::Succeeded);
}

#[tokio::test]
async fn two_slurm_jobs_run_at_once() {
    let Some(cluster) = Cluster::start("two_slurm_jobs_run_at_once") else {
        return;
    };
    let env = TestEnv::new();
    let d = start(&env, &cluster);
    let c = d.client().await;
    // Each waits for the other's mark: both succeed only side by side (a
    // one-minute time limit ends them otherwise).
    let a = submit_with(
        &c,
        &env,
        "touch a; while [ ! -e b ]; do sleep 0.1; done",
        |p| p.timeout_secs = Some(60.0),
    )
    .await;
    let b = submit_with(
        &c,
        &env,
        "touch b; while [ ! -e a ]; do sleep 0.1; done",
        |p| p.timeout_secs = Some(60.0),
    )
    .await;
    for id in [&a.id, &b.id] {
        let end = c
            .call::<JobWait>(&WaitParams {
                id: id.clone(),
                timeout_secs: Some(120.0),
            })
            .await
            .unwrap();
        assert_eq!(end.state, JobState::Succeeded, "{end:?}");
    }
}

#[test]
fn the_agents_background_run_goes_to_slurm_when_its_config_says() {
    use agentd_tests::agent_world::{World, tool_results};
    use agentd_tests::fake_llm::Reply;
    use serde_json::json;
    let Some(cluster) = Cluster::start("the_agents_background_run_goes_to_slurm") else {
        return;
    };
    let w = World::with_daemon(
        vec![
            Reply::tool("background_run", json!({"command": "echo from-slurm"})),
            Reply::text("Started."),
        ],
        |cmd| {
            cmd.env("SLURM_CONF", &cluster.conf);
        },
    );
    let dir = w.env.root().join("config/agentctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[background]\nexecutor = \"slurm\"\n[background.slurm]\ncpus = 1\n",
    )
    .unwrap();
    let (code, _, err) = w.ask("s1", "start it");
    assert_eq!(code, 0, "{err}");
    let jobs = w.jobs("s1");
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.executor, Executor::Slurm);
    assert!(
        job.external_id.is_some() && job.sandbox.is_none(),
        "{job:?}"
    );
    let short = job.short_id.clone();
    // The model sees what it sees for a local job.
    assert_eq!(
        tool_results(&w.llm.requests()[1]),
        vec![(
            format!("Background task {short} started: echo from-slurm"),
            false
        )]
    );
    assert_eq!(w.wait_job(&job.id).state, JobState::Succeeded);
    w.llm.push(vec![Reply::text("Done.")]);
    let (code, _, err) = w.ask("s1", "news?");
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    assert!(
        reqs[2]["messages"].to_string().contains(&format!(
            "[bg:{short}] succeeded (exit 0): echo from-slurm\\nfrom-slurm\\n"
        )),
        "{}",
        reqs[2]["messages"]
    );
}

/// A Slurm environment file left by an agentd that stopped before removing
/// it (its job finished, or unknown) is deleted at the next start; `rm`
/// deletes a finished job's file with its output. Needs no Slurm: the
/// files are written by hand.
#[tokio::test]
async fn stray_slurm_environment_files_are_deleted_at_start_and_by_rm() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let done = agentd_tests::rpc::run_in(&c, "default", "true").await;
    assert_eq!(done.state, JobState::Succeeded);
    drop(c);
    d.terminate();
    assert!(d.wait().success());
    let jobs = env.state_dir.join("jobs");
    let of_done = jobs.join(format!("{}.slurm-env", done.id));
    let unknown = jobs.join("00000000000000000000000000.slurm-env");
    for f in [&of_done, &unknown] {
        std::fs::write(f, "export SECRET='x'\n").unwrap();
    }
    let d = env.start_daemon();
    let c = d.client().await;
    // The sweep runs before queued jobs start; a job's answer follows it.
    let _ = agentd_tests::rpc::run_in(&c, "default", "true").await;
    assert!(
        !of_done.exists(),
        "{} survived the start",
        of_done.display()
    );
    assert!(
        !unknown.exists(),
        "{} survived the start",
        unknown.display()
    );

    std::fs::write(&of_done, "export SECRET='x'\n").unwrap();
    let (code, _, err) = run(env.agentctl().args(["rm", &done.short_id]));
    assert_eq!(code, 0, "{err}");
    assert!(!of_done.exists(), "rm left {}", of_done.display());
}
