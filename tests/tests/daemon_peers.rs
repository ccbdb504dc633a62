//! Who may talk to the daemon: only its own user. The socket's directory
//! and file modes keep others out, and even with those loosened the daemon
//! checks the peer's uid (SO_PEERCRED) and closes foreign connections.
//! What is at the socket path, and its directory, are checked at start:
//! fixed when agentd's own, refused when shared, never deleted unless a
//! stale socket of ours.

use agentd_tests::TestEnv;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

#[test]
fn socket_and_state_dir_are_private() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(env.socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&env.socket), 0o600);
    assert_eq!(mode(&env.state_dir), 0o700);
}

#[test]
fn a_connection_from_another_uid_is_refused_even_with_loose_modes() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to connect as another user");
        return;
    }
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    // Loosen everything on the way to the socket so only the uid check is left.
    let mut dir = env.socket.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&env.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    loop {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        if dir == env.root() {
            break;
        }
        dir.pop();
    }
    let client = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info"}\n')
print(repr(s.recv(65536)))
"#;
    let out = env
        .command("python3")
        .args(["-c", client])
        .arg(&env.socket)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "b''",
        "the daemon closes the connection without answering"
    );
    // The owner is still served.
    let out = env
        .command("python3")
        .args(["-c", client])
        .arg(&env.socket)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("protocol_version"));
}

#[test]
fn a_socket_directory_others_can_write_to_is_refused() {
    let env = TestEnv::new();
    let loose = env.root().join("loose");
    std::fs::create_dir(&loose).unwrap();
    for mode in [0o777, 0o770, 0o1777] {
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(mode)).unwrap();
        let (code, _, stderr) = agentd_tests::run(
            env.command(agentd_tests::bin("agentd"))
                .env("AGENTD_SOCKET", loose.join("x.sock")),
        );
        assert_ne!(code, 0, "mode {mode:o}: {stderr}");
        let line = format!(
            "the socket directory {} has mode {mode:04o}",
            loose.display()
        );
        assert!(stderr.contains(&line), "mode {mode:o}: {stderr}");
        assert!(!loose.join("x.sock").exists());
        // The directory is not agentd's to change.
        let now = std::fs::metadata(&loose).unwrap().permissions().mode() & 0o7777;
        assert_eq!(now, mode);
    }
    // Private to us (0755: others may read, not write): accepted.
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = loose.join("x.sock");
    let _daemon = env.start_daemon_with(|c| {
        c.env("AGENTD_SOCKET", &socket);
    });
    assert!(std::fs::symlink_metadata(&socket).is_ok());
}

#[test]
fn a_file_that_is_not_a_socket_at_the_socket_path_is_left_alone() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.socket.parent().unwrap()).unwrap();
    std::fs::write(&env.socket, "precious").unwrap();
    let (code, _, stderr) = agentd_tests::run(&mut env.command(agentd_tests::bin("agentd")));
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} exists and is not a socket",
            env.socket.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&env.socket).unwrap(), "precious");
    // Nor is a symlink followed or removed.
    std::fs::remove_file(&env.socket).unwrap();
    let target = env.root().join("target");
    std::fs::write(&target, "also precious").unwrap();
    std::os::unix::fs::symlink(&target, &env.socket).unwrap();
    let (code, _, stderr) = agentd_tests::run(&mut env.command(agentd_tests::bin("agentd")));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&env.socket)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "also precious");
}

#[tokio::test]
async fn a_stale_socket_left_by_a_killed_daemon_is_replaced() {
    let env = TestEnv::new();
    let first = env.start_daemon();
    first.kill9();
    // The dead daemon's socket file is still there, and no one answers on it.
    assert!(std::fs::symlink_metadata(&env.socket).is_ok());
    assert!(tokio::net::UnixStream::connect(&env.socket).await.is_err());
    let second = env.start_daemon();
    // It could bind only by removing the stale file first.
    let info = second
        .client()
        .await
        .call::<agentd_proto::methods::DaemonInfo>(&agentd_proto::methods::Empty {})
        .await
        .unwrap();
    assert_eq!(info.pid, second.pid());
}
