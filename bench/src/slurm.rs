//! The Slurm executor's figures (docs/slurm.md), against a one-node Slurm
//! started for the run by `tests/slurm/cluster.sh` and an agentd of its
//! own pointed at it with `[slurm] conf`:
//!
//! - `job.submit` with `executor: "slurm"` against `sbatch --parsable`
//!   alone (the same script on stdin), alternating;
//! - the end of a Slurm job (the last thing it does is print the time) to
//!   its notification, at the default `poll_interval_ms`;
//! - agentd's CPU while no Slurm job is live (no poll may run).
//!
//! Where Slurm is not installed (or the run is not root, which the test
//! cluster needs) the figures are skipped with a line saying why.

use crate::agentd_side::Agentd;
use crate::report::{Row, ms};
use crate::stats::median;
use crate::{procfs, workspace};
use agentd_proto::methods::*;
use agentd_proto::{Client, Executor};
use anyhow::{Context, bail, ensure};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A test cluster for the run, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Cluster {
    fn start() -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("agentd-bench-slurm-")
            .tempdir()?;
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .context("running tests/slurm/cluster.sh")?;
        if !out.status.success() {
            bail!(
                "tests/slurm/cluster.sh start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let conf = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Ok(Cluster { dir, conf })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn script() -> PathBuf {
    workspace().join("tests/slurm/cluster.sh")
}

/// Why the Slurm figures cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    let on_path = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).exists()))
    };
    if let Some(p) = ["sbatch", "squeue", "slurmctld", "slurmd", "munged"]
        .into_iter()
        .find(|p| !on_path(p))
    {
        return Some(format!("{p} is not installed"));
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
        });
    (uid.as_deref() != Some("0")).then(|| "the test cluster needs root".to_string())
}

/// Runs the Slurm figures; an empty list (after saying why) where Slurm
/// cannot run.
pub fn figures(bin_dir: &Path, samples: usize, idle: Duration) -> anyhow::Result<Vec<Row>> {
    if let Some(why) = unavailable() {
        eprintln!("agentd-bench: skipped: the Slurm figures: {why}");
        return Ok(Vec::new());
    }
    let cluster = Cluster::start()?;
    let root = tempfile::Builder::new().prefix("agentd-bench-").tempdir()?;
    let agentd = Agentd::start_with_config(
        bin_dir,
        root.path(),
        Some(&format!(
            "[slurm]\nconf = {:?}\n",
            cluster.conf.display().to_string()
        )),
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = rt.block_on(agentd.client())?;
    let cwd = root.path().display().to_string();
    let rows = vec![
        rt.block_on(submit_round_trip(&client, &cluster, samples, &cwd))?,
        rt.block_on(end_to_notification(&client, samples, &cwd))?,
        idle_cpu(&agentd, idle)?,
    ];
    Ok(rows)
}

fn params(command: &str, session: &str, cwd: &str) -> SubmitParams {
    SubmitParams {
        command: command.into(),
        cwd: Some(cwd.into()),
        session: Some(session.into()),
        executor: Some(Executor::Slurm),
        ..Default::default()
    }
}

/// `sbatch --parsable` of `true` by itself, as agentd runs it (script on
/// stdin, output to a file).
fn sbatch_alone(cluster: &Cluster, out: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--output={}", out.display()))
        .env("SLURM_CONF", &cluster.conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("sbatch's stdin")?
        .write_all(b"#!/bin/sh\nexec /bin/sh -c true\n")?;
    let status = child.wait_with_output()?.status;
    ensure!(status.success(), "sbatch failed ({status})");
    Ok(start.elapsed())
}

async fn submit_round_trip(
    client: &Client,
    cluster: &Cluster,
    samples: usize,
    cwd: &str,
) -> anyhow::Result<Row> {
    let (mut ours, mut alone) = (Vec::new(), Vec::new());
    let out = Path::new(cwd).join("sbatch-alone.log");
    for _ in 0..samples {
        let p = params("true", "slurm-rtt", cwd);
        let start = Instant::now();
        client.call::<JobSubmit>(&p).await?;
        ours.push(start.elapsed());
        alone.push(sbatch_alone(cluster, &out)?);
    }
    crate::figures::await_notifications(client, "slurm-rtt", samples).await?;
    let (o, a) = (median(&mut ours), median(&mut alone));
    Ok(Row::ratio(
        format!("`job.submit` to Slurm vs `sbatch --parsable` alone ({samples} each, alternating)"),
        ms(o),
        ms(a),
        o.as_secs_f64() / a.as_secs_f64(),
        "< 1.5× sbatch",
        |r| r < 1.5,
    ))
}

/// Jobs one after another, each printing the wall clock as its last act;
/// the time from then to its notification.
async fn end_to_notification(client: &Client, samples: usize, cwd: &str) -> anyhow::Result<Row> {
    let mut lat = Vec::new();
    for _ in 0..samples {
        let job = client
            .call::<JobSubmit>(&params("sleep 0.3; date +%s.%N", "slurm-end", cwd))
            .await?;
        // Jobs run one at a time: the next notification is this job's.
        let got = client
            .call::<NotificationsWait>(&NotificationsWaitParams {
                session: Some("slurm-end".into()),
                timeout_ms: 120_000,
                max: None,
            })
            .await?;
        let arrived = SystemTime::now();
        let Some(found) = got.notifications.into_iter().find(|n| n.job_id == job.id) else {
            bail!("no notification for a Slurm job in 2 minutes");
        };
        let n = (found, arrived);
        client
            .call::<NotificationsAck>(&AckParams {
                session: Some("slurm-end".into()),
                up_to_seq: n.0.seq,
            })
            .await?;
        let ended: f64 =
            n.0.output_tail
                .trim()
                .parse()
                .with_context(|| format!("the job printed no time: {:?}", n.0.output_tail))?;
        let arrived = n.1.duration_since(SystemTime::UNIX_EPOCH)?.as_secs_f64();
        lat.push(Duration::from_secs_f64((arrived - ended).max(0.0)));
    }
    let m = median(&mut lat);
    Ok(Row::plain(
        format!(
            "end of a Slurm job to its notification ({samples} jobs, default poll_interval_ms 500)"
        ),
        ms(m),
        "—".into(),
        "< 1.5 s",
        m < Duration::from_millis(1500),
    ))
}

/// agentd's CPU over `idle` with no Slurm job live, after the Slurm jobs
/// above: no poll may run.
fn idle_cpu(agentd: &Agentd, idle: Duration) -> anyhow::Result<Row> {
    let before = procfs::cpu_time(agentd.pid())?;
    std::thread::sleep(idle);
    let used = procfs::cpu_time(agentd.pid())? - before;
    Ok(Row::plain(
        format!(
            "agentd CPU with no Slurm job live, after Slurm jobs ran (over {} s, 10 ms ticks)",
            idle.as_secs()
        ),
        ms(used),
        "—".into(),
        "0",
        used.is_zero(),
    ))
}
