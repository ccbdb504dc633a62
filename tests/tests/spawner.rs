//! agentd's spawner (docs/survival.md, "The spawner"): one helper process
//! forks every job's shim. Jobs it starts see the signal handling a shell
//! gives them; a spawner that dies is replaced; it ends with agentd while
//! the jobs it started run on.

use agentd_proto::JobState;
use agentd_tests::rpc::{output, submit, wait};
use agentd_tests::{TestEnv, is_alive, wait_gone};

/// The spawner of the agentd with pid `daemon`: its child `agentd spawner`.
fn spawner_of(daemon: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_alive(pid))
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()
                });
            cmdline == b"agentd\0spawner\0" && ppid == Some(daemon)
        })
}

/// A signal's bit in a `/proc/PID/status` mask.
fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

/// The hex mask of `/proc/PID/status` line `name` in `text`.
fn mask(text: &str, name: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {text:?}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[tokio::test]
async fn jobs_start_with_no_signal_blocked_and_sigpipe_and_sigchld_at_their_defaults() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let job = submit(
        &c,
        "grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -c 2 >/dev/null; echo pipe=$?; \
         (exit 3) & wait $!; echo child=$?",
    )
    .await;
    assert_eq!(wait(&c, &job.id).await.state, JobState::Succeeded);
    let out = output(&c, &job.id).await;
    assert_eq!(mask(&out, "SigBlk:"), 0, "{out}");
    let ignored = mask(&out, "SigIgn:");
    // SIGPIPE (13): agentd, spawner and shim ignore it, as Rust programs do;
    // SIGCHLD (17): the spawner ignores it. Neither reaches the job.
    assert_eq!(ignored & (bit(13) | bit(17)), 0, "{out}");
    assert!(out.contains("pipe=0\n"), "{out}");
    assert!(out.contains("child=3\n"), "{out}");
}

#[tokio::test]
async fn a_killed_spawner_is_replaced_and_jobs_still_start() {
    let env = TestEnv::new();
    let d = env.start_daemon();
    let c = d.client().await;
    let first = submit(&c, "echo one").await;
    assert_eq!(wait(&c, &first.id).await.state, JobState::Succeeded);
    let spawner = spawner_of(d.pid()).expect("agentd runs a spawner once a job started");
    let p = rustix::process::Pid::from_raw(spawner as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::KILL).unwrap();
    wait_gone(spawner).await;

    let second = submit(&c, "echo two").await;
    let done = wait(&c, &second.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(output(&c, &second.id).await, "two\n");
    let again = spawner_of(d.pid()).expect("a new spawner");
    assert_ne!(again, spawner);
}

#[tokio::test]
async fn the_spawner_ends_with_agentd_while_the_jobs_it_started_run_on() {
    let env = TestEnv::new();
    let gate = env.root().join("gate");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &gate,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let d = env.start_daemon();
    let c = d.client().await;
    let job = submit(&c, &format!("read x < {}; echo got $x", gate.display())).await;
    let spawner = spawner_of(d.pid()).expect("a spawner");
    d.kill9();
    // The spawner sees end of file on its socket: no shim holds it open.
    wait_gone(spawner).await;
    assert!(is_alive(job.pid.unwrap()), "the job died with agentd");

    std::fs::write(&gate, "it\n").unwrap();
    let d = env.start_daemon();
    let c = d.client().await;
    let done = wait(&c, &job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(output(&c, &job.id).await, "got it\n");
}
