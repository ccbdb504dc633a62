//! Notification queues: one per session, in `seq` order, with peek/ack
//! (exactly-once), drain (at-most-once) and wait (a long-poll woken by a
//! job's end).

use agentd_proto::methods::*;
use agentd_proto::{Client, JobState, Notification};
use agentd_tests::TestEnv;
use agentd_tests::rpc::run_in;

async fn peek(
    c: &Client,
    session: &str,
    after_seq: Option<u64>,
    max: Option<u64>,
) -> Vec<Notification> {
    c.call::<NotificationsPeek>(&PeekParams {
        session: Some(session.into()),
        after_seq,
        max,
    })
    .await
    .unwrap()
    .notifications
}

#[tokio::test]
async fn each_session_gets_its_own_notifications_in_seq_order() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let a1 = run_in(&c, "a", "echo one; exit 4").await;
    let b1 = run_in(&c, "b", "echo b").await;
    let a2 = run_in(&c, "a", "printf '%s' 0123456789").await;

    let a = peek(&c, "a", None, None).await;
    assert_eq!(
        a.iter().map(|n| n.job_id.as_str()).collect::<Vec<_>>(),
        [a1.id.as_str(), a2.id.as_str()]
    );
    assert!(a[0].seq < a[1].seq);
    let n = &a[0];
    assert_eq!(
        (n.state, n.exit_code, n.short_id.as_str()),
        (JobState::Failed, Some(4), &a1.short_id[..])
    );
    assert_eq!(
        (
            n.command.as_str(),
            n.output_tail.as_str(),
            n.session.as_str()
        ),
        ("echo one; exit 4", "one\n", "a")
    );
    assert_eq!(Some(&n.finished_at), a1.finished_at.as_ref());
    let b = peek(&c, "b", None, None).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].job_id, b1.id);
    assert!(peek(&c, "default", None, None).await.is_empty());
    // after_seq and max.
    assert_eq!(peek(&c, "a", Some(a[0].seq), None).await, a[1..]);
    assert_eq!(peek(&c, "a", None, Some(1)).await, a[..1]);
    // Peeking consumes nothing.
    assert_eq!(peek(&c, "a", None, None).await, a);
}

#[tokio::test]
async fn tail_bytes_sizes_the_output_tail() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = c
        .call::<JobSubmit>(&SubmitParams {
            command: "seq 1 2000".into(),
            tail_bytes: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    let n = c
        .call::<NotificationsWait>(&NotificationsWaitParams {
            session: None,
            timeout_ms: 30_000,
            max: None,
        })
        .await
        .unwrap()
        .notifications;
    assert_eq!(n[0].job_id, job.id);
    assert_eq!(n[0].output_tail, "1999\n2000\n");
    // The default is the last 1000 bytes.
    let _ = run_in(&c, "big", "seq 1 2000").await;
    let n = peek(&c, "big", None, None).await;
    assert_eq!(n[0].output_tail.len(), 1000);
    assert!(n[0].output_tail.ends_with("1999\n2000\n"));
}

#[tokio::test]
async fn ack_consumes_up_to_a_seq_and_counts() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    for i in 0..3 {
        run_in(&c, "s", &format!("echo {i}")).await;
    }
    let all = peek(&c, "s", None, None).await;
    assert_eq!(all.len(), 3);
    let ack = AckParams {
        session: Some("s".into()),
        up_to_seq: all[1].seq,
    };
    assert_eq!(c.call::<NotificationsAck>(&ack).await.unwrap().acked, 2);
    let twice = c.call::<NotificationsAck>(&ack).await.unwrap();
    assert_eq!(twice.acked, 0, "acking twice is harmless");
    assert_eq!(peek(&c, "s", None, None).await, all[2..]);
    // Another session's ack does not touch this one.
    let other = c
        .call::<NotificationsAck>(&AckParams {
            session: Some("t".into()),
            up_to_seq: u64::MAX,
        })
        .await
        .unwrap();
    assert_eq!(other.acked, 0);
    assert_eq!(peek(&c, "s", None, None).await.len(), 1);
}

#[tokio::test]
async fn drain_returns_each_notification_once() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    for i in 0..3 {
        run_in(&c, "d", &format!("echo {i}")).await;
    }
    let drain = |max| DrainParams {
        session: Some("d".into()),
        max,
    };
    let first = c
        .call::<NotificationsDrain>(&drain(Some(2)))
        .await
        .unwrap()
        .notifications;
    assert_eq!(first.len(), 2);
    let rest = c
        .call::<NotificationsDrain>(&drain(None))
        .await
        .unwrap()
        .notifications;
    assert_eq!(rest.len(), 1);
    assert!(rest[0].seq > first[1].seq);
    let none = c.call::<NotificationsDrain>(&drain(None)).await.unwrap();
    assert!(none.notifications.is_empty());
    assert!(peek(&c, "d", None, None).await.is_empty());
}

#[tokio::test]
async fn wait_returns_when_a_job_of_the_session_ends_or_at_the_timeout() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    // Nothing pending: an empty reply at the timeout.
    let empty = c
        .call::<NotificationsWait>(&NotificationsWaitParams {
            session: Some("w".into()),
            timeout_ms: 50,
            max: None,
        })
        .await
        .unwrap();
    assert!(empty.notifications.is_empty());
    // A waiter on session w is woken by w's job, not by another session's.
    let fifo = env.root().join("go");
    agentd_tests::mkfifo(&fifo);
    let waiter = {
        let c2 = daemon.client().await;
        tokio::spawn(async move {
            c2.call::<NotificationsWait>(&NotificationsWaitParams {
                session: Some("w".into()),
                timeout_ms: 60_000,
                max: None,
            })
            .await
            .unwrap()
        })
    };
    run_in(&c, "other", "true").await;
    let job = c
        .call::<JobSubmit>(&SubmitParams {
            command: format!("read x < {}", fifo.display()),
            session: Some("w".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    std::fs::write(&fifo, "go\n").unwrap();
    let got = waiter.await.unwrap().notifications;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job_id, job.id);
    // wait does not consume: the notification is still pending.
    assert_eq!(peek(&c, "w", None, None).await, got);
    // With one pending, wait returns at once.
    let again = c
        .call::<NotificationsWait>(&NotificationsWaitParams {
            session: Some("w".into()),
            timeout_ms: 60_000,
            max: None,
        })
        .await
        .unwrap();
    assert_eq!(again.notifications, got);
}
