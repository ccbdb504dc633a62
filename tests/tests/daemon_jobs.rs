//! End-to-end tests of job supervision through the real `agentd` binary:
//! every final state, kills that leave no process behind, timeouts, output
//! reads, listing, the queue limit and every error code a job method gives.

use agentd_proto::methods::*;
use agentd_proto::{JobState, codes};
use agentd_tests::rpc::wait;
use agentd_tests::{TestEnv, group_members};
use serde_json::json;

fn submit(command: &str) -> SubmitParams {
    SubmitParams {
        command: command.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn jobs_end_in_each_state_with_exit_code_and_signal() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;

    let ok = c.call::<JobSubmit>(&submit("echo hello")).await.unwrap();
    assert_eq!(
        ok.state,
        JobState::Running,
        "submit replies once the job runs"
    );
    assert!(ok.pid.is_some() && ok.started_at.is_some());
    let ok = wait(&c, &ok.id).await;
    assert_eq!(
        (ok.state, ok.exit_code, ok.signal.as_deref()),
        (JobState::Succeeded, Some(0), None)
    );
    assert_eq!(ok.output_bytes, 6);
    assert!(ok.duration_ms.is_some() && ok.finished_at.is_some());

    let failed = c.call::<JobSubmit>(&submit("exit 3")).await.unwrap();
    let failed = wait(&c, &failed.id).await;
    assert_eq!(
        (failed.state, failed.exit_code),
        (JobState::Failed, Some(3))
    );

    let signalled = c.call::<JobSubmit>(&submit("kill -KILL $$")).await.unwrap();
    let signalled = wait(&c, &signalled.id).await;
    assert_eq!(signalled.state, JobState::Killed);
    assert_eq!(
        (signalled.exit_code, signalled.signal.as_deref()),
        (None, Some("SIGKILL"))
    );

    let mut p = submit("sleep 300");
    p.timeout_secs = Some(0.3);
    let timed = c.call::<JobSubmit>(&p).await.unwrap();
    let timed = wait(&c, &timed.id).await;
    assert_eq!(timed.state, JobState::TimedOut);
    assert_eq!(timed.signal.as_deref(), Some("SIGTERM"));
    assert_eq!(timed.timeout_secs, Some(0.3));

    let killed = c.call::<JobSubmit>(&submit("sleep 300")).await.unwrap();
    let killed = c
        .call::<JobKill>(&KillParams {
            id: killed.short_id.clone(),
            signal: None,
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(
        killed.state,
        JobState::Killed,
        "job.kill returns the ended job"
    );
    assert_eq!(killed.signal.as_deref(), Some("SIGTERM"));

    // A finished job is returned unchanged, not an error.
    let again = c
        .call::<JobKill>(&KillParams {
            id: killed.id.clone(),
            signal: Some("KILL".into()),
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(again, killed);
}

#[tokio::test]
async fn killed_job_leaves_no_process_in_its_group() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    // The shell starts two children, says so, and waits.
    let job = c
        .call::<JobSubmit>(&submit("sleep 300 & sleep 300 & echo started; wait"))
        .await
        .unwrap();
    let pgid = job.pid.unwrap();
    let out = c
        .call::<JobOutput>(&OutputParams {
            id: job.id.clone(),
            offset: None,
            limit: None,
            tail: None,
            wait_ms: Some(10_000),
        })
        .await
        .unwrap();
    assert_eq!(out.data, "started\n");
    assert_eq!(
        group_members(pgid).len(),
        3,
        "sh and two sleeps run in the job's group"
    );
    let killed = c
        .call::<JobKill>(&KillParams {
            id: job.id.clone(),
            signal: None,
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Killed);
    assert_eq!(group_members(pgid), Vec::<u32>::new());
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = c
        .call::<JobSubmit>(&submit("trap '' TERM; sleep 300 & echo ready; wait"))
        .await
        .unwrap();
    let pgid = job.pid.unwrap();
    agentd_tests::rpc::wait_for_output(&c, &job.id, "ready").await;
    let killed = c
        .call::<JobKill>(&KillParams {
            id: job.id.clone(),
            signal: Some("TERM".into()),
            grace_secs: Some(0.2),
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Killed);
    assert_eq!(killed.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(group_members(pgid), Vec::<u32>::new());
}

#[tokio::test]
async fn submit_uses_cwd_env_label_and_session() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let work = env.workdir();
    let mut p = submit("pwd; echo \"$GREETING\"; echo err >&2");
    p.cwd = Some(work.display().to_string());
    p.env = Some([("GREETING".to_string(), "hi there".to_string())].into());
    p.label = Some("build".into());
    p.session = Some("s-1.x_y".into());
    let job = c.call::<JobSubmit>(&p).await.unwrap();
    assert_eq!(job.label.as_deref(), Some("build"));
    assert_eq!(job.session, "s-1.x_y");
    assert_eq!(job.short_id, job.id[..8]);
    let job = wait(&c, &job.id).await;
    let out = c
        .call::<JobOutput>(&OutputParams {
            id: job.id.clone(),
            offset: None,
            limit: None,
            tail: None,
            wait_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(out.data, format!("{}\nhi there\nerr\n", work.display()));
    assert!(out.complete);
    assert_eq!(out.total_bytes, job.output_bytes);
}

#[tokio::test]
async fn output_reads_ranges_tails_and_waits_for_new_bytes() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let fifo = env.root().join("go");
    agentd_tests::mkfifo(&fifo);
    let job = c
        .call::<JobSubmit>(&submit(&format!(
            "printf 0123456789; read x < {}; printf abc",
            fifo.display()
        )))
        .await
        .unwrap();
    let out_at = |offset: u64, limit: Option<u64>, wait_ms: Option<u64>| OutputParams {
        id: job.id.clone(),
        offset: Some(offset),
        limit,
        tail: None,
        wait_ms,
    };
    let first = c
        .call::<JobOutput>(&out_at(0, None, Some(10_000)))
        .await
        .unwrap();
    assert_eq!(
        (first.data.as_str(), first.next_offset, first.complete),
        ("0123456789", 10, false)
    );
    let mid = c
        .call::<JobOutput>(&out_at(3, Some(4), None))
        .await
        .unwrap();
    assert_eq!(
        (mid.data.as_str(), mid.offset, mid.next_offset),
        ("3456", 3, 7)
    );
    // Nothing new yet: without wait_ms it returns at once, empty.
    let none = c.call::<JobOutput>(&out_at(10, None, None)).await.unwrap();
    assert_eq!((none.data.as_str(), none.complete), ("", false));
    // A long-poll past the end wakes when the job writes again.
    let waiter = {
        let c2 = daemon.client().await;
        let p = out_at(10, None, Some(30_000));
        tokio::spawn(async move { c2.call::<JobOutput>(&p).await.unwrap() })
    };
    std::fs::write(&fifo, "go\n").unwrap();
    let more = waiter.await.unwrap();
    assert_eq!(more.data, "abc");
    wait(&c, &job.id).await;
    let tail = c
        .call::<JobOutput>(&OutputParams {
            id: job.id.clone(),
            offset: None,
            limit: None,
            tail: Some(5),
            wait_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(
        (
            tail.data.as_str(),
            tail.offset,
            tail.next_offset,
            tail.complete
        ),
        ("89abc", 8, 13, true)
    );
    let err = c
        .call::<JobOutput>(&out_at(0, Some(5 * 1024 * 1024), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::LIMIT_EXCEEDED));
}

#[tokio::test]
async fn list_filters_and_orders_newest_first_and_info_counts() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let a = c.call::<JobSubmit>(&submit("true")).await.unwrap();
    wait(&c, &a.id).await;
    let mut p = submit("sleep 300");
    p.session = Some("other".into());
    let b = c.call::<JobSubmit>(&p).await.unwrap();
    let all = c
        .call::<JobList>(&ListParams::default())
        .await
        .unwrap()
        .jobs;
    assert_eq!(
        all.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [b.id.as_str(), a.id.as_str()]
    );
    let running = c
        .call::<JobList>(&ListParams {
            states: Some(vec![JobState::Running, JobState::Queued]),
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, b.id);
    let default_session = c
        .call::<JobList>(&ListParams {
            session: Some("default".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    assert_eq!(default_session.len(), 1);
    assert_eq!(default_session[0].id, a.id);
    let limited = c
        .call::<JobList>(&ListParams {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    assert_eq!(limited[0].id, b.id);
    let info = c.call::<DaemonInfo>(&Empty {}).await.unwrap();
    assert_eq!(info.protocol_version, 1);
    assert_eq!(info.pid, daemon.pid());
    assert_eq!(
        (info.jobs.running, info.jobs.queued, info.jobs.total),
        (1, 0, 2)
    );
    assert_eq!(info.socket, env.socket.display().to_string());
    assert_eq!(info.state_dir, env.state_dir.display().to_string());
}

#[tokio::test]
async fn max_running_queues_jobs_first_in_first_out() {
    let env = TestEnv::new();
    let config = env.root().join("config/agentd.toml");
    std::fs::write(&config, "max_running = 1\n").unwrap();
    let daemon = env.start_daemon_with(|cmd| {
        cmd.env("AGENTD_CONFIG", &config);
    });
    let c = daemon.client().await;
    let log = env.root().join("order.log");
    let first = c.call::<JobSubmit>(&submit("sleep 300")).await.unwrap();
    let second = c
        .call::<JobSubmit>(&submit(&format!("echo second >> {}", log.display())))
        .await
        .unwrap();
    let third = c
        .call::<JobSubmit>(&submit(&format!("echo third >> {}", log.display())))
        .await
        .unwrap();
    assert_eq!(first.state, JobState::Running);
    assert_eq!(
        (second.state, third.state),
        (JobState::Queued, JobState::Queued)
    );
    assert_eq!(second.pid, None);
    // A queued job can be cancelled; it never runs.
    let cancelled = c
        .call::<JobKill>(&KillParams {
            id: third.id.clone(),
            signal: None,
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.started_at.as_deref()),
        (JobState::Killed, None)
    );
    let fourth = c
        .call::<JobSubmit>(&submit(&format!("echo fourth >> {}", log.display())))
        .await
        .unwrap();
    c.call::<JobKill>(&KillParams {
        id: first.id.clone(),
        signal: Some("KILL".into()),
        grace_secs: None,
    })
    .await
    .unwrap();
    assert_eq!(wait(&c, &second.id).await.state, JobState::Succeeded);
    assert_eq!(wait(&c, &fourth.id).await.state, JobState::Succeeded);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "second\nfourth\n");
}

#[tokio::test]
async fn bad_params_get_the_documented_error_codes_naming_the_field() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let code_of = |r: Result<serde_json::Value, agentd_proto::ClientError>| match r {
        Err(agentd_proto::ClientError::Rpc(e)) => (e.code, e.message, e.data),
        other => panic!("expected an error, got {other:?}"),
    };
    let cases = [
        (
            "job.submit",
            json!({"command": ""}),
            codes::INVALID_PARAMS,
            "command",
        ),
        (
            "job.submit",
            json!({"command": "  "}),
            codes::INVALID_PARAMS,
            "command",
        ),
        ("job.submit", json!({}), codes::INVALID_PARAMS, "command"),
        (
            "job.submit",
            json!({"command": "true", "cwd": "relative"}),
            codes::INVALID_PARAMS,
            "cwd",
        ),
        (
            "job.submit",
            json!({"command": "true", "cwd": "/no/such/dir"}),
            codes::CANNOT_SPAWN,
            "cwd",
        ),
        (
            "job.submit",
            json!({"command": "true", "timeout_secs": -1}),
            codes::INVALID_PARAMS,
            "timeout_secs",
        ),
        (
            "job.submit",
            json!({"command": "true", "timeout_secs": 1e12}),
            codes::INVALID_PARAMS,
            "timeout_secs",
        ),
        (
            "job.submit",
            json!({"command": "true", "session": "bad name"}),
            codes::INVALID_PARAMS,
            "session",
        ),
        (
            "job.submit",
            json!({"command": "true", "timeout": 5}),
            codes::INVALID_PARAMS,
            "timeout",
        ),
        ("job.get", json!({"id": "abc"}), codes::INVALID_PARAMS, "id"),
        (
            "job.kill",
            json!({"id": "0000", "signal": "USR1"}),
            codes::INVALID_PARAMS,
            "signal",
        ),
        (
            "notifications.peek",
            json!({"session": ""}),
            codes::INVALID_PARAMS,
            "session",
        ),
    ];
    for (method, params, code, field) in cases {
        let (got, message, data) = code_of(c.call_raw(method, params.clone()).await);
        assert_eq!(got, code, "{method} {params}: {message}");
        assert_eq!(
            data.as_ref().and_then(|d| d["field"].as_str()),
            Some(field),
            "{method} {params}: {message}"
        );
        assert!(message.contains(field), "{message:?} names {field}");
    }
    let (code, message, _) = code_of(c.call_raw("job.get", json!({"id": "deadbeef"})).await);
    assert_eq!(code, codes::JOB_NOT_FOUND);
    assert!(message.contains("deadbeef"), "{message}");
    let (code, message, _) = code_of(c.call_raw("job.frobnicate", json!({})).await);
    assert_eq!(code, codes::METHOD_NOT_FOUND);
    assert!(message.contains("job.frobnicate"));
    let (code, _, _) = code_of(c.call_raw("job.list", json!(["by", "position"])).await);
    assert_eq!(code, codes::INVALID_PARAMS);
}

#[tokio::test]
async fn an_ambiguous_prefix_names_its_candidates() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    // Submit until two ids share their first 4 hex chars (a birthday
    // collision among 65,536 prefixes: near-certain within 2,000 jobs).
    let mut seen = std::collections::HashMap::new();
    let prefix = 'found: {
        for _ in 0..4000 {
            let job = c.call::<JobSubmit>(&submit("true")).await.unwrap();
            let p = job.id[..4].to_string();
            if seen.insert(p.clone(), job.id).is_some() {
                break 'found p;
            }
        }
        panic!("no two of 4000 ids shared a 4-char prefix");
    };
    let err = c
        .call::<JobGet>(&IdParams { id: prefix.clone() })
        .await
        .unwrap_err();
    let agentd_proto::ClientError::Rpc(e) = err else {
        panic!("{err}")
    };
    assert_eq!(e.code, codes::AMBIGUOUS_ID);
    assert!(e.message.contains(&prefix), "{}", e.message);
    assert_eq!(e.data.unwrap()["candidates"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_job_that_cannot_start_fails_with_the_reason_in_its_output() {
    let env = TestEnv::new();
    let config = env.root().join("config/agentd.toml");
    std::fs::write(&config, "max_running = 1\n").unwrap();
    let daemon = env.start_daemon_with(|cmd| {
        cmd.env("AGENTD_CONFIG", &config);
    });
    let c = daemon.client().await;
    // The cwd exists at submit but is gone when the job gets its turn.
    let blocker = c.call::<JobSubmit>(&submit("sleep 300")).await.unwrap();
    let gone = env.root().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let mut p = submit("true");
    p.cwd = Some(gone.display().to_string());
    let job = c.call::<JobSubmit>(&p).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    std::fs::remove_dir(&gone).unwrap();
    c.call::<JobKill>(&KillParams {
        id: blocker.id.clone(),
        signal: None,
        grace_secs: None,
    })
    .await
    .unwrap();
    let job = wait(&c, &job.id).await;
    assert_eq!(
        (job.state, job.exit_code, job.pid),
        (JobState::Failed, None, None)
    );
    let out = c
        .call::<JobOutput>(&OutputParams {
            id: job.id.clone(),
            offset: None,
            limit: None,
            tail: None,
            wait_ms: None,
        })
        .await
        .unwrap();
    assert!(out.data.contains("cannot start the job"), "{}", out.data);
    assert!(
        out.data.contains(&gone.display().to_string()),
        "{}",
        out.data
    );
    // And it has its notification like any other end.
    let n = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap();
    assert!(
        n.notifications
            .iter()
            .any(|n| n.job_id == job.id && n.state == JobState::Failed)
    );
}

#[tokio::test]
async fn a_missing_cwd_is_refused_at_submit() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let mut p = submit("true");
    p.cwd = Some(env.root().join("nowhere").display().to_string());
    let err = c.call::<JobSubmit>(&p).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::CANNOT_SPAWN));
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert!(
        c.call::<JobList>(&ListParams::default())
            .await
            .unwrap()
            .jobs
            .is_empty(),
        "nothing recorded"
    );
}
