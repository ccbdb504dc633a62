//! Reaching agentd: connect to its socket and, when nothing answers, start
//! it (unless `AGENTCTL_NO_AUTOSTART=1`) and wait until it is ready.
//!
//! Readiness is event-driven, the way systemd's `Type=notify` works: the
//! daemon is started with `NOTIFY_SOCKET` naming a datagram socket of ours
//! and sends `READY=1` once its store is open and its socket serves.
//! agentctl waits for that datagram, the daemon's exit, or 10 s.

use agentd_proto::{Client, ClientError, paths};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Variable that turns auto-start off when set to `1`.
pub const NO_AUTOSTART_ENV: &str = "AGENTCTL_NO_AUTOSTART";
/// How long to wait for an auto-started daemon to report ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket path: `--socket`, else `AGENTD_SOCKET` (clap reads both into
/// `flag`), else the default.
pub fn socket_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(paths::default_socket_path)
}

/// The daemon's state dir as an auto-started daemon will see it:
/// `AGENTD_STATE_DIR`, else `$XDG_STATE_HOME/agentd`.
pub fn daemon_state_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os(paths::STATE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => paths::default_state_dir()
            .context("cannot find the home directory; set AGENTD_STATE_DIR"),
    }
}

/// The log file an auto-started daemon writes to.
pub fn daemon_log_path() -> anyhow::Result<PathBuf> {
    Ok(daemon_state_dir()?.join("agentd.log"))
}

fn autostart_enabled() -> bool {
    std::env::var(NO_AUTOSTART_ENV).map_or(true, |v| v != "1")
}

/// Connects to the daemon without starting one.
///
/// Errors: nothing answers; the message names the socket and says how to
/// start a daemon.
pub async fn connect_existing(socket: &Path) -> anyhow::Result<Client> {
    Client::connect(socket).await.map_err(|e| match e {
        ClientError::Connect { .. } => anyhow::anyhow!(
            "no agentd is running on {} (start one with `agentctl daemon start` or `agentd`)",
            socket.display()
        ),
        other => other.into(),
    })
}

/// Connects to the daemon, starting it first when nothing answers and
/// auto-start is on.
///
/// Errors: no daemon and auto-start off; the daemon could not be found,
/// started, or did not become ready in 10 s (the message quotes its log).
pub async fn connect(socket: &Path) -> anyhow::Result<Client> {
    if let Ok(client) = Client::connect(socket).await {
        return Ok(client);
    }
    if !autostart_enabled() {
        return connect_existing(socket).await;
    }
    start_daemon(socket).await?;
    connect_existing(socket).await
}

/// Where the `agentd` binary is: next to this executable, else on `PATH`.
pub fn agentd_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("agentd")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("agentd"))
}

/// Starts `agentd --socket SOCKET` detached (its own session, stdin from
/// `/dev/null`, output appended to the daemon log) and waits for `READY=1`.
/// If the new daemon exits because another one won the race to start,
/// that one is used.
///
/// Errors: the binary cannot be run; it exited or stayed silent for 10 s
/// without another daemon answering.
pub async fn start_daemon(socket: &Path) -> anyhow::Result<()> {
    let log_path = daemon_log_path()?;
    if let Some(dir) = log_path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open the daemon log {}", log_path.display()))?;
    let log_size = log.metadata().map(|m| m.len()).unwrap_or(0);

    let ready_dir = tempfile_dir()?;
    let ready_path = ready_dir.join("notify.sock");
    let ready = tokio::net::UnixDatagram::bind(&ready_path)
        .with_context(|| format!("cannot create {}", ready_path.display()))?;

    let binary = agentd_binary();
    let mut cmd = tokio::process::Command::new(&binary);
    cmd.arg("--socket")
        .arg(socket)
        .env("NOTIFY_SOCKET", &ready_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(false);
    // The daemon passes its environment to every job: keep the agent's API
    // keys out of it.
    for key in crate::agent::config::KEY_VARS {
        cmd.env_remove(key);
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;

    let mut buf = [0u8; 256];
    let outcome = tokio::time::timeout(START_TIMEOUT, async {
        loop {
            tokio::select! {
                received = ready.recv(&mut buf) => {
                    let n = received?;
                    if buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") {
                        return Ok::<_, std::io::Error>(None);
                    }
                }
                status = child.wait() => return Ok(Some(status?)),
            }
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&ready_dir);
    match outcome {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(status))) => {
            // Lost a start race to another agentctl? Then its daemon answers.
            if Client::connect(socket).await.is_ok() {
                return Ok(());
            }
            bail!(
                "agentd exited ({status}) before it was ready; its log {} says:\n{}",
                log_path.display(),
                log_since(&log_path, log_size)
            )
        }
        Ok(Err(e)) => Err(e).context("waiting for agentd to start"),
        Err(_) => bail!(
            "agentd did not become ready within {} s; see its log {}",
            START_TIMEOUT.as_secs(),
            log_path.display()
        ),
    }
}

/// A private temporary directory for the readiness socket.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("agentctl-start-{}", uuid::Uuid::new_v4().simple()));
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn log_since(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = (offset as usize).min(text.len());
    String::from_utf8_lossy(&text[start..])
        .trim_end()
        .to_string()
}
