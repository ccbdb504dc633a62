//! What a sandbox costs a job's start (docs/sandbox.md): the same work with
//! `sandbox: {mode: "workspace-write"}` beside `mode: "none"`, on the same
//! daemon, so the difference is the shim's set-up (temp dir, Landlock
//! ruleset, applying it before `exec`, removing the temp dir).

use crate::report::{Row, ms};
use crate::stats::median;
use agentd_proto::methods::{JobSubmit, SubmitParams};
use agentd_proto::{Client, Sandbox, SandboxMode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Target: a sandbox adds less than this to a job's start (issue 15).
pub const TARGET: Duration = Duration::from_millis(1);

fn params(mode: SandboxMode, session: &str, cwd: &str) -> SubmitParams {
    SubmitParams {
        command: "true".into(),
        session: Some(session.into()),
        cwd: Some(cwd.into()),
        sandbox: (mode != SandboxMode::None).then(|| Sandbox {
            mode,
            ..Sandbox::default()
        }),
        ..Default::default()
    }
}

/// `job.submit` round trips (the reply carries the job's pid, so the
/// shim's preparation is inside it), workspace-write and none
/// alternating, `samples` of each.
pub async fn submit_round_trip(client: &Client, samples: usize, cwd: &str) -> anyhow::Result<Row> {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        for (mode, into) in [
            (SandboxMode::WorkspaceWrite, &mut with),
            (SandboxMode::None, &mut without),
        ] {
            let p = params(mode, "sandbox-rtt", cwd);
            let start = Instant::now();
            client.call::<JobSubmit>(&p).await?;
            into.push(start.elapsed());
        }
    }
    let (w, n) = (median(&mut with), median(&mut without));
    let extra = w.saturating_sub(n);
    Ok(Row::plain(
        format!(
            "`job.submit` round trip with `workspace-write` vs without a sandbox ({samples} each, alternating)"
        ),
        ms(w),
        ms(n),
        "sandbox adds < 1 ms",
        extra < TARGET,
    ))
}

/// `n` pipelined `job.submit` of `true` until all have finished, with
/// `workspace-write`, against the same without a sandbox (run first).
pub async fn burst(client: &Arc<Client>, n: usize, cwd: &str) -> anyhow::Result<Row> {
    let mut took = Vec::new();
    for (mode, session) in [
        (SandboxMode::None, "sandbox-burst-none"),
        (SandboxMode::WorkspaceWrite, "sandbox-burst-ws"),
    ] {
        let start = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..n {
            let client = client.clone();
            let p = params(mode, session, cwd);
            calls.spawn(async move { client.call::<JobSubmit>(&p).await });
        }
        while let Some(reply) = calls.join_next().await {
            reply??;
        }
        crate::figures::await_notifications(client, session, n).await?;
        took.push(start.elapsed());
    }
    let (none, ws) = (took[0], took[1]);
    let per_job = ws.saturating_sub(none) / n as u32;
    Ok(Row::plain(
        format!(
            "{n} pipelined `job.submit` of `true` until all finished, `workspace-write` vs without a sandbox ({} more per job)",
            ms(per_job)
        ),
        ms(ws),
        ms(none),
        "sandbox adds < 1 ms per job",
        per_job < TARGET,
    ))
}
