//! The file-system half of a job's sandbox, and TCP rules for `network:
//! false`: a Landlock ruleset built by the shim before it forks the job,
//! enforced by the job's process before `exec` (and so on every child).
//!
//! Only writes are restricted: every path stays readable and executable.
//! The handled rights are Landlock ABI 3's write rights (`AccessFs::
//! from_write(V3)`: write, truncate, remove, make of every kind, refer),
//! required as a whole (`CompatLevel::HardRequirement`): a kernel with an
//! older ABI makes the job refuse to start rather than leave, say, truncate
//! unrestricted. With `network: false` and ABI 4 or newer, TCP bind and
//! connect are handled too, with no port allowed (seccomp also denies the
//! sockets themselves, see [`super::seccomp`]).

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr,
};
use std::path::PathBuf;

/// The Landlock ABI whose file-system write rights a sandbox requires (6.2:
/// the first to control truncate).
pub const FS_ABI: u32 = 3;

/// The Landlock ABI with TCP bind/connect rules (Linux 6.7).
pub const NET_ABI: u32 = 4;

/// Character devices a sandboxed job may write (when present): what
/// programs write to as a matter of course, none of them storage.
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// The running kernel's Landlock ABI version, 0 without Landlock (not built
/// in, or not enabled at boot).
pub fn abi() -> u32 {
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call
    // only returns a number (or -1 with errno); it touches no memory.
    let v = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    u32::try_from(v).unwrap_or(0)
}

/// What the ruleset restricts.
pub struct Spec {
    /// Restrict writes to `writable` (and [`DEVICES`]).
    pub filesystem: bool,
    /// Directories and files writable, with everything beneath them.
    pub writable: Vec<PathBuf>,
    /// Deny TCP bind and connect (needs [`NET_ABI`]; the caller decides).
    pub deny_tcp: bool,
}

/// Builds the ruleset (opening each writable path); the job's process
/// enforces it with [`RulesetCreated::restrict_self`], which also sets
/// `PR_SET_NO_NEW_PRIVS`.
///
/// Errors, in words for the job's `reason`: the kernel lacks a required
/// right, or a writable path cannot be opened.
pub fn build(spec: &Spec) -> Result<RulesetCreated, String> {
    let fs_write = AccessFs::from_write(ABI::V3);
    let ll = |e: landlock::RulesetError| format!("cannot build the Landlock ruleset: {e}");
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    if spec.filesystem {
        ruleset = ruleset.handle_access(fs_write).map_err(ll)?;
    }
    if spec.deny_tcp {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(ABI::V4))
            .map_err(ll)?;
    }
    let mut created = ruleset.create().map_err(ll)?;
    if !spec.filesystem {
        return Ok(created);
    }
    for path in &spec.writable {
        let fd = PathFd::new(path)
            .map_err(|e| format!("writable path {} cannot be opened: {e}", path.display()))?;
        let access = if path.is_dir() {
            fs_write
        } else {
            fs_write & file_write()
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("cannot allow writes to {}: {e}", path.display()))?;
    }
    for dev in DEVICES {
        let Ok(fd) = PathFd::new(dev) else {
            continue; // not on this system (a minimal container)
        };
        created = created
            .add_rule(PathBeneath::new(fd, file_write()))
            .map_err(|e| format!("cannot allow writes to {dev}: {e}"))?;
    }
    Ok(created)
}

/// The write rights that apply to a file (not a directory).
fn file_write() -> BitFlags<AccessFs> {
    AccessFs::from_file(ABI::V3) & AccessFs::from_write(ABI::V3)
}
