//! `daemon.info` and `daemon.shutdown`.

use crate::daemon::Daemon;
use agentd_proto::methods::{Empty, InfoResult, ShutdownParams};
use agentd_proto::{PROTOCOL_VERSION, RpcError};

/// `daemon.info`: version, pid, paths, start time and job counts.
pub async fn info(d: &Daemon) -> Result<InfoResult, RpcError> {
    let jobs = d.shared.jobs.lock().expect("job table poisoned").counts();
    Ok(InfoResult {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        socket: d.config.socket.display().to_string(),
        state_dir: d.config.state_dir.display().to_string(),
        started_at: d.started_at.clone(),
        jobs,
        sandbox: Some(crate::sandbox::support().clone()),
    })
}

/// `daemon.shutdown`: replies `{}`; the daemon then stops taking requests,
/// finishes the ones in flight, keeps or kills the jobs, and exits.
pub async fn shutdown(d: &Daemon, p: ShutdownParams) -> Result<Empty, RpcError> {
    d.request_shutdown(p.jobs.unwrap_or_default());
    Ok(Empty {})
}
