//! A long history: replies come in pages, so nothing is too big for a
//! client at any size; `agentctl drain`, `notifications` and `jobs --all`
//! page through everything, and a drain that dies part way loses nothing
//! it did not print.
//!
//! The histories are written into a stopped daemon's database with
//! [`seed_finished_jobs`] (the rows agentd itself writes for finished
//! jobs); running 50,000 real jobs would take minutes and test nothing more
//! here.

use agentd_proto::methods::*;
use agentd_tests::{KEEP_EVERYTHING, TestEnv, run, seed_finished_jobs, stopped_daemon};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

/// A daemon state dir holding `n` finished jobs of session `default`,
/// with notifications pending or acked, and a config that keeps them all
/// (`[retention]` unlimited); no daemon left running.
async fn history(n: usize, tail_len: usize, pending: bool) -> TestEnv {
    let env = stopped_daemon(KEEP_EVERYTHING).await;
    seed_finished_jobs(&env.state_dir, "default", n, tail_len, pending);
    env
}

/// The job numbers `N` of the `[bg:…] succeeded (exit 0): echo N` header
/// lines in `text`, with how often each appears.
fn printed(text: &str) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("[bg:")) {
        let n = line
            .rsplit_once("echo ")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected header line {line:?}"));
        *seen.entry(n).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn drain_prints_50000_pending_notifications_exactly_once() {
    // 50,000 tails of 1000 bytes: about 60 MB of notifications, far more
    // than one reply line may hold.
    let env = history(50_000, 1000, true).await;
    let _daemon = env.start_daemon();
    let (code, out, err) = run(env.agentctl().arg("drain"));
    assert_eq!(code, 0, "{err}");
    let seen = printed(&out);
    assert_eq!(seen.len(), 50_000, "every notification printed");
    assert!(seen.keys().copied().eq(0..50_000));
    assert!(seen.values().all(|&c| c == 1), "none printed twice");
    let (code, out, err) = run(env.agentctl().arg("notifications"));
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains("no notifications pending"), "{err}");
}

#[tokio::test]
async fn a_drain_killed_midway_leaves_what_it_did_not_print_pending() {
    let env = history(50_000, 1000, true).await;
    let _daemon = env.start_daemon();
    let mut child = env
        .agentctl()
        .arg("drain")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let mut headers = 0;
    while headers < 20_000 {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "drain ended early"
        );
        headers += usize::from(line.starts_with("[bg:"));
        text.push_str(&line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What it wrote before dying is printed too, read or not.
    stdout.read_to_string(&mut text).unwrap();
    let printed = printed(&text);
    assert!(printed.len() < 50_000, "killed before the end");

    let (code, out, err) = run(env.agentctl().args(["notifications", "--json"]));
    assert_eq!(code, 0, "{err}");
    let pending: Vec<Value> = serde_json::from_str(&out).unwrap();
    let pending: Vec<usize> = pending
        .iter()
        .map(|n| n["command"].as_str().unwrap()[5..].parse().unwrap())
        .collect();
    assert!(!pending.is_empty());
    for n in 0..50_000 {
        assert!(
            printed.contains_key(&n) || pending.contains(&n),
            "notification {n} was neither printed nor left pending"
        );
    }
}

#[tokio::test]
async fn jobs_all_json_with_30000_jobs_is_valid_json_with_every_job() {
    let env = history(30_000, 0, false).await;
    let _daemon = env.start_daemon();
    let (code, out, err) = run(env.agentctl().args(["jobs", "--all", "--json"]));
    assert_eq!(code, 0, "{err}");
    let jobs: Vec<Value> = serde_json::from_str(&out).expect("one valid JSON array");
    assert_eq!(jobs.len(), 30_000);
    let commands: Vec<&str> = jobs
        .iter()
        .map(|j| j["command"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..30_000).rev().map(|n| format!("echo {n}")).collect();
    assert!(
        commands.iter().eq(want.iter()),
        "every job once, newest first"
    );

    // The table pages too: a header and one line per job.
    let (code, out, err) = run(env.agentctl().args(["jobs", "--all"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 30_001);
    assert_eq!(out.lines().filter(|l| l.starts_with("ID ")).count(), 1);
    // `-n` stops at N.
    let (_, out, _) = run(env
        .agentctl()
        .args(["jobs", "--all", "-n", "1500", "--json"]));
    let jobs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(jobs.len(), 1500);
}

#[tokio::test]
async fn job_list_and_peek_return_pages_that_add_up_to_everything() {
    let env = history(2_500, 10, true).await;
    let daemon = env.start_daemon();
    let c = daemon.client().await;

    let first = c.call::<JobList>(&ListParams::default()).await.unwrap();
    assert_eq!(first.jobs.len(), 1000, "at most 1000 without a limit");
    let mut all = first.jobs;
    let mut cursor = first.next_cursor;
    while let Some(next) = cursor {
        let page = c
            .call::<JobList>(&ListParams {
                cursor: Some(next),
                ..Default::default()
            })
            .await
            .unwrap();
        all.extend(page.jobs);
        cursor = page.next_cursor;
    }
    assert_eq!(all.len(), 2_500);
    assert_eq!(all[0].command, "echo 2499");
    assert_eq!(all[2_499].command, "echo 0");
    let bad = c
        .call::<JobList>(&ListParams {
            cursor: Some("nonsense".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(agentd_proto::codes::INVALID_PARAMS));

    let page = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert_eq!(page.notifications.len(), 100, "at most 100 by default");
    assert!(page.more);
    let drained = c
        .call::<NotificationsDrain>(&DrainParams {
            session: None,
            max: Some(2_400),
        })
        .await
        .unwrap();
    assert_eq!(drained.notifications.len(), 2_400);
    assert!(drained.more);
    let rest = c
        .call::<NotificationsWait>(&NotificationsWaitParams {
            timeout_ms: 0,
            max: Some(1_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.notifications.len(),
        100,
        "the drain acked exactly what it returned"
    );
    assert!(!rest.more);
    assert_eq!(rest.notifications[0].command, "echo 2400");
}

#[tokio::test]
async fn a_recent_short_id_names_its_job_when_an_old_job_shares_it() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let recent = agentd_tests::rpc::submit(&c, "echo recent").await;
    agentd_tests::rpc::wait(&c, &recent.id).await;
    c.call::<DaemonShutdown>(&ShutdownParams::default())
        .await
        .unwrap();
    drop(c);
    assert!(daemon.wait().success());
    // An old job, created before it, whose id begins with the same 8
    // characters.
    let old_id = format!("{}-0000-4000-8000-000000000000", recent.short_id);
    let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("INSERT INTO jobs (ord, id, command, cwd, state, exit_code, session, created_at, started_at, finished_at, duration_ms, tail_bytes, output_bytes) VALUES (0, ?, 'echo old; exit 3', '/', 'failed', 3, 'default', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', '2026-01-01T00:00:00.002Z', 1, 1000, 0)", (sys.argv[2],))
c.commit()
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(env.state_dir.join("agentd.db"))
        .arg(&old_id)
        .status()
        .unwrap();
    assert!(status.success());
    env.write_agentd_config("[retention]\nmax_age_days = 0\n");
    let _daemon = env.start_daemon();

    let (code, out, err) = run(env.agentctl().args(["logs", &recent.short_id]));
    assert_eq!((code, out.as_str()), (0, "recent\n"), "{err}");
    let (code, _, err) = run(env.agentctl().args(["wait", &recent.short_id]));
    assert_eq!(
        code, 0,
        "the recent job's exit code, not the old one's 3: {err}"
    );
    // The old one is reached by more of its id; a short prefix stays
    // ambiguous.
    let (code, out, _) = run(env.agentctl().args(["show", "--json", &old_id]));
    assert_eq!(code, 0);
    assert!(out.contains("echo old"), "{out}");
    let (code, _, err) = run(env.agentctl().args(["show", &recent.short_id[..6]]));
    assert_ne!(code, 0);
    assert!(err.contains("could be any of"), "{err}");
}

/// `agentctl sessions` and `sessions show` count every live job and every
/// pending result of a session, past one page of `job.list` (1000) and of
/// `notifications.peek` (100), with a longer finished history beside them.
#[tokio::test]
async fn sessions_count_every_live_job_and_pending_result() {
    let env = stopped_daemon(&format!("max_running = 1\n{KEEP_EVERYTHING}")).await;
    seed_finished_jobs(&env.state_dir, "big", 1500, 0, false);
    seed_finished_jobs(&env.state_dir, "big", 250, 0, true);
    // One of them starts (max_running = 1), 1199 wait.
    agentd_tests::seed_queued(&env.state_dir, "big", 1200, "sleep 600");
    let sessions = env.root().join("state/agentctl/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::write(
        sessions.join("big.jsonl"),
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}\n",
    )
    .unwrap();
    let _daemon = env.start_daemon();

    let (code, out, err) = run(env.agentctl().arg("sessions"));
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("big ")).unwrap();
    assert!(line.trim_end().ends_with(" 1200"), "{out}");
    let (code, out, err) = run(env.agentctl().args(["sessions", "show", "big"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Jobs:            1200 queued or running, 250 results pending"),
        "{out}"
    );
}
