//! Jobs outlive agentd (docs/survival.md): each job runs under its own shim,
//! so a SIGKILLed or stopped agentd loses nothing. The next agentd finishes
//! the jobs that ended meanwhile from their exit records, adopts the ones
//! still running (timeouts and `job.kill` included), and reports `lost`
//! only when a job's shim died without a record.

use agentd_proto::methods::*;
use agentd_proto::{Client, Job, JobState, Notification};
use agentd_tests::rpc::{get, output, wait, wait_for_output};
use agentd_tests::{TestEnv, group_members, is_alive, parent_of, wait_gone};
use std::path::{Path, PathBuf};
use std::time::Duration;

async fn submit(c: &Client, command: &str, timeout_secs: Option<f64>) -> Job {
    c.call::<JobSubmit>(&SubmitParams {
        command: command.into(),
        timeout_secs,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Returns once every job started so far has its start durably recorded
/// (not only queued for the next group commit): the store commits in
/// order, so a submit's answer means everything before it is on disk.
/// (Its own job runs in a session of its own, out of the tests' way.)
async fn record_starts(c: &Client) {
    c.call::<JobSubmit>(&SubmitParams {
        command: "true".into(),
        session: Some("record-starts".into()),
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn pending(c: &Client) -> Vec<Notification> {
    c.call::<NotificationsPeek>(&PeekParams::default())
        .await
        .unwrap()
        .notifications
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
}

/// Five jobs that print a line, block on their own FIFO, then print what
/// they read and exit with code 11..=15.
struct FifoJobs {
    fifos: Vec<PathBuf>,
    jobs: Vec<Job>,
    shims: Vec<u32>,
}

impl FifoJobs {
    async fn start(env: &TestEnv, c: &Client) -> FifoJobs {
        let mut fifos = Vec::new();
        let mut jobs = Vec::new();
        for i in 1..=5 {
            let fifo = env.root().join(format!("job{i}.fifo"));
            mkfifo(&fifo);
            let cmd = format!(
                "echo before {i}; read l < '{}'; echo \"after {i} $l\"; exit 1{i}",
                fifo.display()
            );
            jobs.push(submit(c, &cmd, None).await);
            fifos.push(fifo);
        }
        for (i, job) in jobs.iter().enumerate() {
            wait_for_output(c, &job.id, &format!("before {}", i + 1)).await;
        }
        let shims = jobs.iter().map(|j| parent_of(j.pid.unwrap())).collect();
        FifoJobs { fifos, jobs, shims }
    }

    /// Lets every job finish and waits until each shim has recorded its end
    /// and exited.
    async fn release_and_wait(&self) {
        for fifo in &self.fifos {
            // Opening blocks until the job has the FIFO open for reading.
            std::fs::write(fifo, "x\n").unwrap();
        }
        for &shim in &self.shims {
            wait_gone(shim).await;
        }
    }

    /// Every job ended with its true exit code and complete output, and
    /// has exactly one notification saying so.
    async fn check_results(&self, c: &Client) {
        for (i, job) in self.jobs.iter().enumerate() {
            let n = i + 1;
            let got = wait(c, &job.id).await;
            assert_eq!(
                (got.state, got.exit_code, got.signal.as_deref()),
                (JobState::Failed, Some(10 + n as i32), None),
                "{got:?}"
            );
            let text = format!("before {n}\nafter {n} x\n");
            assert_eq!(output(c, &job.id).await, text);
            assert_eq!(got.output_bytes, text.len() as u64);
            assert!(got.duration_ms.is_some() && got.finished_at.is_some());
        }
        let notes = pending(c).await;
        assert_eq!(notes.len(), 5, "one notification per job: {notes:#?}");
        for (i, job) in self.jobs.iter().enumerate() {
            let n = i + 1;
            let mine: Vec<_> = notes.iter().filter(|x| x.job_id == job.id).collect();
            assert_eq!(mine.len(), 1, "job {n}: {notes:#?}");
            assert_eq!(mine[0].exit_code, Some(10 + n as i32));
            assert_eq!(mine[0].output_tail, format!("before {n}\nafter {n} x\n"));
        }
    }
}

#[tokio::test]
async fn jobs_finishing_while_agentd_is_killed_report_true_exit_codes_and_output() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let jobs = FifoJobs::start(&env, &c).await;
    drop(c);
    daemon.kill9();
    jobs.release_and_wait().await;

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    jobs.check_results(&c).await;
}

#[tokio::test]
async fn jobs_survive_a_shutdown_that_keeps_them() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let jobs = FifoJobs::start(&env, &c).await;
    c.call::<DaemonShutdown>(&ShutdownParams {
        jobs: Some(ShutdownJobs::Keep),
    })
    .await
    .unwrap();
    assert!(daemon.wait().success());
    for job in &jobs.jobs {
        assert!(is_alive(job.pid.unwrap()), "jobs: keep leaves jobs running");
    }
    jobs.release_and_wait().await;

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    jobs.check_results(&c).await;
}

#[tokio::test]
async fn jobs_survive_sigterm_to_agentd() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let jobs = FifoJobs::start(&env, &c).await;
    drop(c);
    daemon.terminate();
    assert!(daemon.wait().success(), "SIGTERM is a clean stop");
    jobs.release_and_wait().await;

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    jobs.check_results(&c).await;
}

#[tokio::test]
async fn running_jobs_are_adopted_and_report_their_end_to_the_next_agentd() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let jobs = FifoJobs::start(&env, &c).await;
    drop(c);
    daemon.kill9();

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    for job in &jobs.jobs {
        assert_eq!(get(&c, &job.id).await.state, JobState::Running);
    }
    let info = c.call::<DaemonInfo>(&Empty {}).await.unwrap();
    assert_eq!(info.jobs.running, 5);
    // The jobs end while this agentd watches their (adopted) shims.
    for fifo in &jobs.fifos {
        std::fs::write(fifo, "x\n").unwrap();
    }
    jobs.check_results(&c).await;
}

#[tokio::test]
async fn a_job_whose_shim_died_while_agentd_was_down_is_lost() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, "echo started; sleep 300", None).await;
    wait_for_output(&c, &job.id, "started").await;
    let shim = parent_of(job.pid.unwrap());
    record_starts(&c).await;
    drop(c);
    daemon.kill9();
    let p = rustix::process::Pid::from_raw(shim as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::KILL).unwrap();
    wait_gone(shim).await;

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let got = get(&c, &job.id).await;
    assert_eq!(got.state, JobState::Lost, "{got:?}");
    assert!(got.finished_at.is_some());
    let notes = pending(&c).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].job_id.as_str(), notes[0].state),
        (job.id.as_str(), JobState::Lost)
    );
    assert_eq!(notes[0].output_tail, "started\n");
    // Only the test's own session: record_starts' job may have been
    // queued at the kill and be running again now.
    let running = c
        .call::<JobList>(&ListParams {
            states: Some(vec![JobState::Running]),
            session: Some("default".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        running.jobs.is_empty(),
        "a lost job is not running forever: {:?}",
        running.jobs
    );
}

#[tokio::test]
async fn a_timeout_that_expired_while_agentd_was_down_is_enforced_on_return() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let timeout = 1.0;
    let job = submit(
        &c,
        "echo started; sleep 300 & sleep 300; wait",
        Some(timeout),
    )
    .await;
    let pgid = job.pid.unwrap();
    wait_for_output(&c, &job.id, "started").await;
    drop(c);
    daemon.kill9();
    // Let the deadline pass while no agentd runs: the condition under test
    // is a point in time, so this waits for it (measured from the job's own
    // start as agentd recorded it, plus a margin).
    let started = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs_f64(timeout + 0.5));
    assert!(
        group_members(pgid).len() >= 2,
        "nothing enforced the timeout while agentd was down"
    );

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let got = wait(&c, &job.id).await;
    assert_eq!(got.state, JobState::TimedOut, "{got:?}");
    assert_eq!(got.signal.as_deref(), Some("SIGTERM"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "enforced at once on adoption, not after another timeout"
    );
    assert!(
        group_members(pgid).is_empty(),
        "no process of the group survives"
    );
    let notes = pending(&c).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].state, JobState::TimedOut);
}

#[tokio::test]
async fn killing_an_adopted_job_kills_its_whole_group() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    // One member ignores SIGTERM, so the kill must follow up with SIGKILL.
    let job = submit(
        &c,
        "(trap '' TERM; sleep 300) & sleep 300 & echo ready; wait",
        None,
    )
    .await;
    let pgid = job.pid.unwrap();
    wait_for_output(&c, &job.id, "ready").await;
    let shim = parent_of(pgid);
    drop(c);
    daemon.kill9();
    assert!(group_members(pgid).len() >= 3);

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let killed = c
        .call::<JobKill>(&KillParams {
            id: job.id.clone(),
            signal: None,
            grace_secs: Some(0.5),
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Killed, "{killed:?}");
    assert!(
        group_members(pgid).is_empty(),
        "no process of the group survives"
    );
    wait_gone(shim).await;
    let notes = pending(&c).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].state, JobState::Killed);
}

#[tokio::test]
async fn a_kill_shutdown_ends_adopted_jobs_and_records_them_killed() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, "echo ready; sleep 300", None).await;
    wait_for_output(&c, &job.id, "ready").await;
    drop(c);
    daemon.kill9();

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    c.call::<DaemonShutdown>(&ShutdownParams {
        jobs: Some(ShutdownJobs::Kill),
    })
    .await
    .unwrap();
    assert!(daemon.wait().success());
    assert!(group_members(job.pid.unwrap()).is_empty());

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    assert_eq!(get(&c, &job.id).await.state, JobState::Killed);
}

#[tokio::test]
async fn a_version_1_database_is_migrated_and_its_running_jobs_are_lost() {
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.state_dir).unwrap();
    let db = env.state_dir.join("agentd.db");
    // The schema agentd 0.1 (user_version 1) wrote, with a finished job and
    // one it recorded as running (a direct child, no shim).
    let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript('''
PRAGMA secure_delete = OFF;
CREATE TABLE jobs (ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, command TEXT NOT NULL,
  cwd TEXT NOT NULL, env TEXT, state TEXT NOT NULL, exit_code INTEGER, signal TEXT, pid INTEGER,
  session TEXT NOT NULL, label TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
  duration_ms INTEGER, timeout_secs REAL, tail_bytes INTEGER NOT NULL,
  output_bytes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE notifications (seq INTEGER PRIMARY KEY, session TEXT NOT NULL, job_id TEXT NOT NULL,
  body TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX notifications_pending ON notifications (session, seq) WHERE acked = 0;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('last_seq', 3);
INSERT INTO jobs (id, command, cwd, state, exit_code, pid, session, created_at, started_at,
  finished_at, duration_ms, tail_bytes, output_bytes)
  VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'true', '/', 'succeeded', 0, 999999, 'default',
  '2026-11-22T04:00:00.000Z', '2026-11-22T04:00:00.001Z', '2026-11-22T04:00:00.002Z', 1, 1000, 0);
INSERT INTO jobs (id, command, cwd, state, pid, session, created_at, started_at, tail_bytes)
  VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'sleep 300', '/', 'running', 999998, 'default',
  '2026-11-22T04:00:00.000Z', '2026-11-22T04:00:00.001Z', 1000);
INSERT INTO jobs (id, command, cwd, env, state, session, created_at, tail_bytes)
  VALUES ('cccccccc-0000-4000-8000-000000000003', 'printf %s "$OLD_QUEUED" | tr a-z A-Z', '/',
  '{"OLD_QUEUED":"sekrit-queued-in-v1"}', 'queued', 'default', '2026-11-22T04:00:00.000Z', 1000);
INSERT INTO jobs (id, command, cwd, env, state, session, created_at, tail_bytes)
  VALUES ('dddddddd-0000-4000-8000-000000000004', 'true', '/', '{"GONE":"sekrit-deleted-in-v1"}',
  'queued', 'default', '2026-11-22T04:00:00.000Z', 1000);
DELETE FROM jobs WHERE id LIKE 'dddddddd%';
PRAGMA user_version = 1;
''')
c.commit()
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    // The queued job's output log, as agentd made at its submit.
    let queued_dir = env
        .state_dir
        .join("jobs/cccccccc-0000-4000-8000-000000000003");
    std::fs::create_dir_all(&queued_dir).unwrap();
    std::fs::write(queued_dir.join("output.log"), "").unwrap();
    let old = std::fs::read(&db).unwrap();
    assert!(
        old.windows(20).any(|w| w == b"sekrit-deleted-in-v1"),
        "the deleted row's environment is left in a free page"
    );

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let done = get(&c, "aaaaaaaa").await;
    assert_eq!((done.state, done.exit_code), (JobState::Succeeded, Some(0)));
    let lost = get(&c, "bbbbbbbb").await;
    assert_eq!(lost.state, JobState::Lost);
    // The queued job runs with the environment it was given; then neither
    // it nor one an old agentd deleted (left in a free page) is on disk.
    let queued = wait(&c, "cccccccc").await;
    assert_eq!(queued.state, JobState::Succeeded, "{queued:?}");
    assert_eq!(output(&c, "cccccccc").await, "SEKRIT-QUEUED-IN-V1");
    let notes = pending(&c).await;
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].seq, 4, "seq continues from the old database");
    // New jobs run (and record their shims) in the migrated database.
    let job = submit(&c, "echo fine", None).await;
    assert_eq!(wait(&c, &job.id).await.state, JobState::Succeeded);
    drop(c);
    drop(daemon);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(c.execute('PRAGMA user_version').fetchone()[0]); \
             print(c.execute('SELECT count(*) FROM jobs WHERE shim_pid IS NOT NULL').fetchone()[0]); \
             print(c.execute(\"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ('jobs_session', 'jobs_state')\").fetchone()[0])",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "9\n2\n2\n");
    for secret in ["sekrit-queued-in-v1", "sekrit-deleted-in-v1"] {
        for file in std::fs::read_dir(&env.state_dir).unwrap() {
            let path = file.unwrap().path();
            if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} is still in {}",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn a_job_whose_start_was_not_yet_recorded_at_a_crash_is_not_started_twice() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    // Two jobs: one still running at the restart, one that ends before it.
    let mut jobs = Vec::new();
    for name in ["running", "ended"] {
        let fifo = env.root().join(format!("{name}.fifo"));
        mkfifo(&fifo);
        let cmd = format!("echo go; read l < '{}'; echo done; exit 3", fifo.display());
        let job = submit(&c, &cmd, None).await;
        wait_for_output(&c, &job.id, "go").await;
        jobs.push((job, fifo));
    }
    let ended_shim = parent_of(jobs[1].0.pid.unwrap());
    drop(c);
    daemon.kill9();
    std::fs::write(&jobs[1].1, "x\n").unwrap();
    wait_gone(ended_shim).await;
    // As if agentd had crashed after spawning the shims but before its
    // group commit recorded the starts.
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE jobs SET state='queued', pid=NULL, started_at=NULL, \
             shim_pid=NULL, shim_start=NULL\"); c.commit()",
        ])
        .arg(env.state_dir.join("agentd.db"))
        .status()
        .unwrap();
    assert!(status.success());

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let running = get(&c, &jobs[0].0.id).await;
    assert_eq!(running.state, JobState::Running, "{running:?}");
    assert_eq!(running.pid, jobs[0].0.pid, "the same process, adopted");
    assert!(running.started_at.is_some());
    std::fs::write(&jobs[0].1, "x\n").unwrap();
    for (job, _) in &jobs {
        let got = wait(&c, &job.id).await;
        assert_eq!(
            (got.state, got.exit_code),
            (JobState::Failed, Some(3)),
            "{got:?}"
        );
        assert!(got.started_at.is_some() && got.duration_ms.is_some());
        assert_eq!(output(&c, &job.id).await, "go\ndone\n", "ran once");
    }
    assert_eq!(pending(&c).await.len(), 2);
}

/// A process that is not agentd's, in its own process group, with SIGTERM,
/// SIGINT and SIGHUP blocked so that any of them sent to it stays pending
/// where `/proc` shows it. Killed when dropped.
struct Stranger(std::process::Child);

impl Stranger {
    fn start() -> Stranger {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let script = "import signal, sys, time\n\
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})\n\
            print('ready', flush=True)\n\
            time.sleep(600)\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Stranger(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    fn start_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[19].parse().unwrap()
    }

    /// Asserts it is alive and no signal was sent to it: none pending (the
    /// ones agentd sends are blocked or fatal).
    fn assert_untouched(&self) {
        let pid = self.pid();
        assert!(is_alive(pid), "process {pid} was killed");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        for key in ["SigPnd:", "ShdPnd:"] {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            assert!(
                line.trim_end().ends_with("0000000000000000"),
                "process {pid} was signalled: {line}"
            );
        }
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_reused_shim_pid_makes_the_job_lost_and_its_new_owner_is_not_signalled() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let job = submit(&c, "echo started; sleep 300", None).await;
    wait_for_output(&c, &job.id, "started").await;
    record_starts(&c).await;
    drop(c);
    daemon.kill9();
    // As if, while no agentd ran, the shim had exited and its pid (and the
    // job's process group id) had been handed to an unrelated process: the
    // database records that process's pid with the start time of the
    // earlier holder of the pid.
    let stranger = Stranger::start();
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('UPDATE jobs SET shim_pid=?, pid=?, shim_start=? WHERE id=?', \
             (int(sys.argv[2]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])); c.commit()",
        ])
        .arg(env.state_dir.join("agentd.db"))
        .arg(stranger.pid().to_string())
        .arg((stranger.start_ticks() - 1).to_string())
        .arg(&job.id)
        .status()
        .unwrap();
    assert!(status.success());

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let got = get(&c, &job.id).await;
    assert_eq!(got.state, JobState::Lost, "not adopted: {got:?}");
    let notes = pending(&c).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].state, JobState::Lost);
    // Neither killing the lost job nor a shutdown that kills every job
    // touches the process that holds the recorded pid now.
    let killed = c
        .call::<JobKill>(&KillParams {
            id: job.id.clone(),
            signal: Some("KILL".into()),
            grace_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(killed.state, JobState::Lost);
    c.call::<DaemonShutdown>(&ShutdownParams {
        jobs: Some(ShutdownJobs::Kill),
    })
    .await
    .unwrap();
    assert!(daemon.wait().success());
    stranger.assert_untouched();
}

/// What an agentd before the exit journal left (docs/survival.md,
/// "Files"): a directory per job with `output.log` and `exit.json`, and a
/// running job's shim that writes its record there. The shim here is a
/// stand-in with that behaviour (the record's format is the contract
/// between agentd versions): a process that appends to the log through the
/// descriptor it opened before the upgrade, waits on a FIFO, then writes
/// `exit.json` as old shims did (temporary file, fsync, rename).
#[tokio::test]
async fn an_upgrade_moves_old_job_files_and_adopts_a_job_an_older_agentd_started() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let env = TestEnv::new();
    drop(env.start_daemon());
    // The old version had no exit journal.
    std::fs::remove_dir_all(env.state_dir.join("exits")).unwrap();
    let jobs_dir = env.state_dir.join("jobs");
    let (old, running) = (
        "aaaaaaaa-0000-4000-8000-00000000000a",
        "bbbbbbbb-0000-4000-8000-00000000000b",
    );
    let old_dir = jobs_dir.join(old);
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("output.log"), "old output\n").unwrap();
    std::fs::write(
        old_dir.join("exit.json"),
        r#"{"exit_code":0,"signal":null,"finished_at":"2026-11-22T04:00:00.002Z","duration_ms":1}"#,
    )
    .unwrap();
    let run_dir = jobs_dir.join(running);
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("output.log"), "").unwrap();
    let fifo = env.root().join("go.fifo");
    mkfifo(&fifo);
    let script = r#"
import os, sys, json
log, fifo, d = sys.argv[1:4]
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"before\n")
print("ready", flush=True)
open(fifo).read()
os.write(fd, b"after\n")
tmp = os.path.join(d, ".exit.json.tmp")
with open(tmp, "w") as f:
    json.dump({"exit_code": 3, "signal": None, "finished_at": "2026-12-02T01:00:00.000Z", "duration_ms": 1234}, f)
    f.flush()
    os.fsync(f.fileno())
os.rename(tmp, os.path.join(d, "exit.json"))
"#;
    let mut shim = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(run_dir.join("output.log"))
        .arg(&fifo)
        .arg(&run_dir)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(shim.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let pid = shim.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let script = r#"
import sqlite3, sys
old, running, pid, start = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
c = sqlite3.connect(sys.argv[1])
c.execute("INSERT INTO jobs (id, command, cwd, state, exit_code, pid, session, created_at, started_at, "
          "finished_at, duration_ms, tail_bytes, output_bytes) VALUES (?, 'echo old output', '/', "
          "'succeeded', 0, 1, 'default', '2026-11-22T04:00:00.000Z', '2026-11-22T04:00:00.001Z', "
          "'2026-11-22T04:00:00.002Z', 1, 1000, 11)", (old,))
c.execute("INSERT INTO jobs (id, command, cwd, state, pid, session, created_at, started_at, tail_bytes, "
          "shim_pid, shim_start) VALUES (?, 'old shim', '/', 'running', ?, 'default', "
          "'2026-12-02T00:59:58.000Z', '2026-12-02T00:59:58.766Z', 1000, ?, ?)", (running, pid, pid, start))
c.commit()
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(env.state_dir.join("agentd.db"))
        .args([old, running, &pid.to_string(), &start.to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let daemon = env.start_daemon();
    let c = daemon.client().await;
    assert_eq!(output(&c, old).await, "old output\n");
    let adopted = get(&c, running).await;
    assert_eq!(adopted.state, JobState::Running, "{adopted:?}");
    // The old job's directory is gone; the running one's stays for its
    // shim's record, and its log moved while the shim kept writing to it.
    assert!(!old_dir.exists());
    assert!(jobs_dir.join(format!("{old}.log")).exists());
    assert!(run_dir.exists());
    assert!(!run_dir.join("output.log").exists());
    let inotify = rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::CLOEXEC).unwrap();
    rustix::fs::inotify::add_watch(
        &inotify,
        &run_dir,
        rustix::fs::inotify::WatchFlags::DELETE_SELF,
    )
    .unwrap();
    std::fs::write(&fifo, "x\n").unwrap();
    let done = wait(&c, running).await;
    assert_eq!(
        (done.state, done.exit_code, done.duration_ms),
        (JobState::Failed, Some(3), Some(1234)),
        "{done:?}"
    );
    assert_eq!(output(&c, running).await, "before\nafter\n");
    assert_eq!(pending(&c).await.len(), 1);
    shim.wait().unwrap();
    // Once its end is recorded, its directory goes too.
    tokio::task::spawn_blocking(move || {
        let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
        let mut events = rustix::fs::inotify::Reader::new(&inotify, &mut buf);
        loop {
            let e = events.next().unwrap();
            if e.events()
                .contains(rustix::fs::inotify::ReadFlags::DELETE_SELF)
            {
                break;
            }
        }
    })
    .await
    .unwrap();
    assert!(!run_dir.exists());
    let left: Vec<_> = std::fs::read_dir(&jobs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".log"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
