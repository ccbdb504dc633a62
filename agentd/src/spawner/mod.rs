//! The spawner: a small single-threaded helper process (`agentd spawner`,
//! hidden) that agentd starts once and asks to start each job's shim. It
//! forks the shim from itself, without an `exec`, which is where most of a
//! short job's cost went when agentd exec'd a new `agentd shim` per job
//! (docs/survival.md, "Cost").
//!
//! agentd and the spawner talk over a Unix stream socket (the spawner's
//! stdin), one request at a time: [`wire`] holds the format. For each
//! request the spawner
//!
//! 1. forks; the child waits on a pipe until told to go;
//! 2. opens a pidfd for the child (it cannot have exited yet, so the pidfd
//!    names it even though the kernel reaps it: SIGCHLD is ignored here),
//!    reads its start time, and tells it to go;
//! 3. replies with the shim's pid and start time, attaching (SCM_RIGHTS)
//!    the pidfd, so agentd learns of the shim's exit without being its
//!    parent, and the read end of a second pipe, and goes on to the next
//!    request;
//! 4. meanwhile the child becomes the job's shim ([`crate::shim::run`]): it
//!    leaves the spawner's session, starts `/bin/sh -c COMMAND` and writes
//!    the job's pid to that pipe, for agentd to read.
//!
//! The spawner holds no state between requests and exits when agentd's end
//! of the socket closes; shims it forked run on without it. It runs in its
//! own process group, so a Ctrl-C meant for an agentd in a terminal does
//! not reach it.

pub mod client;
pub mod wire;

use crate::shim;
use crate::supervisor::group;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::ForkResult;
use rustix::fd::{AsFd, FromRawFd, OwnedFd};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::io::Read;
use std::process::ExitCode;
use wire::{Reply, Request};

/// Runs the spawner on the socket that is its stdin until agentd closes it.
/// Exit status 0 at end of file, 1 when the socket fails.
pub fn run() -> ExitCode {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
    // code; nothing else in this single-threaded process handles SIGCHLD.
    if let Err(e) = unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) } {
        eprintln!("agentd spawner: cannot ignore SIGCHLD: {e}");
        return ExitCode::FAILURE;
    }
    // Detected once here, so every shim forked from this process has it
    // already instead of asking the kernel again before each job's start.
    let _ = crate::sandbox::support();
    // SAFETY: agentd starts the spawner with the socket as stdin; nothing
    // else in this process owns fd 0.
    // One descriptor for both directions: a forked shim replaces fd 0 with
    // /dev/null and so keeps no end of the socket open (were it to, agentd
    // would not see end of file when the spawner dies).
    let mut socket = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(0) });
    loop {
        let request = match wire::read_request(&mut socket) {
            Ok(Some(r)) => r,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agentd spawner: reading a request failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (reply, fds) = start_shim(&request);
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        if let Err(e) = wire::send_reply(socket.as_fd(), &reply, &borrowed) {
            eprintln!("agentd spawner: replying failed: {e}");
            return ExitCode::FAILURE;
        }
    }
}

/// Forks one shim for `request` (see the module docs) and returns the reply
/// with the shim's pidfd and the read end of its pid pipe.
fn start_shim(request: &Request) -> (Reply, Vec<OwnedFd>) {
    let pipes =
        pipe_with(PipeFlags::CLOEXEC).and_then(|go| Ok((go, pipe_with(PipeFlags::CLOEXEC)?)));
    let ((go_r, go_w), (pid_r, pid_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return (Reply::failed(e.raw_os_error()), Vec::new()),
    };
    // SAFETY: this process is single-threaded (agentd starts it with no
    // runtime), so the child may do anything the parent could.
    match unsafe { nix::unistd::fork() } {
        Err(e) => (Reply::failed(e as i32), Vec::new()),
        Ok(ForkResult::Child) => {
            drop(go_w);
            drop(pid_r);
            let mut go = [0u8; 1];
            let told = std::fs::File::from(go_r).read(&mut go);
            let code = match told {
                Ok(1) => shim::run(request, pid_w),
                _ => 1, // the spawner died before saying go
            };
            // Not `exit`: nothing of the spawner's (atexit handlers, stdio
            // buffers) is the shim's to run or flush.
            // SAFETY: `_exit` ends the process at once; always sound.
            unsafe { nix::libc::_exit(code.into()) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(go_r);
            drop(pid_w);
            let pid = child.as_raw() as u32;
            let pidfd = Pid::from_raw(child.as_raw())
                .ok_or(rustix::io::Errno::SRCH)
                .and_then(|p| pidfd_open(p, PidfdFlags::NONBLOCK));
            let start = group::stat_start(pid).map_or(0, |(_, s)| s);
            // Go (or, without a pidfd, a closed pipe: the child exits).
            if pidfd.is_ok() {
                let _ = rustix::io::write(&go_w, &[1]);
            }
            drop(go_w);
            match pidfd {
                Ok(fd) => (Reply::forked(pid, start), vec![fd, pid_r]),
                Err(e) => (Reply::failed(e.raw_os_error()), Vec::new()),
            }
        }
    }
}
