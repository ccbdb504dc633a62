//! The agent's commands run sandboxed (docs/sandbox.md, "The agent"): by
//! default `workspace-write` with the network on; a write outside the
//! workspace comes back to the model as a refused tool result; `--sandbox
//! none` turns it off, loudly. The model is faked by
//! [`agentd_tests::fake_llm`]; agentd, agentctl and the kernel are real.

use agentd_proto::SandboxMode;
use agentd_proto::methods::{JobList, ListParams};
use agentd_tests::fake_llm::{FakeLlm, Reply};
use agentd_tests::{TestEnv, run};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-test-SANDBOX";

/// The tool results of the last user message: (content, is_error).
fn tool_results(req: &Value) -> Vec<(String, bool)> {
    let last = req["messages"].as_array().unwrap().last().unwrap().clone();
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["content"].as_str().unwrap().to_string(),
                b["is_error"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Asks once with `extra` options; the model writes in the workspace and
/// outside it (`$HOME/escaped`). Returns the tool result, agentctl's
/// stderr and the env.
fn ask_writing_outside(extra: &[&str]) -> (String, String, TestEnv) {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let llm = FakeLlm::start(vec![
        Reply::tool(
            "bash",
            json!({"command": "echo in > inside.txt && echo wrote-inside; echo out > \"$HOME/escaped\""}),
        ),
        Reply::text("Done."),
    ]);
    let mut cmd = env.agentctl();
    cmd.env("ANTHROPIC_BASE_URL", llm.url())
        .env("ANTHROPIC_API_KEY", KEY)
        .args(["ask", "--session", "sb"])
        .args(extra)
        .arg("write the files");
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let reqs = llm.requests();
    let results = tool_results(&reqs[1]);
    assert_eq!(results.len(), 1, "{results:?}");
    drop(daemon);
    (results[0].0.clone(), err, env)
}

#[test]
fn a_model_write_outside_the_workspace_is_refused_and_told_to_the_model() {
    let (result, err, env) = ask_writing_outside(&[]);
    assert!(result.contains("wrote-inside"), "{result}");
    assert!(result.contains("Permission denied"), "{result}");
    assert!(result.contains("[failed (exit 2)]"), "{result}");
    assert!(
        result.contains("ran in the workspace-write sandbox")
            && result.contains("ask the user to allow the path"),
        "{result}"
    );
    assert!(!err.contains("WARNING"), "{err}");
    assert!(env.workdir().join("inside.txt").exists());
    assert!(!env.root().join("home/escaped").exists());
}

#[test]
fn sandbox_none_on_ask_turns_it_off_loudly() {
    let (result, err, env) = ask_writing_outside(&["--sandbox", "none"]);
    assert!(
        err.contains("WARNING: --sandbox none: the model's commands run with all your rights"),
        "{err}"
    );
    assert!(result.contains("[succeeded (exit 0)]"), "{result}");
    assert!(env.root().join("home/escaped").exists());
}

#[test]
fn the_config_file_sets_the_agent_sandbox() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let extra = env.root().join("extra");
    std::fs::create_dir(&extra).unwrap();
    std::fs::create_dir_all(env.root().join("config/agentctl")).unwrap();
    std::fs::write(
        env.root().join("config/agentctl/config.toml"),
        format!(
            "[sandbox]\nmode = \"workspace-write\"\nnetwork = false\nwritable = [\"{}\"]\n",
            extra.display()
        ),
    )
    .unwrap();
    let llm = FakeLlm::start(vec![
        Reply::tool(
            "bash",
            json!({"command": "echo x > ../extra/x && echo extra-ok"}),
        ),
        Reply::text("Done."),
    ]);
    let mut cmd = env.agentctl();
    cmd.env("ANTHROPIC_BASE_URL", llm.url())
        .env("ANTHROPIC_API_KEY", KEY)
        .args(["ask", "--session", "cfg", "write"]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let results = tool_results(&llm.requests()[1]);
    assert!(results[0].0.contains("extra-ok"), "{results:?}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jobs = rt.block_on(async {
        daemon
            .client()
            .await
            .call::<JobList>(&ListParams {
                session: Some("cfg".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .jobs
    });
    let sandbox = jobs[0].sandbox.clone().expect("the job is sandboxed");
    assert_eq!(sandbox.mode, SandboxMode::WorkspaceWrite);
    assert_eq!(sandbox.network, Some(false));
    assert_eq!(sandbox.writable, vec![extra.display().to_string()]);
}
