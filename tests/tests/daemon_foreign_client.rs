//! A client that is not ours: the plain-Python example of
//! `docs/protocol.md` submits, waits, reads output and drains against the
//! real daemon, and prints what the doc says it prints.

use agentd_tests::{TestEnv, run};
use std::path::Path;

#[test]
fn the_documented_python_client_works_against_the_daemon() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/agentd_client.py");
    let (code, stdout, stderr) = run(env.command("python3").arg(&script));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("submitted ") && lines[0].ends_with(": running"),
        "{stdout}"
    );
    assert_eq!(lines[1], "finished: failed exit=2");
    assert_eq!(lines[2], "output (18 bytes): 'hello from python\\n'");
    assert!(
        lines[3].starts_with("notification seq=1 [bg:")
            && lines[3].ends_with("] failed (exit 2): echo hello from python; exit 2"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 4, "one notification, drained once: {stdout}");
}
