//! A long history (issue 11, "Memory bounded by the live set"): agentd
//! with a million finished jobs in its database must start, list and
//! accept jobs as if it had none, in bounded memory.
//!
//! The history is written straight into the database of a stopped agentd
//! (as the tests' `seed_history` does, but in Rust and in one transaction:
//! a million rows in seconds), with an acknowledged notification per job,
//! under an agentd whose retention keeps everything.

use crate::agentd_side::Agentd;
use crate::procfs;
use crate::report::{Row, bytes, ms};
use crate::stats::median;
use agentd_proto::methods::{DaemonInfo, JobSubmit, JobWait, SubmitParams, WaitParams};
use anyhow::{Context, ensure};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// agentd's config for these figures: retention keeps every job.
const KEEP_ALL: &str = "[retention]\nmax_finished_jobs = 0\nmax_age_days = 0\n";

/// How much the history figures do.
#[derive(Clone, Copy, Debug)]
pub struct HistorySizes {
    /// Finished jobs written into the database.
    pub jobs: usize,
    /// Samples of each timed call.
    pub samples: usize,
}

impl HistorySizes {
    /// The size.
    pub const FULL: HistorySizes = HistorySizes {
        jobs: 1_000_000,
        samples: 50,
    };
    /// A few seconds in all.
    pub const QUICK: HistorySizes = HistorySizes {
        jobs: 20_000,
        samples: 20,
    };
}

/// Measures every history figure under `root` (created here) and returns
/// their rows.
///
/// Errors: agentd cannot be started or stopped, the database cannot be
/// written, a command fails.
pub fn figures(bin_dir: &Path, root: &Path, sizes: HistorySizes) -> anyhow::Result<Vec<Row>> {
    std::fs::create_dir_all(root)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // An agentd with an empty history stays up beside the other, so the
    // submit figures alternate between the two under the same load.
    std::fs::create_dir_all(root.join("empty"))?;
    let empty = Agentd::start_with_config(bin_dir, &root.join("empty"), Some(KEEP_ALL))?;
    let full_root = root.join("full");
    std::fs::create_dir_all(&full_root)?;
    let agentd = Agentd::start_with_config(bin_dir, &full_root, Some(KEEP_ALL))?;
    let db = agentd.state_dir().join("agentd.db");
    agentd.stop()?;

    eprintln!(
        "agentd-bench: writing {} finished jobs into {}",
        sizes.jobs,
        db.display()
    );
    let seeded = Instant::now();
    seed(&db, sizes.jobs)?;
    eprintln!("agentd-bench: written in {}", ms(seeded.elapsed()));

    // Restart to the first answer: from spawning agentd to its reply to
    // `daemon.info`.
    let started = Instant::now();
    let agentd = Agentd::start_with_config(bin_dir, &full_root, Some(KEEP_ALL))?;
    let info = rt.block_on(async {
        let c = agentd.client().await?;
        anyhow::Ok(c.call::<DaemonInfo>(&Default::default()).await?)
    })?;
    let restart = started.elapsed();
    ensure!(
        info.jobs.total as usize >= sizes.jobs,
        "agentd counts {} jobs, {} were written",
        info.jobs.total,
        sizes.jobs
    );
    let rss_start = procfs::rss_bytes(agentd.pid())?;

    let live = time_median(&agentd, &["jobs"], sizes.samples)?;
    let page = time_median(&agentd, &["jobs", "--all", "-n", "50"], sizes.samples)?;
    let paged = Instant::now();
    let listed = count_lines(agentd.agentctl().args(["jobs", "--all", "--json"]))?;
    let paged = paged.elapsed();
    let rss_paged = procfs::rss_bytes(agentd.pid())?;
    let (full_submit, empty_submit) =
        rt.block_on(submit_round_trips(&agentd, &empty, sizes.samples))?;
    drop(agentd);
    drop(empty);

    let n = sizes.jobs;
    let mib64 = 64 << 20;
    Ok(vec![
        Row::plain(
            format!("history of {n} jobs: agentd RSS after start"),
            bytes(rss_start),
            "—".into(),
            "< 64 MiB",
            rss_start < mib64,
        ),
        Row::plain(
            format!(
                "history of {n} jobs: agentd RSS after `agentctl jobs --all --json` listed {listed} jobs (in {})",
                ms(paged)
            ),
            bytes(rss_paged),
            "—".into(),
            "< 64 MiB",
            rss_paged < mib64,
        ),
        Row::plain(
            format!("history of {n} jobs: restart to the first answer"),
            ms(restart),
            "—".into(),
            "< 1 s",
            restart < Duration::from_secs(1),
        ),
        Row::plain(
            format!("history of {n} jobs: `agentctl jobs` (live view)"),
            ms(live),
            "—".into(),
            "< 20 ms",
            live < Duration::from_millis(20),
        ),
        Row::plain(
            format!("history of {n} jobs: `agentctl jobs --all -n 50`"),
            ms(page),
            "—".into(),
            "< 30 ms",
            page < Duration::from_millis(30),
        ),
        Row::ratio(
            format!("history of {n} jobs: `job.submit` round trip vs an empty history"),
            ms(full_submit),
            ms(empty_submit),
            full_submit.as_secs_f64() / empty_submit.as_secs_f64(),
            "≤ 1.2×",
            |r| r <= 1.2,
        ),
    ])
}

/// Medians of `samples` `job.submit` round trips of `true` to each of
/// two daemons, alternating, one at a time: each job's end is awaited
/// before the next submit, so no job runs during a round trip.
async fn submit_round_trips(
    a: &Agentd,
    b: &Agentd,
    samples: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let clients = [a.client().await?, b.client().await?];
    let cwd = std::env::temp_dir().display().to_string();
    let mut took = [Vec::new(), Vec::new()];
    for _ in 0..samples {
        for (c, t) in clients.iter().zip(took.iter_mut()) {
            let start = Instant::now();
            let job = c
                .call::<JobSubmit>(&SubmitParams {
                    command: "true".into(),
                    cwd: Some(cwd.clone()),
                    session: Some("history".into()),
                    ..Default::default()
                })
                .await?;
            t.push(start.elapsed());
            c.call::<JobWait>(&WaitParams {
                id: job.id,
                timeout_secs: None,
            })
            .await?;
        }
    }
    let [mut ta, mut tb] = took;
    Ok((median(&mut ta), median(&mut tb)))
}

/// Median wall time of `agentctl ARGS` over `samples` runs.
fn time_median(agentd: &Agentd, args: &[&str], samples: usize) -> anyhow::Result<Duration> {
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let out = agentd
            .agentctl()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        took.push(start.elapsed());
        ensure!(
            out.status.success(),
            "agentctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(median(&mut took))
}

/// Runs `cmd` (a `--json` listing) and counts the jobs it printed.
fn count_lines(cmd: &mut Command) -> anyhow::Result<usize> {
    let out = cmd.stderr(Stdio::piped()).output()?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).context("agentctl jobs --all --json")?;
    Ok(jobs.len())
}

/// Writes `n` finished jobs (`echo N`, succeeded, one second apart, the
/// newest an hour ago, in four sessions) and their acknowledged
/// notifications into the database at `db`, in one transaction. The rows
/// are what agentd writes for such jobs; no output logs are created (a
/// missing log reads as empty).
///
/// Errors: SQLite's (agentd must not be running).
pub fn seed(db: &Path, n: usize) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    let mut seq: i64 = tx.query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
        r.get(0)
    })?;
    let end = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ end.unix_timestamp() as u64);
    {
        let mut job = tx.prepare(
            "INSERT INTO jobs (id, command, cwd, state, exit_code, pid, session, created_at,
                               started_at, finished_at, duration_ms, tail_bytes, output_bytes)
             VALUES (?1, ?2, '/', 'succeeded', 0, 4242, ?3, ?4, ?4, ?5, 5, 1000, 2)",
        )?;
        let mut note = tx.prepare(
            "INSERT INTO notifications (seq, session, job_id, body, acked) VALUES (?1, ?2, ?3, ?4, 1)",
        )?;
        for i in 0..n {
            seq += 1;
            let id = rng.uuid();
            let session = format!("s{}", i % 4);
            let created = end - time::Duration::seconds((n - i) as i64);
            let finished = created + time::Duration::milliseconds(5);
            let (created, finished) = (rfc3339(created), rfc3339(finished));
            let command = format!("echo {i}");
            job.execute(rusqlite::params![id, command, session, created, finished])?;
            let body = serde_json::json!({
                "seq": seq, "job_id": id, "short_id": &id[..8], "session": session,
                "state": "succeeded", "exit_code": 0, "signal": null, "command": command,
                "duration_ms": 5, "output_tail": format!("{i}\n"), "finished_at": finished,
                "reason": null,
            });
            note.execute(rusqlite::params![seq, session, id, body.to_string()])?;
        }
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'last_seq'",
        rusqlite::params![seq],
    )?;
    tx.commit()?;
    Ok(())
}

/// RFC 3339 UTC with milliseconds, as agentd writes times.
fn rfc3339(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).expect("a UTC time formats")
}

/// xorshift64*: random enough for distinct ids, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A version-4 UUID string.
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let a = (a & !0xf000) | 0x4000;
        let b = (b & !(0xc << 60)) | (0x8 << 60);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}
