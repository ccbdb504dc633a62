//! The output cap (`[output] max_bytes`, docs/limits.md): a job that writes
//! more keeps its head and its newest tail, the middle is dropped from the
//! disk, `output_bytes` still counts every byte, `job.output` says which
//! range was dropped and never returns it, and the job's `reason` and
//! notification say the output was truncated.

use agentd_proto::Client;
use agentd_proto::JobState;
use agentd_proto::methods::*;
use agentd_tests::rpc::{submit, wait};
use agentd_tests::{Daemon, TestEnv, run};
use std::os::unix::fs::MetadataExt;

const CAP: u64 = 64 * 1024;

fn start(env: &TestEnv) -> Daemon {
    let config = env.root().join("config/agentd.toml");
    std::fs::write(&config, format!("[output]\nmax_bytes = {CAP}\n")).unwrap();
    env.start_daemon_with(|cmd| {
        cmd.arg("--config").arg(&config);
    })
}

async fn read(c: &Client, id: &str, offset: Option<u64>, tail: Option<u64>) -> OutputResult {
    c.call::<JobOutput>(&OutputParams {
        id: id.into(),
        offset,
        limit: Some(4 << 20),
        tail,
        wait_ms: None,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_job_writing_past_the_cap_keeps_its_head_and_newest_tail() {
    let env = TestEnv::new();
    let daemon = start(&env);
    let c = daemon.client().await;
    // 10 + 1,000,000 + 1 + 10 bytes.
    let job = submit(
        &c,
        "echo HEAD-MARK; head -c 1000000 /dev/zero | tr '\\0' m; echo; echo TAIL-MARK",
    )
    .await;
    let done = wait(&c, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let total = 1_000_021;
    assert_eq!(done.output_bytes, total, "every byte written is counted");
    let reason = done.reason.clone().unwrap_or_default();
    assert!(reason.contains("output truncated"), "{done:?}");

    // The log holds the cap (and a partial block) on disk, at its full size.
    let log = env.state_dir.join("jobs").join(format!("{}.log", job.id));
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!(meta.len(), total);
    assert!(
        meta.blocks() * 512 <= CAP + meta.blksize(),
        "{} bytes on disk",
        meta.blocks() * 512
    );

    // From the start: the head, up to the dropped range.
    let head = read(&c, &job.id, Some(0), None).await;
    let dropped = head.dropped.expect("the dropped range is reported");
    assert_eq!(head.offset, 0);
    assert!(
        head.data.starts_with("HEAD-MARK\nmmm"),
        "{:?}",
        &head.data[..20]
    );
    assert_eq!(head.next_offset, dropped.from);
    assert_eq!(dropped.from, CAP / 4, "the head: a quarter of the cap");
    assert!(total - dropped.to <= CAP - dropped.from);
    assert!(head.data.bytes().all(|b| b != 0), "no zeros of the hole");

    // A read inside the dropped range starts at its end: the newest tail.
    let middle = read(&c, &job.id, Some(dropped.from + 10), None).await;
    assert_eq!(middle.offset, dropped.to);
    assert_eq!(middle.next_offset, total);
    assert!(middle.data.ends_with("mmm\nTAIL-MARK\n"));
    assert!(middle.complete);
    assert!(middle.data.bytes().all(|b| b != 0));

    // The tail, and the notification's tail.
    let tail = read(&c, &job.id, None, Some(14)).await;
    assert_eq!(tail.data, "mmm\nTAIL-MARK\n");
    let notes = c
        .call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications;
    let note = notes.iter().find(|n| n.job_id == job.id).unwrap();
    assert!(note.output_tail.ends_with("TAIL-MARK\n"));
    assert_eq!(note.reason.as_deref(), Some(reason.as_str()));

    // agentctl logs prints the head then the tail, and says what it skipped.
    let (code, out, err) = run(env.agentctl().args(["logs", &job.short_id]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len() as u64, dropped.from + (total - dropped.to));
    assert!(out.starts_with("HEAD-MARK\n") && out.ends_with("TAIL-MARK\n"));
    assert!(err.contains("dropped"), "{err}");

    // A job within the cap loses nothing and says nothing.
    let small = submit(&c, "echo small").await;
    let small = wait(&c, &small.id).await;
    assert_eq!(small.reason, None);
    let r = read(&c, &small.id, Some(0), None).await;
    assert_eq!((r.data.as_str(), r.dropped), ("small\n", None));
}
