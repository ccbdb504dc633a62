//! `agentd shim`: the per-job supervisor that keeps a job alive and its exit
//! status known when agentd is not there (docs/survival.md).
//!
//! agentd starts one shim per job, already in the job's cwd and environment,
//! with stdin from `/dev/null`, stdout a pipe to agentd and stderr the job's
//! output log (opened for appending). The shim
//!
//! 1. leaves agentd's session and process group (`setsid`), so nothing sent
//!    to agentd's group or terminal reaches it;
//! 2. becomes a child subreaper, so the job's orphaned descendants are
//!    reparented to it and reaped instead of piling up as zombies;
//! 3. spawns `/bin/sh -c COMMAND` in a new process group (pgid = its pid),
//!    stdin inherited (`/dev/null`), stdout and stderr the output log;
//! 4. writes the job's pid as one decimal line to stdout for agentd;
//! 5. reaps every child until the job's leader exits;
//! 6. writes the leader's exit status durably to `exit.json` in the job's
//!    directory ([`crate::supervisor::record`]) and exits.
//!
//! It is deliberately small: plain `std` and `rustix`, no tokio runtime, no
//! logging framework, a handful of allocations. It never signals the job;
//! agentd signals the job's process group directly for kills and timeouts.

use crate::supervisor::record::{self, ExitRecord};
use crate::timefmt;
use rustix::process::WaitOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Instant;

/// Exit status of a shim that could not spawn the job (as a shell's "cannot
/// execute"): the reason is in the job's output log, and no exit record is
/// written.
pub const SPAWN_FAILED: u8 = 127;

/// Arguments of the hidden `agentd shim` subcommand. Only agentd runs it.
#[derive(Debug, clap::Args)]
pub struct ShimArgs {
    /// The job's directory, where `exit.json` is written
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The command, run as `/bin/sh -c COMMAND`
    #[arg(allow_hyphen_values = true)]
    pub command: String,
}

/// Runs the shim to the job's end (see the module docs). Returns 0 once the
/// exit record is written, [`SPAWN_FAILED`] when `/bin/sh` could not be
/// spawned, 1 when the exit record could not be written (agentd then
/// reports the job `lost`). Messages go to stderr, the job's output log.
pub fn run(args: ShimArgs) -> ExitCode {
    // Not fatal: the shim already leads its own session when started so.
    let _ = rustix::process::setsid();
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        // Descendants that outlive the job then go to init instead; the
        // job itself is still this process's child.
        eprintln!("agentd shim: cannot become a child subreaper: {e}");
    }
    // Close-on-exec, so the job gets the log as stdout and stderr only, not
    // as a stray third descriptor.
    let stdout_log = match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3) {
        Ok(fd) => Stdio::from(fd),
        Err(e) => {
            eprintln!("agentd: cannot start the job: cannot duplicate the output log: {e}");
            return ExitCode::from(SPAWN_FAILED);
        }
    };
    let started = Instant::now();
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&args.command)
        .stdin(Stdio::inherit())
        .stdout(stdout_log)
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn();
    let leader = match child {
        Ok(child) => child.id(),
        Err(e) => {
            eprintln!("agentd: cannot start the job: cannot run /bin/sh: {e}");
            return ExitCode::from(SPAWN_FAILED);
        }
    };
    report_pid(leader);
    let status = reap_until(leader);
    let record = ExitRecord {
        exit_code: status.and_then(|s| s.exit_status()),
        signal: status
            .and_then(|s| s.terminating_signal())
            .map(agentd_proto::signal::name),
        finished_at: timefmt::now(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    match record::write(&args.dir, &record) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "agentd shim: cannot record the job's exit in {}: {e}",
                args.dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Writes the job's pid as one line to stdout (agentd's pipe), then points
/// stdout at `/dev/null`. A reader that is gone (agentd died meanwhile) is
/// not an error: the job still ends with an exit record, and an agentd that
/// never learned of the job (it was not yet recorded as started) has nothing
/// to report.
fn report_pid(pid: u32) {
    let line = itoa_line(pid);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.bytes());
    let _ = out.flush();
    drop(out);
    // Point fd 1 at /dev/null so agentd sees end-of-file and the pipe is
    // not held open for the job's lifetime.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
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
