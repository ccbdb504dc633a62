//! No secret at rest (README, "Security"): a job's environment is on disk
//! only while the job waits in the queue, and once it has started (or was
//! cancelled) no byte of it is left in any file under the state dir — not
//! the database, its WAL, the logs, nor a job's files — whether agentd
//! keeps running, stops cleanly or is killed with SIGKILL. Every file
//! agentd creates there is private (0600, directories 0700).

use agentd_proto::methods::*;
use agentd_proto::{Client, Job, JobState};
use agentd_tests::rpc::{get, wait, wait_for_output};
use agentd_tests::{Daemon, TestEnv, mkfifo};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// A secret no file could hold by chance.
fn secret(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("sekrit-{name}-{nanos}-{}", std::process::id())
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// The files under `dir` whose bytes contain `needle`.
fn holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let needle = needle.as_bytes();
    files_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Asserts that no file under the state dir, and no copy of agentd's own
/// log (debug level), holds any of `secrets`.
fn assert_nowhere(env: &TestEnv, secrets: &[&str], when: &str) {
    for s in secrets {
        let found = holding(&env.state_dir, s);
        assert!(found.is_empty(), "{when}: {s} found in {found:?}");
        let logs: Vec<_> = holding(env.root(), s)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("agentd-")
            })
            .collect();
        assert!(
            logs.is_empty(),
            "{when}: {s} found in agentd's log {logs:?}"
        );
    }
}

/// Starts agentd with `max_running = 1`, debug logging and a loose umask
/// (0002), so modes agentd does not set itself would show.
fn start(env: &TestEnv) -> Daemon {
    let config = env.root().join("config/agentd.toml");
    std::fs::write(&config, "max_running = 1\n").unwrap();
    env.start_daemon_with(|cmd| {
        cmd.arg("--config").arg(&config).env("RUST_LOG", "debug");
        // SAFETY: umask is async-signal-safe and touches only this child.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o002));
                Ok(())
            });
        }
    })
}

/// A job holding `secret` in its environment that prints it upper-cased
/// (so its output never holds the secret itself), then waits on its own
/// FIFO and exits.
struct SecretJob {
    secret: String,
    fifo: PathBuf,
    job: Job,
}

impl SecretJob {
    async fn submit(env: &TestEnv, c: &Client, name: &str) -> SecretJob {
        let secret = secret(name);
        let fifo = env.root().join(format!("{name}.fifo"));
        mkfifo(&fifo);
        let job = c
            .call::<JobSubmit>(&SubmitParams {
                command: format!(
                    "printf 'seen:%s\\n' \"$AGENTD_TEST_SECRET\" | tr a-z A-Z; read l < '{}'",
                    fifo.display()
                ),
                env: Some(BTreeMap::from([(
                    "AGENTD_TEST_SECRET".to_string(),
                    secret.clone(),
                )])),
                ..Default::default()
            })
            .await
            .unwrap();
        SecretJob { secret, fifo, job }
    }

    /// Waits until the job has printed its variable (it has started, with
    /// its environment).
    async fn seen(&self, c: &Client) {
        let want = format!("seen:{}", self.secret).to_uppercase();
        wait_for_output(c, &self.job.id, &want).await;
    }

    /// Lets the job end.
    fn release(&self) {
        std::fs::write(&self.fifo, "x\n").unwrap();
    }
}

#[tokio::test]
async fn no_byte_of_a_jobs_environment_stays_in_the_state_dir() {
    let env = TestEnv::new();
    let daemon = start(&env);
    let c = daemon.client().await;

    // Started at once: its environment goes straight to the job.
    let a = SecretJob::submit(&env, &c, "at-once").await;
    assert_eq!(a.job.state, JobState::Running);
    a.seen(&c).await;
    assert_nowhere(&env, &[&a.secret], "a job started at once");

    // Queued behind it: kept on disk while it waits (that is what lets it
    // survive a crash), which also shows the scan finds what is there.
    let b = SecretJob::submit(&env, &c, "queued").await;
    assert_eq!(b.job.state, JobState::Queued);
    assert!(
        !holding(&env.state_dir, &b.secret).is_empty(),
        "a queued job's environment is stored"
    );
    // A queued job that is cancelled takes its environment with it.
    let d = SecretJob::submit(&env, &c, "cancelled").await;
    assert!(!holding(&env.state_dir, &d.secret).is_empty());
    let killed = c
        .call::<JobKill>(&KillParams {
            id: d.job.id.clone(),
            signal: None,
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Killed);
    assert_nowhere(&env, &[&d.secret], "a cancelled queued job");

    // The queued job starts when the first ends.
    a.release();
    b.seen(&c).await;
    assert_nowhere(&env, &[&a.secret, &b.secret], "a queued job once started");

    // A clean stop.
    c.call::<DaemonShutdown>(&ShutdownParams::default())
        .await
        .unwrap();
    drop(c);
    assert!(daemon.wait().success());
    assert_nowhere(&env, &[&a.secret, &b.secret, &d.secret], "a clean stop");

    // A job queued when agentd is killed keeps its environment across the
    // crash and runs with it under the next agentd.
    let daemon = start(&env);
    let c = daemon.client().await;
    assert_eq!(get(&c, &b.job.id).await.state, JobState::Running);
    let e = SecretJob::submit(&env, &c, "queued-at-crash").await;
    assert_eq!(e.job.state, JobState::Queued);
    drop(c);
    daemon.kill9();
    let daemon = start(&env);
    let c = daemon.client().await;
    assert_eq!(get(&c, &e.job.id).await.state, JobState::Queued);
    b.release();
    e.seen(&c).await;
    assert_nowhere(
        &env,
        &[&b.secret, &e.secret],
        "a queued job started after a crash",
    );

    // SIGKILL of agentd while the job runs.
    drop(c);
    daemon.kill9();
    assert_nowhere(
        &env,
        &[&a.secret, &b.secret, &d.secret, &e.secret],
        "agentd killed with SIGKILL",
    );
    let daemon = start(&env);
    let c = daemon.client().await;
    e.release();
    assert_eq!(wait(&c, &e.job.id).await.state, JobState::Succeeded);
    assert_eq!(wait(&c, &b.job.id).await.state, JobState::Succeeded);
}

#[tokio::test]
async fn every_file_agentd_creates_in_the_state_dir_is_private() {
    let env = TestEnv::new();
    // Started by agentctl, which also creates agentd's log file there.
    agentd_tests::bin("agentd");
    let config = env.root().join("config/agentd.toml");
    std::fs::write(&config, "max_running = 1\n").unwrap();
    let mut start = env.agentctl();
    start
        .env_remove("AGENTCTL_NO_AUTOSTART")
        .env("AGENTD_CONFIG", &config)
        .env("RUST_LOG", "debug")
        .args(["daemon", "start"]);
    // SAFETY: umask is async-signal-safe and touches only this child.
    unsafe {
        start.pre_exec(|| {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o002));
            Ok(())
        });
    }
    let (code, _, err) = agentd_tests::run(&mut start);
    assert_eq!(code, 0, "{err}");
    let c = Client::connect(&env.socket).await.unwrap();
    let pid = c.call::<DaemonInfo>(&Default::default()).await.unwrap().pid;
    let running = SecretJob::submit(&env, &c, "running").await;
    running.seen(&c).await;
    let queued = SecretJob::submit(&env, &c, "waiting").await;
    let failed = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo out; exit 3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    running.release();
    queued.seen(&c).await;
    queued.release();
    assert_eq!(wait(&c, &failed.id).await.exit_code, Some(3));
    // Killed mid-run, so the WAL and shared-memory files are left as they
    // are while agentd runs.
    drop(c);
    let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::KILL).unwrap();
    agentd_tests::wait_gone(pid).await;
    let mut seen = Vec::new();
    let mut todo = vec![env.state_dir.clone()];
    while let Some(d) = todo.pop() {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", e.path().display());
                seen.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    for name in [
        "agentd.db",
        "agentd.db-wal",
        "agentd.db-shm",
        "agentd.lock",
        "agentd.log",
    ] {
        assert!(seen.iter().any(|s| s == name), "no {name} in {seen:?}");
    }
    // The jobs' output logs and the exit journal.
    for suffix in [".log", ".journal"] {
        assert!(
            seen.iter()
                .any(|s| s.ends_with(suffix) && s != "agentd.log"),
            "no *{suffix} in {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_job_agentd_was_starting_when_it_died_fails_rather_than_run_without_its_environment() {
    let env = TestEnv::new();
    let daemon = start(&env);
    drop(daemon);
    // As the database stands when agentd dies after recording a job it is
    // starting at once (its environment only in memory) and before the
    // spawn: queued, with an empty `job_env` row. Beside it, a queued job
    // submitted without an environment.
    let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for id, given in [('eeeeeeee-0000-4000-8000-000000000001', True),
                  ('ffffffff-0000-4000-8000-000000000002', False)]:
    c.execute("INSERT INTO jobs (id, command, cwd, state, session, created_at, tail_bytes) "
              "VALUES (?, 'echo ran', '/', 'queued', 'default', '2026-12-01T00:00:00.000Z', 1000)", (id,))
    if given:
        c.execute("INSERT INTO job_env (job_id, env) VALUES (?, NULL)", (id,))
c.commit()
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(env.state_dir.join("agentd.db"))
        .status()
        .unwrap();
    assert!(status.success());
    for id in [
        "eeeeeeee-0000-4000-8000-000000000001",
        "ffffffff-0000-4000-8000-000000000002",
    ] {
        let log = env.state_dir.join("jobs").join(format!("{id}.log"));
        std::fs::write(log, "").unwrap();
    }
    let daemon = start(&env);
    let c = daemon.client().await;
    let unkept = wait(&c, "eeeeeeee").await;
    assert_eq!(unkept.state, JobState::Failed, "{unkept:?}");
    assert!(
        unkept
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("environment")),
        "{unkept:?}"
    );
    assert_eq!(agentd_tests::rpc::output(&c, "eeeeeeee").await, "");
    let plain = wait(&c, "ffffffff").await;
    assert_eq!(plain.state, JobState::Succeeded, "{plain:?}");
    assert_eq!(agentd_tests::rpc::output(&c, "ffffffff").await, "ran\n");
}
