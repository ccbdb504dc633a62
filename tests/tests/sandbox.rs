//! Sandboxed jobs and resource limits (docs/sandbox.md), end to end on the
//! real kernel: Landlock for writes, seccomp (and Landlock TCP rules) for
//! the network, rlimits for the limits. Every test checks what a user
//! would see: files written or not, the job's output, state and reason.

use agentd_proto::methods::*;
use agentd_proto::{Client, Job, JobState, Limits, Sandbox, SandboxMode};
use agentd_tests::rpc::{get, output, wait, wait_for_output};
use agentd_tests::{TestEnv, mkfifo, parent_of, wait_gone};
use std::path::Path;

fn sandbox(mode: SandboxMode, writable: &[&Path], network: Option<bool>) -> Sandbox {
    Sandbox {
        mode,
        writable: writable.iter().map(|p| p.display().to_string()).collect(),
        network,
    }
}

async fn submit_with(
    c: &Client,
    command: &str,
    sandbox: Option<Sandbox>,
    limits: Option<Limits>,
) -> Job {
    c.call::<JobSubmit>(&SubmitParams {
        command: command.into(),
        sandbox,
        limits,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("job.submit of {command:?}: {e}"))
}

/// Runs `command` under `sandbox` to its end; the job and its output.
async fn run(c: &Client, command: &str, sandbox: Sandbox) -> (Job, String) {
    let job = submit_with(c, command, Some(sandbox), None).await;
    let job = wait(c, &job.id).await;
    let out = output(c, &job.id).await;
    (job, out)
}

/// A temp root with an `/etc`-like dir and a sibling of the work dir, each
/// holding a readable file.
fn outside_dirs(env: &TestEnv) {
    for dir in ["etc", "sibling"] {
        std::fs::create_dir_all(env.root().join(dir)).unwrap();
        std::fs::write(env.root().join(dir).join("readable"), "seen\n").unwrap();
    }
}

/// Tries to write each of `paths` (relative to the work dir, `$HOME`
/// expanded by the job's shell) from the shell and from a child process,
/// printing `wrote P` or `denied P` with P as written here.
fn write_attempts(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| {
            format!(
                "if echo x > {p}; then echo 'wrote {p}'; else echo 'denied {p}'; fi; \
                 if sh -c 'echo x > {p}.child'; then echo 'wrote {p}.child'; else echo 'denied {p}.child'; fi; "
            )
        })
        .collect()
}

#[tokio::test]
async fn workspace_write_allows_cwd_and_temp_and_denies_the_rest() {
    let env = TestEnv::new();
    outside_dirs(&env);
    let extra = env.root().join("extra");
    std::fs::create_dir(&extra).unwrap();
    let d = env.start_daemon();
    let c = d.client().await;
    let cmd = format!(
        "{} echo t > \"$TMPDIR/t\" && echo tmp-ok; echo x > /dev/null && echo devnull-ok; \
         cat ../etc/readable ../sibling/readable; case \"$TMPDIR\" in /tmp/agentd-job-*) echo tmpdir-private;; esac",
        write_attempts(&[
            "in_cwd",
            "\"$HOME\"/x",
            "../sibling/x",
            "../etc/passwd",
            "../extra/x"
        ])
    );
    let (job, out) = run(
        &c,
        &cmd,
        sandbox(SandboxMode::WorkspaceWrite, &[&extra], None),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}\n{out}");
    for line in [
        "wrote in_cwd\n",
        "wrote in_cwd.child\n",
        "denied \"$HOME\"/x\n",
        "denied \"$HOME\"/x.child\n",
        "denied ../sibling/x\n",
        "denied ../sibling/x.child\n",
        "denied ../etc/passwd\n",
        "denied ../etc/passwd.child\n",
        "wrote ../extra/x\n",
        "wrote ../extra/x.child\n",
        "tmp-ok\n",
        "devnull-ok\n",
        "seen\nseen\n",
        "tmpdir-private\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(
        out.contains("Permission denied"),
        "the shell says why: {out}"
    );
    let root = env.root();
    assert!(env.workdir().join("in_cwd").exists());
    assert!(root.join("extra/x.child").exists());
    for p in [
        "home/x",
        "home/x.child",
        "sibling/x",
        "etc/passwd",
        "etc/passwd.child",
    ] {
        assert!(!root.join(p).exists(), "{p} was written");
    }
    // The job is recorded with its sandbox, as given.
    let got = get(&c, &job.id).await;
    assert_eq!(
        got.sandbox,
        Some(sandbox(SandboxMode::WorkspaceWrite, &[&extra], None))
    );
    // Its private temp dir went with it.
    let tmp = std::env::temp_dir().join(format!("agentd-job-{}", job.id));
    assert!(!tmp.exists(), "{} left behind", tmp.display());
}

#[tokio::test]
async fn read_only_allows_nothing_but_temp() {
    let env = TestEnv::new();
    outside_dirs(&env);
    let d = env.start_daemon();
    let c = d.client().await;
    let cmd = format!(
        "{} echo t > \"$TMPDIR/t\" && cat \"$TMPDIR/t\" && echo tmp-ok; cat ../etc/readable; \
         mkdir newdir || echo mkdir-denied; rm ../etc/readable || echo rm-denied",
        write_attempts(&["in_cwd", "\"$HOME\"/x"])
    );
    let (job, out) = run(&c, &cmd, sandbox(SandboxMode::ReadOnly, &[], None)).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}\n{out}");
    for line in [
        "denied in_cwd\n",
        "denied in_cwd.child\n",
        "denied \"$HOME\"/x\n",
        "tmp-ok\n",
        "seen\n",
        "mkdir-denied\n",
        "rm-denied\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(!env.workdir().join("in_cwd").exists());
    assert!(!env.workdir().join("newdir").exists());
    assert!(env.root().join("etc/readable").exists());
}

/// Sends a line over TCP and a datagram over UDP to the test's own
/// sockets on 127.0.0.1 with bash's /dev/tcp and /dev/udp; reports what
/// arrived.
async fn network_reaches(c: &Client, network: Option<bool>) -> (bool, bool, String) {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cmd = format!(
        "bash -c 'echo tcp > /dev/tcp/127.0.0.1/{}' && echo tcp-sent; \
         bash -c 'echo udp > /dev/udp/127.0.0.1/{}' && echo udp-sent; \
         bash -c 'echo tcp > /dev/tcp/localhost/{}' && echo tcp-localhost-sent; true",
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
        tcp.local_addr().unwrap().port(),
    );
    let (job, out) = run(c, &cmd, sandbox(SandboxMode::None, &[], network)).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}\n{out}");
    // The job has ended: whatever it sent is queued on our sockets by now
    // (loopback delivers at once).
    tcp.set_nonblocking(true).unwrap();
    udp.set_nonblocking(true).unwrap();
    let tcp_arrived = tcp.accept().is_ok();
    let udp_arrived = udp.recv(&mut [0u8; 16]).is_ok();
    (tcp_arrived, udp_arrived, out)
}

#[tokio::test]
async fn network_false_blocks_tcp_and_udp_even_on_loopback() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let (tcp, udp, out) = network_reaches(&c, Some(false)).await;
    assert!(!tcp && !udp, "tcp {tcp} udp {udp}: {out}");
    assert!(!out.contains("sent"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    // Unix sockets stay usable: agentctl inside the job reaches agentd.
    let (job, out) = run(
        &c,
        &format!("{} daemon status", agentd_tests::bin("agentctl").display()),
        sandbox(SandboxMode::WorkspaceWrite, &[], Some(false)),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}\n{out}");
    // With the network on, the same job reaches both.
    let (tcp, udp, out) = network_reaches(&c, Some(true)).await;
    assert!(tcp && udp, "tcp {tcp} udp {udp}: {out}");
}

#[tokio::test]
async fn memory_and_open_file_limits_bind_the_job() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let limits = Limits {
        memory_bytes: Some(200 << 20),
        open_files: Some(32),
        ..Limits::default()
    };
    // dd allocates its block at once: 400 MiB is past the limit.
    let job = submit_with(
        &c,
        "ulimit -v; ulimit -n; dd if=/dev/zero of=/dev/null bs=400M count=1",
        None,
        Some(limits.clone()),
    )
    .await;
    let job = wait(&c, &job.id).await;
    let out = output(&c, &job.id).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}\n{out}");
    assert!(out.starts_with("204800\n32\n"), "{out}");
    assert!(out.contains("memory exhausted"), "{out}");
    assert_eq!(get(&c, &job.id).await.limits, Some(limits));
    // The same allocation without the limit succeeds.
    let job = submit_with(
        &c,
        "dd if=/dev/zero of=/dev/null bs=400M count=1",
        None,
        None,
    )
    .await;
    assert_eq!(wait(&c, &job.id).await.state, JobState::Succeeded);
}

#[tokio::test]
async fn a_busy_loop_past_cpu_secs_is_killed_with_a_reason() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let job = submit_with(
        &c,
        "while :; do :; done",
        None,
        Some(Limits {
            cpu_secs: Some(1),
            ..Limits::default()
        }),
    )
    .await;
    let job = wait(&c, &job.id).await;
    assert_eq!(job.state, JobState::Killed, "{job:?}");
    assert_eq!(job.signal.as_deref(), Some("SIGXCPU"));
    let reason = job.reason.unwrap_or_default();
    assert!(reason.contains("CPU time limit of 1 s"), "{reason}");
}

#[tokio::test]
async fn processes_limit_binds_or_is_refused_for_root() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let info = c.call::<DaemonInfo>(&Empty {}).await.unwrap();
    let support = info.sandbox.expect("daemon.info reports sandbox support");
    let job = submit_with(
        &c,
        "(true) && echo forked",
        None,
        Some(Limits {
            processes: Some(1),
            ..Limits::default()
        }),
    )
    .await;
    let job = wait(&c, &job.id).await;
    let out = output(&c, &job.id).await;
    if rustix::process::geteuid().is_root() {
        eprintln!(
            "skipped: RLIMIT_NPROC does not bind root; checking that agentd refuses the limit instead"
        );
        assert!(!support.processes);
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        assert_eq!(job.pid, None, "never started: {job:?}");
        let reason = job.reason.unwrap_or_default();
        assert!(
            reason.contains("RLIMIT_NPROC does not bind root"),
            "{reason}"
        );
        assert!(out.contains("RLIMIT_NPROC"), "{out}");
    } else {
        // The user has more than one process already: the fork fails.
        assert!(support.processes);
        assert!(!out.contains("forked"), "{out}");
    }
}

#[tokio::test]
async fn daemon_info_reports_what_the_kernel_supports_and_bad_params_are_refused() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let info = c.call::<DaemonInfo>(&Empty {}).await.unwrap();
    let s = info.sandbox.unwrap();
    // This machine's kernel (6.18) has Landlock ABI 7 and seccomp.
    assert!(s.landlock_abi >= 3 && s.filesystem && s.network, "{s:?}");
    let refused = |sandbox: Option<Sandbox>, limits: Option<Limits>| {
        let c = &c;
        async move {
            c.call::<JobSubmit>(&SubmitParams {
                command: "true".into(),
                sandbox,
                limits,
                ..Default::default()
            })
            .await
            .expect_err("refused")
            .to_string()
        }
    };
    let e = refused(
        Some(sandbox(SandboxMode::ReadOnly, &[Path::new("/tmp")], None)),
        None,
    )
    .await;
    assert!(e.contains("only for mode workspace-write"), "{e}");
    let e = refused(
        Some(Sandbox {
            mode: SandboxMode::WorkspaceWrite,
            writable: vec!["relative".into()],
            network: None,
        }),
        None,
    )
    .await;
    assert!(e.contains("must be an absolute path"), "{e}");
    let missing = env.root().join("missing");
    let e = refused(
        Some(sandbox(SandboxMode::WorkspaceWrite, &[&missing], None)),
        None,
    )
    .await;
    assert!(e.contains("cannot be used"), "{e}");
    let e = refused(
        None,
        Some(Limits {
            cpu_secs: Some(0),
            ..Limits::default()
        }),
    )
    .await;
    assert!(e.contains("limits.cpu_secs must be above 0"), "{e}");
}

#[tokio::test]
async fn a_sandboxed_job_stays_sandboxed_across_kill_9_of_agentd() {
    let env = TestEnv::new();
    let fifo = env.root().join("go.fifo");
    mkfifo(&fifo);
    let d = env.start_daemon();
    let c = d.client().await;
    let cmd = format!(
        "echo started; read l < '{}'; {} echo finished",
        fifo.display(),
        write_attempts(&["in_cwd", "\"$HOME\"/x"])
    );
    let job = submit_with(
        &c,
        &cmd,
        Some(sandbox(SandboxMode::WorkspaceWrite, &[], Some(false))),
        None,
    )
    .await;
    wait_for_output(&c, &job.id, "started").await;
    let shim = parent_of(job.pid.unwrap());
    drop(c);
    d.kill9();
    let d = env.start_daemon();
    let c = d.client().await;
    // The children the job starts from now on, under the new agentd, are
    // as confined as before.
    std::fs::write(&fifo, "go\n").unwrap();
    wait_gone(shim).await;
    let job = wait(&c, &job.id).await;
    let out = output(&c, &job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}\n{out}");
    for line in [
        "wrote in_cwd\n",
        "wrote in_cwd.child\n",
        "denied \"$HOME\"/x\n",
        "denied \"$HOME\"/x.child\n",
        "finished\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(!env.root().join("home/x").exists());
    assert!(!env.root().join("home/x.child").exists());
    assert_eq!(
        job.sandbox,
        Some(sandbox(SandboxMode::WorkspaceWrite, &[], Some(false)))
    );
}

#[tokio::test]
async fn agentctl_run_sandbox_flags_reach_the_job_and_show_and_jobs_say_so() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let (code, out, err) = agentd_tests::run(env.agentctl().args([
        "run",
        "--sandbox",
        "workspace-write",
        "--no-network",
        "--memory",
        "1G",
        "--cpu-time",
        "1m",
        "--max-files",
        "64",
        "--wait",
        "--",
        "echo in > here; ulimit -n; echo x > \"$HOME/escape\"",
    ]));
    assert_eq!(code, 2, "the job's exit code: {out}\n{err}");
    assert!(out.contains("64\n"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert!(env.workdir().join("here").exists());
    assert!(!env.root().join("home/escape").exists());
    let (_, list, _) = agentd_tests::run(env.agentctl().args(["jobs", "--all"]));
    assert!(list.contains("[ws,no-net] echo in > here"), "{list}");
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let (_, show, _) = agentd_tests::run(env.agentctl().args(["show", id]));
    for line in [
        "sandbox:    workspace-write, no network",
        "limits:     memory 1.0 GiB, cpu 60 s, open files 64",
    ] {
        assert!(show.lines().any(|l| l == line), "{line:?} in\n{show}");
    }
    let (_, status, _) = agentd_tests::run(env.agentctl().args(["daemon", "status"]));
    assert!(
        status.contains("sandbox:    Landlock ABI") && status.contains("file system yes"),
        "{status}"
    );
    // Usage mistakes are caught before anything is submitted.
    let (code, _, err) =
        agentd_tests::run(
            env.agentctl()
                .args(["run", "--writable", "/tmp", "--", "true"]),
        );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--writable needs --sandbox workspace-write"),
        "{err}"
    );
    let (code, _, err) = agentd_tests::run(
        env.agentctl()
            .args(["run", "--memory", "lots", "--", "true"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected a size such as 2G"), "{err}");
    let (code, _, err) =
        agentd_tests::run(
            env.agentctl()
                .args(["run", "--sandbox", "strict", "--", "true"]),
        );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("expected none, read-only or workspace-write"),
        "{err}"
    );
    drop(d);
}
