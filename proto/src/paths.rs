//! Default locations shared by both binaries (README.md, "Where
//! things live").

use std::path::PathBuf;

/// Variable naming the socket, read by `agentd` and `agentctl`.
pub const SOCKET_ENV: &str = "AGENTD_SOCKET";
/// Variable naming the daemon's state directory.
pub const STATE_DIR_ENV: &str = "AGENTD_STATE_DIR";

/// The default socket path: `$XDG_RUNTIME_DIR/agentd/agentd.sock`, or
/// `/tmp/agentd-$UID/agentd.sock` when `XDG_RUNTIME_DIR` is unset or empty.
/// Does not read `AGENTD_SOCKET`; callers layer that on top (clap's `env`).
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("agentd").join("agentd.sock"),
        _ => {
            let uid = rustix::process::getuid().as_raw();
            PathBuf::from(format!("/tmp/agentd-{uid}")).join("agentd.sock")
        }
    }
}

/// The daemon's default state dir: `$XDG_STATE_HOME/agentd` (by default
/// `~/.local/state/agentd`). Does not read `AGENTD_STATE_DIR`. `None` when
/// no home directory can be found.
pub fn default_state_dir() -> Option<PathBuf> {
    let base = directories::BaseDirs::new()?;
    // `state_dir` is None off Linux; fall back to the local data dir there.
    let root = base.state_dir().unwrap_or(base.data_local_dir());
    Some(root.join("agentd"))
}
