//! Bounded history: `agentctl rm` and `clean` (`job.remove`, `job.prune`),
//! `[retention]` limits applied by agentd, the pending cap that drops the
//! oldest results but never silently, and a removal cut short by
//! `kill -9` leaving every job whole or gone.

use agentd_proto::methods::*;
use agentd_proto::{JobState, codes};
use agentd_tests::rpc::{get, submit, wait};
use agentd_tests::{KEEP_EVERYTHING, Seed, TestEnv, run, seed_history, stopped_daemon};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Files and directories under `dir` whose name holds `id`.
fn files_naming(dir: &Path, id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().contains(id) {
            found.push(path.clone());
        }
        if path.is_dir() {
            found.extend(files_naming(&path, id));
        }
    }
    found
}

/// The commands of every job, newest first (`agentctl jobs --all --json`).
fn commands(env: &TestEnv) -> Vec<String> {
    let (code, out, err) = run(env.agentctl().args(["jobs", "--all", "--json"]));
    assert_eq!(code, 0, "{err}");
    let jobs: Vec<Value> = serde_json::from_str(&out).unwrap();
    jobs.iter()
        .map(|j| j["command"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn rm_removes_a_finished_job_with_its_notification_and_output() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let kept = submit(&c, "echo kept").await;
    let job = submit(&c, "echo bye").await;
    wait(&c, &kept.id).await;
    wait(&c, &job.id).await;
    assert!(!files_naming(&env.state_dir, &job.id).is_empty());

    let (code, out, err) = run(env.agentctl().args(["rm", &job.short_id]));
    assert_eq!(
        (code, out.as_str()),
        (0, format!("removed {}\n", job.short_id).as_str()),
        "{err}"
    );

    let gone = c
        .call::<JobGet>(&IdParams { id: job.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some(codes::JOB_NOT_FOUND));
    let pending = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    let ids: Vec<&str> = pending
        .notifications
        .iter()
        .map(|n| n.job_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [kept.id.as_str()],
        "its notification went with it, the other stays"
    );
    assert_eq!(files_naming(&env.state_dir, &job.id), Vec::<PathBuf>::new());
    assert_eq!(get(&c, &kept.id).await.state, JobState::Succeeded);
}

#[tokio::test]
async fn rm_of_a_running_job_is_refused_and_removes_nothing() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let done = submit(&c, "true").await;
    wait(&c, &done.id).await;
    let running = submit(&c, "sleep 300").await;

    let (code, out, err) = run(env
        .agentctl()
        .args(["rm", &done.short_id, &running.short_id]));
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert!(
        err.contains("running") && err.contains("kill it first"),
        "{err}"
    );
    let e = c
        .call::<JobRemove>(&RemoveParams {
            ids: vec![running.id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(codes::JOB_NOT_FINISHED));
    // All or nothing: the finished one named with it is still there too.
    assert_eq!(get(&c, &done.id).await.state, JobState::Succeeded);
    assert_eq!(get(&c, &running.id).await.state, JobState::Running);
}

#[tokio::test]
async fn clean_dry_run_removes_nothing_and_clean_keeps_what_it_is_told() {
    let env = stopped_daemon(KEEP_EVERYTHING).await;
    seed_history(
        &env.state_dir,
        &Seed {
            n: 50,
            ..Seed::default()
        },
    );
    seed_history(
        &env.state_dir,
        &Seed {
            n: 5,
            pending: true,
            prefix: "p",
            ..Seed::default()
        },
    );
    let _daemon = env.start_daemon();

    let (code, out, err) = run(env.agentctl().args(["clean", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("would remove 50 finished jobs"), "{out}");
    assert_eq!(commands(&env).len(), 55, "a dry run removes nothing");

    // The newest 10 are the 5 pending and echo 45..49.
    let (code, out, err) = run(env.agentctl().args(["clean", "--keep", "10"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("removed 45 finished jobs"), "{out}");
    let mut want: Vec<String> = (0..5).rev().map(|i| format!("echo p{i}")).collect();
    want.extend((45..50).rev().map(|i| format!("echo {i}")));
    assert_eq!(commands(&env), want);

    // Without options: every finished job whose result was taken.
    let (_, out, _) = run(env.agentctl().arg("clean"));
    assert!(out.starts_with("removed 5 finished jobs"), "{out}");
    assert_eq!(commands(&env), want[..5]);
    let (_, out, _) = run(env.agentctl().args(["clean", "--older-than", "2h"]));
    assert!(out.starts_with("removed 0 finished jobs"), "{out}");
}

#[tokio::test]
async fn retention_removes_what_the_config_says_and_nothing_else() {
    let env = stopped_daemon("[retention]\nmax_finished_jobs = 100\nmax_age_days = 1\n").await;
    // Oldest by creation first: 150 recent, then 20 two days old, then 10
    // two days old whose results nobody took.
    for (n, prefix, hours_ago, pending) in [
        (150, "new", 1.0, false),
        (20, "old", 48.0, false),
        (10, "unread", 48.0, true),
    ] {
        seed_history(
            &env.state_dir,
            &Seed {
                n,
                prefix,
                hours_ago,
                pending,
                with_output: true,
                ..Seed::default()
            },
        );
    }
    let _daemon = env.start_daemon();
    // The 20 old ones go for their age; of the 170 finished jobs whose
    // results were taken, the oldest 70 go for the count, so 100 stay.
    // The unread ones stay, however old.
    let mut want: Vec<String> = (0..10).rev().map(|i| format!("echo unread{i}")).collect();
    want.extend((70..150).rev().map(|i| format!("echo new{i}")));
    assert_eq!(commands(&env), want);
    let outputs = std::fs::read_dir(env.state_dir.join("jobs"))
        .unwrap()
        .count();
    assert_eq!(outputs, 90, "the output went with the jobs");
}

#[tokio::test]
async fn the_pending_cap_drops_the_oldest_and_the_next_peek_says_how_many() {
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_pending_per_session = 3\n");
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    for i in 0..5 {
        let job = submit(&c, &format!("echo {i}")).await;
        wait(&c, &job.id).await;
    }
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    let commands: Vec<&str> = page
        .notifications
        .iter()
        .map(|n| n.command.as_str())
        .collect();
    assert_eq!(commands, ["echo 2", "echo 3", "echo 4"]);
    assert_eq!(page.dropped, 2);

    // Told on every peek until acknowledged, across a restart too.
    drop(c);
    daemon.kill9();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let (code, out, err) = run(env.agentctl().arg("notifications"));
    assert_eq!(code, 0);
    assert!(out.contains("echo 4"), "{out}");
    assert!(err.contains("2 older notifications were dropped"), "{err}");
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert_eq!(page.dropped, 2);
    let last = page.notifications.last().unwrap().seq;
    c.call::<NotificationsAck>(&AckParams {
        session: None,
        up_to_seq: last,
    })
    .await
    .unwrap();
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert_eq!((page.notifications.len(), page.dropped), (0, 0));
}

#[tokio::test]
async fn a_drop_whose_remaining_results_were_removed_is_told_once_and_then_cleared() {
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_pending_per_session = 3\n");
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let mut kept = Vec::new();
    for i in 0..5 {
        let job = submit(&c, &format!("echo {i}")).await;
        wait(&c, &job.id).await;
        kept.push(job);
    }
    // The three results the cap kept are removed unread: nothing is left
    // to ack, but the drop of the other two is still to be told.
    for job in &kept[2..] {
        let (code, _, err) = run(env.agentctl().args(["rm", &job.short_id]));
        assert_eq!(code, 0, "{err}");
    }
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert_eq!((page.notifications.len(), page.dropped), (0, 2));
    let drop_seq = page.dropped_up_to_seq.expect("the drop's seq is reported");

    // `agentctl notifications` only looks; `drain` tells and consumes.
    let (_, _, err) = run(env.agentctl().arg("notifications"));
    assert!(err.contains("2 older notifications were dropped"), "{err}");
    let (code, out, err) = run(env.agentctl().arg("drain"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("2 older notifications were dropped"), "{err}");
    let (code, _, err) = run(env.agentctl().arg("drain"));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("dropped"), "told twice: {err}");
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert_eq!((page.dropped, page.dropped_up_to_seq), (0, None));

    // Cleared for good: a restart reloads no drop.
    drop(c);
    daemon.kill9();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert_eq!((page.notifications.len(), page.dropped), (0, 0));
    // The seqs go on above the drop's: an ack there never reaches a new
    // result.
    let job = submit(&c, "echo after").await;
    wait(&c, &job.id).await;
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert!(page.notifications[0].seq > drop_seq);
}

/// Counts from the database and the jobs dir (`jobs/<id>.log`): jobs, jobs
/// lacking a notification or output, notifications and output without a
/// job, ids still to be deleted.
fn consistency(state_dir: &Path) -> Value {
    let script = r#"
import sqlite3, sys, os, json
db = sys.argv[1]
c = sqlite3.connect(db)
ids = set(r[0] for r in c.execute("SELECT id FROM jobs"))
notes = set(r[0] for r in c.execute("SELECT job_id FROM notifications"))
removing = set(r[0] for r in c.execute("SELECT job_id FROM removing"))
dirs = set(n[:-len('.log')] for n in os.listdir(os.path.join(os.path.dirname(db), 'jobs')) if n.endswith('.log'))
print(json.dumps({"jobs": len(ids), "without_notification": len(ids - notes),
  "orphan_notifications": len(notes - ids), "without_output": len(ids - dirs),
  "orphan_output": len(dirs - ids - removing), "removing": len(removing),
  "output": len(dirs)}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(state_dir.join("agentd.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn kill_9_in_the_middle_of_a_large_prune_leaves_every_job_whole_or_gone() {
    const N: u64 = 20_000;
    let env = stopped_daemon(KEEP_EVERYTHING).await;
    seed_history(
        &env.state_dir,
        &Seed {
            n: N as usize,
            tail_len: 10,
            with_output: true,
            ..Seed::default()
        },
    );
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let pruner = daemon.client().await;
    let prune = tokio::spawn(async move { pruner.call::<JobPrune>(&PruneParams::default()).await });
    // Until some batches are gone (and the prune still runs).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let info = c.call::<DaemonInfo>(&Empty {}).await.unwrap();
        if info.jobs.total < N {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the prune made no progress"
        );
    }
    daemon.kill9();
    let _ = prune.await;

    let state = consistency(&env.state_dir);
    assert_eq!(state["without_notification"], 0, "{state}");
    assert_eq!(state["orphan_notifications"], 0, "{state}");
    assert_eq!(state["without_output"], 0, "{state}");
    assert_eq!(state["orphan_output"], 0, "{state}");
    let left = state["jobs"].as_u64().unwrap();
    assert!(left < N, "{state}");

    // The next start deletes what the killed one had not.
    let daemon = env.start_daemon();
    daemon
        .client()
        .await
        .call::<DaemonInfo>(&Empty {})
        .await
        .unwrap();
    let state = consistency(&env.state_dir);
    assert_eq!(state["removing"], 0, "{state}");
    assert_eq!(state["output"].as_u64(), Some(left), "{state}");
    assert_eq!(state["jobs"].as_u64(), Some(left), "{state}");
    assert_eq!(commands(&env).len() as u64, left);
}

/// Acks every pending notification of session `default` (what `drain`
/// and the agent do once results are taken).
async fn ack_all(c: &agentd_proto::Client) {
    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    let last = page.notifications.last().expect("a pending result").seq;
    c.call::<NotificationsAck>(&AckParams {
        session: None,
        up_to_seq: last,
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_live_daemon_removes_the_oldest_finished_jobs_as_more_finish() {
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_finished_jobs = 3\n");
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let jobs_dir = env.state_dir.join("jobs");
    // The oldest of all, and its result never taken: it stays.
    let held = agentd_tests::rpc::run_in(&c, "held", "echo held-out").await;

    let mut done = Vec::new();
    for i in 0..6 {
        let job = submit(&c, &format!("echo out-{i}")).await;
        wait(&c, &job.id).await;
        ack_all(&c).await;
        done.push(job);
        if i < 3 {
            continue;
        }
        // Four taken results, three allowed: the oldest goes, row and
        // output, while agentd runs.
        let gone = &done[i - 3];
        agentd_tests::wait_no_entry_naming(&jobs_dir, &gone.id).await;
        let e = c
            .call::<JobGet>(&IdParams {
                id: gone.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(codes::JOB_NOT_FOUND), "{i}");
        assert_eq!(
            files_naming(&env.state_dir, &gone.id),
            Vec::<PathBuf>::new()
        );
    }
    // The three newest and the unread one, each with its output.
    let mut want: Vec<String> = (3..6).rev().map(|i| format!("echo out-{i}")).collect();
    want.push("echo held-out".into());
    assert_eq!(commands(&env), want);
    for job in done[3..].iter().chain([&held]) {
        let out = agentd_tests::rpc::output(&c, &job.id).await;
        assert_eq!(out, format!("{}\n", &job.command[5..]), "{}", job.command);
    }
}
