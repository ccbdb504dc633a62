//! The figures of issue 6, each measured the same way for agentd and, where
//! the target compares with it, for pueue or a bare baseline. Each function
//! returns one [`Row`] of the report.

use crate::agentd_side::Agentd;
use crate::procfs;
use crate::pueue_side::Pueue;
use crate::report::{Row, bytes, ms};
use crate::stats::median;
use agentd_proto::Client;
use agentd_proto::methods::{
    DrainParams, JobList, JobSubmit, JobWait, ListParams, NotificationsDrain, NotificationsWait,
    NotificationsWaitParams, SubmitParams, WaitParams,
};
use anyhow::{Context, bail, ensure};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much each figure does: the full run's sizes are the issue's, the
/// quick run's keep every code path at a fraction of the time.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Jobs in each tool's table before the CLI figures (about 1,000).
    pub table: usize,
    /// Samples of each CLI round trip.
    pub cli_samples: usize,
    /// Samples of submit → notification (pueue's take ≥ 300 ms each).
    pub latency_samples: usize,
    /// Samples of each `status`/`jobs --json` call.
    pub status_samples: usize,
    /// Seconds of idle CPU measurement.
    pub idle: Duration,
    /// Jobs in the pipelined burst (9,000: with the rest, 10,000 in all).
    pub burst: usize,
    /// Samples of `job.list` of everything.
    pub list_samples: usize,
    /// Bytes the big job prints.
    pub big_output: u64,
    /// Bytes the capped job prints, and the `[output] max_bytes` of the
    /// agentd it runs under.
    pub capped_output: (u64, u64),
    /// How long the steady load of 10 jobs a second runs.
    pub steady: Duration,
    /// Jobs in the dependency chain (and in its `max_running = 1` twin).
    pub chain: usize,
}

impl Sizes {
    /// The sizes.
    pub const FULL: Sizes = Sizes {
        table: 1000,
        cli_samples: 200,
        latency_samples: 60,
        status_samples: 30,
        idle: Duration::from_secs(5),
        burst: 9000,
        list_samples: 10,
        big_output: 1 << 30,
        capped_output: (4 << 30, 256 << 20),
        steady: Duration::from_secs(120),
        chain: 1000,
    };
    /// About a minute in all.
    pub const QUICK: Sizes = Sizes {
        table: 100,
        cli_samples: 20,
        latency_samples: 8,
        status_samples: 5,
        idle: Duration::from_secs(1),
        burst: 300,
        list_samples: 3,
        big_output: 64 << 20,
        capped_output: (256 << 20, 16 << 20),
        steady: Duration::from_secs(5),
        chain: 100,
    };
}

/// A `job.submit` of `command` in `session`.
fn submit(command: &str, session: &str) -> SubmitParams {
    SubmitParams {
        command: command.into(),
        session: Some(session.into()),
        ..Default::default()
    }
}

/// Submits `n` jobs of `true` in `session` on one connection, all in
/// flight at once (pipelined), and returns once every reply has arrived.
pub async fn submit_pipelined(client: &Arc<Client>, n: usize, session: &str) -> anyhow::Result<()> {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = client.clone();
        let params = submit("true", session);
        calls.spawn(async move { client.call::<JobSubmit>(&params).await });
    }
    while let Some(reply) = calls.join_next().await {
        reply??;
    }
    Ok(())
}

/// Takes notifications of `session` (long-poll, then drain) until `n` have
/// arrived.
pub async fn await_notifications(client: &Client, session: &str, n: usize) -> anyhow::Result<()> {
    let mut seen = 0;
    while seen < n {
        let waited = client
            .call::<NotificationsWait>(&NotificationsWaitParams {
                session: Some(session.into()),
                timeout_ms: 120_000,
                max: None,
            })
            .await?;
        ensure!(
            !waited.notifications.is_empty(),
            "no notification in {session} for 2 minutes ({seen} of {n})"
        );
        seen += client
            .call::<NotificationsDrain>(&DrainParams {
                session: Some(session.into()),
                max: None,
            })
            .await?
            .notifications
            .len();
    }
    Ok(())
}

/// Fills both tables with `sizes.table` finished jobs of `true`.
pub async fn fill(client: &Arc<Client>, pueue: &Pueue, sizes: Sizes) -> anyhow::Result<()> {
    submit_pipelined(client, sizes.table, "fill").await?;
    await_notifications(client, "fill", sizes.table).await?;
    for _ in 0..sizes.table {
        pueue.add("true")?;
    }
    pueue.wait_all_done()?;
    Ok(())
}

/// Wall time of one command run to its end; fails when it fails.
fn time_command(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

/// `agentctl run -- true` against `pueue add -- true`, alternating, with
/// about `sizes.table` jobs in each table.
pub fn submit_round_trip(agentd: &Agentd, pueue: &Pueue, sizes: Sizes) -> anyhow::Result<Row> {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..sizes.cli_samples {
        ours.push(time_command(agentd.agentctl().args(["run", "--", "true"]))?);
        theirs.push(time_command(&mut pueue.cli(&["add", "--", "true"]))?);
    }
    let (a, p) = (median(&mut ours), median(&mut theirs));
    Ok(Row::ratio(
        format!(
            "`agentctl run -- true` vs `pueue add -- true`, {} jobs in each table",
            sizes.table
        ),
        ms(a),
        ms(p),
        a.as_secs_f64() / p.as_secs_f64(),
        "≤ 0.5× pueue",
        |r| r <= 0.5,
    ))
}

/// `n` samples of agentd's submit → notification: from sending
/// `job.submit` of `true` to `notifications.wait` returning the job's
/// notification, on one connection (then drained).
pub async fn latency_samples(client: &Client, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut ours = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        client.call::<JobSubmit>(&submit("true", "latency")).await?;
        let got = client
            .call::<NotificationsWait>(&NotificationsWaitParams {
                session: Some("latency".into()),
                timeout_ms: 10_000,
                max: None,
            })
            .await?;
        ours.push(start.elapsed());
        ensure!(got.notifications.len() == 1, "no notification within 10 s");
        client
            .call::<NotificationsDrain>(&DrainParams {
                session: Some("latency".into()),
                max: None,
            })
            .await?;
    }
    Ok(ours)
}

/// agentd's submit → notification alone ([`latency_samples`]), for the
/// hot-path run.
pub async fn latency_alone(client: &Client, n: usize) -> anyhow::Result<Row> {
    let mut samples = latency_samples(client, n).await?;
    let a = median(&mut samples);
    Ok(Row::plain(
        format!("job submitted → notification available (`true`), {n} samples"),
        ms(a),
        "—".into(),
        "< 10 ms",
        a < Duration::from_millis(10),
    ))
}

/// Submit → notification available, against pueue's submit → `Done` seen
/// in `pueue status`.
///
/// agentd: from sending `job.submit` to `notifications.wait` returning the
/// job's notification, on one connection. pueue: from `pueue add` having
/// returned (its CLI start not counted) to the end of the first `pueue
/// status --json` that shows the task `Done`, polled back to back.
pub async fn notification_latency(
    client: &Client,
    pueue: &Pueue,
    sizes: Sizes,
) -> anyhow::Result<Row> {
    let mut ours = latency_samples(client, sizes.latency_samples).await?;
    let mut theirs = Vec::new();
    for _ in 0..sizes.latency_samples {
        let id = pueue.add("true")?;
        let start = Instant::now();
        while !pueue.is_task_done(id)? {
            ensure!(
                start.elapsed() < Duration::from_secs(10),
                "pueue task {id} not done in 10 s"
            );
        }
        theirs.push(start.elapsed());
    }
    let (a, p) = (median(&mut ours), median(&mut theirs));
    let ratio = a.as_secs_f64() / p.as_secs_f64();
    Ok(Row::ratio(
        "job submitted → notification available (`true`) vs pueue's submit → `Done` visible".into(),
        ms(a),
        ms(p),
        ratio,
        "< 10 ms and ≤ 0.05× pueue",
        move |r| r <= 0.05 && a < Duration::from_millis(10),
    ))
}

/// `agentctl jobs --all --json` against `pueue status --json`.
pub fn list_cli(agentd: &Agentd, pueue: &Pueue, sizes: Sizes) -> anyhow::Result<Row> {
    let out = agentd
        .agentctl()
        .args(["jobs", "--all", "--json"])
        .output()?;
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).context("agentctl jobs --json")?;
    let (_, pueue_total) = pueue.done_count()?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..sizes.status_samples {
        ours.push(time_command(
            agentd.agentctl().args(["jobs", "--all", "--json"]),
        )?);
        theirs.push(time_command(&mut pueue.cli(&["status", "--json"]))?);
    }
    let (a, p) = (median(&mut ours), median(&mut theirs));
    Ok(Row::ratio(
        format!(
            "`agentctl jobs --all --json` ({} jobs) vs `pueue status --json` ({pueue_total} tasks)",
            listed.len()
        ),
        ms(a),
        ms(p),
        a.as_secs_f64() / p.as_secs_f64(),
        "≤ 0.25× pueue",
        |r| r <= 0.25,
    ))
}

/// Resident memory of both daemons, each holding its table.
pub fn rss(agentd: &Agentd, pueue: &Pueue, jobs: usize) -> anyhow::Result<Row> {
    let (a, p) = (
        procfs::rss_bytes(agentd.pid())?,
        procfs::rss_bytes(pueue.pid())?,
    );
    Ok(Row::ratio(
        format!("daemon RSS with {jobs} jobs"),
        bytes(a),
        bytes(p),
        a as f64 / p as f64,
        "below pueued's and < 32 MiB",
        move |r| r < 1.0 && a < 32 << 20,
    ))
}

/// CPU both daemons use while nothing happens, per 5 s.
pub fn idle_cpu(agentd: &Agentd, pueue: &Pueue, sizes: Sizes, jobs: usize) -> anyhow::Result<Row> {
    let before = (
        procfs::cpu_time(agentd.pid())?,
        procfs::cpu_time(pueue.pid())?,
    );
    std::thread::sleep(sizes.idle);
    let after = (
        procfs::cpu_time(agentd.pid())?,
        procfs::cpu_time(pueue.pid())?,
    );
    let per_5s = |d: Duration| d.mul_f64(5.0 / sizes.idle.as_secs_f64());
    let (a, p) = (per_5s(after.0 - before.0), per_5s(after.1 - before.1));
    Ok(Row::plain(
        format!(
            "idle daemon CPU per 5 s with {jobs} finished jobs (measured over {} s, 10 ms ticks)",
            sizes.idle.as_secs()
        ),
        ms(a),
        ms(p),
        "< 20 ms per 5 s",
        a < Duration::from_millis(20),
    ))
}

/// `sizes.burst` pipelined `job.submit` of `true` until all have finished,
/// against a shell loop spawning as many `sh -c true`.
pub async fn burst(client: &Arc<Client>, sizes: Sizes) -> anyhow::Result<Row> {
    let n = sizes.burst;
    let loop_cmd = format!("i=0; while [ $i -lt {n} ]; do sh -c true; i=$((i+1)); done");
    let baseline = tokio::task::spawn_blocking(move || {
        time_command(Command::new("/bin/sh").args(["-c", &loop_cmd]))
    })
    .await??;
    let start = Instant::now();
    submit_pipelined(client, n, "burst").await?;
    await_notifications(client, "burst", n).await?;
    let ours = start.elapsed();
    Ok(Row::ratio(
        format!(
            "{n} pipelined `job.submit` of `true` until all finished vs a shell loop of {n} `sh -c true`"
        ),
        ms(ours),
        ms(baseline),
        ours.as_secs_f64() / baseline.as_secs_f64(),
        "≤ 1.5× the shell loop",
        |r| r <= 1.5,
    ))
}

/// Every job through `job.list`, page by page (`cursor`, 1000 a page, as
/// `agentctl jobs --all` reads them); returns how many.
async fn list_every_page(client: &Client) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut cursor = None;
    loop {
        let page = client
            .call::<JobList>(&ListParams {
                cursor: cursor.take(),
                ..Default::default()
            })
            .await?;
        count += page.jobs.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}

/// `job.list` of every job (no filter, every page), and agentd's RSS after.
pub async fn list_all(agentd: &Agentd, client: &Client, sizes: Sizes) -> anyhow::Result<Row> {
    let count = list_every_page(client).await?;
    let mut samples = Vec::new();
    for _ in 0..sizes.list_samples {
        let start = Instant::now();
        let got = list_every_page(client).await?;
        samples.push(start.elapsed());
        ensure!(got == count, "job.list returned {got} jobs, then {count}");
    }
    let took = median(&mut samples);
    let rss = procfs::rss_bytes(agentd.pid())?;
    Ok(Row::plain(
        format!("`job.list` of all at {count} jobs, every page; agentd's RSS then"),
        format!("{}; RSS {}", ms(took), bytes(rss)),
        "—".into(),
        "< 100 ms; RSS < 64 MiB",
        took < Duration::from_millis(100) && rss < 64 << 20,
    ))
}

/// Job `id`'s output log: `jobs/<id>.log`, or `jobs/<id>/output.log` for
/// an agentd before the exit journal (A/B runs with `--bin-dir`).
fn log_path(state_dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    let old = state_dir.join("jobs").join(id).join("output.log");
    if old.exists() {
        old
    } else {
        state_dir.join("jobs").join(format!("{id}.log"))
    }
}

/// `sync(1)`: writes back every dirty page, so a measurement starts clean.
fn sync() -> anyhow::Result<()> {
    time_command(&mut Command::new("sync")).map(drop)
}

/// A job printing `sizes.big_output` bytes, against `head -c N /dev/zero >
/// file` on the same file system; checks every byte was kept.
pub async fn big_output(agentd: &Agentd, client: &Client, sizes: Sizes) -> anyhow::Result<Row> {
    let n = sizes.big_output;
    let command = format!("head -c {n} /dev/zero");
    let file = agentd
        .state_dir()
        .parent()
        .context("state dir has a parent")?
        .join("baseline.bin");
    let shell = format!("{command} > '{}'", file.display());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // Alternating, each from a clean page cache (`sync` first), so that
    // neither pays for the other's dirty pages being written back.
    for _ in 0..5 {
        let shell = shell.clone();
        let file = file.clone();
        theirs.push(
            tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
                sync()?;
                let took = time_command(Command::new("/bin/sh").args(["-c", &shell]))?;
                std::fs::remove_file(&file)?;
                Ok(took)
            })
            .await??,
        );
        tokio::task::spawn_blocking(sync).await??;
        let start = Instant::now();
        let job = client.call::<JobSubmit>(&submit(&command, "big")).await?;
        let done = client
            .call::<JobWait>(&WaitParams {
                id: job.id.clone(),
                timeout_secs: Some(600.0),
            })
            .await?;
        ours.push(start.elapsed());
        ensure!(
            done.output_bytes == n,
            "the job kept {} of {n} bytes",
            done.output_bytes
        );
        // Counted, so removed like the baseline's file: a gigabyte of page
        // cache left behind would slow whichever write comes next.
        let log = log_path(agentd.state_dir(), &job.id);
        tokio::task::spawn_blocking(move || std::fs::remove_file(log)).await??;
    }
    let baseline = median(&mut theirs);
    let ours = median(&mut ours);
    Ok(Row::ratio(
        format!(
            "a job printing {} (all bytes kept) vs `head -c {n} /dev/zero > file`",
            bytes(n)
        ),
        ms(ours),
        ms(baseline),
        ours.as_secs_f64() / baseline.as_secs_f64(),
        "≤ 1.3× the redirect",
        |r| r <= 1.3,
    ))
}

/// A job printing `sizes.capped_output.0` bytes under an agentd (`agentd`,
/// started with `[output] max_bytes` = `sizes.capped_output.1`): the most
/// disk its log ever used (its allocated blocks, sampled every 10 ms while
/// the job runs, and at its end) must stay within the cap plus 1 MiB, and
/// `output_bytes` must still count every byte.
pub async fn capped_output(agentd: &Agentd, client: &Client, sizes: Sizes) -> anyhow::Result<Row> {
    use std::os::unix::fs::MetadataExt;
    let (n, cap) = sizes.capped_output;
    let start = Instant::now();
    let job = client
        .call::<JobSubmit>(&submit(&format!("head -c {n} /dev/zero"), "capped"))
        .await?;
    let log = log_path(agentd.state_dir(), &job.id);
    let on_disk = move || std::fs::metadata(&log).map_or(0, |m| m.blocks() * 512);
    let params = WaitParams {
        id: job.id.clone(),
        timeout_secs: Some(600.0),
    };
    let mut wait = std::pin::pin!(client.call::<JobWait>(&params));
    let mut most = 0;
    let done = loop {
        tokio::select! {
            done = &mut wait => break done?,
            _ = tokio::time::sleep(Duration::from_millis(10)) => most = most.max(on_disk()),
        }
    };
    let took = start.elapsed();
    most = most.max(on_disk());
    ensure!(
        done.output_bytes == n,
        "the capped job counted {} of {n} bytes",
        done.output_bytes
    );
    Ok(Row::plain(
        format!(
            "a job printing {} with `[output] max_bytes` = {}: most disk its log used (and its run time)",
            bytes(n),
            bytes(cap)
        ),
        format!("{} ({})", bytes(most), ms(took)),
        "—".into(),
        "≤ max_bytes + 1 MiB",
        most <= cap + (1 << 20),
    ))
}
