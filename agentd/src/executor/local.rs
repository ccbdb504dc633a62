//! The `local` executor: the job's shim on this machine, exactly as agentd
//! ran every job before executors existed ([`crate::supervisor`] spawns,
//! watches and re-adopts it; [`crate::shim`] runs it).

pub use crate::supervisor::start;
