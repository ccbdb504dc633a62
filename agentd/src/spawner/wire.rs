//! The spawner's wire format: agentd sends one request, the spawner sends
//! one reply, on a Unix stream socket.
//!
//! A request is a frame: a 4-byte little-endian length, then that many
//! bytes of NUL-terminated strings: the job's id, its exit journal segment,
//! its output log, its cwd, its
//! command, its sandbox policy (JSON of [`crate::sandbox::Policy`], empty
//! for none), then name and value of each environment variable laid over the
//! spawner's environment. None of them can hold a NUL (agentd refuses such
//! commands, env and paths at submit). At most [`MAX_REQUEST`] bytes.
//!
//! A reply is [`REPLY_LEN`] bytes, little-endian: status (u32: 0 forked, 2
//! failed), errno (u32, for status 2), the shim's pid (u32), 4 bytes of
//! zeros, and the shim's start time (u64, clock ticks after boot, field 22
//! of `/proc/PID/stat`). A forked reply carries two descriptors as
//! SCM_RIGHTS: the shim's pidfd and the read end of a pipe on which the
//! shim writes the job's pid as one decimal line once it has started the
//! job, or `error: REASON` when it refused to (a sandbox this kernel cannot
//! enforce); end of file without a line: it could not, and wrote why to the
//! job's output log. So the spawner is busy only for the fork, and the
//! shims of many jobs start their jobs at the same time.

use rustix::fd::BorrowedFd;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use std::ffi::OsString;
use std::io::{self, IoSlice, Read};
use std::mem::MaybeUninit;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// Largest request: a command of 128 KiB, 1 MiB of env and two paths fit
/// with room to spare (agentd's submit limits are lower).
pub const MAX_REQUEST: usize = 4 << 20;

/// Bytes in a reply.
pub const REPLY_LEN: usize = 24;

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The job's full id (its exit record's key, its private temp dir's
    /// name).
    pub id: String,
    /// The exit journal segment its shim appends the job's exit record to
    /// ([`crate::supervisor::journal`]).
    pub journal: PathBuf,
    /// The job's output log, appended to.
    pub log: PathBuf,
    /// Where `/bin/sh` runs.
    pub cwd: PathBuf,
    /// The shell command.
    pub command: OsString,
    /// The job's sandbox and limits ([`crate::sandbox::Policy::encode`];
    /// empty for none).
    pub policy: String,
    /// The output cap in bytes (`[output] max_bytes`); 0 for none.
    pub max_output: u64,
    /// Variables laid over the spawner's environment.
    pub env: Vec<(OsString, OsString)>,
}

impl Request {
    /// The request as one frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut put = |s: &[u8]| {
            body.extend_from_slice(s);
            body.push(0);
        };
        put(self.id.as_bytes());
        put(self.journal.as_os_str().as_bytes());
        put(self.log.as_os_str().as_bytes());
        put(self.cwd.as_os_str().as_bytes());
        put(self.command.as_bytes());
        put(self.policy.as_bytes());
        put(self.max_output.to_string().as_bytes());
        for (k, v) in &self.env {
            put(k.as_bytes());
            put(v.as_bytes());
        }
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    }

    /// Parses a frame's body.
    fn decode(body: &[u8]) -> io::Result<Request> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let body = body
            .strip_suffix(&[0])
            .ok_or_else(|| bad("request does not end in NUL"))?;
        let mut parts = body
            .split(|&b| b == 0)
            .map(|p| OsString::from_vec(p.to_vec()));
        let id = parts
            .next()
            .ok_or_else(|| bad("no job id"))?
            .into_string()
            .map_err(|_| bad("a job id that is not UTF-8"))?;
        let journal = parts.next().ok_or_else(|| bad("no exit journal"))?;
        let log = parts.next().ok_or_else(|| bad("no output log"))?;
        let cwd = parts.next().ok_or_else(|| bad("no cwd"))?;
        let command = parts.next().ok_or_else(|| bad("no command"))?;
        let policy = parts
            .next()
            .ok_or_else(|| bad("no sandbox policy"))?
            .into_string()
            .map_err(|_| bad("a sandbox policy that is not UTF-8"))?;
        let max_output = parts
            .next()
            .and_then(|m| m.to_str()?.parse().ok())
            .ok_or_else(|| bad("no output cap"))?;
        let rest: Vec<OsString> = parts.collect();
        if !rest.len().is_multiple_of(2) {
            return Err(bad("an environment variable without a value"));
        }
        let mut env = Vec::with_capacity(rest.len() / 2);
        let mut it = rest.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            env.push((k, v));
        }
        Ok(Request {
            id,
            journal: journal.into(),
            log: log.into(),
            cwd: cwd.into(),
            command,
            policy,
            max_output,
            env,
        })
    }
}

/// Reads one request; `Ok(None)` at end of file before a frame starts.
///
/// Errors: a torn or oversized frame, or a malformed body.
pub fn read_request(r: &mut impl Read) -> io::Result<Option<Request>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_REQUEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("request of {len} bytes is over {MAX_REQUEST}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Request::decode(&body).map(Some)
}

/// How the spawner answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The shim runs (and reports the job's pid on the pipe sent along).
    Forked {
        /// The shim's pid.
        shim_pid: u32,
        /// The shim's start time (clock ticks after boot).
        shim_start: u64,
    },
    /// The spawner could not fork or make its pipes (an errno).
    Failed(i32),
}

impl Reply {
    /// A forked shim.
    pub fn forked(shim_pid: u32, shim_start: u64) -> Reply {
        Reply::Forked {
            shim_pid,
            shim_start,
        }
    }

    /// A failure of the spawner itself.
    pub fn failed(errno: i32) -> Reply {
        Reply::Failed(errno)
    }

    /// The reply's bytes.
    pub fn encode(&self) -> [u8; REPLY_LEN] {
        let (status, errno, shim_pid, start) = match *self {
            Reply::Forked {
                shim_pid,
                shim_start,
            } => (0u32, 0i32, shim_pid, shim_start),
            Reply::Failed(errno) => (2, errno, 0, 0),
        };
        let mut out = [0u8; REPLY_LEN];
        out[0..4].copy_from_slice(&status.to_le_bytes());
        out[4..8].copy_from_slice(&errno.to_le_bytes());
        out[8..12].copy_from_slice(&shim_pid.to_le_bytes());
        out[16..24].copy_from_slice(&start.to_le_bytes());
        out
    }

    /// Parses a reply's bytes.
    ///
    /// Errors: an unknown status.
    pub fn decode(b: &[u8; REPLY_LEN]) -> io::Result<Reply> {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let start = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        match u32_at(0) {
            0 => Ok(Reply::forked(u32_at(8), start)),
            2 => Ok(Reply::Failed(u32_at(4) as i32)),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown spawner reply status {other}"),
            )),
        }
    }
}

/// Sends `reply` on `socket`, with `fds` (none, or the pidfd and the pid
/// pipe) attached.
///
/// Errors: the socket fails (agentd is gone).
pub fn send_reply(socket: BorrowedFd<'_>, reply: &Reply, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let bytes = reply.encode();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("no room for the descriptors in the reply"));
    }
    let mut sent = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    // The descriptor went with the first bytes; the rest (if the socket
    // took only part) follows plainly.
    while sent < bytes.len() {
        sent += rustix::io::write(socket, &bytes[sent..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_env_and_odd_bytes() {
        let req = Request {
            id: "x".into(),
            journal: "/state/exits/1.journal".into(),
            log: "/state/jobs/x.log".into(),
            cwd: "/work dir".into(),
            command: OsString::from_vec(b"echo \xff; exit 3".to_vec()),
            policy: r#"{"sandbox":{"mode":"read-only"}}"#.into(),
            max_output: 1 << 30,
            env: vec![("A".into(), "".into()), ("B".into(), "x=y".into())],
        };
        let frame = req.encode();
        let got = read_request(&mut &frame[..]).unwrap().unwrap();
        assert_eq!(got, req);
        assert!(read_request(&mut &[][..]).unwrap().is_none());
        assert!(read_request(&mut &frame[..frame.len() - 1]).is_err());
    }

    #[test]
    fn replies_round_trip() {
        for r in [Reply::forked(7, 1 << 40), Reply::Failed(11)] {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
    }
}
