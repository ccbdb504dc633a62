//! Following a job across agentd restarts. Jobs outlive agentd
//! (docs/survival.md), so the commands that follow one — `wait`,
//! `run --wait`, `logs -f` — must outlive it too.
//!
//! [`Reconnecting`] is a connection that, when agentd goes away under a
//! call (the connection closes, or agentd answers -32005 "shutting down"),
//! reaches agentd again and re-issues the call. That is right only for
//! calls that may be repeated: `job.get`, `job.wait`, `job.output` at an
//! offset. Reaching it again goes through auto-start, as any agentctl
//! command does; with `AGENTCTL_NO_AUTOSTART=1` it waits for a daemon to
//! come back, woken by inotify when the socket file appears, with a backoff
//! timer as the fallback. Either way it gives up after
//! [`RECONNECT_TIMEOUT`] without reaching one.

use crate::connect;
use agentd_proto::methods::Method;
use agentd_proto::{Client, ClientError, codes};
use indicatif::ProgressBar;
use rustix::fs::inotify;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// How long to keep trying to reach agentd after it went away: 30 s.
pub const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// First pause between two attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A connection to agentd that survives agentd's restarts (see the module
/// docs).
pub struct Reconnecting {
    /// The socket to reach agentd on again.
    socket: PathBuf,
    /// The current connection.
    client: Client,
    /// Set while agentd is away: since when and how long the next pause is.
    outage: Option<Outage>,
    /// A spinner to suspend while printing, so lines do not garble it.
    bar: Option<ProgressBar>,
}

/// An ongoing absence of agentd.
struct Outage {
    /// When to give up.
    deadline: Instant,
    /// The pause before the next attempt.
    backoff: Duration,
}

/// True when `err` means agentd went away (or is going) rather than that
/// it refused the request: the call is worth re-issuing to the next agentd.
pub fn is_gone(err: &ClientError) -> bool {
    match err {
        ClientError::Closed | ClientError::Io(_) | ClientError::ReadFailed(_) => true,
        ClientError::Rpc(e) => e.code == codes::SHUTTING_DOWN,
        ClientError::Connect { .. }
        | ClientError::Decode(_)
        | ClientError::ReplyTooLarge { .. } => false,
    }
}

impl Reconnecting {
    /// Wraps an open connection to agentd on `socket`.
    pub fn new(socket: PathBuf, client: Client) -> Reconnecting {
        Reconnecting {
            socket,
            client,
            outage: None,
            bar: None,
        }
    }

    /// Connects (auto-starting agentd as [`connect::connect`] does).
    ///
    /// Errors: as [`connect::connect`].
    pub async fn connect(socket: PathBuf) -> anyhow::Result<Reconnecting> {
        let client = connect::connect(&socket).await?;
        Ok(Reconnecting::new(socket, client))
    }

    /// Prints its messages through `bar` (suspending it) from now on.
    pub fn set_bar(&mut self, bar: ProgressBar) {
        self.bar = Some(bar);
    }

    /// Calls `M`, and when agentd goes away under the call, reaches it
    /// again and re-issues the call. Only for calls that may be repeated.
    ///
    /// Errors: agentd's error reply; agentd could not be reached again
    /// within [`RECONNECT_TIMEOUT`].
    pub async fn call<M: Method>(&mut self, params: &M::Params) -> anyhow::Result<M::Result> {
        loop {
            match self.client.call::<M>(params).await {
                Ok(result) => {
                    self.outage = None;
                    return Ok(result);
                }
                Err(e) if is_gone(&e) => self.reconnect(&e.to_string()).await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reaches agentd again after it went away for the reason `why` (say,
    /// a `job.wait` answered early because agentd is shutting down).
    ///
    /// Errors: no agentd answered within [`RECONNECT_TIMEOUT`] of the
    /// first sign that it went away.
    pub async fn reconnect(&mut self, why: &str) -> anyhow::Result<()> {
        let autostart = connect::autostart_enabled();
        if self.outage.is_none() {
            self.say(&if autostart {
                format!("agentctl: {why}; reconnecting to agentd (starting it if needed)")
            } else {
                format!(
                    "agentctl: {why}; waiting up to {} s for agentd to come back on {} \
                     (auto-start is off)",
                    RECONNECT_TIMEOUT.as_secs(),
                    self.socket.display()
                )
            });
        }
        let mut first = self.outage.is_none();
        let outage = self.outage.get_or_insert(Outage {
            deadline: Instant::now() + RECONNECT_TIMEOUT,
            backoff: FIRST_BACKOFF,
        });
        let mut last_error = String::from("nothing answered");
        loop {
            // Watch before trying, so a socket that appears in between wakes us.
            let watch = SocketWatch::new(&self.socket);
            if !first {
                let left = outage.deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    anyhow::bail!(
                        "agentd did not come back on {} within {} s ({last_error}); \
                         the job keeps running: follow it again with `agentctl wait` or \
                         `agentctl logs -f` once agentd runs",
                        self.socket.display(),
                        RECONNECT_TIMEOUT.as_secs()
                    );
                }
                watch.wait(outage.backoff.min(left)).await;
                outage.backoff = (outage.backoff * 2).min(MAX_BACKOFF);
            }
            first = false;
            let left = outage.deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, attempt(&self.socket, autostart)).await {
                Ok(Ok(client)) => {
                    self.client = client;
                    return Ok(());
                }
                Ok(Err(e)) => last_error = format!("{e:#}"),
                Err(_) => last_error = "starting agentd took too long".into(),
            }
        }
    }

    /// Prints one line on stderr, around the spinner if there is one.
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

/// One try at reaching agentd: connect, and when nothing answers and
/// auto-start is on, start it and connect.
async fn attempt(socket: &Path, autostart: bool) -> anyhow::Result<Client> {
    match Client::connect(socket).await {
        Ok(client) => Ok(client),
        Err(e) if !autostart => Err(e.into()),
        Err(_) => {
            connect::start_daemon(socket).await?;
            Ok(connect::connect_existing(socket).await?)
        }
    }
}

/// A watch on the socket's directory that wakes when the socket file is
/// created, moved in or changes mode (a new agentd binds it). `None` inside
/// when inotify or the directory is not available: then waits are timers.
struct SocketWatch {
    fd: Option<AsyncFd<OwnedFd>>,
    name: OsString,
}

impl SocketWatch {
    fn new(socket: &Path) -> SocketWatch {
        let name = socket.file_name().unwrap_or_default().to_os_string();
        let dir = match socket.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let flags = inotify::WatchFlags::CREATE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::ATTRIB;
        let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
            .ok()
            .filter(|fd| inotify::add_watch(fd, dir, flags).is_ok())
            // SAFETY: the AsyncFd owns the OwnedFd, which stays open and
            // names the same inotify object until the AsyncFd is dropped.
            .and_then(|fd| unsafe { AsyncFd::register(fd) }.ok());
        SocketWatch { fd, name }
    }

    /// Returns when the socket file appears, or after `timeout`.
    async fn wait(&self, timeout: Duration) {
        let Some(fd) = &self.fd else {
            tokio::time::sleep(timeout).await;
            return;
        };
        let appeared = async {
            let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
            loop {
                let Ok(mut ready) = fd.readable().await else {
                    return std::future::pending().await;
                };
                let mut events = inotify::Reader::new(fd.get_ref(), &mut buf);
                loop {
                    match events.next() {
                        Ok(event) => {
                            let name = event.file_name().map(|n| n.to_bytes());
                            if name == Some(self.name.as_bytes()) {
                                return;
                            }
                        }
                        Err(rustix::io::Errno::AGAIN) => {
                            ready.clear_ready();
                            break;
                        }
                        Err(_) => return std::future::pending().await,
                    }
                }
            }
        };
        let _ = tokio::time::timeout(timeout, appeared).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_daemon_going_away_is_worth_a_retry() {
        assert!(is_gone(&ClientError::Closed));
        assert!(is_gone(&ClientError::Io(
            std::io::ErrorKind::BrokenPipe.into()
        )));
        let rpc = |code| ClientError::Rpc(agentd_proto::RpcError::new(code, "x"));
        assert!(is_gone(&rpc(codes::SHUTTING_DOWN)));
        assert!(!is_gone(&rpc(codes::JOB_NOT_FOUND)));
    }

    #[tokio::test]
    async fn the_watch_wakes_when_the_socket_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agentd.sock");
        let watch = SocketWatch::new(&socket);
        assert!(watch.fd.is_some(), "inotify is available");
        std::fs::write(dir.path().join("other"), "").unwrap();
        std::fs::write(&socket, "").unwrap();
        let started = Instant::now();
        watch.wait(Duration::from_secs(60)).await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "woken by the event"
        );
    }
}
