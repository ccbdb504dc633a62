//! `agentctl daemon install-service`: writes the systemd user units
//! (`agentd.service`, `agentd.socket`) and prints how to enable them.
//!
//! A unit already there that differs from what would be written (edited
//! by the user, or written for another `agentd` path) is never replaced
//! silently: without `--force` nothing is written, the differences are
//! shown (`diff -u`) and the command fails. It also warns when the `XDG_*`
//! paths of this shell differ from those the user's systemd manager will
//! give the service, since then the service's agentd would not be the one
//! agentctl here expects (units not found, another state dir, another
//! socket).

use crate::connect;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The service unit as shipped in `systemd/`; its `ExecStart` is replaced
/// with the absolute path of the agentd next to agentctl.
const SERVICE_UNIT: &str = include_str!("../../../systemd/agentd.service");
/// The socket unit as shipped in `systemd/`.
const SOCKET_UNIT: &str = include_str!("../../../systemd/agentd.socket");

/// Writes both units (unless one differs and `force` is off), warns about
/// differing `XDG_*` paths, and prints what to run next. `socket` is the
/// socket agentctl uses here; the socket unit listens there when it is not
/// the default. Blocking file and process work: call from a blocking task.
///
/// Errors: no agentd binary next to agentctl or on PATH; no home
/// directory; a unit differs and `force` is off (after showing the diff);
/// a unit cannot be read or written.
pub fn install(socket: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let agentd = connect::agentd_binary()?;
    let base = directories::BaseDirs::new()
        .context("cannot find the home directory to place the systemd user units")?;
    let dir = base.config_dir().join("systemd/user");
    let default_socket = agentd_proto::paths::default_socket_path();
    let socket_unit = if socket == default_socket {
        SOCKET_UNIT.to_string()
    } else {
        // --socket or AGENTD_SOCKET names another path: listen there.
        replace_line(
            SOCKET_UNIT,
            "ListenStream=",
            &format!("ListenStream={}", systemd_escape(&socket.to_string_lossy())),
        )
    };
    let units = [
        (
            dir.join("agentd.service"),
            unit_with_exec_start(SERVICE_UNIT, &agentd),
        ),
        (dir.join("agentd.socket"), socket_unit),
    ];

    // Look at both before writing either, so a refusal writes nothing.
    let mut to_write = Vec::new();
    let mut differing = Vec::new();
    for (path, text) in &units {
        match std::fs::read_to_string(path) {
            Ok(old) if old == *text => eprintln!("unchanged {}", path.display()),
            Ok(_) => {
                differing.push(path.clone());
                to_write.push((path, text));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => to_write.push((path, text)),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    if !differing.is_empty() && !force {
        for (path, text) in &units {
            if differing.contains(path) {
                eprint!("{}", diff(path, text));
            }
        }
        let names: Vec<String> = differing.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "{} differ{} from what install-service writes (the diff above: - is the file, + the \
             new text); nothing was written. Keep your changes, or replace the units with \
             `agentctl daemon install-service --force`",
            names.join(" and "),
            if names.len() == 1 { "s" } else { "" }
        );
    }
    if !to_write.is_empty() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (path, text) in to_write {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    for warning in xdg_warnings(&base, socket == default_socket) {
        eprintln!("agentctl: warning: {warning}");
    }
    println!(
        "Enable agentd (started on the first connection to its socket):\n\
         \x20 systemctl --user daemon-reload && systemctl --user enable --now agentd.socket\n\
         Keep jobs (and agentd) running after you log out:\n\
         \x20 loginctl enable-linger $USER\n\
         If an agentd started by hand or by agentctl is running, stop it first (its jobs\n\
         keep running and the service's agentd adopts them):\n\
         \x20 agentctl daemon stop"
    );
    Ok(ExitCode::SUCCESS)
}

/// `diff -u` of the file at `path` against `text`, or a note when `diff`
/// cannot be run.
fn diff(path: &Path, text: &str) -> String {
    let shown = path.display().to_string();
    let child = Command::new("diff")
        .arg("-u")
        .arg("--label")
        .arg(format!("{shown} (yours)"))
        .arg("--label")
        .arg(format!("{shown} (install-service)"))
        .arg("--")
        .arg(path)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return format!("{shown} differs (no `diff` to show how)\n");
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A unit is a few hundred bytes: it fits the pipe, no deadlock.
        let _ = stdin.write_all(text.as_bytes());
    }
    match child.wait_with_output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => format!("{shown} differs (`diff` failed)\n"),
    }
}

/// The variables that decide where the units, the state and the socket
/// are, as the user's systemd manager will give them to the service: from
/// `systemctl --user show-environment`, or, when it cannot be asked (no
/// user manager reachable from here), what a user manager has unless told
/// otherwise: `XDG_RUNTIME_DIR=/run/user/UID` and the others unset. The
/// flag says whether it was asked.
fn manager_environment() -> (HashMap<String, String>, bool) {
    let asked = Command::new("systemctl")
        .args(["--user", "show-environment"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success());
    match asked {
        Some(out) => {
            let vars = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (vars, true)
        }
        None => {
            let uid = rustix::process::getuid().as_raw();
            let vars = HashMap::from([("XDG_RUNTIME_DIR".into(), format!("/run/user/{uid}"))]);
            (vars, false)
        }
    }
}

/// One sentence per place where the service's agentd would differ from
/// what agentctl here uses: the unit directory (`XDG_CONFIG_HOME`), the
/// state dir (`AGENTD_STATE_DIR`, `XDG_STATE_HOME`) and, when the socket
/// unit uses the default, the socket (`XDG_RUNTIME_DIR`).
fn xdg_warnings(base: &directories::BaseDirs, default_socket: bool) -> Vec<String> {
    let (manager, asked) = manager_environment();
    let there = |var: &str| {
        manager
            .get(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let here = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    let shown = |var: &str| match here(var) {
        Some(v) => format!("{var}={}", v.to_string_lossy()),
        None => format!("{var} unset"),
    };
    let home = there("HOME").unwrap_or_else(|| base.home_dir().to_path_buf());
    let source = if asked {
        "your systemd user manager's environment (systemctl --user show-environment)"
    } else {
        "a user manager's defaults (systemctl --user could not be asked from here)"
    };
    let fix = |var: &str| {
        let theirs = match manager.get(var).filter(|v| !v.is_empty()) {
            Some(v) => format!("export {var}={v}"),
            None => format!("unset {var}"),
        };
        format!(
            "make them agree: give systemd this shell's value (a line {var}=… in \
             ~/.config/environment.d/agentd.conf, then log in again; or `systemctl --user \
             import-environment {var}`), or use systemd's here (`{theirs}`) and run \
             install-service again"
        )
    };
    let mut warnings = Vec::new();

    let units_here = base.config_dir().join("systemd/user");
    let units_there = there("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home.join(".config"))
        .join("systemd/user");
    if units_here != units_there {
        warnings.push(format!(
            "the units went to {} ({}), but systemd looks for user units in {}, going by {source}; \
             {}",
            units_here.display(),
            shown("XDG_CONFIG_HOME"),
            units_there.display(),
            fix("XDG_CONFIG_HOME")
        ));
    }

    if let Ok(state_here) = connect::daemon_state_dir() {
        let state_there = there(agentd_proto::paths::STATE_DIR_ENV).unwrap_or_else(|| {
            there("XDG_STATE_HOME")
                .unwrap_or_else(|| home.join(".local/state"))
                .join("agentd")
        });
        if state_here != state_there {
            warnings.push(format!(
                "the service's agentd will keep its jobs in {}, going by {source}, but an agentd \
                 started from here keeps them in {} ({}, {}); {}",
                state_there.display(),
                state_here.display(),
                shown(agentd_proto::paths::STATE_DIR_ENV),
                shown("XDG_STATE_HOME"),
                fix("XDG_STATE_HOME")
            ));
        }
    }

    if default_socket {
        let socket_here = agentd_proto::paths::default_socket_path();
        if let Some(runtime) = there("XDG_RUNTIME_DIR") {
            let socket_there = runtime.join("agentd/agentd.sock");
            if socket_here != socket_there {
                warnings.push(format!(
                    "the socket unit will listen on {}, going by {source}, but agentctl here \
                     looks on {} ({}); {}",
                    socket_there.display(),
                    socket_here.display(),
                    shown("XDG_RUNTIME_DIR"),
                    fix("XDG_RUNTIME_DIR")
                ));
            }
        }
    }
    warnings
}

/// `unit` with its `ExecStart=` line pointing at `agentd`.
fn unit_with_exec_start(unit: &str, agentd: &Path) -> String {
    let path = agentd.to_string_lossy();
    let escaped = systemd_escape(&path).replace('$', "$$");
    let arg = if escaped.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    };
    replace_line(unit, "ExecStart=", &format!("ExecStart={arg}"))
}

/// `text` with each line that starts with `prefix` replaced by `line`.
fn replace_line(text: &str, prefix: &str, line: &str) -> String {
    text.lines()
        .map(|l| if l.starts_with(prefix) { line } else { l })
        .fold(String::new(), |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        })
}

/// Escapes systemd's `%` specifiers in a literal value.
fn systemd_escape(value: &str) -> String {
    value.replace('%', "%%")
}
