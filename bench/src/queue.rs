//! What dependencies cost (issue 17): a chain of `n` jobs, each `after`
//! the one before, against the same `n` jobs run one at a time by a
//! group's `max_running = 1`, on the same daemon. Both are submitted one
//! call after another (a chain has to be: each submit names the id the
//! one before returned), so the difference is the scheduling alone:
//! releasing a dependent when its dependency succeeds against starting
//! the next job when a slot frees.

use crate::report::{Row, ms};
use agentd_proto::Client;
use agentd_proto::methods::{GroupSetParams, JobGroupSet, JobSubmit, SubmitParams};
use std::time::Instant;

/// Target: the chain takes at most this many times the serial run.
pub const TARGET: f64 = 1.3;

fn params(session: &str, group: &str, after: Option<String>, cwd: &str) -> SubmitParams {
    SubmitParams {
        command: "true".into(),
        session: Some(session.into()),
        group: Some(group.into()),
        after: after.map(|id| vec![id]),
        cwd: Some(cwd.into()),
        ..Default::default()
    }
}

/// The chain of `n` against `n` jobs under `max_running = 1`, each until
/// every job's notification arrived.
pub async fn chain(client: &Client, n: usize, cwd: &str) -> anyhow::Result<Row> {
    client
        .call::<JobGroupSet>(&GroupSetParams {
            group: "bench-serial".into(),
            max_running: Some(1),
        })
        .await?;
    let start = Instant::now();
    for _ in 0..n {
        client
            .call::<JobSubmit>(&params("bench-serial", "bench-serial", None, cwd))
            .await?;
    }
    crate::figures::await_notifications(client, "bench-serial", n).await?;
    let serial = start.elapsed();

    let start = Instant::now();
    let mut last: Option<String> = None;
    for _ in 0..n {
        let job = client
            .call::<JobSubmit>(&params("bench-chain", "bench-chain", last.take(), cwd))
            .await?;
        last = Some(job.id);
    }
    crate::figures::await_notifications(client, "bench-chain", n).await?;
    let chained = start.elapsed();
    let ratio = chained.as_secs_f64() / serial.as_secs_f64();
    Ok(Row::ratio(
        format!(
            "a chain of {n} `true` jobs, each `after` the one before, vs the same {n} under a group's `max_running = 1` (submitted one call after another, until all notified)"
        ),
        ms(chained),
        ms(serial),
        ratio,
        "≤ 1.3× `max_running = 1`",
        |r| r <= TARGET,
    ))
}
