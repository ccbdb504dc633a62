//! What survives the daemon: a SIGKILL and restart keeps every finished job,
//! its output and its undelivered notification, and `seq` keeps rising; a
//! job running across the restart is adopted and its result arrives;
//! shutdown keeps or kills jobs as asked; a second daemon is refused.

use agentd_proto::JobState;
use agentd_proto::methods::*;
use agentd_tests::rpc::{output, submit, wait};
use agentd_tests::{TestEnv, is_alive, run};

#[tokio::test]
async fn notification_survives_daemon_kill_9() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let acked = submit(&c, "echo acked").await;
    wait(&c, &acked.id).await;
    let first = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications;
    c.call::<NotificationsAck>(&AckParams {
        session: None,
        up_to_seq: first[0].seq,
    })
    .await
    .unwrap();
    let pending = submit(&c, "echo pending; exit 7").await;
    let pending = wait(&c, &pending.id).await;
    // A job that waits on a FIFO the test opens only after the restart.
    let fifo = env.root().join("go.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let running = submit(
        &c,
        &format!("read l < '{}'; echo \"adopted $l\"; exit 4", fifo.display()),
    )
    .await;
    let before = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications;
    assert_eq!(before.len(), 1);
    drop(c);
    daemon.kill9();
    assert!(
        env.socket.exists(),
        "a crashed daemon leaves its socket file behind"
    );

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let jobs = c
        .call::<JobList>(&ListParams::default())
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 3);
    let got = c
        .call::<JobGet>(&IdParams {
            id: pending.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(got, pending, "a finished job survives exactly");
    assert_eq!(output(&c, &acked.id).await, "acked\n");
    assert_eq!(output(&c, &pending.id).await, "pending\n");
    // The running job kept running under its shim; the new daemon adopted
    // it and reports its true end, with a notification of its own.
    assert_eq!(
        c.call::<JobGet>(&IdParams {
            id: running.id.clone()
        })
        .await
        .unwrap()
        .state,
        JobState::Running
    );
    std::fs::write(&fifo, "ok\n").unwrap();
    let ended = wait(&c, &running.id).await;
    assert_eq!((ended.state, ended.exit_code), (JobState::Failed, Some(4)));
    assert_eq!(output(&c, &running.id).await, "adopted ok\n");
    let after = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0], "the undelivered notification survives");
    assert_eq!(
        (after[1].job_id.as_str(), after[1].state),
        (running.id.as_str(), JobState::Failed)
    );
    assert!(after[1].seq > after[0].seq);
    // seq keeps rising for new jobs.
    let next = submit(&c, "true").await;
    wait(&c, &next.id).await;
    let last = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications;
    assert_eq!(last.len(), 3);
    assert!(last[2].seq > after[1].seq);
}

#[tokio::test]
async fn shutdown_replies_then_exits_and_can_kill_jobs() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, "sleep 300").await;
    let pid = job.pid.unwrap();
    let reply = c
        .call::<DaemonShutdown>(&ShutdownParams {
            jobs: Some(ShutdownJobs::Kill),
        })
        .await
        .unwrap();
    assert_eq!(reply, Empty {});
    assert!(daemon.wait().success());
    assert!(!is_alive(pid), "jobs: kill ends the job's process");
    assert!(!env.socket.exists(), "the daemon removes its socket");
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = c.call::<JobGet>(&IdParams { id: job.id }).await.unwrap();
    assert_eq!(job.state, JobState::Killed);
}

#[tokio::test]
async fn shutdown_keeps_jobs_running_by_default_and_sigterm_stops_the_daemon() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, "sleep 300").await;
    c.call::<DaemonShutdown>(&ShutdownParams::default())
        .await
        .unwrap();
    assert!(daemon.wait().success());
    assert!(
        is_alive(job.pid.unwrap()),
        "jobs: keep leaves the job running"
    );

    let daemon = env.start_daemon();
    daemon.terminate();
    assert!(daemon.wait().success(), "SIGTERM is a clean stop");
}

#[tokio::test]
async fn requests_during_shutdown_get_shutting_down_and_long_polls_are_answered() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let other = daemon.client().await;
    // A job that ignores SIGTERM keeps a `kill` shutdown busy for the 5 s
    // grace, long enough to talk to the daemon while it shuts down.
    let job = submit(&c, "trap '' TERM; sleep 300 & echo ready; wait").await;
    agentd_tests::rpc::wait_for_output(&c, &job.id, "ready").await;
    // A long-poll read before the shutdown: the daemon reads a connection's
    // lines in order, so once the info sent after it is answered, the wait
    // has been read.
    let waiting = std::sync::Arc::new(daemon.client().await);
    let waiter = {
        let c2 = waiting.clone();
        tokio::spawn(async move {
            c2.call::<NotificationsWait>(&NotificationsWaitParams {
                session: Some("idle".into()),
                timeout_ms: 600_000,
                max: None,
            })
            .await
        })
    };
    tokio::task::yield_now().await;
    waiting.call::<DaemonInfo>(&Empty {}).await.unwrap();
    c.call::<DaemonShutdown>(&ShutdownParams {
        jobs: Some(ShutdownJobs::Kill),
    })
    .await
    .unwrap();
    let err = other
        .call::<JobSubmit>(&SubmitParams {
            command: "true".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(agentd_proto::codes::SHUTTING_DOWN),
        "{err}"
    );
    let info = other.call::<DaemonInfo>(&Empty {}).await.unwrap();
    assert_eq!(
        info.pid,
        daemon.pid(),
        "daemon.info still answers while shutting down"
    );
    let woken = waiter.await.unwrap().unwrap();
    assert!(
        woken.notifications.is_empty(),
        "the long-poll is answered early, empty"
    );
    assert!(daemon.wait().success());
}

#[tokio::test]
async fn a_second_daemon_on_the_same_socket_or_state_dir_is_refused() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let (code, _, stderr) = run(&mut env.command(agentd_tests::bin("agentd")));
    assert_ne!(code, 0);
    assert!(stderr.contains("already"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // Same state dir, another socket: the state-dir lock refuses it.
    let other_socket = env.root().join("run/other.sock");
    let (code, _, stderr) = run(env
        .command(agentd_tests::bin("agentd"))
        .env("AGENTD_SOCKET", &other_socket));
    assert_ne!(code, 0);
    assert!(stderr.contains("state dir"), "{stderr}");
    // Same socket, another state dir: the live daemon answers on it.
    let (code, _, stderr) = run(env
        .command(agentd_tests::bin("agentd"))
        .env("AGENTD_STATE_DIR", env.root().join("state/other")));
    assert_ne!(code, 0);
    assert!(stderr.contains("already running on"), "{stderr}");
}
