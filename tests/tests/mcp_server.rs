//! `agentctl mcp` driven by an independent client, the official Python MCP
//! SDK (PyPI `mcp`, installed by `.ci/run`): the handshake, the six tools
//! with their JSON schemas, text and structured results, progress on a
//! long wait, tool errors that leave the server serving, and the binding
//! of jobs to the agent's session. Without the SDK each test prints
//! `skipped: …` (or fails when `AGENTD_REQUIRE_CLIENTS=1`).

use agentd_proto::methods::{JobList, JobSubmit, ListParams, SubmitParams};
use agentd_tests::{TestEnv, clients, rpc};
use serde_json::{Value, json};

/// Runs the Python client with `script` against `agentctl mcp ARGS` in
/// `env` (plus `extra_env`); one JSON value per line of its output.
fn drive(
    env: &TestEnv,
    python: &std::path::Path,
    script: Value,
    extra_env: &[(&str, &str)],
) -> Vec<Value> {
    let mut cmd = env.command(python);
    cmd.arg(clients::mcp_client_script())
        .arg(agentd_tests::bin("agentctl"))
        .arg(script.to_string());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running the Python MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python MCP client failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn text(result: &Value) -> String {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result}"))
        .to_string()
}

fn is_error(result: &Value) -> bool {
    result["result"]["isError"].as_bool().unwrap_or(false)
}

#[test]
fn every_tool_answers_the_python_sdk_with_text_structure_and_schemas() {
    let Some(python) = clients::mcp_python() else {
        clients::skip(
            "every_tool_answers_the_python_sdk",
            "no Python with the `mcp` package",
        );
        return;
    };
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let steps = json!([
        {"list_tools": true},
        {"tool": "run", "args": {"command": "echo hello-mcp; exit 3", "wait_secs": 30}},
        {"tool": "run", "args": {"command": "sleep 3; echo later-line", "label": "slow"}},
        {"tool": "jobs", "args": {}},
        {"tool": "wait", "args": {"id": "$2", "timeout_secs": 30}},
        {"tool": "output", "args": {"id": "$2"}},
        {"tool": "run", "args": {"command": "sleep 30"}},
        {"tool": "kill", "args": {"id": "$6"}},
        {"tool": "wait", "args": {"id": "$6", "timeout_secs": 30}},
        {"tool": "output", "args": {"id": "ffffffff"}},
        {"tool": "run", "args": {}},
        {"tool": "run", "args": {"command": "true", "bogus": 1}},
        {"tool": "results", "args": {}},
        {"list_tools": true},
    ]);
    let lines = drive(
        &env,
        &python,
        json!({"args": ["mcp", "--session", "mcp-test"], "steps": steps}),
        &[],
    );
    let init = &lines[0]["initialize"];
    assert_eq!(init["serverInfo"]["name"], "agentd", "{init}");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    let r = &lines[1..];

    // tools/list: six tools, each with an object schema naming its fields.
    let tools = r[0]["tools"]["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["jobs", "kill", "output", "results", "run", "wait"]);
    let schema =
        |name: &str| tools.iter().find(|t| t["name"] == name).unwrap()["inputSchema"].clone();
    let run = schema("run");
    assert_eq!(run["type"], "object");
    assert_eq!(run["required"], json!(["command"]), "{run}");
    for field in ["command", "cwd", "timeout_secs", "wait_secs", "label"] {
        assert!(
            run["properties"][field].is_object(),
            "run lacks {field}: {run}"
        );
    }
    assert_eq!(schema("wait")["required"], json!(["id"]));
    assert!(schema("output")["properties"]["tail_bytes"].is_object());
    assert!(schema("kill")["properties"]["signal"].is_object());
    assert!(schema("jobs")["properties"]["all"].is_object());
    assert_eq!(schema("results")["type"], "object");
    for t in tools {
        assert!(!t["description"].as_str().unwrap().is_empty());
    }

    // run with wait_secs: the finished result, text and structured.
    assert!(!is_error(&r[1]), "{}", r[1]);
    let t = text(&r[1]);
    assert!(t.contains("failed (exit 3): echo hello-mcp; exit 3"), "{t}");
    assert!(t.contains("hello-mcp"), "{t}");
    let job = &r[1]["result"]["structuredContent"];
    assert_eq!(job["state"], "failed");
    assert_eq!(job["exit_code"], 3);
    assert_eq!(job["session"], "mcp-test");
    assert_eq!(
        job["cwd"],
        env.workdir().canonicalize().unwrap().to_str().unwrap()
    );

    // run without waiting: started at once.
    let slow = r[2]["result"]["structuredContent"]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text(&r[2]).lines().next().unwrap(),
        format!("Job {slow} started: sleep 3; echo later-line")
    );
    assert_eq!(r[2]["result"]["structuredContent"]["label"], "slow");

    // jobs: the running one, listed.
    assert!(
        text(&r[3]).contains(&format!("{slow}  running  sleep 3")),
        "{}",
        text(&r[3])
    );
    assert_eq!(
        r[3]["result"]["structuredContent"]["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // wait: the finished job with its output, and progress on the way.
    let t = text(&r[4]);
    assert!(
        t.starts_with(&format!("[bg:{slow}] succeeded (exit 0)")),
        "{t}"
    );
    assert!(t.contains("later-line"), "{t}");
    let progress = r[4]["progress"].as_array().unwrap();
    assert!(
        !progress.is_empty(),
        "a 3 s wait reports progress: {}",
        r[4]
    );
    assert!(
        progress[0]["message"]
            .as_str()
            .unwrap()
            .contains("still running")
    );

    // output: the bytes and where they sit.
    let out = &r[5]["result"]["structuredContent"];
    assert_eq!(out["data"], "later-line\n");
    assert_eq!(out["complete"], true);
    assert!(
        text(&r[5]).starts_with("later-line\n[bytes 0-11 of 11"),
        "{}",
        text(&r[5])
    );

    // kill, then wait: killed by SIGTERM.
    assert!(!is_error(&r[7]), "{}", r[7]);
    assert!(text(&r[7]).starts_with("Signalled."), "{}", text(&r[7]));
    assert_eq!(
        r[8]["result"]["structuredContent"]["state"], "killed",
        "{}",
        r[8]
    );

    // Errors are tool errors with words to act on.
    assert!(is_error(&r[9]));
    assert!(text(&r[9]).contains("`jobs` tool"), "{}", text(&r[9]));
    assert!(is_error(&r[10]));
    assert!(
        text(&r[10]).contains("missing field `command`"),
        "{}",
        text(&r[10])
    );
    assert!(is_error(&r[11]));
    assert!(
        text(&r[11]).contains("unknown field `bogus`"),
        "{}",
        text(&r[11])
    );

    // results: every result was already in a tool answer; none again.
    assert_eq!(text(&r[12]), "No background results pending.");

    // Still serving after the errors.
    assert_eq!(r[13]["tools"]["tools"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn jobs_bind_to_the_claude_session_and_results_come_once() {
    let Some(python) = clients::mcp_python() else {
        clients::skip(
            "jobs_bind_to_the_claude_session",
            "no Python with the `mcp` package",
        );
        return;
    };
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    // A job of this Claude Code session that ended while nobody looked.
    let job = client
        .call::<JobSubmit>(&SubmitParams {
            command: "echo from-the-past".into(),
            session: Some("claude-sess-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    rpc::wait(&client, &job.id).await;

    let steps = json!([
        {"tool": "results", "args": {}},
        {"tool": "results", "args": {}},
        {"tool": "run", "args": {"command": "true"}},
    ]);
    let lines = drive(
        &env,
        &python,
        json!({"steps": steps}),
        &[("CLAUDE_CODE_SESSION_ID", "sess-1")],
    );
    let first = text(&lines[1]);
    assert!(first.starts_with("<background-results>\n"), "{first}");
    assert!(
        first.contains(&format!(
            "[bg:{}] succeeded (exit 0): echo from-the-past\nfrom-the-past\n",
            job.short_id
        )),
        "{first}"
    );
    assert_eq!(
        lines[1]["result"]["structuredContent"]["results"][0]["job_id"],
        job.id
    );
    assert_eq!(text(&lines[2]), "No background results pending.");
    assert_eq!(
        lines[3]["result"]["structuredContent"]["session"],
        "claude-sess-1"
    );

    // Another agent session's list does not have it.
    let other = client
        .call::<JobList>(&ListParams {
            session: Some("claude-sess-2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.jobs.is_empty());
}

#[tokio::test]
async fn results_say_how_many_the_pending_cap_dropped() {
    let Some(python) = clients::mcp_python() else {
        clients::skip(
            "results_say_how_many_the_pending_cap_dropped",
            "no Python with the `mcp` package",
        );
        return;
    };
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_pending_per_session = 2\n");
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(rpc::run_in(&client, "claude-sess-cap", &format!("echo capped-{i}")).await);
    }

    let steps = json!([
        {"tool": "results", "args": {}},
        {"tool": "results", "args": {}},
    ]);
    let lines = drive(
        &env,
        &python,
        json!({"steps": steps}),
        &[("CLAUDE_CODE_SESSION_ID", "sess-cap")],
    );
    let first = text(&lines[1]);
    assert!(
        first.starts_with(
            "<background-results>\n3 earlier background results were dropped unread: too many \
             were waiting (agentd's [retention] max_pending_per_session).\n[bg:"
        ),
        "{first}"
    );
    assert!(first.contains("echo capped-3\ncapped-3\n"), "{first}");
    assert!(first.contains("echo capped-4\ncapped-4\n"), "{first}");
    assert!(!first.contains("capped-2"), "{first}");
    let structured = &lines[1]["result"]["structuredContent"];
    assert_eq!(structured["dropped"], 3, "{structured}");
    assert_eq!(structured["results"].as_array().unwrap().len(), 2);
    // Told once.
    assert_eq!(text(&lines[2]), "No background results pending.");
    assert_eq!(lines[2]["result"]["structuredContent"]["dropped"], 0);
}
