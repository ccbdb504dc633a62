//! End-to-end tests of what a new user meets first at the `agentctl`
//! command line: options that must come before a job's command, and the
//! words of that command kept as typed.

use agentd_proto::methods::{JobList, ListParams};
use agentd_tests::{Daemon, TestEnv, run};

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

    // The issue's own example: options agentctl does not have (yet).
    let (code, _, err) = agentctl(
        &env,
        &[
            "run", "--after", "e80c2afd", "--group", "build", "--", "true",
        ],
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
