//! The real Claude Code (`@anthropic-ai/claude-code`, pinned in `.ci/run`
//! and installed with npm into `target/claude-code`) driven offline
//! against the scripted Messages server, in a project set up by
//! `agentctl integrate claude-code --project`: the model starts a job with
//! `mcp__agentd__run`, agentd is killed with SIGKILL while the job runs,
//! and the job's result reaches the model on `claude -p --resume`, exactly
//! once, never again on a later call, and never in another Claude Code
//! session in the same directory. Without the binary the test prints
//! `skipped: …` (or fails when `AGENTD_REQUIRE_CLIENTS=1`).

use agentd_proto::methods::{JobList, ListParams};
use agentd_tests::fake_llm::{FakeLlm, Reply};
use agentd_tests::{TestEnv, clients, rpc, run};
use serde_json::{Value, json};
use std::path::Path;

/// `claude -p PROMPT [ARGS…]` in `project`, offline against `llm`: its
/// JSON result.
fn claude(
    env: &TestEnv,
    bin: &Path,
    llm: &FakeLlm,
    project: &Path,
    prompt: &str,
    args: &[&str],
) -> Value {
    let mut cmd = env.command(bin);
    cmd.current_dir(project)
        .args([
            "-p",
            prompt,
            "--model",
            "claude-sonnet-4-5",
            "--output-format",
            "json",
        ])
        .args(["--allowedTools", "mcp__agentd"])
        .args(args)
        .env("ANTHROPIC_BASE_URL", llm.url())
        .env("ANTHROPIC_API_KEY", "sk-test")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env_remove("CLAUDE_CODE_SESSION_ID")
        .env_remove("CLAUDECODE")
        .env_remove("CLAUDE_PROJECT_DIR");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "claude -p failed:\n{out}\n{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
}

/// How often `needle` occurs in the JSON text of `request`.
fn count(request: &Value, needle: &str) -> usize {
    request.to_string().matches(needle).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_started_by_claude_code_reports_once_after_agentd_was_killed() {
    let Some(bin) = clients::claude_bin() else {
        clients::skip(
            "claude_code end-to-end",
            "no claude binary (npm @anthropic-ai/claude-code)",
        );
        return;
    };
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let project = env.workdir().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    let (code, out, err) = run(env
        .agentctl()
        .args(["integrate", "claude-code", "--project"])
        .arg(&project));
    assert_eq!(code, 0, "{out}{err}");

    // 1. The model starts a job that takes a few seconds, then ends its turn.
    let command = "sleep 3; echo e2e-result-42";
    let llm = FakeLlm::start(vec![
        Reply::tool("mcp__agentd__run", json!({"command": command})),
        Reply::text("Started it in the background."),
    ]);
    let first = claude(
        &env,
        &bin,
        &llm,
        &project,
        "build it in the background",
        &[],
    );
    let session_id = first["session_id"].as_str().unwrap().to_string();
    let requests = llm.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        tools.contains(&"mcp__agentd__run"),
        "offered directly (alwaysLoad): {tools:?}"
    );
    assert!(
        count(&requests[1], " started: sleep 3; echo e2e-result-42") == 1,
        "{}",
        requests[1]
    );

    // The job is agentd's, in the agentd session of this Claude Code session.
    let agentd_session = format!("claude-{session_id}");
    let jobs = daemon
        .client()
        .await
        .call::<JobList>(&ListParams {
            session: Some(agentd_session.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = jobs[0].clone();
    assert_eq!(job.command, command);

    // 2. agentd dies with SIGKILL while the job runs; a new one takes over.
    daemon.kill9();
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    let ended = rpc::wait(&client, &job.id).await;
    assert_eq!(ended.exit_code, Some(0), "{ended:?}");

    // 3. The resumed session gets the result, once.
    let block_line = format!("[bg:{}] succeeded (exit 0): {command}", job.short_id);
    llm.push(vec![Reply::text("The build finished.")]);
    let resumed = claude(
        &env,
        &bin,
        &llm,
        &project,
        "anything new?",
        &["--resume", &session_id],
    );
    assert_eq!(resumed["session_id"], session_id.as_str());
    let requests = llm.requests();
    let third = requests.last().unwrap();
    assert_eq!(count(third, "<background-results>"), 1, "{third}");
    assert_eq!(count(third, &block_line), 1, "{third}");
    assert_eq!(
        count(third, "e2e-result-42\\n</background-results>"),
        1,
        "{third}"
    );

    // 4. A later call does not repeat it (the one copy stays in the history).
    llm.push(vec![Reply::text("Nothing else.")]);
    claude(
        &env,
        &bin,
        &llm,
        &project,
        "and now?",
        &["--resume", &session_id],
    );
    let requests = llm.requests();
    let fourth = requests.last().unwrap();
    assert_eq!(count(fourth, "<background-results>"), 1, "{fourth}");
    assert_eq!(count(fourth, &block_line), 1, "{fourth}");

    // 5. Another Claude Code session in the same directory gets nothing.
    llm.push(vec![Reply::text("Hello.")]);
    let other = claude(&env, &bin, &llm, &project, "hi", &[]);
    assert_ne!(other["session_id"], session_id.as_str());
    let requests = llm.requests();
    let fifth = requests.last().unwrap();
    assert_eq!(count(fifth, "<background-results>"), 0, "{fifth}");
    assert_eq!(count(fifth, "e2e-result-42"), 0, "{fifth}");
}
