//! A steady load (issue 11): `true` jobs submitted at a fixed rate for a
//! while, their notifications taken as they come, with agentd's resident
//! memory, its database (file and WAL) and the number of files and
//! directories in its state dir sampled once a second. With the default
//! retention and a table at its `max_finished_jobs`, all three must stay
//! flat: each new job's row and log replace an old one's.

use crate::agentd_side::Agentd;
use crate::procfs;
use crate::report::{Row, bytes};
use agentd_proto::Client;
use agentd_proto::methods::{DaemonInfo, DrainParams, JobSubmit, NotificationsDrain, SubmitParams};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One sample: jobs submitted so far, RSS, database bytes, state dir
/// entries.
#[derive(Clone, Copy, Debug)]
struct Sample {
    jobs: f64,
    rss: f64,
    db: f64,
    entries: f64,
}

/// Files and directories under `dir`, recursively (the inodes the state
/// dir holds, but for hard links).
fn entries(dir: &Path) -> u64 {
    let Ok(list) = std::fs::read_dir(dir) else {
        return 0;
    };
    list.filter_map(Result::ok)
        .map(|e| {
            let below = match e.file_type() {
                Ok(t) if t.is_dir() => entries(&e.path()),
                _ => 0,
            };
            1 + below
        })
        .sum()
}

/// The database's bytes: `agentd.db` and its WAL.
fn db_bytes(state_dir: &Path) -> u64 {
    ["agentd.db", "agentd.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(state_dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn sample(agentd: &Agentd, jobs: usize) -> anyhow::Result<Sample> {
    Ok(Sample {
        jobs: jobs as f64,
        rss: procfs::rss_bytes(agentd.pid())? as f64,
        db: db_bytes(agentd.state_dir()) as f64,
        entries: entries(agentd.state_dir()) as f64,
    })
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

/// `rate` jobs of `true` a second for `length`, notifications drained once
/// a second; returns the slopes of RSS, database size and state dir
/// entries per job. Target: each under 5 % of what a job cost when
/// nothing was ever removed (issue 11: 1.1 KB of RSS, 8.8 KB of disk and 3
/// inodes per job). With `fill_to`, the table is first filled (pipelined
/// `true` jobs) to that many jobs, so that the default retention's
/// `max_finished_jobs` (10,000) is reached before the measurement.
pub async fn steady(
    agentd: &Agentd,
    client: &Arc<Client>,
    rate: u32,
    length: Duration,
    fill_to: Option<usize>,
) -> anyhow::Result<Row> {
    if let Some(total) = fill_to {
        let have = client
            .call::<DaemonInfo>(&Default::default())
            .await?
            .jobs
            .total as usize;
        let more = total.saturating_sub(have);
        if more > 0 {
            crate::figures::submit_pipelined(client, more, "steady-fill").await?;
            crate::figures::await_notifications(client, "steady-fill", more).await?;
        }
    }
    let n = (f64::from(rate) * length.as_secs_f64()) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let drain = || async {
        client
            .call::<NotificationsDrain>(&DrainParams {
                session: Some("steady".into()),
                max: None,
            })
            .await
            .map(|d| d.notifications.len())
    };
    let mut samples = vec![sample(agentd, 0)?];
    let (mut drained, start) = (0, Instant::now());
    for i in 1..=n {
        ticker.tick().await;
        client
            .call::<JobSubmit>(&SubmitParams {
                command: "true".into(),
                session: Some("steady".into()),
                ..Default::default()
            })
            .await?;
        if i % rate as usize == 0 {
            drained += drain().await?;
            let now = sample(agentd, i)?;
            if i % (rate as usize * 30) == 0 {
                eprintln!(
                    "agentd-bench: steady: {i} jobs, RSS {}, database {}, {} entries",
                    bytes(now.rss as u64),
                    bytes(now.db as u64),
                    now.entries
                );
            }
            samples.push(now);
        }
    }
    let took = start.elapsed();
    let left = n.saturating_sub(drained);
    crate::figures::await_notifications(client, "steady", left).await?;
    let of =
        |f: fn(&Sample) -> f64| slope(&samples.iter().map(|s| (s.jobs, f(s))).collect::<Vec<_>>());
    let (rss, db, files) = (of(|s| s.rss), of(|s| s.db), of(|s| s.entries));
    let last = samples.last().copied().unwrap_or(samples[0]);
    let threads = procfs::threads(agentd.pid())?;
    Ok(Row::plain(
        format!(
            "{rate} jobs/s of `true` for {:.0} s ({n} jobs, notifications taken), slope per job of agentd's RSS, database size, state dir entries",
            took.as_secs_f64()
        ),
        format!(
            "RSS {rss:+.1} B/job (ends at {}, {threads} threads), database {db:+.1} B/job (ends at {}), entries {files:+.3}/job (ends at {:.0})",
            bytes(last.rss as u64),
            bytes(last.db as u64),
            last.entries
        ),
        "—".into(),
        "flat: < 56 B, < 440 B and < 0.15 per job (5 % of the costs without retention)",
        rss.abs() < 56.0 && db.abs() < 440.0 && files.abs() < 0.15,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn slopes_of_lines_and_flat_series() {
        let line: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 1.0)).collect();
        assert!((super::slope(&line) - 3.0).abs() < 1e-9);
        assert_eq!(super::slope(&[(1.0, 5.0), (2.0, 5.0)]), 0.0);
    }
}
