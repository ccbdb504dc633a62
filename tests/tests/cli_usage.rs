//! End-to-end tests of what a new user meets first at the `agentctl`
//! command line: options that must come before a job's command, the words
//! of that command kept as typed, `run --wait` showing the job's output,
//! errors in plain words, and the exit codes scripts rely on.
//!
//! Jobs that must still be running when the test looks block on a FIFO the
//! test opens when it is ready, never on a timer.

use agentd_proto::methods::{JobList, ListParams};
use agentd_tests::{Daemon, TestEnv, release, run};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;

/// `agentctl show --json ID` parsed.
fn job(env: &TestEnv, id: &str) -> serde_json::Value {
    let (code, out, err) = agentctl(env, &["show", "--json", id]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// `agentctl ARGS…` in `env`: (exit code, stdout, stderr).
fn agentctl(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    run(env.agentctl().args(args))
}

/// The ids of every job agentd holds (`job.list`, all states).
fn job_ids(daemon: &Daemon) -> Vec<String> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let jobs = daemon
            .client()
            .await
            .call::<JobList>(&ListParams::default())
            .await
            .expect("job.list")
            .jobs;
        jobs.into_iter().map(|j| j.id).collect()
    })
}

#[test]
fn an_unknown_option_before_the_command_is_a_usage_error_and_submits_nothing() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    // One job, so "unchanged" is not merely "still empty".
    let (code, _, err) = agentctl(&env, &["run", "--", "true"]);
    assert_eq!(code, 0, "{err}");
    let before = job_ids(&daemon);
    assert_eq!(before.len(), 1);

    let (code, out, err) = agentctl(&env, &["run", "--timout", "5", "--", "true"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.starts_with("error: unexpected argument '--timout' found"),
        "{err}"
    );
    assert!(
        err.contains("tip: a similar argument exists: '--timeout'"),
        "clap's did-you-mean tip: {err}"
    );

    let (code, out, err) = agentctl(&env, &["run", "--bogus", "--", "true"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.starts_with("error: unexpected argument '--bogus' found"),
        "{err}"
    );
    assert!(err.contains("Usage: agentctl run"), "{err}");

    // Options agentctl does not have, with values, before the command.
    let (code, _, err) = agentctl(
        &env,
        &["run", "--priority", "5", "--stash", "build", "--", "true"],
    );
    assert_eq!(code, 2, "{err}");

    assert_eq!(job_ids(&daemon), before, "no job was submitted");
}

#[test]
fn words_after_the_first_command_word_or_after_dashdash_are_the_commands() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    // `printf '%s,'` prints each word it gets, so the output shows the
    // words exactly as the shell received them.
    for (args, want_command, want_output) in [
        (
            &["printf", "%s,", "-j4", "--timeout", "5", "--", "-x"][..],
            "printf %s, -j4 --timeout 5 -- -x",
            "-j4,--timeout,5,--,-x,",
        ),
        (
            &["--", "printf", "%s,", "--bogus", "-la"][..],
            "printf %s, --bogus -la",
            "--bogus,-la,",
        ),
        (
            &["-e", "A=b", "printf", "%s,", "-e", "$A"][..],
            "printf %s, -e $A",
            "-e,b,",
        ),
    ] {
        let (code, out, err) = agentctl(&env, &[&["run"], args].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
        let id = out.trim_end().to_string();
        let (_, show, _) = agentctl(&env, &["show", "--json", &id]);
        let job: serde_json::Value = serde_json::from_str(&show).unwrap();
        assert_eq!(job["command"], want_command, "{args:?}");
        let (code, _, err) = agentctl(&env, &["wait", &id]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(agentctl(&env, &["logs", &id]).1, want_output);
    }
    assert_eq!(job_ids(&daemon).len(), 3);
}

#[test]
fn run_wait_streams_the_output_as_it_comes_then_the_status_line_and_the_exit_code() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let cmd = format!("echo one; read x < {}; echo two; exit 3", gate.display());
    let mut runner = env
        .agentctl()
        .args(["run", "--wait", "--", &cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(runner.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Shown while the job still runs (it is blocked on the FIFO).
    assert_eq!(line, "one\n");
    release(&gate);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "two\n");
    let done = runner.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(3), "the job's exit code: {err}");
    let status = err.lines().last().unwrap();
    assert!(
        status.contains(" failed (exit 3) after ") && status.ends_with(&cmd),
        "{err}"
    );

    // Both streams into one file, as a terminal shows them: the output in
    // order, and the status line after all of it.
    let both = env.root().join("both.txt");
    let file = std::fs::File::create(&both).unwrap();
    let status = env
        .agentctl()
        .args(["run", "--wait", "--", "seq 1 3; echo done >&2"])
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&both).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..4], ["1", "2", "3", "done"], "{text}");
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[4].contains(" succeeded (exit 0) after "),
        "the status line comes last: {text}"
    );
}

#[test]
fn ctrl_c_stops_run_wait_but_leaves_the_job_running_and_says_so() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let cmd = format!("echo started; read x < {}", gate.display());
    let mut runner = env
        .agentctl()
        .args(["run", "--wait", "--", &cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(runner.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    let pid = rustix::process::Pid::from_raw(runner.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let done = runner.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(130), "{err}");
    let (_, jobs, _) = agentctl(&env, &["jobs", "--json"]);
    let jobs: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    let id = jobs[0]["short_id"].as_str().unwrap().to_string();
    assert_eq!(jobs[0]["state"], "running", "the job runs on");
    assert!(
        err.contains(&format!(
            "agentctl: stopped waiting; job {id} keeps running in agentd"
        )) && err.contains(&format!("agentctl logs -f {id}")),
        "{err}"
    );
    release(&gate);
    let (code, _, err) = agentctl(&env, &["wait", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(job(&env, &id)["state"], "succeeded");
}

#[test]
fn errors_speak_to_people_and_json_keeps_the_protocol_code() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    for args in [
        &["run", "--", ""][..],
        &["run", "--", " ", ""],
        &["run", "--wait", "  "],
    ] {
        let (code, out, err) = agentctl(&env, args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (1, "", "agentctl: the command is empty\n"),
            "{args:?}"
        );
    }
    assert!(job_ids(&daemon).is_empty(), "nothing submitted");

    for args in [
        &["show", "ffff"][..],
        &["logs", "ffff"],
        &["wait", "ffff"],
        &["kill", "ffff"],
    ] {
        let (code, _, err) = agentctl(&env, args);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(
            err, "agentctl: no job ffff (agentctl jobs --all lists them)\n",
            "{args:?}"
        );
    }
    let (code, _, err) = agentctl(&env, &["show", "zzzz"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "agentctl: zzzz is not a job id: ids are hex, and a prefix needs 4 or more \
         characters (agentctl jobs --all lists them)\n"
    );
    let (code, _, err) = agentctl(&env, &["run", "--session", "a b", "--", "true"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("agentctl: ") && !err.contains("Invalid params"),
        "{err}"
    );

    // --json: the protocol's error object, code and all, for scripts.
    let (code, out, err) = agentctl(&env, &["show", "--json", "ffff"]);
    assert_eq!((code, out.as_str()), (1, ""));
    let v: serde_json::Value = serde_json::from_str(&err).expect(&err);
    assert_eq!(v["error"]["code"], -32001);
    assert_eq!(v["error"]["data"]["id"], "ffff");
    let (_, _, err) = agentctl(&env, &["show", "--json", "zz"]);
    let v: serde_json::Value = serde_json::from_str(&err).expect(&err);
    assert_eq!(v["error"]["code"], -32602);
    assert_eq!(
        v["error"]["data"],
        serde_json::json!({"field": "id", "id": "zz"})
    );
}

#[test]
fn wait_timeout_with_several_ids_exits_75_when_any_still_runs() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let gate = env.fifo("gate");
    let (_, running, _) = agentctl(
        &env,
        &["run", "--", &format!("read x < {}", gate.display())],
    );
    let running = running.trim_end().to_string();
    let (_, failed, _) = agentctl(&env, &["run", "--", "exit 4"]);
    let failed = failed.trim_end().to_string();
    assert_eq!(agentctl(&env, &["wait", &failed]).0, 4);
    // Either order: a job still running wins over another's exit code.
    for ids in [[&running, &failed], [&failed, &running]] {
        let (code, _, err) = agentctl(&env, &["wait", "--timeout", "0.3", ids[0], ids[1]]);
        assert_eq!(code, 75, "{ids:?}: {err}");
        assert!(err.contains(&format!("{running} still running")), "{err}");
        assert!(err.contains(&format!("{failed} failed (exit 4)")), "{err}");
    }
    release(&gate);
    // Once none runs, the last non-zero code in order.
    let (code, _, err) = agentctl(&env, &["wait", "--timeout", "60", &running, &failed]);
    assert_eq!(code, 4, "{err}");
}

/// Whether `program` can be run (it is installed).
fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Writes `agentctl completions SHELL` to `path` (under the test's HOME),
/// creating its directory as the README's `mkdir -p` does.
fn completions_into(env: &TestEnv, shell: &str, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (code, out, err) = agentctl(env, &["completions", shell]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(path, out).unwrap();
}

#[test]
fn completion_scripts_parse_and_complete_where_the_readme_puts_them() {
    let env = TestEnv::new();
    let home = env.root().join("home");

    // bash, without bash-completion: sourcing the script is enough, and
    // it completes a subcommand.
    let bash = home.join(".local/share/bash-completion/completions/agentctl");
    completions_into(&env, "bash", &bash);
    let (code, _, err) = run(std::process::Command::new("bash").arg("-n").arg(&bash));
    assert_eq!(code, 0, "bash -n: {err}");
    let (code, out, err) = run(std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(
            "source \"$1\" && COMP_WORDS=(agentctl lo) COMP_CWORD=1 \
             COMP_LINE='agentctl lo' COMP_POINT=11 && _agentctl agentctl lo agentctl \
             && printf '%s\\n' \"${COMPREPLY[@]}\"",
        )
        .args(["bash", &bash.display().to_string()]));
    assert_eq!((code, out.as_str()), (0, "logs\n"), "{err}");

    // zsh: the function file in an fpath directory parses.
    if installed("zsh") {
        let zsh = home.join(".zfunc/_agentctl");
        completions_into(&env, "zsh", &zsh);
        let (code, _, err) = run(std::process::Command::new("zsh").arg("-n").arg(&zsh));
        assert_eq!(code, 0, "zsh -n: {err}");
    } else {
        eprintln!(
            "\n*** SKIPPED: zsh not installed; the zsh completion script was NOT checked ***\n"
        );
    }

    // fish: parses, and fish finds it in its completions directory.
    if installed("fish") {
        let fish = home.join(".config/fish/completions/agentctl.fish");
        completions_into(&env, "fish", &fish);
        let (code, _, err) = run(std::process::Command::new("fish")
            .arg("--no-execute")
            .arg(&fish));
        assert_eq!(code, 0, "fish --no-execute: {err}");
        // fish loads a command's completions when the command is on PATH.
        let bin_dir = agentd_tests::bin("agentctl")
            .parent()
            .unwrap()
            .to_path_buf();
        let path = std::env::join_paths(
            std::iter::once(bin_dir)
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let (code, out, err) = run(env
            .command("fish")
            .env_remove("XDG_CONFIG_HOME")
            .env("PATH", path)
            .args(["-c", "complete -C 'agentctl lo'"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.lines().any(|l| l.starts_with("logs")), "{out}");
    } else {
        eprintln!(
            "\n*** SKIPPED: fish not installed; the fish completion script was NOT checked ***\n"
        );
    }
}

#[test]
fn dash_s_is_the_session_everywhere_and_kill_has_no_dash_s() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let (code, out, err) = agentctl(&env, &["run", "-s", "mine", "--wait", "--", "echo x"]);
    assert_eq!((code, out.as_str()), (0, "x\n"), "{err}");
    let (code, out, err) = agentctl(&env, &["jobs", "-a", "-s", "mine", "--json"]);
    assert_eq!(code, 0, "{err}");
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(jobs[0]["session"], "mine");
    let (code, out, _) = agentctl(&env, &["notifications", "-s", "mine"]);
    assert_eq!(code, 0);
    assert!(out.contains("echo x"), "{out}");
    let (code, _, err) = agentctl(&env, &["kill", "-s", "INT", "ffff"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unexpected argument '-s'"), "{err}");
}

#[test]
fn help_names_both_default_socket_paths() {
    let env = TestEnv::new();
    let (code, out, err) = agentctl(&env, &["--help"]);
    assert_eq!(code, 0, "{err}");
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("$XDG_RUNTIME_DIR/agentd/agentd.sock, or /tmp/agentd-$UID/agentd.sock"),
        "{out}"
    );
}
