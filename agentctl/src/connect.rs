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

/// The socket path: `flag` (`--socket`), else `AGENTD_SOCKET` when set and
/// not empty, else the default.
pub fn socket_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(paths::SOCKET_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
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

/// False when `AGENTCTL_NO_AUTOSTART=1` turns auto-start off.
pub fn autostart_enabled() -> bool {
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

/// Where the `agentd` binary is, looked for in this order: next to this
/// executable (`agentctl`), then in each directory of `PATH`.
///
/// Errors: in neither place; the one-line message names both and how to
/// fix it.
pub fn agentd_binary() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("agentd")));
    if let Some(path) = beside.as_ref().filter(|p| is_executable(p)) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(|dir| dir.join("agentd"))
                .find(|p| is_executable(p))
        })
        .unwrap_or_default();
    match on_path {
        Some(path) => Ok(std::path::absolute(&path).unwrap_or(path)),
        None => bail!(
            "cannot start agentd: no agentd next to agentctl ({}) nor on PATH; \
             install agentd into the same directory as agentctl or onto PATH, \
             or start a daemon yourself and point AGENTD_SOCKET at it",
            beside.map_or_else(
                || "agentctl's directory unknown".into(),
                |p| p.display().to_string()
            )
        ),
    }
}

/// True when `path` is a regular file someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Starts `agentd --socket SOCKET` detached (its own session, stdin from
/// `/dev/null`, output appended to the daemon log) and waits for `READY=1`.
/// If the new daemon exits because another one won the race to start,
/// that one is used.
///
/// Errors: no agentd binary (see [`agentd_binary`]); it cannot be run; it
/// exited or stayed silent for 10 s without another daemon answering (the
/// message names its log file and quotes what it wrote there).
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
    let log = {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .with_context(|| format!("cannot open the daemon log {}", log_path.display()))?;
        // One an older agentctl made readable by others is tightened too.
        if log.metadata()?.permissions().mode() & 0o077 != 0 {
            log.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        log
    };
    let log_size = log.metadata().map(|m| m.len()).unwrap_or(0);

    let ready_dir = tempfile_dir()?;
    let ready_path = ready_dir.join("notify.sock");
    let ready = tokio::net::UnixDatagram::bind(&ready_path)
        .with_context(|| format!("cannot create {}", ready_path.display()))?;

    let binary = agentd_binary()?;
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
            let said = log_since(&log_path, log_size);
            bail!(
                "{} exited ({status}) before it was ready; see its log {}{}",
                binary.display(),
                log_path.display(),
                if said.is_empty() {
                    " (it wrote nothing)".to_string()
                } else {
                    format!(", which says:\n{said}")
                }
            )
        }
        Ok(Err(e)) => Err(e).context("waiting for agentd to start"),
        Err(_) => bail!(
            "{} did not become ready within {} s; see its log {}",
            binary.display(),
            START_TIMEOUT.as_secs(),
            log_path.display()
        ),
    }
}

/// A private temporary directory for the readiness socket, in
/// `XDG_RUNTIME_DIR`, else (or when that cannot be written) in the
/// system's temporary directory.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let name = format!("agentctl-start-{}", uuid::Uuid::new_v4().simple());
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let mut last = None;
    for base in runtime.into_iter().chain([std::env::temp_dir()]) {
        let dir = base.join(&name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some((dir, e)),
        }
    }
    let (dir, e) = last.expect("at least one base directory was tried");
    Err(e).with_context(|| format!("cannot create {}", dir.display()))
}

fn log_since(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = (offset as usize).min(text.len());
    String::from_utf8_lossy(&text[start..])
        .trim_end()
        .to_string()
}
