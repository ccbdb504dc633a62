//! Sandboxed jobs and resource limits (docs/sandbox.md).
//!
//! A job's [`Policy`] (its `sandbox` and `limits`, plain data recorded with
//! the job) travels to its shim in the spawner request. The shim
//! [`prepare`]s it before forking `/bin/sh`: checks that this kernel can
//! enforce it, creates the job's private temp dir, builds the Landlock
//! ruleset ([`landlock`]) and compiles the seccomp filter ([`seccomp`]).
//! The forked child then [`Prepared::apply`]s it just before `exec`:
//! Landlock (with `PR_SET_NO_NEW_PRIVS`), seccomp, then the rlimits
//! ([`limits`]). Every child of the job inherits all of it, and none of it
//! depends on agentd: a job keeps its sandbox across agentd's restarts.
//!
//! Refuse rather than pretend: what this kernel cannot enforce makes the
//! job fail to start with a `reason` naming what is missing ([`refusal`]),
//! checked by agentd before asking the spawner and again by the shim.

pub mod landlock;
pub mod limits;
pub mod seccomp;

use agentd_proto::{Limits, Sandbox, SandboxMode, SandboxSupport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a job's shim applies: the job's `sandbox` and `limits` as given at
/// submit. Sent to the shim as JSON (empty when there is nothing to apply).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// File-system and network restrictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

impl Policy {
    /// The policy of a job with `sandbox` and `limits`; sandboxes that
    /// restrict nothing and empty limits are dropped.
    pub fn new(sandbox: Option<&Sandbox>, limits: Option<&Limits>) -> Policy {
        Policy {
            sandbox: sandbox.filter(|s| s.restricts()).cloned(),
            limits: limits.filter(|l| !l.is_empty()).cloned(),
        }
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.sandbox.is_none() && self.limits.is_none()
    }

    /// The wire form: empty, or one line of JSON.
    pub fn encode(&self) -> String {
        if self.is_empty() {
            String::new()
        } else {
            serde_json::to_string(self).expect("a policy always serialises")
        }
    }

    /// Parses [`Policy::encode`]'s output.
    ///
    /// Errors: not a policy (a spawner of another build).
    pub fn decode(s: &str) -> Result<Policy, String> {
        if s.is_empty() {
            return Ok(Policy::default());
        }
        serde_json::from_str(s).map_err(|e| format!("cannot read the job's sandbox: {e}"))
    }
}

/// Checks `job.submit`'s `sandbox` and `limits`: writable paths absolute,
/// without NUL, and only in `workspace-write`; every limit above 0.
///
/// Errors: the message and the field it names, for an Invalid params
/// error.
pub fn check_params(
    sandbox: Option<&Sandbox>,
    limits: Option<&Limits>,
) -> Result<(), (String, &'static str)> {
    if let Some(s) = sandbox {
        if !s.writable.is_empty() && s.mode != SandboxMode::WorkspaceWrite {
            return Err((
                format!(
                    "sandbox.writable is only for mode workspace-write, not {}",
                    s.mode
                ),
                "sandbox",
            ));
        }
        for w in &s.writable {
            if !Path::new(w).is_absolute() || w.contains('\0') {
                return Err((
                    format!("sandbox.writable path {w:?} must be an absolute path without NUL"),
                    "sandbox",
                ));
            }
        }
    }
    if let Some(l) = limits {
        for (name, v) in [
            ("memory_bytes", l.memory_bytes),
            ("cpu_secs", l.cpu_secs),
            ("processes", l.processes),
            ("open_files", l.open_files),
        ] {
            if v == Some(0) {
                return Err((format!("limits.{name} must be above 0"), "limits"));
            }
        }
    }
    Ok(())
}

/// What this kernel supports, detected once (a system call, a `prctl` and
/// two small `/proc` reads).
pub fn support() -> &'static SandboxSupport {
    static SUPPORT: OnceLock<SandboxSupport> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        let abi = landlock::abi();
        SandboxSupport {
            landlock_abi: abi,
            filesystem: abi >= landlock::FS_ABI,
            network: seccomp::available(),
            processes: limits::nproc_binds(),
        }
    })
}

/// Why `policy` cannot be enforced on a kernel with `support`, in words for
/// the job's `reason`; `None` when it can.
pub fn refusal(policy: &Policy, support: &SandboxSupport) -> Option<String> {
    if let Some(s) = &policy.sandbox {
        if s.mode != SandboxMode::None && !support.filesystem {
            let has = match support.landlock_abi {
                0 => "no Landlock (not built in, or not enabled at boot: lsm=landlock)".to_string(),
                n => format!("Landlock ABI {n}"),
            };
            return Some(format!(
                "sandbox mode {} needs Landlock ABI {} or newer (Linux 6.2+), and this kernel has {has}; not started unconfined (use --sandbox none to run without it)",
                s.mode,
                landlock::FS_ABI
            ));
        }
        if !s.network_allowed() && !support.network {
            return Some(
                "network: false needs seccomp filters, which this kernel lacks; not started with the network on".into(),
            );
        }
    }
    if let Some(l) = &policy.limits
        && l.processes.is_some()
        && !support.processes
    {
        return Some(
            "limits.processes cannot be enforced: RLIMIT_NPROC does not bind root (or a process with CAP_SYS_RESOURCE); run agentd as another user or drop the limit".into(),
        );
    }
    None
}

/// A policy made ready in the shim, to apply in the job's process.
#[derive(Default)]
pub struct Prepared {
    ruleset: Option<::landlock::RulesetCreated>,
    seccomp: Option<seccompiler::BpfProgram>,
    rlimits: limits::Rlimits,
    /// The job's private temp dir (`TMPDIR`), removed when the job ends.
    pub tmp: Option<PathBuf>,
}

/// Makes `policy` ready for the job whose id is `job_id`, run in `cwd` (see
/// the module docs). Blocking, well under a millisecond.
///
/// Errors, in words for the job's `reason`: this kernel cannot enforce it,
/// the temp dir cannot be made, a writable path cannot be opened.
pub fn prepare(policy: &Policy, cwd: &Path, job_id: &str) -> Result<Prepared, String> {
    let mut prepared = Prepared {
        rlimits: policy
            .limits
            .as_ref()
            .map(limits::Rlimits::from)
            .unwrap_or_default(),
        ..Prepared::default()
    };
    if let Some(reason) = refusal(policy, support()) {
        return Err(reason);
    }
    let Some(sandbox) = &policy.sandbox else {
        return Ok(prepared);
    };
    let filesystem = sandbox.mode != SandboxMode::None;
    let mut writable = Vec::new();
    if filesystem {
        let tmp = private_tmp(job_id)?;
        writable.push(tmp.clone());
        prepared.tmp = Some(tmp);
        if sandbox.mode == SandboxMode::WorkspaceWrite {
            writable.push(cwd.to_owned());
            writable.extend(sandbox.writable.iter().map(PathBuf::from));
        }
    }
    let deny_tcp = !sandbox.network_allowed() && support().landlock_abi >= landlock::NET_ABI;
    let built = if filesystem || deny_tcp {
        landlock::build(&landlock::Spec {
            filesystem,
            writable,
            deny_tcp,
        })
        .map(Some)
    } else {
        Ok(None)
    };
    prepared.ruleset = match built {
        Ok(r) => r,
        Err(e) => {
            prepared.cleanup();
            return Err(e);
        }
    };
    if !sandbox.network_allowed() {
        match seccomp::network_filter() {
            Ok(p) => prepared.seccomp = Some(p),
            Err(e) => {
                prepared.cleanup();
                return Err(e);
            }
        }
    }
    Ok(prepared)
}

/// Makes the job's private temp dir, `$TMPDIR/agentd-job-ID` (or under
/// `/tmp`), mode 0700; one that already exists is refused (someone else
/// may own it).
fn private_tmp(job_id: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("agentd-job-{job_id}"));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create the job's temp dir {}: {e}", dir.display()))?;
    Ok(dir)
}

impl Prepared {
    /// Whether anything is applied.
    pub fn is_empty(&self) -> bool {
        self.ruleset.is_none() && self.seccomp.is_none() && self.rlimits.is_empty()
    }

    /// Applies everything to the calling process (the job's, just before
    /// `exec`): Landlock (and `PR_SET_NO_NEW_PRIVS`), seccomp, rlimits.
    ///
    /// Errors, in words: a step the kernel refused; the caller must not
    /// `exec` then.
    pub fn apply(&mut self) -> Result<(), String> {
        if let Some(ruleset) = self.ruleset.take() {
            let status = ruleset
                .restrict_self()
                .map_err(|e| format!("cannot enforce the Landlock ruleset: {e}"))?;
            if status.ruleset != ::landlock::RulesetStatus::FullyEnforced {
                return Err(format!(
                    "the Landlock ruleset is not fully enforced ({:?})",
                    status.ruleset
                ));
            }
        }
        if let Some(program) = &self.seccomp {
            seccomp::install(program)?;
        }
        self.rlimits.apply()
    }

    /// Removes the private temp dir and what the job left in it (after the
    /// job's end, or when it did not start).
    pub fn cleanup(&mut self) {
        if let Some(tmp) = self.tmp.take()
            && let Err(e) = std::fs::remove_dir_all(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!(
                "agentd shim: cannot remove the job's temp dir {}: {e}",
                tmp.display()
            );
        }
    }
}
