//! The real agent clients some tests drive (the Python MCP SDK, Claude
//! Code), installed by `.ci/run` into caches under `target/`. A test whose
//! client is missing prints `skipped: <why>` on stderr and stdout and
//! returns; when `AGENTD_REQUIRE_CLIENTS=1` (set by `.ci/run` after it
//! installed them) a missing client fails the test instead, so a broken
//! install can never pass as green.

use std::path::PathBuf;

/// The workspace's `target/` directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A Python with the `mcp` package: `AGENTD_MCP_PYTHON`, else the venv
/// `.ci/run` makes in `target/py-mcp/venv`.
pub fn mcp_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AGENTD_MCP_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = target_dir().join("py-mcp/venv/bin/python");
    venv.is_file().then_some(venv)
}

/// The `claude` binary: `AGENTD_CLAUDE_BIN`, else the one `.ci/run`
/// installs with npm into `target/claude-code`.
pub fn claude_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AGENTD_CLAUDE_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let bin = target_dir().join("claude-code/node_modules/.bin/claude");
    bin.is_file().then_some(bin)
}

/// Reports a test skipped for lack of its client, loudly, or fails it when
/// the clients are required.
pub fn skip(test: &str, why: &str) {
    if std::env::var("AGENTD_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and AGENTD_REQUIRE_CLIENTS=1 says it must be there");
    }
    eprintln!("skipped: {test}: {why}");
    println!("skipped: {test}: {why}");
}

/// The Python client script, `tests/scripts/mcp_client.py`.
pub fn mcp_client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mcp_client.py")
}
