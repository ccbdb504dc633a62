//! A job's shim: the per-job supervisor that keeps a job alive and its exit
//! status known when agentd is not there (docs/survival.md).
//!
//! The spawner ([`crate::spawner`]) forks one shim per job. The shim
//!
//! 1. restores SIGCHLD's default (the spawner ignores it) and leaves the
//!    spawner's session and process group (`setsid`), so nothing sent to
//!    agentd's group or terminal reaches it;
//! 2. becomes a child subreaper, so the job's orphaned descendants are
//!    reparented to it and reaped instead of piling up as zombies;
//! 3. points its stdin and stdout at `/dev/null` (dropping the spawner's
//!    socket) and its stderr at the job's output log, opened for appending
//!    (which also names it: an agentd that crashed before recording the
//!    job's start finds the shim by its stderr, see
//!    [`crate::supervisor::adopt::claim_unrecorded`]);
//! 4. changes to the job's cwd, prepares the job's sandbox and limits
//!    ([`crate::sandbox`]; one this kernel cannot enforce is refused: the
//!    reason goes to agentd on the pid pipe as `error: REASON`) and forks
//!    `/bin/sh -c COMMAND` in the job's environment, in a new process
//!    group (pgid = its pid), stdin `/dev/null`, stdout and stderr the
//!    output log, the sandbox applied just before `exec`;
//! 5. writes the job's pid as one decimal line to its pipe (agentd holds
//!    the read end);
//! 6. keeps the output log within `[output] max_bytes`, woken by inotify
//!    when the log is written, at most every so often while the job writes
//!    ([`crate::supervisor::cap::Watch`]), on its one thread;
//! 7. reaps every child until the job's leader exits;
//! 8. appends the leader's exit status durably to the exit journal segment
//!    agentd named ([`crate::supervisor::record::append`]), with the reason
//!    when the sandbox could not be applied after the fork, removes the
//!    job's private temp dir, if it has one, and exits.
//!
//! It is deliberately small: plain `std`, `rustix` and `nix`, no tokio
//! runtime, no logging framework. It never signals the job; agentd signals
//! the job's process group directly for kills and timeouts.

use crate::sandbox::{self, Prepared};
use crate::spawner::wire::Request;
use crate::supervisor::{
    cap, output,
    record::{self, ExitRecord},
};
use crate::timefmt;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, Pid as NixPid, setpgid};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::WaitOptions;
use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Instant;

/// Exit status of a shim that could not spawn the job (as a shell's "cannot
/// execute"): the reason is in the job's output log, and no exit record is
/// written.
pub const SPAWN_FAILED: u8 = 127;

/// Runs the shim to the job's end (see the module docs), in a process just
/// forked by the spawner; `report` is the pipe for the job's pid. Returns 0
/// once the exit record is written, [`SPAWN_FAILED`] when the job could not
/// be started, 1 when the exit record could not be written (agentd then
/// reports the job `lost`). Messages go to stderr, the job's output log.
pub fn run(request: &Request, report: OwnedFd) -> u8 {
    // SAFETY: SIG_DFL installs no handler code; this process has one thread.
    if let Err(e) = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) } {
        eprintln!("agentd shim: cannot restore SIGCHLD: {e}");
        return SPAWN_FAILED;
    }
    // Not fatal: the shim may already lead its own session.
    let _ = rustix::process::setsid();
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        // Descendants that outlive the job then go to init instead; the
        // job itself is still this process's child.
        eprintln!("agentd shim: cannot become a child subreaper: {e}");
    }
    let log = match redirect_stdio(&request.log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("agentd shim: cannot open the job's output log: {e}");
            return SPAWN_FAILED;
        }
    };
    // The shim's own cwd is the job's, which the job inherits; a cwd that
    // vanished since the submit is a job that could not be started.
    if let Err(e) = std::env::set_current_dir(&request.cwd) {
        eprintln!(
            "agentd: cannot start the job: cannot run /bin/sh in {}: {e}",
            request.cwd.display()
        );
        return SPAWN_FAILED;
    }
    let mut prepared = match prepare(request) {
        Ok(p) => p,
        Err(reason) => {
            let reason = reason.replace('\n', " ");
            eprintln!("agentd: cannot start the job: {reason}");
            let _ = File::from(report).write_all(format!("error: {reason}\n").as_bytes());
            return SPAWN_FAILED;
        }
    };
    let started = Instant::now();
    let (leader, failure) = match start_job(request, &log, &mut prepared) {
        Ok(started) => started,
        Err(e) => {
            prepared.cleanup();
            eprintln!("agentd: cannot start the job: cannot fork /bin/sh: {e}");
            return SPAWN_FAILED;
        }
    };
    let _ = File::from(report).write_all(itoa_line(leader).bytes());
    let watch = if request.max_output > 0 {
        cap::Watch::new(&request.log, request.max_output)
            .map_err(|e| {
                eprintln!(
                    "agentd shim: cannot apply [output] max_bytes; the output is not capped: {e}"
                );
            })
            .ok()
    } else {
        None
    };
    let status = match &watch {
        Some(w) => reap_watching(leader, w),
        None => reap_until(leader),
    };
    if let Some(w) = &watch {
        // What the job wrote since the log was last trimmed.
        let _ = w.woken();
    }
    // The job's process wrote why it did not exec, if it did not; the pipe
    // closed at its exec or exit, so this never waits.
    let reason = failure.and_then(|fd| {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut File::from(fd), &mut text);
        (!text.is_empty()).then_some(text)
    });
    prepared.cleanup();
    let record = ExitRecord {
        reason,
        exit_code: status.and_then(|s| s.exit_status()),
        signal: status
            .and_then(|s| s.terminating_signal())
            .map(agentd_proto::signal::name),
        finished_at: timefmt::now(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    match record::append(&request.journal, &request.id, &record) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "agentd shim: cannot record the job's exit in {}: {e}",
                request.journal.display()
            );
            1
        }
    }
}

/// The job's sandbox and limits made ready ([`sandbox::prepare`]); nothing
/// for a job without them.
///
/// Errors: the reason the job must not start.
fn prepare(request: &Request) -> Result<Prepared, String> {
    let policy = sandbox::Policy::decode(&request.policy)?;
    if policy.is_empty() {
        return Ok(Prepared::default());
    }
    sandbox::prepare(&policy, &request.cwd, &request.id)
}

/// Forks `/bin/sh -c COMMAND` as the leader of a new process group, with
/// stdout the output log, the job's environment (the shim's with the
/// request's `env` laid over it), SIGPIPE at its default and, like
/// everything here, no signal blocked; returns its pid at once.
///
/// By hand rather than with `std::process::Command`, which waits until the
/// child has `exec`'d to learn whether it could: that wait sat on every
/// job's start, and so on agentd's reply to `job.submit`. What can fail
/// in the child (the `exec` of `/bin/sh`, practically never, or applying
/// the job's sandbox) is written to the output log and ends the job with
/// exit status 127, as a shell does. A sandboxed job's process also writes
/// it to a close-on-exec pipe whose read end is returned with the pid, for
/// the exit record's `reason`; `TMPDIR` is its private temp dir.
///
/// Errors: the arguments hold a NUL (agentd refuses those at submit), or
/// `pipe` or `fork` fails.
fn start_job(
    request: &Request,
    log: &OwnedFd,
    prepared: &mut Prepared,
) -> std::io::Result<(u32, Option<OwnedFd>)> {
    let nul = |_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL byte");
    let argv = [
        CString::new("/bin/sh").map_err(nul)?,
        CString::new("-c").map_err(nul)?,
        CString::new(request.command.as_bytes()).map_err(nul)?,
    ];
    let mut vars: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    vars.extend(request.env.iter().cloned());
    if let Some(tmp) = &prepared.tmp {
        vars.insert("TMPDIR".into(), tmp.clone().into_os_string());
    }
    let envp = vars
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).map_err(nul)
        })
        .collect::<std::io::Result<Vec<CString>>>()?;
    let failure = if prepared.is_empty() {
        None
    } else {
        Some(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
    };
    // SAFETY: the shim has one thread, so the child may run any code; it
    // only adjusts itself and execs (or reports why not and exits).
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        ForkResult::Child => {
            // SAFETY: SIG_DFL installs no handler code.
            let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
            let _ = setpgid(NixPid::from_raw(0), NixPid::from_raw(0));
            let reason = match rustix::stdio::dup2_stdout(log) {
                Ok(()) => match prepared.apply() {
                    Ok(()) => match nix::unistd::execve(&argv[0], &argv, &envp) {
                        Err(e) => format!("cannot run /bin/sh: {}", std::io::Error::from(e)),
                        Ok(never) => match never {},
                    },
                    Err(reason) => reason,
                },
                Err(e) => format!("cannot run /bin/sh: {e}"),
            };
            eprintln!("agentd: cannot start the job: {reason}");
            if let Some((_, w)) = &failure {
                let _ = rustix::io::write(w, reason.as_bytes());
            }
            // SAFETY: `_exit` ends the process at once; always sound.
            unsafe { nix::libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            // Also here, so the group exists before agentd can signal it
            // whichever of the two runs first.
            let _ = setpgid(child, child);
            Ok((child.as_raw() as u32, failure.map(|(r, _)| r)))
        }
    }
}

/// Points stdin and stdout at `/dev/null` and stderr at the job's output
/// log, and returns another descriptor of the log (close-on-exec) for the
/// job's stdout.
fn redirect_stdio(log: &Path) -> std::io::Result<OwnedFd> {
    let null = File::open("/dev/null")?;
    let log = output::open_for_job(log)?;
    rustix::stdio::dup2_stdin(null.as_fd())?;
    rustix::stdio::dup2_stdout(null.as_fd())?;
    rustix::stdio::dup2_stderr(log.as_fd())?;
    Ok(OwnedFd::from(log))
}

/// `pid` as a decimal line, without going through the formatting machinery.
fn itoa_line(mut pid: u32) -> LineBuf {
    let mut buf = [0u8; 11];
    let mut i = buf.len() - 1;
    buf[i] = b'\n';
    loop {
        i -= 1;
        buf[i] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    LineBuf { buf, start: i }
}

/// A short line on the stack.
struct LineBuf {
    buf: [u8; 11],
    start: usize,
}

impl LineBuf {
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// [`reap_until`] while keeping the log within its cap: SIGCHLD is blocked
/// and read from a signalfd, polled beside the log's inotify watch, so the
/// shim keeps one thread. Children are reaped (without waiting) before
/// every poll, so an exit signalled before SIGCHLD was blocked is not
/// missed. After each trim the watch is left alone for as long as the job
/// needs to write the headroom ([`cap::Watch::quiet_for`]): a job writing
/// fast wakes its shim a few times a second, not at every write. Falls
/// back to [`reap_until`] (uncapped) if SIGCHLD cannot be read from a
/// descriptor.
fn reap_watching(leader: u32, watch: &cap::Watch) -> Option<rustix::process::WaitStatus> {
    use nix::sys::signal::SigSet;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    if mask.thread_block().is_err() {
        return reap_until(leader);
    }
    let Ok(sfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    else {
        eprintln!("agentd shim: cannot watch the job's children; the output is not capped");
        return reap_until(leader);
    };
    let mut watching = true;
    // While set, the watch is not polled: the next trim is due then.
    let mut quiet_until: Option<Instant> = None;
    loop {
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) if pid.as_raw_nonzero().get() as u32 == leader => {
                    return Some(status);
                }
                Ok(Some(_)) | Err(rustix::io::Errno::INTR) => continue,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("agentd shim: waiting for the job failed: {e}");
                    return None;
                }
            }
        }
        let poll_watch = watching && quiet_until.is_none();
        let mut fds = vec![PollFd::new(&sfd, PollFlags::IN)];
        if poll_watch {
            fds.push(PollFd::from_borrowed_fd(watch.fd(), PollFlags::IN));
        }
        let timeout = quiet_until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .and_then(|d| Timespec::try_from(d).ok());
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                eprintln!("agentd shim: polling failed: {e}; the output is no longer capped");
                return reap_until(leader);
            }
        }
        let log_written = poll_watch && fds[1].revents().contains(PollFlags::IN);
        let due = quiet_until.is_some_and(|t| Instant::now() >= t);
        while let Ok(Some(_)) = sfd.read_signal() {}
        if watching && (log_written || due) {
            quiet_until = None;
            match watch.woken() {
                Ok(headroom) => {
                    quiet_until = cap::Watch::quiet_for(headroom).map(|d| Instant::now() + d);
                }
                Err(e) => {
                    eprintln!("agentd shim: cannot keep the output within [output] max_bytes: {e}");
                    watching = false;
                }
            }
        }
    }
}

/// Reaps children (the job and, as a subreaper, its orphaned descendants)
/// until `leader` has exited; returns its status. `None` only if waiting
/// fails for another reason than an interrupt (no children left).
fn reap_until(leader: u32) -> Option<rustix::process::WaitStatus> {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() as u32 == leader => {
                return Some(status);
            }
            Ok(_) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                eprintln!("agentd shim: waiting for the job failed: {e}");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pid_lines_are_decimal() {
        for pid in [0u32, 7, 10, 4_194_304, u32::MAX] {
            assert_eq!(super::itoa_line(pid).bytes(), format!("{pid}\n").as_bytes());
        }
    }
}
