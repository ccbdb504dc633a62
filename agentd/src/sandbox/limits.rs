//! A job's resource limits (`limits`): `setrlimit` on the job's process
//! before `exec`, inherited by every child. Soft and hard limits are set
//! together, so the job cannot raise them again.
//!
//! - `memory_bytes`: `RLIMIT_AS`, the address space of each process (not
//!   a cgroup's `memory.max`: allocations past it fail with ENOMEM; a
//!   program reserving much more than it uses, like a JVM, may need more).
//! - `cpu_secs`: `RLIMIT_CPU`, CPU time of each process: SIGXCPU at the
//!   limit, SIGKILL one second later for a process that ignores it.
//! - `processes`: `RLIMIT_NPROC`, which counts every process of the job's
//!   *user*, not only the job's, and does not bind root (or any process with
//!   CAP_SYS_RESOURCE or CAP_SYS_ADMIN): see [`nproc_binds`].
//! - `open_files`: `RLIMIT_NOFILE`, open descriptors of each process.

use agentd_proto::Limits;
use rustix::process::{Resource, Rlimit};

/// The limits to set, resolved from a job's [`Limits`].
#[derive(Debug, Default)]
pub struct Rlimits(Vec<(Resource, u64, &'static str)>);

impl Rlimits {
    /// The `setrlimit` calls that `limits` asks for.
    pub fn from(limits: &Limits) -> Rlimits {
        let mut v = Vec::new();
        if let Some(c) = limits.cpu_secs {
            v.push((Resource::Cpu, c, "cpu_secs (RLIMIT_CPU)"));
        }
        if let Some(p) = limits.processes {
            v.push((Resource::Nproc, p, "processes (RLIMIT_NPROC)"));
        }
        if let Some(f) = limits.open_files {
            v.push((Resource::Nofile, f, "open_files (RLIMIT_NOFILE)"));
        }
        // Last: once it is set, even formatting an error may fail.
        if let Some(b) = limits.memory_bytes {
            v.push((Resource::As, b, "memory_bytes (RLIMIT_AS)"));
        }
        Rlimits(v)
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets every limit on the calling process. Allocates nothing on
    /// success (the job's process runs it last before `exec`, possibly
    /// with a tight address-space limit already in force).
    ///
    /// Errors: the kernel refused one (raising a hard limit above the
    /// current one needs CAP_SYS_RESOURCE).
    pub fn apply(&self) -> Result<(), String> {
        for &(resource, value, what) in &self.0 {
            // One second between SIGXCPU and SIGKILL; the others hard at
            // the value.
            let hard = if resource == Resource::Cpu {
                value.saturating_add(1)
            } else {
                value
            };
            let limit = Rlimit {
                current: Some(value),
                maximum: Some(hard),
            };
            rustix::process::setrlimit(resource, limit)
                .map_err(|e| format!("cannot set limits.{what} to {value}: {e}"))?;
        }
        Ok(())
    }
}

/// Whether `RLIMIT_NPROC` binds this process's jobs: false for uid 0 in the
/// initial user namespace and for a process with CAP_SYS_RESOURCE or
/// CAP_SYS_ADMIN there (the kernel exempts them at `fork`).
pub fn nproc_binds() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // In a user namespace of its own (uid_map not the identity of all ids)
    // neither root nor capabilities count against the initial namespace.
    let initial_ns = std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true);
    if !initial_ns {
        return true;
    }
    let euid_root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0");
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_RESOURCE: u32 = 24;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    let privileged = caps & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) != 0;
    !(euid_root || privileged)
}
