//! agentd under systemd: socket activation (the listening socket taken from
//! `LISTEN_FDS`, never unlinked), `READY=1` and `STOPPING=1` on
//! `NOTIFY_SOCKET`, and the shipped units as `systemd-analyze verify` sees
//! them, both as they are in `systemd/` and as `agentctl daemon
//! install-service` writes them.
//!
//! These use Debian's `systemd-socket-activate` and `systemd-analyze`
//! (package `systemd`; `.ci/run` installs it when missing). Without them a
//! test says "SKIPPED: …" on stderr and passes, so the reason is visible in
//! `cargo test -- --nocapture` output rather than hidden.

use agentd_proto::Client;
use agentd_proto::methods::*;
use agentd_tests::{TestEnv, bin, rpc, run};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The path of `tool` on `PATH` (or in /usr/bin, /bin), if installed.
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
}

/// Receives datagrams on `notify` until one contains `READY=1`; panics
/// after 30 s.
fn wait_ready(notify: &UnixDatagram) -> String {
    wait_state(notify, "READY=1")
}

#[tokio::test]
async fn socket_activated_agentd_serves_the_inherited_socket_and_signals_ready() {
    let Some(activate) = find_tool("systemd-socket-activate") else {
        return skip("systemd-socket-activate is not installed (apt-get install systemd)");
    };
    let env = TestEnv::new();
    let dir = env.socket.parent().unwrap();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .unwrap();
    let notify_path = env.root().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let root = env.root();
    // systemd-socket-activate passes only LISTEN_* and what -E names.
    let mut cmd = env.command(&activate);
    cmd.arg("-l").arg(&env.socket);
    for (k, v) in [
        ("AGENTD_STATE_DIR", env.state_dir.clone()),
        ("NOTIFY_SOCKET", notify_path.clone()),
        ("AGENTD_TEST_MARKER", root.to_path_buf()),
        ("HOME", root.join("home")),
        ("XDG_CONFIG_HOME", root.join("config")),
        ("XDG_STATE_HOME", root.join("state")),
        ("XDG_RUNTIME_DIR", root.join("run")),
    ] {
        cmd.arg("-E").arg(format!("{k}={}", v.display()));
    }
    // No AGENTD_SOCKET: agentd must take the socket it is handed, not bind
    // its default path.
    cmd.arg(bin("agentd"))
        .env_remove("AGENTD_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut activator = cmd.spawn().unwrap();
    // It says when it listens, then execs agentd on the first connection
    // (whose stderr is the same pipe, drained by a thread from then on).
    let mut lines = BufReader::new(activator.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("systemd-socket-activate exited before listening")
            .unwrap();
        if line.starts_with("Listening on") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let client = Client::connect(&env.socket).await.unwrap();
    let ready = tokio::task::spawn_blocking(move || wait_ready(&notify))
        .await
        .unwrap();
    assert!(ready.contains("READY=1"), "{ready}");
    let info = client.call::<DaemonInfo>(&Empty {}).await.unwrap();
    assert_eq!(
        info.pid,
        activator.id(),
        "the activator execs agentd in place"
    );
    assert_eq!(
        Path::new(&info.socket),
        env.socket,
        "reports the inherited socket"
    );
    assert_eq!(Path::new(&info.state_dir), env.state_dir);
    // Jobs do not see what the service manager handed agentd.
    let job = rpc::submit(
        &client,
        "echo \"[$LISTEN_FDS][$LISTEN_PID][$NOTIFY_SOCKET]\"",
    )
    .await;
    rpc::wait(&client, &job.id).await;
    assert_eq!(rpc::output(&client, &job.id).await, "[][][]\n");
    client
        .call::<DaemonShutdown>(&ShutdownParams::default())
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || activator.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        env.socket.exists(),
        "agentd never unlinks a socket it did not create"
    );
}

/// Runs `systemd-analyze verify --user` on `units` (with a private runtime
/// dir, which `--user` needs). `None` when systemd-analyze is missing.
fn verify(env: &TestEnv, units: &[PathBuf]) -> Option<(i32, String)> {
    let tool = find_tool("systemd-analyze")?;
    let runtime = env.root().join("run");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, out, err) = run(Command::new(tool)
        .args(["verify", "--user"])
        .args(units)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("SYSTEMD_LOG_LEVEL", "notice"));
    Some((code, format!("{out}{err}")))
}

/// Asserts that `systemd-analyze verify` accepted the units, or says why
/// it could not judge them: not installed, or unable to start its manager
/// in this sandbox (an environment problem, not a unit problem).
fn assert_verified(result: Option<(i32, String)>) {
    match result {
        None => skip("systemd-analyze is not installed (apt-get install systemd)"),
        Some((code, out)) if code != 0 && out.contains("Failed to initialize manager") => {
            skip(&format!("systemd-analyze cannot run here:\n{out}"))
        }
        Some((code, out)) => assert_eq!(code, 0, "systemd-analyze verify:\n{out}"),
    }
}

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let env = TestEnv::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let dir = env.root().join("units");
    std::fs::create_dir_all(&dir).unwrap();
    // `%h/.local/bin/agentd` need not exist here; point it at the build.
    let service = std::fs::read_to_string(repo.join("agentd.service")).unwrap();
    assert!(
        service.contains("\nKillMode=process\n"),
        "jobs must survive a stop"
    );
    assert!(service.contains("\nType=notify\n"));
    let service = service.replace(
        "ExecStart=%h/.local/bin/agentd",
        &format!("ExecStart={}", bin("agentd").display()),
    );
    std::fs::write(dir.join("agentd.service"), service).unwrap();
    std::fs::copy(repo.join("agentd.socket"), dir.join("agentd.socket")).unwrap();
    let units = [dir.join("agentd.socket"), dir.join("agentd.service")];
    assert_verified(verify(&env, &units));
}

#[test]
fn install_service_writes_units_that_verify_and_prints_how_to_enable_them() {
    let env = TestEnv::new();
    // agentctl finds agentd next to itself; the fixture builds both into
    // the same target directory.
    bin("agentd");
    let (code, stdout, stderr) = run(env
        .agentctl()
        .args(["daemon", "install-service"])
        .env_remove("AGENTD_SOCKET"));
    assert_eq!(code, 0, "{stderr}");
    let dir = env.root().join("config/systemd/user");
    let service = std::fs::read_to_string(dir.join("agentd.service")).unwrap();
    let socket = std::fs::read_to_string(dir.join("agentd.socket")).unwrap();
    assert!(
        service.contains(&format!("\nExecStart={}\n", bin("agentd").display())),
        "{service}"
    );
    assert!(
        socket.contains("\nListenStream=%t/agentd/agentd.sock\n"),
        "{socket}"
    );
    assert!(stderr.contains("agentd.service") && stderr.contains("agentd.socket"));
    assert!(
        stdout.contains(
            "systemctl --user daemon-reload && systemctl --user enable --now agentd.socket"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("loginctl enable-linger $USER"), "{stdout}");
    let units = [dir.join("agentd.socket"), dir.join("agentd.service")];
    assert_verified(verify(&env, &units));
}

/// The datagrams already waiting on `notify`, without blocking.
fn pending_messages(notify: &UnixDatagram) -> Vec<String> {
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut messages = Vec::new();
    while let Ok(n) = notify.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    notify.set_nonblocking(false).unwrap();
    messages
}

/// Receives datagrams on `notify` until one has the line `state`; panics
/// after 30 s.
fn wait_state(notify: &UnixDatagram, state: &str) -> String {
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {state} on NOTIFY_SOCKET within 30 s: {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.lines().any(|l| l == state) {
            return msg;
        }
    }
}

#[tokio::test]
async fn agentd_tells_systemd_stopping_on_shutdown_and_on_sigterm() {
    for how in ["daemon.shutdown", "SIGTERM"] {
        let env = TestEnv::new();
        let notify_path = env.root().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        let daemon = env.start_daemon_with(|cmd| {
            cmd.env("NOTIFY_SOCKET", &notify_path);
        });
        let notify = tokio::task::spawn_blocking(move || {
            wait_ready(&notify);
            notify
        })
        .await
        .unwrap();
        let client = daemon.client().await;
        client.call::<DaemonInfo>(&Empty {}).await.unwrap();
        let early = pending_messages(&notify);
        assert!(
            !early.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
            "{how}: STOPPING=1 before any stop: {early:?}"
        );
        match how {
            "SIGTERM" => daemon.terminate(),
            _ => {
                client
                    .call::<DaemonShutdown>(&ShutdownParams::default())
                    .await
                    .unwrap();
            }
        }
        let msg = tokio::task::spawn_blocking(move || wait_state(&notify, "STOPPING=1"))
            .await
            .unwrap();
        assert!(msg.contains("STOPPING=1"), "{how}: {msg}");
        assert!(daemon.wait().success(), "{how}");
    }
}

/// `agentctl daemon install-service ARGS…` in `env` with the default
/// socket: (exit code, stdout, stderr).
fn install_service(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    bin("agentd");
    run(env
        .agentctl()
        .args(["daemon", "install-service"])
        .args(args)
        .env_remove("AGENTD_SOCKET"))
}

#[test]
fn install_service_refuses_to_overwrite_an_edited_unit_without_force_and_shows_the_diff() {
    let env = TestEnv::new();
    let (code, _, err) = install_service(&env, &[]);
    assert_eq!(code, 0, "{err}");
    let dir = env.root().join("config/systemd/user");
    let service_path = dir.join("agentd.service");
    let written = std::fs::read_to_string(&service_path).unwrap();

    // The same units again: nothing to do, nothing refused.
    let (code, _, err) = install_service(&env, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("unchanged {}", service_path.display())),
        "{err}"
    );

    // The user edits the service; install-service leaves it and says how.
    let edited = written.replace("Restart=on-failure", "Restart=always");
    assert_ne!(edited, written, "the shipped unit has Restart=on-failure");
    std::fs::write(&service_path, &edited).unwrap();
    let socket_before = std::fs::read(dir.join("agentd.socket")).unwrap();
    let (code, out, err) = install_service(&env, &[]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("\n-Restart=always\n") && err.contains("\n+Restart=on-failure\n"),
        "the diff is shown: {err}"
    );
    assert!(
        err.contains("nothing was written")
            && err.contains("agentctl daemon install-service --force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&service_path).unwrap(), edited);
    assert_eq!(
        std::fs::read(dir.join("agentd.socket")).unwrap(),
        socket_before
    );

    let (code, out, err) = install_service(&env, &["--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("systemctl --user daemon-reload"), "{out}");
    assert_eq!(std::fs::read_to_string(&service_path).unwrap(), written);
}

#[test]
fn install_service_warns_when_xdg_paths_here_differ_from_the_user_managers() {
    let env = TestEnv::new();
    // The fixture sets XDG_CONFIG_HOME and the state dirs to temp dirs that
    // no user manager has (it has neither, or its own).
    let (code, _, err) = install_service(&env, &[]);
    assert_eq!(code, 0, "{err}");
    let units = env.root().join("config/systemd/user");
    assert!(
        err.contains(&format!(
            "agentctl: warning: the units went to {} (XDG_CONFIG_HOME={})",
            units.display(),
            env.root().join("config").display()
        )) && err.contains("but systemd looks for user units in "),
        "{err}"
    );
    assert!(
        err.contains("agentctl: warning: the service's agentd will keep its jobs in ")
            && err.contains(&format!(
                "an agentd started from here keeps them in {}",
                env.state_dir.display()
            )),
        "{err}"
    );

    // With nothing set that a user manager would not have, no warning.
    // Only checkable where no user manager answers (it would have its own
    // HOME): then agentctl compares with a manager's defaults.
    let manager = Command::new("systemctl")
        .args(["--user", "show-environment"])
        .output()
        .is_ok_and(|o| o.status.success());
    if manager {
        return skip("a systemd user manager answers here; the no-warning case needs none");
    }
    let uid = rustix::process::getuid().as_raw();
    let (code, _, err) = run(env
        .agentctl()
        .args(["daemon", "install-service", "--force"])
        .env_remove("AGENTD_SOCKET")
        .env_remove("AGENTD_STATE_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}")));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}
