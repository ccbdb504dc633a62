//! Who may talk to the daemon: only its own user. The socket's directory
//! and file modes keep others out, and even with those loosened the daemon
//! checks the peer's uid (SO_PEERCRED) and closes foreign connections.

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
