//! `agentctl hook claude-code|codex|gemini` against a real agentd: a
//! finished job's result is injected once in the agent's documented
//! field, never twice (not even after a crash between showing and
//! acking), only into its own agent session, and with agentd down the
//! hook says nothing and exits 0.

use agentd_proto::methods::{NotificationsPeek, PeekParams};
use agentd_tests::{TestEnv, rpc, run};
use serde_json::{Value, json};
use std::io::Write;
use std::process::Stdio;

/// Runs `agentctl hook AGENT` with `event` on stdin: (exit code, stdout,
/// stderr).
fn hook(env: &TestEnv, agent: &str, event: &Value) -> (i32, String, String) {
    let mut child = env
        .agentctl()
        .args(["hook", agent])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn prompt_event(session: &str) -> Value {
    json!({"session_id": session, "transcript_path": "/tmp/t.jsonl", "cwd": "/tmp",
           "hook_event_name": "UserPromptSubmit", "permission_mode": "default", "prompt": "hi"})
}

#[tokio::test]
async fn a_finished_job_is_injected_once_into_its_claude_session_only() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    let job = rpc::run_in(&client, "claude-sess-a", "echo built-ok; exit 2").await;

    // Another Claude Code session in the same directory: nothing.
    let (code, out, err) = hook(&env, "claude-code", &prompt_event("sess-b"));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));

    let (code, out, err) = hook(&env, "claude-code", &prompt_event("sess-a"));
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        answer["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    assert_eq!(
        answer["hookSpecificOutput"]["additionalContext"],
        format!(
            "<background-results>\n[bg:{}] failed (exit 2): echo built-ok; exit 2\nbuilt-ok\n</background-results>",
            job.short_id
        )
    );

    // Once: the next event, of any kind, gets nothing.
    let start = json!({"session_id": "sess-a", "cwd": "/tmp", "hook_event_name": "SessionStart", "source": "resume"});
    assert_eq!(
        hook(&env, "claude-code", &start),
        (0, String::new(), String::new())
    );
    assert_eq!(hook(&env, "claude-code", &prompt_event("sess-a")).1, "");
    let pending = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some("claude-sess-a".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(pending.notifications.is_empty(), "acked after injection");
}

#[tokio::test]
async fn a_hand_over_recorded_but_not_acked_is_not_injected_again() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    rpc::run_in(&client, "claude-crash", "echo once").await;
    let seq = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some("claude-crash".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .notifications[0]
        .seq;
    // What a hook that died after showing the block and before its ack
    // leaves behind: the record, and the notification still pending.
    let dir = env.root().join("state/agentctl/integrations/claude-crash");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("injected"), format!("{seq}\n")).unwrap();

    assert_eq!(
        hook(&env, "claude-code", &prompt_event("crash")),
        (0, String::new(), String::new())
    );
    let pending = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some("claude-crash".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        pending.notifications.is_empty(),
        "the recorded hand-over was acked"
    );
    assert!(!dir.join("injected").exists());

    // A later result still comes, once.
    let job = rpc::run_in(&client, "claude-crash", "echo twice").await;
    let out = hook(&env, "claude-code", &prompt_event("crash")).1;
    assert!(out.contains(&format!("[bg:{}]", job.short_id)), "{out}");
    assert!(!out.contains("echo once"), "{out}");
}

#[test]
fn with_agentd_down_the_hook_says_nothing_and_exits_0() {
    let env = TestEnv::new();
    for (agent, event) in [
        ("claude-code", prompt_event("s")),
        (
            "codex",
            json!({"session_id": "s", "cwd": "/tmp", "hook_event_name": "UserPromptSubmit", "prompt": "p"}),
        ),
        (
            "gemini",
            json!({"session_id": "s", "cwd": "/tmp", "hook_event_name": "BeforeAgent", "prompt": "p"}),
        ),
    ] {
        assert_eq!(
            hook(&env, agent, &event),
            (0, String::new(), String::new()),
            "{agent}"
        );
    }
    // Not even garbage on stdin makes it speak.
    let (code, out, err) = run(env
        .agentctl()
        .args(["hook", "claude-code"])
        .stdin(Stdio::null()));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

#[tokio::test]
async fn codex_and_gemini_get_the_results_of_their_project_directory() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    let project = env.workdir();
    // The session `agentctl mcp` binds a Codex or Gemini project's jobs
    // to, as documented: dir-<last component>-<FNV-1a of the path, low 32
    // bits in hex>.
    let fnv = project
        .to_str()
        .unwrap()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let session = format!("dir-work-{:08x}", fnv as u32);
    let job = rpc::run_in(&client, &session, "echo codex-side").await;
    let codex_event = json!({"session_id": "019a", "transcript_path": null, "cwd": project,
        "hook_event_name": "UserPromptSubmit", "model": "gpt-5.1", "turn_id": "t", "prompt": "go"});
    let out = hook(&env, "codex", &codex_event).1;
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        answer["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    assert!(
        answer["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "[bg:{}] succeeded (exit 0): echo codex-side",
                job.short_id
            ))
    );

    let job = rpc::run_in(&client, &session, "echo gemini-side").await;
    let gemini_event = json!({"session_id": "g", "transcript_path": "/t", "cwd": project,
        "hook_event_name": "AfterTool", "timestamp": "2026-01-01T00:00:00Z",
        "tool_name": "run_shell_command", "tool_input": {}, "tool_response": {}});
    let out = hook(&env, "gemini", &gemini_event).1;
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(answer["hookSpecificOutput"]["hookEventName"], "AfterTool");
    assert!(
        answer["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .contains(&job.short_id)
    );
}

#[tokio::test]
async fn results_dropped_by_the_pending_cap_are_told_to_the_model_once() {
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_pending_per_session = 3\n");
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(rpc::run_in(&client, "claude-capped", &format!("echo r{i}")).await);
    }

    let (code, out, err) = hook(&env, "claude-code", &prompt_event("capped"));
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let mut want = String::from(
        "<background-results>\n2 earlier background results were dropped unread: too many were \
         waiting (agentd's [retention] max_pending_per_session).\n",
    );
    for (i, job) in jobs.iter().enumerate().skip(2) {
        want += &format!(
            "[bg:{}] succeeded (exit 0): echo r{i}\nr{i}\n",
            job.short_id
        );
    }
    want += "</background-results>";
    assert_eq!(answer["hookSpecificOutput"]["additionalContext"], want);

    // Told once: the ack of the hand-over cleared the count.
    assert_eq!(
        hook(&env, "claude-code", &prompt_event("capped")),
        (0, String::new(), String::new())
    );
    let page = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some("claude-capped".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page.notifications.len(), page.dropped), (0, 0));
}

#[tokio::test]
async fn a_drop_is_told_once_when_the_kept_results_were_removed_unread() {
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_pending_per_session = 1\n");
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    rpc::run_in(&client, "claude-rm", "echo old").await;
    let kept = rpc::run_in(&client, "claude-rm", "echo kept").await;
    let (code, _, err) = run(env.agentctl().args(["rm", &kept.short_id]));
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = hook(&env, "claude-code", &prompt_event("rm"));
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        answer["hookSpecificOutput"]["additionalContext"],
        "<background-results>\n1 earlier background results were dropped unread: too many were \
         waiting (agentd's [retention] max_pending_per_session).\n</background-results>"
    );
    assert_eq!(
        hook(&env, "claude-code", &prompt_event("rm")),
        (0, String::new(), String::new())
    );
    let page = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some("claude-rm".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page.notifications.len(), page.dropped), (0, 0));
}

#[tokio::test]
async fn a_drop_is_told_even_when_every_kept_result_was_seen_already() {
    let env = TestEnv::new();
    env.write_agentd_config("[retention]\nmax_pending_per_session = 1\n");
    let daemon = env.start_daemon();
    let client = daemon.client().await;
    rpc::run_in(&client, "claude-seen", "echo old").await;
    let kept = rpc::run_in(&client, "claude-seen", "echo kept").await;
    // The MCP server already showed the kept one in a tool answer.
    let dir = env.root().join("state/agentctl/integrations/claude-seen");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shown"), format!("{}\n", kept.id)).unwrap();

    let (code, out, err) = hook(&env, "claude-code", &prompt_event("seen"));
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        answer["hookSpecificOutput"]["additionalContext"],
        "<background-results>\n1 earlier background results were dropped unread: too many were \
         waiting (agentd's [retention] max_pending_per_session).\n</background-results>"
    );
    assert_eq!(hook(&env, "claude-code", &prompt_event("seen")).1, "");
}
