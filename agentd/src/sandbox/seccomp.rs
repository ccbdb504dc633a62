//! The network half of a job's sandbox (`network: false`): a seccomp filter
//! compiled by the shim before it forks the job and installed by the job's
//! process before `exec`, inherited by every child and kept across `exec`.
//!
//! Exactly what it denies, with `EACCES` ("Permission denied"):
//!
//! - `socket()` of every address family but `AF_UNIX` and `AF_NETLINK`:
//!   so no TCP, UDP, ICMP, SCTP, raw or packet socket over IPv4 or IPv6,
//!   and none of the rarer families (Bluetooth, CAN, vsock, XDP, ...).
//!   Unix sockets stay usable (`agentctl` inside a job still reaches
//!   agentd); netlink talks only to the local kernel.
//! - `io_uring_setup()`: io_uring can open sockets without `socket()`.
//! - On x86-64, the same two calls through the x32 ABI (every family);
//!   and any call from a 32-bit (i386) program kills it: the filter only
//!   knows the native ABI's call numbers (seccompiler's arch check).
//!
//! Sockets the job did not create (inherited or received over a Unix
//! socket) are not covered by this filter; Landlock's TCP rules (ABI 4)
//! still deny TCP bind and connect on those.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

use nix::libc;

/// Whether this kernel filters system calls (`prctl(PR_GET_SECCOMP)`
/// answers instead of failing with `EINVAL`).
pub fn available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers; it returns the mode.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// Compiles the `network: false` filter (see the module docs).
///
/// Errors: this architecture has no filter (seccompiler knows x86-64,
/// aarch64 and riscv64).
pub fn network_filter() -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| format!("network: false is not supported on this architecture: {e}"))?;
    let err = |e: seccompiler::BackendError| format!("cannot build the seccomp filter: {e}");
    let not = |family: i32| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64)
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(
        libc::SYS_socket,
        vec![
            SeccompRule::new(vec![
                not(libc::AF_UNIX).map_err(err)?,
                not(libc::AF_NETLINK).map_err(err)?,
            ])
            .map_err(err)?,
        ],
    );
    // An empty chain matches the call whatever its arguments.
    rules.insert(libc::SYS_io_uring_setup, Vec::new());
    #[cfg(target_arch = "x86_64")]
    {
        const X32: i64 = 0x4000_0000;
        rules.insert(X32 | libc::SYS_socket, Vec::new());
        rules.insert(X32 | libc::SYS_io_uring_setup, Vec::new());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        arch,
    )
    .map_err(err)?;
    BpfProgram::try_from(filter).map_err(err)
}

/// Installs `program` on the calling process (after setting
/// `PR_SET_NO_NEW_PRIVS`, which seccompiler does first).
///
/// Errors: the kernel refused the filter.
pub fn install(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(program)
        .map_err(|e| format!("cannot install the seccomp filter: {e}"))
}
