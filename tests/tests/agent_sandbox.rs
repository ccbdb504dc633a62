//! The agent's commands run sandboxed (docs/sandbox.md, "The agent"): by
//! default `workspace-write` with the network on; a write outside the
//! workspace comes back to the model as a refused tool result; `--sandbox
//! none` turns it off, loudly. The model is faked by
//! [`agentd_tests::fake_llm`]; agentd, agentctl and the kernel are real.

use agentd_proto::SandboxMode;
use agentd_tests::agent_world::{World, tool_results};
use agentd_tests::fake_llm::Reply;
use agentd_tests::run;
use serde_json::json;

/// Asks once with `extra` options; the model writes in the workspace and
/// outside it (`$HOME/escaped`). Returns the tool result, agentctl's
/// stderr and the world.
fn ask_writing_outside(extra: &[&str]) -> (String, String, World) {
    let w = World::new(vec![
        Reply::tool(
            "bash",
            json!({"command": "echo in > inside.txt && echo wrote-inside; echo out > \"$HOME/escaped\""}),
        ),
        Reply::text("Done."),
    ]);
    let (code, _, err) = run(w
        .cmd()
        .args(["ask", "--session", "sb"])
        .args(extra)
        .arg("write the files"));
    assert_eq!(code, 0, "{err}");
    let results = tool_results(&w.llm.requests()[1]);
    assert_eq!(results.len(), 1, "{results:?}");
    (results[0].0.clone(), err, w)
}

#[test]
fn a_model_write_outside_the_workspace_is_refused_and_told_to_the_model() {
    let (result, err, w) = ask_writing_outside(&[]);
    assert!(result.contains("wrote-inside"), "{result}");
    assert!(result.contains("Permission denied"), "{result}");
    assert!(result.contains("[failed (exit 2)]"), "{result}");
    assert!(
        result.contains("ran in the workspace-write sandbox")
            && result.contains("ask the user to allow the path"),
        "{result}"
    );
    assert!(!err.contains("WARNING"), "{err}");
    assert!(w.workdir().join("inside.txt").exists());
    assert!(!w.env.root().join("home/escaped").exists());
}

#[test]
fn sandbox_none_on_ask_turns_it_off_loudly() {
    let (result, err, w) = ask_writing_outside(&["--sandbox", "none"]);
    assert!(
        err.contains("WARNING: --sandbox none: the model's commands run with all your rights"),
        "{err}"
    );
    assert!(result.contains("[succeeded (exit 0)]"), "{result}");
    assert!(w.env.root().join("home/escaped").exists());
}

#[test]
fn the_config_file_sets_the_agent_sandbox() {
    let w = World::new(vec![
        Reply::tool(
            "bash",
            json!({"command": "echo x > ../extra/x && echo extra-ok"}),
        ),
        Reply::text("Done."),
    ]);
    let extra = w.env.root().join("extra");
    std::fs::create_dir(&extra).unwrap();
    std::fs::create_dir_all(w.env.root().join("config/agentctl")).unwrap();
    std::fs::write(
        w.env.root().join("config/agentctl/config.toml"),
        format!(
            "[sandbox]\nmode = \"workspace-write\"\nnetwork = false\nwritable = [\"{}\"]\n",
            extra.display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(w.cmd().args(["ask", "--session", "cfg", "write"]));
    assert_eq!(code, 0, "{err}");
    let results = tool_results(&w.llm.requests()[1]);
    assert!(results[0].0.contains("extra-ok"), "{results:?}");
    let jobs = w.jobs("cfg");
    let sandbox = jobs[0].sandbox.clone().expect("the job is sandboxed");
    assert_eq!(sandbox.mode, SandboxMode::WorkspaceWrite);
    assert_eq!(sandbox.network, Some(false));
    assert_eq!(sandbox.writable, vec![extra.display().to_string()]);
}
