//! Test fixtures for the end-to-end tests: real `agentd` and `agentctl`
//! binaries, each test in its own temp dir with its own socket, state dir
//! and XDG dirs, and every process a test started cleaned up when it ends,
//! pass or fail.
//!
//! The binaries are built once per test process with `cargo build --bins -p
//! NAME` (cargo releases its build lock while tests run), so `cargo test`
//! alone is enough.

pub mod agent_world;
pub mod clients;
pub mod fake_llm;
pub mod slurm;
use agentd_proto::Client;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Path of a workspace binary (`agentd` or `agentctl`, each the binary of
/// the package of the same name), built on first use in this test process.
pub fn bin(name: &str) -> PathBuf {
    static AGENTD: OnceLock<PathBuf> = OnceLock::new();
    static AGENTCTL: OnceLock<PathBuf> = OnceLock::new();
    let cell = match name {
        "agentd" => &AGENTD,
        "agentctl" => &AGENTCTL,
        other => panic!("no workspace binary {other:?}"),
    };
    cell.get_or_init(|| build(name)).clone()
}

fn build(package: &str) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--bins", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build --bins -p {package} failed");
    // target/<profile>/deps/<test-exe> -> target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .join(package)
}

/// A private world for one test: temp dir, socket path, state dirs, XDG
/// dirs. Dropping it kills every process that carries its marker in its
/// environment (daemons it started and all their jobs).
pub struct TestEnv {
    dir: tempfile::TempDir,
    /// The socket path (`AGENTD_SOCKET`).
    pub socket: PathBuf,
    /// The daemon's state dir (`AGENTD_STATE_DIR`).
    pub state_dir: PathBuf,
    marker: String,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh environment.
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("agentd-test-")
            .tempdir()
            .expect("creating a temp dir");
        let root = dir.path();
        for sub in ["run", "state", "config", "data", "cache", "home", "work"] {
            std::fs::create_dir_all(root.join(sub)).expect("creating test dirs");
        }
        TestEnv {
            socket: root.join("run/agentd/agentd.sock"),
            state_dir: root.join("state/agentd"),
            marker: format!("AGENTD_TEST_MARKER={}", root.display()),
            dir,
        }
    }

    /// The temp dir's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A scratch directory for jobs to run in.
    pub fn workdir(&self) -> PathBuf {
        self.root().join("work")
    }

    /// A command with this environment's variables set: socket, state dirs,
    /// `XDG_*`, `HOME`, auto-start off, no API keys.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let root = self.root();
        let mut cmd = Command::new(program);
        cmd.env("AGENTD_SOCKET", &self.socket)
            .env("AGENTD_STATE_DIR", &self.state_dir)
            .env("AGENTCTL_STATE_DIR", root.join("state/agentctl"))
            .env("XDG_RUNTIME_DIR", root.join("run"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env("HOME", root.join("home"))
            .env("AGENTCTL_NO_AUTOSTART", "1")
            .env("AGENTD_TEST_MARKER", root)
            .env("NO_COLOR", "1")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("ANTHROPIC_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("AGENTCTL_PROVIDER")
            .env_remove("AGENTCTL_MODEL")
            .env_remove("MODEL_ID")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("RUST_LOG")
            // The fake model servers are on loopback; no proxy in between.
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .current_dir(self.workdir());
        cmd
    }

    /// Writes agentd's config file (`$XDG_CONFIG_HOME/agentd/config.toml`),
    /// read by daemons started after.
    pub fn write_agentd_config(&self, toml: &str) {
        let dir = self.root().join("config/agentd");
        std::fs::create_dir_all(&dir).expect("creating the config dir");
        std::fs::write(dir.join("config.toml"), toml).expect("writing agentd's config");
    }

    /// A FIFO named `name` in the temp dir's root for a job to block on
    /// (`read x < FIFO`); [`release`] lets it go on.
    pub fn fifo(&self, name: &str) -> PathBuf {
        let path = self.root().join(name);
        mkfifo(&path);
        path
    }

    /// `agentctl ARGS…` in this environment.
    pub fn agentctl(&self) -> Command {
        self.command(bin("agentctl"))
    }

    /// Starts `agentd` and waits until it logs that it listens.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(|_| {})
    }

    /// Starts `agentd` after `configure` adjusts its command, and waits
    /// until it is listening (read from its log, not by polling).
    ///
    /// Panics when the daemon exits before listening.
    pub fn start_daemon_with(&self, configure: impl FnOnce(&mut Command)) -> Daemon {
        let log_path = self.root().join(format!(
            "agentd-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = self.command(bin("agentd"));
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("starting agentd");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let mut ready = false;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            seen.push(line.clone());
            if line.contains("listening") {
                ready = true;
                break;
            }
        }
        if !ready {
            let status = child.wait().expect("waiting for agentd");
            panic!(
                "agentd exited ({status}) before listening:\n{}",
                seen.join("\n")
            );
        }
        // Keep draining the log so the daemon never blocks on a full pipe.
        let log_copy = log_path.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(log_copy).expect("daemon log copy");
            for line in seen.into_iter().map(Ok).chain(lines) {
                let Ok(line) = line else { break };
                let _ = writeln!(f, "{line}");
            }
        });
        Daemon {
            child,
            socket: self.socket.clone(),
            log_path,
        }
    }

    /// Every live process started under this environment (by marker).
    pub fn processes(&self) -> Vec<u32> {
        let marker = self.marker.as_bytes();
        let me = std::process::id();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me && is_alive(pid))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|kv| kv == marker))
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for pid in self.processes() {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

/// True when `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

/// Live (not zombie) processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_alive(pid))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// A running `agentd` started by [`TestEnv::start_daemon`]. Dropping it
/// kills it with SIGKILL (its jobs are cleaned up by the [`TestEnv`]).
pub struct Daemon {
    child: Child,
    socket: PathBuf,
    /// A copy of the daemon's stderr.
    pub log_path: PathBuf,
}

impl Daemon {
    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new protocol client connected to it.
    pub async fn client(&self) -> Client {
        Client::connect(&self.socket)
            .await
            .expect("connecting to agentd")
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the daemon to exit on its own (after `daemon.shutdown` or
    /// SIGTERM) and returns its exit status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("waiting for agentd")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        if let Some(p) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("running command");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The parent of `pid` (for a job, its shim), from `/proc/<pid>/stat`.
///
/// Panics when the process does not exist.
pub fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("no process {pid}: {e}"));
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("malformed /proc/{pid}/stat: {stat}"))
}

/// Waits, through a pidfd (no polling), until process `pid` has exited;
/// returns at once if it is gone already.
///
/// Panics when it is still running after 60 s.
pub async fn wait_gone(pid: u32) {
    let p = rustix::process::Pid::from_raw(pid as i32).expect("a pid is positive");
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::NONBLOCK) else {
        return; // gone already
    };
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and names the
    // same pidfd until the AsyncFd is dropped.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)
    .expect("registering a pidfd with tokio");
    tokio::time::timeout(std::time::Duration::from_secs(60), fd.readable())
        .await
        .unwrap_or_else(|_| panic!("process {pid} did not exit within 60 s"))
        .expect("waiting on a pidfd")
        .retain_ready();
    assert!(!is_alive(pid), "process {pid} is still alive");
}

/// The job calls most tests make through the proto client, panicking on
/// any error (an error is then the test's failure).
pub mod rpc {
    use agentd_proto::methods::*;
    use agentd_proto::{Client, Job};

    /// `job.submit` of `command`, all else default.
    pub async fn submit(c: &Client, command: &str) -> Job {
        c.call::<JobSubmit>(&SubmitParams {
            command: command.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("job.submit of {command:?}: {e}"))
    }

    /// `job.submit` of `command` in `session`, then [`wait`]: the job as
    /// it ended.
    pub async fn run_in(c: &Client, session: &str, command: &str) -> Job {
        let job = c
            .call::<JobSubmit>(&SubmitParams {
                command: command.into(),
                session: Some(session.into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("job.submit of {command:?}: {e}"));
        wait(c, &job.id).await
    }

    /// `job.get`.
    pub async fn get(c: &Client, id: &str) -> Job {
        c.call::<JobGet>(&IdParams { id: id.into() })
            .await
            .unwrap_or_else(|e| panic!("job.get {id}: {e}"))
    }

    /// `job.wait` for 60 s at most: the job, finished or as it stands then
    /// (so a test that expects an end fails instead of hanging).
    pub async fn wait(c: &Client, id: &str) -> Job {
        c.call::<JobWait>(&WaitParams {
            id: id.into(),
            timeout_secs: Some(60.0),
        })
        .await
        .unwrap_or_else(|e| panic!("job.wait {id}: {e}"))
    }

    /// The job's output from the start, as one `job.output` returns it
    /// (64 KiB at most).
    pub async fn output(c: &Client, id: &str) -> String {
        c.call::<JobOutput>(&OutputParams {
            id: id.into(),
            offset: None,
            limit: None,
            tail: None,
            wait_ms: None,
        })
        .await
        .unwrap_or_else(|e| panic!("job.output {id}: {e}"))
        .data
    }
    /// Waits, through the `job.output` long-poll (`wait_ms`, no sleeps),
    /// until the job's output contains `text`; returns the output read so
    /// far.
    ///
    /// Panics when the job ends without printing it.
    pub async fn wait_for_output(c: &Client, id: &str, text: &str) -> String {
        let mut offset = 0;
        let mut seen = String::new();
        while !seen.contains(text) {
            let r = c
                .call::<JobOutput>(&OutputParams {
                    id: id.into(),
                    offset: Some(offset),
                    limit: None,
                    tail: None,
                    wait_ms: Some(30_000),
                })
                .await
                .unwrap_or_else(|e| panic!("job.output {id}: {e}"));
            assert!(
                !(r.complete && r.data.is_empty()),
                "job {id} ended without printing {text:?}: {seen:?}"
            );
            seen.push_str(&r.data);
            offset = r.next_offset;
        }
        seen
    }
}

/// Fills a stopped daemon's database with `n` finished jobs of `session`
/// (commands `echo 0` … `echo N-1`, succeeded, created one second apart
/// ending 1 hour ago), each with a notification whose `output_tail` is
/// `tail_len` bytes, pending (`pending`) or acked. Rows are what agentd
/// itself writes for such a job (columns and notification body alike); no
/// output logs are created (a missing log reads as empty). Much faster than
/// running the jobs, for tests of what agentd does with a long history.
///
/// Panics when the database does not exist yet (start and stop a daemon
/// first) or python3 fails.
pub fn seed_finished_jobs(
    state_dir: &Path,
    session: &str,
    n: usize,
    tail_len: usize,
    pending: bool,
) {
    seed_history(
        state_dir,
        &Seed {
            session,
            n,
            tail_len,
            pending,
            ..Seed::default()
        },
    );
}

/// What [`seed_history`] writes.
pub struct Seed<'a> {
    /// The jobs' session.
    pub session: &'a str,
    /// How many jobs.
    pub n: usize,
    /// `output_tail` length, in bytes.
    pub tail_len: usize,
    /// Notifications pending (else acked).
    pub pending: bool,
    /// The newest job finished this many hours ago (default 1).
    pub hours_ago: f64,
    /// Commands are `echo PREFIX0`, `echo PREFIX1`, …
    pub prefix: &'a str,
    /// Give each job an output log (`jobs/<id>.log`, as agentd lays them
    /// out) holding its tail.
    pub with_output: bool,
}

impl Default for Seed<'_> {
    fn default() -> Self {
        Seed {
            session: "default",
            n: 0,
            tail_len: 0,
            pending: false,
            hours_ago: 1.0,
            prefix: "",
            with_output: false,
        }
    }
}

/// Like [`seed_finished_jobs`], with every choice of [`Seed`].
pub fn seed_history(state_dir: &Path, seed: &Seed) {
    let Seed {
        session,
        n,
        tail_len,
        pending,
        hours_ago,
        prefix,
        with_output,
    } = *seed;
    let db = state_dir.join("agentd.db");
    assert!(db.exists(), "no database at {} to seed", db.display());
    let script = r#"
import sqlite3, sys, json, uuid, datetime
import os
db, session, n, tail_len, pending = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == '1'
hours_ago, prefix, with_output = float(sys.argv[6]), sys.argv[7], sys.argv[8] == '1'
c = sqlite3.connect(db)
seq = c.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0]
end = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours_ago)
def ts(t): return t.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (t.microsecond // 1000)
jobs, notes = [], []
for i in range(n):
    seq += 1
    jid = str(uuid.uuid4())
    t = end - datetime.timedelta(seconds=n - i)
    created, finished = ts(t), ts(t + datetime.timedelta(milliseconds=5))
    cmd = 'echo %s%d' % (prefix, i)
    tail = ('%d\n' % i).rjust(tail_len, 'x') if tail_len else ''
    if with_output:
        d = os.path.join(os.path.dirname(db), 'jobs')
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(os.path.join(d, jid + '.log'), 'w') as f:
            f.write(tail)
    jobs.append((jid, cmd, '/', 'succeeded', 0, 4242, session, created, created, finished, 5, 1000, len(tail)))
    body = {'seq': seq, 'job_id': jid, 'short_id': jid[:8], 'session': session, 'state': 'succeeded',
            'exit_code': 0, 'signal': None, 'command': cmd, 'duration_ms': 5, 'output_tail': tail,
            'finished_at': finished, 'reason': None}
    notes.append((seq, session, jid, json.dumps(body, separators=(',', ':')), 0 if pending else 1))
c.executemany("INSERT INTO jobs (id, command, cwd, state, exit_code, pid, session, created_at, started_at, finished_at, duration_ms, tail_bytes, output_bytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", jobs)
c.executemany("INSERT INTO notifications (seq, session, job_id, body, acked) VALUES (?,?,?,?,?)", notes)
c.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (seq,))
c.commit()
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&db)
        .arg(session)
        .arg(n.to_string())
        .arg(tail_len.to_string())
        .arg(if pending { "1" } else { "0" })
        .arg(hours_ago.to_string())
        .arg(prefix)
        .arg(if with_output { "1" } else { "0" })
        .status()
        .expect("running python3");
    assert!(status.success(), "seeding {} failed", db.display());
}

/// Fills a stopped daemon's database with `n` queued jobs of `session`,
/// each running `command` in `/` when started, created one millisecond
/// apart (the rows agentd writes for a job that waits for a free slot,
/// without a stored environment: it starts with agentd's own; its output
/// log is made when it starts). With `max_running` in agentd's config, a
/// test gets a live set of any size without submitting it.
///
/// Panics when the database does not exist yet or python3 fails.
pub fn seed_queued(state_dir: &Path, session: &str, n: usize, command: &str) {
    let db = state_dir.join("agentd.db");
    assert!(db.exists(), "no database at {} to seed", db.display());
    let script = r#"
import sqlite3, sys, uuid, datetime, os
db, session, n, command = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(db)
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=60)
def ts(t): return t.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (t.microsecond // 1000)
rows = [(str(uuid.uuid4()), command, '/', 'queued', session,
         ts(start + datetime.timedelta(milliseconds=i)), 1000) for i in range(n)]
os.makedirs(os.path.join(os.path.dirname(db), 'jobs'), mode=0o700, exist_ok=True)
c.executemany("INSERT INTO jobs (id, command, cwd, state, session, created_at, tail_bytes) VALUES (?,?,?,?,?,?,?)", rows)
c.commit()
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&db)
        .arg(session)
        .arg(n.to_string())
        .arg(command)
        .status()
        .expect("running python3");
    assert!(status.success(), "seeding {} failed", db.display());
}

/// Waits, through inotify (no polling), until no entry of directory `dir`
/// has a name containing `needle`: for instance until agentd deleted a
/// removed job's output (`jobs/<id>…`). Returns at once when none has.
///
/// Panics when one still has after 60 s.
pub async fn wait_no_entry_naming(dir: &Path, needle: &str) {
    use rustix::fs::inotify;
    let named = || {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(needle))
            })
            .unwrap_or(false)
    };
    let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
        .expect("inotify_init");
    // Watched before the first look, so no deletion falls between them.
    inotify::add_watch(
        &fd,
        dir,
        inotify::WatchFlags::DELETE | inotify::WatchFlags::MOVED_FROM,
    )
    .unwrap_or_else(|e| panic!("watching {}: {e}", dir.display()));
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and names the
    // same inotify instance until the AsyncFd is dropped.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }
        .map_err(|e| e.into_parts().1)
        .expect("registering inotify with tokio");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    while named() {
        let mut ready = tokio::time::timeout_at(deadline, fd.readable())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} still holds an entry naming {needle} after 60 s",
                    dir.display()
                )
            })
            .expect("waiting on inotify");
        let mut events = inotify::Reader::new(fd.get_ref(), &mut buf);
        while events.next().is_ok() {}
        ready.clear_ready();
    }
}

/// Makes a FIFO at `path` (mode 0600): jobs block on `read l < FIFO` until
/// the test writes a line, so nothing waits on timing.
///
/// Panics when it cannot be made.
pub fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// agentd's `[retention]` config that keeps everything (every limit 0).
pub const KEEP_EVERYTHING: &str =
    "[retention]\nmax_finished_jobs = 0\nmax_age_days = 0\nmax_pending_per_session = 0\n";

/// A fresh environment whose daemon state dir exists (a daemon was started
/// with `config` as agentd's config file, then shut down cleanly), ready
/// for [`seed_history`] and the like; no daemon left running.
pub async fn stopped_daemon(config: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_agentd_config(config);
    let daemon = env.start_daemon();
    daemon
        .client()
        .await
        .call::<agentd_proto::methods::DaemonShutdown>(&Default::default())
        .await
        .expect("daemon.shutdown");
    assert!(daemon.wait().success(), "agentd did not stop cleanly");
    env
}

/// Unblocks a job doing `read x < FIFO` by writing a line (opening blocks
/// until the job is there to read, so it is running when this returns).
///
/// Panics when the FIFO cannot be opened or written.
pub fn release(fifo: &Path) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .and_then(|mut f| f.write_all(b"go\n"))
        .unwrap_or_else(|e| panic!("releasing {}: {e}", fifo.display()));
}
