//! A job's sandbox and resource limits as `job.submit` takes them and `Job`
//! reports them (DESIGN.md, "Sandboxed jobs and resource limits"), and what
//! the daemon's kernel can enforce (`daemon.info` `sandbox`).
//!
//! Plain data: agentd records them with the job, hands them to the job's
//! shim, which applies them to the job's processes before `exec`
//! (docs/sandbox.md). A restarted agentd re-adopts the job unchanged: the
//! restrictions belong to the processes, not to agentd.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a sandboxed job may write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// No file-system restriction (the default).
    #[default]
    None,
    /// Nothing writable but the job's private temp dir and `/dev/null`-like
    /// devices.
    ReadOnly,
    /// Writable: the job's cwd, the `writable` paths, its private temp dir
    /// and `/dev/null`-like devices.
    WorkspaceWrite,
}

impl SandboxMode {
    /// Every mode, as the CLI lists them.
    pub const ALL: [SandboxMode; 3] = [
        SandboxMode::None,
        SandboxMode::ReadOnly,
        SandboxMode::WorkspaceWrite,
    ];

    /// The wire name, e.g. `workspace-write`.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::None => "none",
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SandboxMode {
    type Err = String;

    /// Parses a wire name; the error lists the valid ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SandboxMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("unknown sandbox mode {s:?} (expected none, read-only or workspace-write)")
            })
    }
}

/// `job.submit` `sandbox` and `Job.sandbox`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    /// What the job may write.
    pub mode: SandboxMode,
    /// Absolute paths (directories or files) writable beside the cwd in
    /// `workspace-write`; refused in the other modes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<String>,
    /// `false`: no TCP, UDP or raw socket to any address, loopback included
    /// (Unix sockets stay usable). Absent means `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
}

impl Sandbox {
    /// Whether the job may use the network (`network` absent or `true`).
    pub fn network_allowed(&self) -> bool {
        self.network.unwrap_or(true)
    }

    /// Whether this sandbox restricts anything at all.
    pub fn restricts(&self) -> bool {
        self.mode != SandboxMode::None || !self.network_allowed()
    }

    /// A short description for people: `workspace-write, no network`.
    pub fn describe(&self) -> String {
        let mut s = self.mode.to_string();
        if !self.writable.is_empty() {
            s.push_str(&format!(" (+ {})", self.writable.join(", ")));
        }
        if !self.network_allowed() {
            s.push_str(", no network");
        }
        s
    }
}

/// `job.submit` `limits` and `Job.limits`: per-process resource limits
/// (`setrlimit`), set on the job's `/bin/sh` and inherited by every child.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Address space per process in bytes (`RLIMIT_AS`): allocations past
    /// it fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// CPU seconds per process (`RLIMIT_CPU`): SIGXCPU at the limit,
    /// SIGKILL one second later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_secs: Option<u64>,
    /// Processes of the job's user, all of them counted (`RLIMIT_NPROC`:
    /// a per-user limit, and root is exempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
}

impl Limits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// A short description for people: `memory 2.0 GiB, cpu 600 s`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.memory_bytes {
            parts.push(format!("memory {}", human_bytes(m)));
        }
        if let Some(c) = self.cpu_secs {
            parts.push(format!("cpu {c} s"));
        }
        if let Some(p) = self.processes {
            parts.push(format!("processes {p}"));
        }
        if let Some(f) = self.open_files {
            parts.push(format!("open files {f}"));
        }
        parts.join(", ")
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `daemon.info` `sandbox`: what the daemon's kernel lets it enforce.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSupport {
    /// The kernel's Landlock ABI version (`landlock_create_ruleset(NULL, 0,
    /// LANDLOCK_CREATE_RULESET_VERSION)`); 0 without Landlock.
    pub landlock_abi: u32,
    /// `read-only` and `workspace-write` can be enforced (Landlock ABI 3 or
    /// newer, for truncate control).
    pub filesystem: bool,
    /// `network: false` can be enforced (seccomp filters; Landlock ABI 4
    /// adds TCP rules on top).
    pub network: bool,
    /// `limits.processes` binds: false when agentd runs as root (or with
    /// CAP_SYS_RESOURCE / CAP_SYS_ADMIN), whom `RLIMIT_NPROC` does not bind.
    pub processes: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_json_uses_the_wire_names() {
        let s: Sandbox =
            serde_json::from_str(r#"{"mode":"workspace-write","writable":["/a"],"network":false}"#)
                .unwrap();
        assert_eq!(s.mode, SandboxMode::WorkspaceWrite);
        assert!(!s.network_allowed());
        assert_eq!(s.describe(), "workspace-write (+ /a), no network");
        assert!(serde_json::from_str::<Sandbox>(r#"{"mode":"rw"}"#).is_err());
        assert!(serde_json::from_str::<Limits>(r#"{"memory":1}"#).is_err());
        let l = Limits {
            memory_bytes: Some(2 << 30),
            cpu_secs: Some(10),
            ..Limits::default()
        };
        assert_eq!(l.describe(), "memory 2.0 GiB, cpu 10 s");
    }
}
