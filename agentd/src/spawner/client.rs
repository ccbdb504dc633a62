//! agentd's side of the spawner: starts `agentd spawner` on first use,
//! sends it one request at a time and turns its replies into started jobs.
//! A spawner that died (it should not) is started again for the next job.

use super::wire::{REPLY_LEN, Reply, Request};
use crate::store::ShimId;
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// Variables of agentd's own environment that its jobs do not inherit:
/// what systemd or an auto-starting agentctl handed agentd, and the model
/// providers' API keys (agentctl's agent must never pass its key to the
/// commands the model runs; a job that needs one gets it through its own
/// `env`).
pub const NOT_INHERITED: &[&str] = &[
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
];

/// A started job's shim.
#[derive(Debug)]
pub struct Started {
    /// A pidfd of the shim, readable once it has exited.
    pub pidfd: OwnedFd,
    /// The shim's identity, recorded so a later agentd can adopt it.
    pub shim: ShimId,
    /// The job's pid (and process group id).
    pub job_pid: u32,
}

/// Why a job did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The shim could not start `/bin/sh`; it wrote why to the output log.
    #[error("the job could not be started; the reason is in its output")]
    InOutput,
    /// The job was not started because its sandbox or limits cannot be
    /// enforced here (see [`crate::sandbox::refusal`]); the reason in words.
    #[error("{0}")]
    Refused(String),
    /// The spawner could not fork, or could not be reached.
    #[error("{0}")]
    Spawner(String),
    /// The spawner failed after taking the request: the shim may be
    /// running the job, unwatched. Such a job is `lost`, never started
    /// again.
    #[error("{0}")]
    Unknown(String),
}

/// The connection to the spawner process, started on first use.
pub struct Spawner {
    /// The program to run as `PROGRAM spawner` (agentd's own executable).
    program: PathBuf,
    /// The live spawner, if one runs; one request at a time.
    conn: tokio::sync::Mutex<Option<Conn>>,
}

struct Conn {
    socket: UnixStream,
    /// Kept so the spawner is reaped when it exits.
    _child: tokio::process::Child,
}

impl Spawner {
    /// A spawner that will run `program spawner` when first needed.
    pub fn new(program: PathBuf) -> Spawner {
        Spawner {
            program,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts one job's shim. Tries a second time with a new spawner when
    /// the connection fails.
    ///
    /// Errors: [`SpawnError::InOutput`] when the shim could not start the
    /// job; [`SpawnError::Spawner`] when no shim could be forked.
    pub async fn spawn(&self, request: &Request) -> Result<Started, SpawnError> {
        let forked = self.fork(request).await?;
        // Outside the lock: other jobs' shims are forked meanwhile.
        match read_pid(forked.pid_pipe).await {
            Ok(job_pid) => Ok(Started {
                pidfd: forked.pidfd,
                shim: forked.shim,
                job_pid,
            }),
            Err(Some(reason)) => Err(SpawnError::Refused(reason)),
            Err(None) => Err(SpawnError::InOutput),
        }
    }

    /// Has the spawner fork the shim; one request at a time.
    async fn fork(&self, request: &Request) -> Result<Forked, SpawnError> {
        let frame = request.encode();
        let mut conn = self.conn.lock().await;
        let mut last = None;
        for _ in 0..2 {
            if conn.is_none() {
                *conn = Some(self.start().map_err(|e| {
                    SpawnError::Spawner(format!("cannot start agentd's spawner: {e}"))
                })?);
            }
            let c = conn.as_mut().expect("just set");
            // A request the spawner did not take whole is safe to send
            // again; it reads only whole frames.
            if let Err(e) = c.socket.write_all(&frame).await {
                tracing::warn!("agentd's spawner failed ({e}); starting a new one");
                *conn = None;
                last = Some(e);
                continue;
            }
            // Once taken, the shim may be running the job: sending the
            // request again could run it twice.
            match receive(&mut c.socket).await {
                Ok(r) => return r,
                Err(e) => {
                    tracing::error!("agentd's spawner failed after taking a job: {e}");
                    *conn = None;
                    return Err(SpawnError::Unknown(format!(
                        "agentd's spawner failed after taking the job ({e}); it may have started without agentd watching it"
                    )));
                }
            }
        }
        Err(SpawnError::Spawner(format!(
            "agentd's spawner failed: {}",
            last.expect("two failures")
        )))
    }

    fn start(&self) -> io::Result<Conn> {
        let (ours, theirs) = StdUnixStream::pair()?;
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.arg0("agentd")
            .arg("spawner")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        for var in NOT_INHERITED {
            cmd.env_remove(var);
        }
        let child = cmd.spawn()?;
        ours.set_nonblocking(true)?;
        Ok(Conn {
            socket: UnixStream::from_std(ours)?,
            _child: child,
        })
    }
}

/// A shim the spawner forked, before it reported the job's pid.
struct Forked {
    pidfd: OwnedFd,
    shim: ShimId,
    /// Where the shim writes the job's pid.
    pid_pipe: OwnedFd,
}

/// Reads the reply to the request just sent. The outer error is the
/// connection's; the inner result the spawner's answer.
async fn receive(socket: &mut UnixStream) -> io::Result<Result<Forked, SpawnError>> {
    let mut bytes = [0u8; REPLY_LEN];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let (n, mut fds) = socket
        .async_io(Interest::READABLE, || {
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = rustix::net::recvmsg(
                socket.as_fd(),
                &mut [IoSliceMut::new(&mut bytes)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            if msg.flags.contains(ReturnFlags::CTRUNC) {
                // Descriptors were dropped (agentd is out of them).
                return Err(io::Error::other("the spawner's descriptors did not fit"));
            }
            let fds: Vec<OwnedFd> = control
                .drain()
                .flat_map(|m| match m {
                    RecvAncillaryMessage::ScmRights(fds) => fds.collect(),
                    _ => Vec::new(),
                })
                .collect();
            Ok((msg.bytes, fds))
        })
        .await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the spawner exited",
        ));
    }
    if n < REPLY_LEN {
        socket.read_exact(&mut bytes[n..]).await?;
    }
    Ok(match Reply::decode(&bytes)? {
        Reply::Forked {
            shim_pid,
            shim_start,
        } => {
            if fds.len() != 2 {
                return Err(io::Error::other(format!(
                    "the spawner sent {} descriptors, not 2",
                    fds.len()
                )));
            }
            let pid_pipe = fds.pop().expect("two");
            let pidfd = fds.pop().expect("two");
            Ok(Forked {
                pidfd,
                shim: ShimId {
                    pid: shim_pid,
                    start: shim_start,
                },
                pid_pipe,
            })
        }
        Reply::Failed(errno) => Err(SpawnError::Spawner(format!(
            "cannot fork the job's shim: {}",
            io::Error::from_raw_os_error(errno)
        ))),
    })
}

/// The job's pid as its shim reports it: one decimal line; or the reason
/// it refused to start the job (`error: REASON`); or `Err(None)` at end of
/// file (the shim could not start the job and wrote why to its output).
async fn read_pid(pipe: OwnedFd) -> Result<u32, Option<String>> {
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe).map_err(|_| None)?;
    let mut line = Vec::with_capacity(16);
    rx.read_to_end(&mut line).await.map_err(|_| None)?;
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end();
    if let Some(reason) = line.strip_prefix("error: ") {
        return Err(Some(reason.to_string()));
    }
    line.parse().map_err(|_| None)
}
