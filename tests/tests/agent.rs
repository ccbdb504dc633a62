//! The agent end to end: the real `agentd` and `agentctl` binaries, with
//! the model faked by [`agentd_tests::fake_llm`]. Every request the fake
//! receives is validated (role alternation, tool_use/tool_result pairing);
//! `FakeLlm::requests` panics on any violation.
//!
//! Background jobs that must finish at a chosen moment wait on a FIFO
//! (`read x < gate`): the test opens it for writing when it wants the job to
//! end, so nothing depends on timing.
//!
//! The crash test uses `AGENTCTL_TEST_CRASH_AFTER_PERSIST=1`, a hook that
//! makes agentctl exit (code 86) right after persisting a message carrying
//! background results and before acking them.

use agentd_proto::JobState;
use agentd_proto::methods::{IdParams, JobGet, NotificationsPeek, PeekParams};
use agentd_tests::agent_world::{ANTHROPIC_KEY as KEY, OPENAI_KEY, World, tool_results};
use agentd_tests::fake_llm::Reply;
use agentd_tests::{release, run};
use serde_json::{Value, json};
use std::io::Write;
use std::process::Command;

/// The messages of a request as one string.
fn messages_text(req: &Value) -> String {
    req["messages"].to_string()
}

/// Text blocks of the last user message.
fn last_user_texts(req: &Value) -> Vec<String> {
    let last = req["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn background_job_finished_between_asks_reaches_the_next_ask_exactly_once() {
    let w = World::new(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate; echo finished-$x"}),
        ),
        Reply::text("Started it."),
    ]);
    let gate = w.gate("gate");
    let (code, out, err) = w.ask("s1", "start the job");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Started it.");
    assert!(err.contains("> background_run: read x < gate"), "{err}");

    let jobs = w.jobs("s1");
    assert_eq!(jobs.len(), 1);
    let short = jobs[0].short_id.clone();
    let reqs = w.llm.requests();
    assert_eq!(
        tool_results(&reqs[1]),
        vec![(
            format!("Background task {short} started: read x < gate; echo finished-$x"),
            false
        )]
    );
    assert!(!messages_text(&reqs[1]).contains("[bg:"));

    // The job ends while no agentctl runs.
    release(&gate);
    assert_eq!(w.wait_job(&jobs[0].id).state, JobState::Succeeded);

    w.llm.push(vec![Reply::text("It finished.")]);
    let (code, out, err) = w.ask("s1", "anything new?");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "It finished.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        last_user_texts(&reqs[2]),
        vec![
            "anything new?".to_string(),
            format!(
                "<background-results>\n[bg:{short}] succeeded (exit 0): read x < gate; echo finished-$x\nfinished-go\n</background-results>"
            )
        ]
    );
    assert_eq!(w.pending("s1"), 0, "delivered notifications are acked");

    w.llm.push(vec![Reply::text("Nothing new.")]);
    let (code, _, err) = w.ask("s1", "and now?");
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    assert_eq!(
        messages_text(&reqs[3])
            .matches(&format!("[bg:{short}]"))
            .count(),
        1,
        "the result is in the history once, not delivered again"
    );
    assert_eq!(last_user_texts(&reqs[3]), vec!["and now?".to_string()]);
}

#[test]
fn ask_wait_stays_until_background_results_reach_the_model() {
    let w = World::new(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate; echo waited-$x"}),
        ),
        Reply::text("Started; waiting."),
        Reply::text("All done: waited-go."),
    ]);
    let gate = w.gate("gate");
    let child = w
        .cmd()
        .args(["ask", "--wait", "--session", "w", "run it"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Only once the model was asked for its reply to the tool call: a job
    // ending before that has its result delivered in that same request
    // (correctly), and there is nothing left to wait for.
    w.llm.wait_for_requests(2);
    // Blocks until the job (started by the agent) opens the FIFO.
    release(&gate);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Started; waiting."), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("All done: waited-go."),
        "{stdout}"
    );
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 3);
    let texts = last_user_texts(&reqs[2]);
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("<background-results>\n[bg:"),
        "{texts:?}"
    );
    assert!(texts[0].contains("waited-go"));
    assert_eq!(w.pending("w"), 0);
    assert_eq!(w.llm.remaining(), 0);
}

#[test]
fn bash_outliving_its_timeout_becomes_a_background_task() {
    let w = World::new(vec![
        Reply::Tools(
            Some("Two commands.".into()),
            vec![
                ("bash".into(), json!({"command": "echo quick-one"})),
                (
                    "bash".into(),
                    json!({"command": "read x < gate; echo late-$x", "timeout": 0.5}),
                ),
            ],
        ),
        Reply::text("The slow one continues."),
    ]);
    let gate = w.gate("gate");
    let (code, _, err) = w.ask("b", "run both");
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    let results = tool_results(&reqs[1]);
    assert_eq!(results.len(), 2);
    assert!(results[0].0.contains("quick-one"), "{results:?}");
    assert!(results[0].0.contains("[succeeded (exit 0)]"), "{results:?}");
    let slow = w
        .jobs("b")
        .into_iter()
        .find(|j| j.command.contains("late"))
        .unwrap();
    assert!(!slow.state.is_finished(), "not killed at the timeout");
    assert!(
        results[1]
            .0
            .contains(&format!("continues as background task {}", slow.short_id)),
        "{results:?}"
    );

    release(&gate);
    assert_eq!(w.wait_job(&slow.id).state, JobState::Succeeded);
    w.llm.push(vec![Reply::text("Saw it.")]);
    let (code, _, err) = w.ask("b", "news?");
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    let texts = last_user_texts(&reqs[2]);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains(&format!("[bg:{}] succeeded (exit 0)", slow.short_id)));
    assert!(texts[1].contains("late-go"));
    // The bash call that finished in time is not reported again.
    assert_eq!(texts[1].matches("[bg:").count(), 1, "{texts:?}");
    assert!(!texts[1].contains("quick-one"), "{texts:?}");
    assert_eq!(w.pending("b"), 0, "its notification was acked too");
}

#[test]
fn file_tools_work_in_the_workspace_and_refuse_escapes() {
    let w = World::new(vec![
        Reply::Tools(
            None,
            vec![
                (
                    "write_file".into(),
                    json!({"path": "notes/n.txt", "content": "hello\nworld\nworld-end\n"}),
                ),
                (
                    "read_file".into(),
                    json!({"path": "notes/n.txt", "limit": 1}),
                ),
                (
                    "edit_file".into(),
                    json!({"path": "notes/n.txt", "old_text": "world\n", "new_text": "there\n"}),
                ),
                (
                    "edit_file".into(),
                    json!({"path": "notes/n.txt", "old_text": "e", "new_text": "E"}),
                ),
                ("read_file".into(), json!({"path": "../secret.txt"})),
                ("read_file".into(), json!({"path": "link"})),
                (
                    "write_file".into(),
                    json!({"path": "linkdir/evil.txt", "content": "x"}),
                ),
                (
                    "write_file".into(),
                    json!({"path": "../evil.txt", "content": "x"}),
                ),
            ],
        ),
        Reply::text("Done."),
    ]);
    let root = w.env.root();
    std::fs::write(root.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), w.workdir().join("link")).unwrap();
    std::os::unix::fs::symlink(root, w.workdir().join("linkdir")).unwrap();
    let (code, out, err) = w.ask("f", "files please");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Done.");
    let reqs = w.llm.requests();
    let r = tool_results(&reqs[1]);
    assert_eq!(r.len(), 8);
    assert!(!r[0].1 && r[0].0.contains("Wrote"), "{r:?}");
    assert_eq!(r[1], ("hello\n... (2 more lines)".to_string(), false));
    assert!(!r[2].1 && r[2].0.contains("Edited"), "{r:?}");
    assert!(r[3].1 && r[3].0.contains("occurs"), "{r:?}");
    for (i, res) in r.iter().enumerate().skip(4) {
        assert!(res.1, "result {i} should be an error: {res:?}");
        assert!(res.0.contains("outside the workspace"), "{res:?}");
        assert!(!res.0.contains("top secret"));
    }
    assert_eq!(
        std::fs::read_to_string(w.workdir().join("notes/n.txt")).unwrap(),
        "hello\nthere\nworld-end\n"
    );
    assert!(!root.join("evil.txt").exists());
}

#[test]
fn check_and_kill_background_report_and_end_the_job() {
    let w = World::new(vec![
        Reply::tool("background_run", json!({"command": "sleep 300"})),
        Reply::text("Sleeping in the background."),
    ]);
    let (code, _, err) = w.ask("k", "sleep");
    assert_eq!(code, 0, "{err}");
    let job = w.jobs("k").remove(0);
    assert_eq!(job.state, JobState::Running);

    w.llm.push(vec![
        Reply::Tools(
            None,
            vec![
                ("check_background".into(), json!({"task_id": job.short_id})),
                ("check_background".into(), json!({})),
            ],
        ),
        Reply::tool("kill_background", json!({"task_id": job.short_id})),
        Reply::text("Killed."),
    ]);
    let (code, out, err) = w.ask("k", "kill it");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Killed.");
    let c = w.client();
    let after =
        w.rt.block_on(c.call::<JobGet>(&IdParams { id: job.id.clone() }))
            .unwrap();
    assert_eq!(after.state, JobState::Killed);
    let reqs = w.llm.requests();
    let checks = tool_results(&reqs[3]);
    assert!(
        checks[0].0.starts_with(&format!(
            "Task {}: running\ncommand: sleep 300\n",
            job.short_id
        )),
        "{checks:?}"
    );
    assert_eq!(checks[1].0, format!("{} running: sleep 300", job.short_id));
    let r = tool_results(&reqs[4]);
    assert_eq!(r.len(), 1);
    assert!(
        r[0].0.starts_with(&format!("Task {} killed", job.short_id)),
        "{r:?}"
    );
    assert!(
        agentd_tests::group_members(job.pid.unwrap()).is_empty(),
        "the process group is gone"
    );
}

#[test]
fn a_drop_whose_kept_results_were_removed_is_told_once_also_across_a_crash() {
    let mut w = World::new(Vec::new());
    drop(w.daemon.take());
    w.env
        .write_agentd_config("[retention]\nmax_pending_per_session = 1\n");
    w.daemon = Some(w.env.start_daemon());
    let c = w.client();
    w.rt.block_on(agentd_tests::rpc::run_in(&c, "d", "echo dropped"));
    let kept =
        w.rt.block_on(agentd_tests::rpc::run_in(&c, "d", "echo kept"));
    let (code, _, err) = run(w.cmd().args(["rm", &kept.short_id]));
    assert_eq!(code, 0, "{err}");
    let line = "1 earlier background results were dropped unread";

    // Dies after writing the message that tells the drop, before the ack.
    let (code, _, err) = run(w.cmd().env("AGENTCTL_TEST_CRASH_AFTER_PERSIST", "1").args([
        "ask",
        "--session",
        "d",
        "first",
    ]));
    assert_eq!(code, 86, "{err}");

    w.llm.push(vec![Reply::text("ok"), Reply::text("ok")]);
    let (code, _, err) = w.ask("d", "second");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = w.ask("d", "third");
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(messages_text(&reqs[0]).matches(line).count(), 1);
    assert_eq!(
        messages_text(&reqs[1]).matches(line).count(),
        1,
        "told once, not again with every turn"
    );
    assert_eq!(last_user_texts(&reqs[1]), vec!["third".to_string()]);
    let page =
        w.rt.block_on(c.call::<NotificationsPeek>(&PeekParams {
            session: Some("d".into()),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(page.dropped, 0, "the ack cleared the drop");
}

#[test]
fn crash_between_persist_and_ack_still_delivers_exactly_once() {
    let w = World::new(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate; echo crash-$x"}),
        ),
        Reply::text("Started."),
    ]);
    let gate = w.gate("gate");
    assert_eq!(w.ask("c", "start").0, 0);
    let job = w.jobs("c").remove(0);
    release(&gate);
    w.wait_job(&job.id);

    // Dies after writing the message with the result, before the ack.
    let (code, _, err) = run(w.cmd().env("AGENTCTL_TEST_CRASH_AFTER_PERSIST", "1").args([
        "ask",
        "--session",
        "c",
        "what happened?",
    ]));
    assert_eq!(code, 86, "{err}");
    assert_eq!(w.llm.requests().len(), 2, "no model call was made");
    assert_eq!(w.pending("c"), 1, "not acked");
    let transcript = std::fs::read_to_string(w.transcripts().join("c.jsonl")).unwrap();
    assert_eq!(
        transcript
            .matches(&format!("[bg:{}]", job.short_id))
            .count(),
        1
    );

    w.llm
        .push(vec![Reply::text("It said crash-go."), Reply::text("ok")]);
    let (code, _, err) = w.ask("c", "and?");
    assert_eq!(code, 0, "{err}");
    assert_eq!(w.pending("c"), 0, "acked on resume");
    let reqs = w.llm.requests();
    let tag = format!("[bg:{}]", job.short_id);
    assert_eq!(messages_text(&reqs[2]).matches(&tag).count(), 1);
    assert!(messages_text(&reqs[2]).contains("crash-go"));
    let (code, _, _) = w.ask("c", "again?");
    assert_eq!(code, 0);
    let reqs = w.llm.requests();
    assert_eq!(messages_text(&reqs[3]).matches(&tag).count(), 1);
    let transcript = std::fs::read_to_string(w.transcripts().join("c.jsonl")).unwrap();
    assert_eq!(transcript.matches(&tag).count(), 1);
}

#[test]
fn api_keys_stay_out_of_transcripts_and_job_environments() {
    let w = World::new(vec![
        Reply::Tools(
            None,
            vec![
                (
                    "bash".into(),
                    json!({"command": "echo a=[$ANTHROPIC_API_KEY] o=[$OPENAI_API_KEY]"}),
                ),
                ("background_run".into(), json!({"command": "env > env.txt"})),
            ],
        ),
        Reply::text("Checked."),
    ]);
    let (code, _, err) = w.ask("keys", "check env");
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    let r = tool_results(&reqs[1]);
    assert!(r[0].0.contains("a=[] o=[]"), "{r:?}");
    let job = w
        .jobs("keys")
        .into_iter()
        .find(|j| j.command.starts_with("env"))
        .unwrap();
    w.wait_job(&job.id);
    let env_txt = std::fs::read_to_string(w.workdir().join("env.txt")).unwrap();
    assert!(
        env_txt.contains("AGENTD_SOCKET="),
        "the job got our environment"
    );
    assert!(!env_txt.contains(KEY) && !env_txt.contains(OPENAI_KEY));
    assert!(!env_txt.contains("_API_KEY="));
    for entry in std::fs::read_dir(w.transcripts()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(KEY) && !text.contains(OPENAI_KEY));
    }
    // Nor any byte of any file agentctl or agentd keeps (transcripts,
    // the job database and its WAL, job output).
    let mut todo = vec![w.env.root().join("state")];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                for key in [KEY, OPENAI_KEY] {
                    assert!(
                        !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                        "{key} in {}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn an_agentd_the_agent_auto_starts_does_not_get_the_api_keys() {
    // agentd gives every job its own environment under the job's `env`; an
    // agentd started by `agentctl ask` must not carry the keys into it.
    let mut w = World::new(vec![
        Reply::tool("bash", json!({"command": "env > env.txt"})),
        Reply::text("Done."),
    ]);
    w.daemon.take().unwrap().kill9();
    let (code, _, err) = run(w.cmd().env_remove("AGENTCTL_NO_AUTOSTART").args([
        "ask",
        "--session",
        "auto",
        "dump the environment",
    ]));
    assert_eq!(code, 0, "{err}");
    let pid: Value =
        serde_json::from_str(&run(w.env.agentctl().args(["daemon", "status", "--json"])).1)
            .unwrap();
    let pid = pid["pid"].as_u64().expect("an auto-started agentd") as i32;
    let daemon_env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let daemon_env = String::from_utf8_lossy(&daemon_env);
    assert!(daemon_env.contains("AGENTD_SOCKET="), "{daemon_env}");
    assert!(!daemon_env.contains("_API_KEY="), "{daemon_env}");
    let env_txt = std::fs::read_to_string(w.workdir().join("env.txt")).unwrap();
    assert!(!env_txt.contains(KEY) && !env_txt.contains(OPENAI_KEY));
    assert_eq!(run(w.env.agentctl().args(["daemon", "stop"])).0, 0);
}

#[test]
fn openai_provider_runs_tools_and_delivers_background_results() {
    let w = World::new(vec![
        Reply::Tools(
            Some("Running.".into()),
            vec![
                ("bash".into(), json!({"command": "echo via-openai"})),
                (
                    "background_run".into(),
                    json!({"command": "read x < gate; echo bg-$x"}),
                ),
            ],
        ),
        Reply::text("Started."),
    ]);
    let gate = w.gate("gate");
    let openai = |w: &World, prompt: &str| {
        let mut cmd = w.env.agentctl();
        cmd.env("AGENTCTL_PROVIDER", "openai")
            .env("OPENAI_BASE_URL", w.llm.openai_url())
            .env("AGENTCTL_MODEL", "local-model")
            .args(["ask", "--session", "oa", prompt]);
        run(&mut cmd)
    };
    let (code, out, err) = openai(&w, "go");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Started.");
    let reqs = w.llm.requests();
    assert_eq!(reqs[0]["model"], "local-model");
    assert_eq!(reqs[0]["messages"][0]["role"], "system");
    assert_eq!(reqs[0]["tools"][0]["type"], "function");
    let msgs = reqs[1]["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
    assert!(msgs[3]["content"].as_str().unwrap().contains("via-openai"));
    assert!(
        msgs[4]["content"]
            .as_str()
            .unwrap()
            .starts_with("Background task ")
    );

    let job = w
        .jobs("oa")
        .into_iter()
        .find(|j| j.command.contains("bg-"))
        .unwrap();
    release(&gate);
    w.wait_job(&job.id);
    w.llm.push(vec![Reply::text("bg-go seen.")]);
    let (code, out, err) = openai(&w, "news?");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "bg-go seen.");
    let reqs = w.llm.requests();
    let last = reqs[2]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "user");
    let content = last["content"].as_str().unwrap();
    assert!(
        content.starts_with("news?\n\n<background-results>\n"),
        "{content}"
    );
    assert!(content.contains(&format!("[bg:{}] succeeded (exit 0)", job.short_id)));
}

#[test]
fn servers_that_answer_without_streaming_work_for_both_apis() {
    // Some OpenAI-compatible servers (and proxies) ignore `"stream": true`
    // and send the whole reply as one JSON body.
    let script = || {
        vec![
            Reply::Tools(
                Some("Looking.".into()),
                vec![("bash".into(), json!({"command": "echo whole-$((6*7))"}))],
            ),
            Reply::text("The answer is 42."),
        ]
    };
    let w = World::new(script());
    w.llm.set_streaming(false);
    let (code, out, err) = w.ask("whole", "compute");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "The answer is 42.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 2);
    let results = tool_results(&reqs[1]);
    assert!(results[0].0.contains("whole-42"), "{results:?}");

    w.llm.push(script());
    let mut cmd = w.env.agentctl();
    cmd.env("AGENTCTL_PROVIDER", "openai")
        .env("OPENAI_BASE_URL", w.llm.openai_url())
        .args(["ask", "--session", "whole-oa", "compute"]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "The answer is 42.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 4);
    let msgs = reqs[3]["messages"].as_array().unwrap();
    let tool = msgs.iter().find(|m| m["role"] == "tool").unwrap();
    assert!(
        tool["content"].as_str().unwrap().contains("whole-42"),
        "{tool}"
    );
    assert_eq!(reqs[3]["messages"][2]["content"], "Looking.");
}

#[test]
fn rate_limits_are_retried_and_api_errors_keep_the_session() {
    let w = World::new(vec![
        Reply::Error(429, "slow down".into()),
        Reply::Error(529, "overloaded".into()),
        Reply::text("Made it."),
        Reply::Error(400, "model not found: nope".into()),
        Reply::text("Back again."),
    ]);
    let (code, out, err) = w.ask("r", "hi");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Made it.");
    let (code, _, err) = w.ask("r", "second");
    assert_eq!(code, 1);
    assert!(err.contains("model not found: nope"), "{err}");
    let (code, out, err) = w.ask("r", "third");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Back again.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 5);
    // The failed turn's prompt is kept and merged with the next one.
    assert_eq!(
        last_user_texts(&reqs[4]),
        vec!["second".to_string(), "third".to_string()]
    );
}

#[test]
fn a_transcript_cut_mid_turn_is_repaired_on_resume() {
    let w = World::new(vec![Reply::text("Resumed.")]);
    std::fs::create_dir_all(w.transcripts()).unwrap();
    let lines = [
        json!({"role": "user", "content": [{"type": "text", "text": "do it"}]}),
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_x", "name": "bash", "input": {"command": "ls"}}]}),
    ];
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str("{\"role\":\"us"); // torn last line
    std::fs::write(w.transcripts().join("cut.jsonl"), text).unwrap();
    let (code, out, err) = w.ask("cut", "go on");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Resumed.");
    let reqs = w.llm.requests();
    let r = tool_results(&reqs[0]);
    assert_eq!(r.len(), 1);
    assert!(r[0].1 && r[0].0.contains("interrupted"));
}

#[test]
fn blocklisted_commands_are_refused_for_bash_and_background_run() {
    let w = World::new(vec![
        Reply::Tools(
            None,
            vec![
                ("bash".into(), json!({"command": "sudo ls"})),
                ("background_run".into(), json!({"command": "rm -rf /"})),
                ("bash".into(), json!({"command": "echo x >/dev/sda"})),
                ("bash".into(), json!({"command": "echo x 2>/dev/sda"})),
                ("background_run".into(), json!({"command": "rm -r -f /."})),
                ("bash".into(), json!({"command": "rm -fr //"})),
            ],
        ),
        Reply::text("Refused."),
    ]);
    assert_eq!(w.ask("bl", "be bad").0, 0);
    let r = tool_results(&w.llm.requests()[1]);
    assert_eq!(r.len(), 6);
    assert!(
        r.iter().all(|(c, e)| *e && c.contains("blocklist")),
        "{r:?}"
    );
    assert!(w.jobs("bl").is_empty());

    // Harmless look-alikes run.
    w.llm.push(vec![
        Reply::Tools(
            None,
            vec![
                (
                    "bash".into(),
                    json!({"command": "mkdir -p build && rm -rf ./build && ls /dev/ >/dev/null && echo fine"}),
                ),
                ("bash".into(), json!({"command": "echo '> /dev/sda' 2>/dev/null"})),
            ],
        ),
        Reply::text("Ran."),
    ]);
    assert_eq!(w.ask("bl", "be good").0, 0);
    let r = tool_results(&w.llm.requests()[3]);
    assert!(r[0].0.starts_with("fine\n") && !r[0].1, "{r:?}");
    assert!(r[1].0.starts_with("> /dev/sda\n") && !r[1].1, "{r:?}");
}

#[test]
fn sessions_lists_names_and_running_jobs() {
    let w = World::new(vec![
        Reply::tool("background_run", json!({"command": "sleep 300"})),
        Reply::text("ok"),
        Reply::text("ok"),
    ]);
    assert_eq!(w.ask("alpha", "x").0, 0);
    assert_eq!(w.ask("beta", "y").0, 0);
    let (code, out, err) = run(w.cmd().arg("sessions"));
    assert_eq!(code, 0, "{err}");
    let alpha = out.lines().find(|l| l.starts_with("alpha")).unwrap();
    let beta = out.lines().find(|l| l.starts_with("beta")).unwrap();
    assert!(alpha.trim_end().ends_with(" 1"), "{out}");
    assert!(beta.trim_end().ends_with(" 0"), "{out}");
    let (code, _, err) = w.ask("bad name", "z");
    assert_ne!(code, 0);
    assert!(err.contains("invalid session name"), "{err}");
}

#[test]
fn chat_streams_replies_and_leaves_on_exit() {
    let w = World::new(vec![
        Reply::tool("bash", json!({"command": "echo from-chat"})),
        Reply::text("Hello from the model."),
    ]);
    let mut child = w
        .cmd()
        .args(["chat", "--session", "talk"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"say hello\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Session talk"), "{stdout}");
    // A tool call does not look like a prompt line (`> …`).
    assert!(stdout.contains("\n  → bash: echo from-chat\n"), "{stdout}");
    assert!(!stdout.contains("> bash"), "{stdout}");
    assert!(stdout.contains("Hello from the model."), "{stdout}");
    // The turn's token usage, summed over its two model calls.
    assert!(
        stdout.contains(" out (2 model calls)\n") && stdout.contains("  tokens: "),
        "{stdout}"
    );
    assert_eq!(w.llm.requests().len(), 2);
}

#[test]
fn chat_prints_a_finished_job_at_the_prompt_and_delivers_it_with_the_next_message() {
    use std::io::BufRead;
    let w = World::new(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate; echo chat-$x"}),
        ),
        Reply::text("Started."),
        Reply::text("Noted the result."),
    ]);
    let gate = w.gate("gate");
    let mut child = w
        .cmd()
        .args(["chat", "--session", "live"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut read_until = |needle: &str| -> String {
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return seen;
            }
        }
        panic!("chat ended before printing {needle:?}:\n{seen}");
    };
    stdin.write_all(b"start the job\n").unwrap();
    read_until("Started.");
    let job = w.jobs("live").remove(0);
    release(&gate);
    w.wait_job(&job.id);
    let header = format!(
        "[bg:{}] succeeded (exit 0): read x < gate; echo chat-$x",
        job.short_id
    );
    read_until(&header);
    assert_eq!(w.pending("live"), 1, "printing does not ack");
    stdin.write_all(b"what happened?\nexit\n").unwrap();
    read_until("Noted the result.");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 3);
    let texts = last_user_texts(&reqs[2]);
    assert_eq!(texts[0], "what happened?");
    assert!(
        texts[1].contains(&header) && texts[1].contains("chat-go"),
        "{texts:?}"
    );
    assert_eq!(w.pending("live"), 0);
}

#[test]
fn config_file_sets_model_and_max_tokens_and_the_environment_wins() {
    let w = World::new(vec![Reply::text("one"), Reply::text("two")]);
    let dir = w.env.root().join("config/agentctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "provider = \"anthropic\"\nmodel = \"from-config\"\nmax_tokens = 1234\n",
    )
    .unwrap();
    let sub = w.workdir().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let (code, _, err) = run(w
        .cmd()
        .args(["ask", "--workdir", sub.to_str().unwrap(), "hi"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(w
        .cmd()
        .env("AGENTCTL_MODEL", "from-env")
        .args(["ask", "again"]));
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    assert_eq!(reqs[0]["model"], "from-config");
    assert_eq!(reqs[0]["max_tokens"], 1234);
    assert!(
        reqs[0]["system"]
            .as_str()
            .unwrap()
            .contains(sub.to_str().unwrap())
    );
    assert_eq!(reqs[1]["model"], "from-env");
    assert!(
        w.transcripts().join("agent.jsonl").is_file(),
        "ask's default session"
    );
    assert!(!w.transcripts().join("default.jsonl").exists());
}

/// Output of a child read on a thread, so a test can wait for text with a
/// deadline instead of blocking forever.
struct Output {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Output {
    fn new(mut out: impl std::io::Read + Send + 'static) -> Output {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Output {
            rx,
            seen: String::new(),
        }
    }

    /// Waits (30 s at most) for the end of the output; false if it does
    /// not come.
    fn closes(&mut self) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// Waits (30 s at most) until `needle` appears after what earlier calls
    /// consumed.
    fn until(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(pos) = self.seen.find(needle) {
                self.seen.drain(..pos + needle.len());
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {needle:?} in the output:\n{}", self.seen),
            }
        }
    }
}

#[test]
fn chat_on_a_terminal_cancels_a_turn_with_ctrl_c_and_prints_job_ends_above_the_prompt() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (for a pseudo-terminal) is not installed");
        return;
    }
    let w = World::new(vec![
        Reply::Stall,
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate; echo tty-$x"}),
        ),
        Reply::text("Started."),
        Reply::text("Got it."),
    ]);
    let gate = w.gate("gate");
    let agentctl = agentd_tests::bin("agentctl");
    let mut cmd = w.env.command("script");
    cmd.env("ANTHROPIC_BASE_URL", w.llm.url())
        .env("ANTHROPIC_API_KEY", KEY)
        .env("TERM", "xterm")
        .args(["-qfec"])
        // `exec`: script runs the command through $SHELL -c; a shell that
        // stays as agentctl's parent (dash does) is in the terminal's
        // foreground group too and dies of the SIGINT that a Ctrl-C typed
        // between two prompts raises.
        .arg(format!("exec {} chat --session tty", agentctl.display()))
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Output::new(child.stdout.take().unwrap());
    out.until("Session tty");
    stdin.write_all(b"hello\r").unwrap();
    w.llm.wait_for_requests(1);
    stdin.write_all(b"\x03").unwrap();
    out.until("(cancelled: the model never saw that prompt");

    stdin.write_all(b"again\r").unwrap();
    out.until("Started.");
    let job = w.jobs("tty").remove(0);
    release(&gate);
    out.until(&format!("[bg:{}] succeeded (exit 0)", job.short_id));
    // Ctrl-C at the prompt clears the line; it does not leave. (Bytes
    // typed ahead of the new prompt would be dropped with the old one, so
    // wait for rustyline to leave and re-enter its line editor: it turns
    // bracketed paste off and on.)
    stdin.write_all(b"\x03").unwrap();
    out.until("\x1b[?2004l");
    out.until("\x1b[?2004h");
    stdin.write_all(b"next\r").unwrap();
    out.until("Got it.");
    out.until("\x1b[?2004h");
    stdin.write_all(b"\x04").unwrap();
    if !out.closes() {
        let _ = child.kill();
        panic!("chat did not leave on Ctrl-D:\n{}", out.seen);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");

    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 4);
    // The cancelled prompt is dropped: the model never saw it, and never will.
    assert_eq!(last_user_texts(&reqs[1]), vec!["again".to_string()]);
    assert!(!messages_text(&reqs[1]).contains("hello"));
    let texts = last_user_texts(&reqs[3]);
    assert_eq!(texts[0], "next");
    assert!(texts[1].contains("tty-go"), "{texts:?}");
}

#[test]
fn results_are_not_lost_when_agentd_starts_over_with_fresh_state() {
    // Seqs restart at 1 with a fresh daemon state; delivery is decided by
    // job id, so the new daemon's first result is not mistaken for one the
    // transcript already has.
    let mut w = World::new(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate1; echo first"}),
        ),
        Reply::text("Started."),
        Reply::text("Saw first."),
    ]);
    let gate1 = w.gate("gate1");
    let gate2 = w.gate("gate2");
    assert_eq!(w.ask("fresh", "one").0, 0);
    let first = w.jobs("fresh").remove(0);
    release(&gate1);
    w.wait_job(&first.id);
    assert_eq!(w.ask("fresh", "two").0, 0);
    assert!(messages_text(&w.llm.requests()[2]).contains("[bg:"));

    w.daemon.take().unwrap().kill9();
    let other = w.env.root().join("state/agentd-2");
    w.daemon = Some(w.env.start_daemon_with(|cmd| {
        cmd.env("AGENTD_STATE_DIR", &other);
    }));
    w.llm.push(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate2; echo second"}),
        ),
        Reply::text("Started again."),
        Reply::text("Saw second."),
    ]);
    assert_eq!(w.ask("fresh", "three").0, 0);
    let second = w.jobs("fresh").remove(0);
    release(&gate2);
    w.wait_job(&second.id);
    let (code, out, err) = w.ask("fresh", "four");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Saw second.");
    let reqs = w.llm.requests();
    let texts = last_user_texts(&reqs[5]);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains(&format!(
        "[bg:{}] succeeded (exit 0): read x < gate2; echo second",
        second.short_id
    )));
    assert_eq!(w.pending("fresh"), 0);
}

#[test]
fn pause_turn_continues_and_max_tokens_cut_tool_calls_are_answered_not_run() {
    let w = World::new(vec![
        Reply::Stop("pause_turn".into(), Some("Part one.".into()), vec![]),
        Reply::text("Part two."),
        Reply::Stop(
            "max_tokens".into(),
            None,
            vec![(
                "write_file".into(),
                json!({"path": "cut.txt", "content": "x"}),
            )],
        ),
        Reply::text("Retrying later."),
    ]);
    let (code, out, err) = w.ask("stops", "long one");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "Part one.\nPart two.",
        "all of the reply is printed"
    );
    let (code, _, err) = w.ask("stops", "write it");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("max_tokens"), "{err}");
    let reqs = w.llm.requests();
    let last = reqs[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "assistant", "pause_turn sends the reply back");
    assert_eq!(last["content"][0]["text"], "Part one.");
    let r = tool_results(&reqs[3]);
    assert!(r[0].1 && r[0].0.contains("not run"), "{r:?}");
    assert!(!w.workdir().join("cut.txt").exists());
}

#[test]
fn a_session_is_used_by_one_agentctl_at_a_time() {
    let w = World::new(vec![Reply::Stall]);
    let mut first = w
        .cmd()
        .args(["ask", "--session", "busy", "slow"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    w.llm.wait_for_requests(1);
    let (code, _, err) = w.ask("busy", "me too");
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(code, 1);
    assert!(err.contains("session busy is in use"), "{err}");
    assert_eq!(w.llm.requests().len(), 1);
}

#[test]
fn file_tools_refuse_a_missing_directory_then_dotdot_into_an_outside_symlink() {
    let w = World::new(vec![
        Reply::Tools(
            None,
            vec![
                ("read_file".into(), json!({"path": "nothere/../link"})),
                (
                    "write_file".into(),
                    json!({"path": "nothere/../link", "content": "overwritten"}),
                ),
                (
                    "edit_file".into(),
                    json!({"path": "a/b/../../link", "old_text": "top", "new_text": "x"}),
                ),
                (
                    "write_file".into(),
                    json!({"path": "nothere/../inside.txt", "content": "ok"}),
                ),
            ],
        ),
        Reply::text("Done."),
    ]);
    let root = w.env.root();
    std::fs::write(root.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), w.workdir().join("link")).unwrap();
    let (code, _, err) = w.ask("esc", "escape");
    assert_eq!(code, 0, "{err}");
    let r = tool_results(&w.llm.requests()[1]);
    assert_eq!(r.len(), 4);
    for res in &r[..3] {
        assert!(res.1 && res.0.contains("outside the workspace"), "{r:?}");
        assert!(!res.0.contains("top secret"), "{r:?}");
    }
    assert!(!r[3].1, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("secret.txt")).unwrap(),
        "top secret",
        "the outside file is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(w.workdir().join("inside.txt")).unwrap(),
        "ok"
    );
    assert!(!w.workdir().join("nothere").exists());
}

#[test]
fn jobs_do_not_get_api_keys_that_agentd_itself_has() {
    // agentd started from a shell that has the keys: jobs inherit agentd's
    // environment under the overlay agentctl sends, so agentd must drop them.
    let w = World::with_daemon(
        vec![
            Reply::Tools(
                None,
                vec![
                    (
                        "bash".into(),
                        json!({"command": "echo key=[$ANTHROPIC_API_KEY] o=[$OPENAI_API_KEY]"}),
                    ),
                    (
                        "background_run".into(),
                        json!({"command": "echo key=[$ANTHROPIC_API_KEY] o=[$OPENAI_API_KEY] > bg.txt"}),
                    ),
                ],
            ),
            Reply::text("Checked."),
        ],
        |cmd| {
            cmd.env("ANTHROPIC_API_KEY", "sk-ant-DAEMON-9999")
                .env("OPENAI_API_KEY", "sk-oa-DAEMON-8888");
        },
    );
    let (code, _, err) = w.ask("dkeys", "check env");
    assert_eq!(code, 0, "{err}");
    let r = tool_results(&w.llm.requests()[1]);
    assert!(r[0].0.starts_with("key=[] o=[]\n"), "{r:?}");
    let job = w
        .jobs("dkeys")
        .into_iter()
        .find(|j| j.command.contains("bg.txt"))
        .unwrap();
    assert_eq!(w.wait_job(&job.id).state, JobState::Succeeded);
    assert_eq!(
        std::fs::read_to_string(w.workdir().join("bg.txt")).unwrap(),
        "key=[] o=[]\n"
    );
}

#[test]
fn bash_output_over_200_kb_reaches_the_model_as_head_one_true_marker_and_tail() {
    let w = World::new(vec![
        Reply::tool(
            "bash",
            json!({"command": "printf 'HEAD-START\\n'; head -c 300000 /dev/zero | tr '\\0' x; printf '\\nTAIL-END\\n'"}),
        ),
        Reply::text("Long."),
    ]);
    let (code, _, err) = w.ask("big", "print a lot");
    assert_eq!(code, 0, "{err}");
    let r = tool_results(&w.llm.requests()[1]);
    let content = &r[0].0;
    assert!(content.chars().count() <= 50_000, "{}", content.len());
    assert_eq!(content.matches("omitted").count(), 1);
    let (head, rest) = content.split_once("\n[... ").unwrap();
    let (n, tail) = rest.split_once(" bytes omitted ...]\n").unwrap();
    let tail = tail.strip_suffix("[succeeded (exit 0)]").unwrap();
    assert!(head.starts_with("HEAD-START\nxxx"), "{}", &head[..20]);
    assert!(tail.ends_with("xxx\nTAIL-END\n"), "{tail:?}");
    let total = "HEAD-START\n".len() + 300_000 + "\nTAIL-END\n".len();
    assert_eq!(n.parse::<usize>().unwrap(), total - head.len() - tail.len());
    assert!(head.len() > 20_000 && tail.len() > 20_000);
}

#[test]
fn openai_tool_calls_whose_id_and_name_repeat_in_every_chunk_run_once() {
    let w = World::new(vec![
        Reply::tool("bash", json!({"command": "echo repeated-ok"})),
        Reply::text("Done."),
    ]);
    w.llm.set_repeat_tool_fields(true);
    let mut cmd = w.env.agentctl();
    cmd.env("AGENTCTL_PROVIDER", "openai")
        .env("OPENAI_BASE_URL", w.llm.openai_url())
        .args(["ask", "--session", "rep", "go"]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Done.");
    let reqs = w.llm.requests();
    let msgs = reqs[1]["messages"].as_array().unwrap();
    let call = &msgs[2]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "bash");
    let id = call["id"].as_str().unwrap();
    assert!(
        id.starts_with("call_") && id.matches("call_").count() == 1,
        "{id}"
    );
    assert_eq!(msgs[3]["tool_call_id"], id);
    assert!(msgs[3]["content"].as_str().unwrap().contains("repeated-ok"));
}

#[test]
fn a_stream_cut_short_is_retried_not_taken_as_a_finished_reply() {
    let w = World::new(vec![
        Reply::Cut("Half of a reply that never ends".into()),
        Reply::text("The whole reply."),
        Reply::Cut("Half of another reply".into()),
        Reply::text("Another whole reply."),
    ]);
    let (code, out, err) = w.ask("cut-a", "hi");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "The whole reply.");
    let mut cmd = w.env.agentctl();
    cmd.env("AGENTCTL_PROVIDER", "openai")
        .env("OPENAI_BASE_URL", w.llm.openai_url())
        .args(["ask", "--session", "cut-o", "hi"]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Another whole reply.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 4, "each cut stream was asked again");
    assert_eq!(reqs[1]["messages"], reqs[0]["messages"]);
    assert_eq!(reqs[3]["messages"], reqs[2]["messages"]);
    let transcript = std::fs::read_to_string(w.transcripts().join("cut-a.jsonl")).unwrap();
    assert!(!transcript.contains("Half of"), "{transcript}");
}

#[test]
fn an_overloaded_error_inside_a_stream_is_retried() {
    let w = World::new(vec![
        Reply::StreamError("overloaded_error".into()),
        Reply::text("After the overload."),
        Reply::StreamError("invalid_request_error".into()),
    ]);
    let (code, out, err) = w.ask("ovl", "hi");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "After the overload.");
    let (code, _, err) = w.ask("ovl", "again");
    assert_eq!(code, 1, "other error events end the turn");
    assert!(err.contains("fake stream error"), "{err}");
    assert_eq!(w.llm.requests().len(), 3);
}

#[test]
fn retry_after_is_honoured_in_seconds_and_as_an_http_date() {
    let w = World::new(vec![
        Reply::ErrorAfter(429, "slow down".into(), "1".into()),
        Reply::text("After one second."),
        Reply::ErrorAfterDate(503, "busy".into(), 1),
        Reply::text("After the date."),
    ]);
    let (code, out, err) = w.ask("ra", "hi");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "After one second.");
    let (code, out, err) = w.ask("ra", "again");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "After the date.");
    let t = w.llm.arrivals();
    assert_eq!(t.len(), 4);
    let second = std::time::Duration::from_secs(1);
    assert!(t[1] - t[0] >= second, "retried after {:?}", t[1] - t[0]);
    assert!(t[3] - t[2] >= second, "retried after {:?}", t[3] - t[2]);
}

#[test]
fn empty_prompts_are_refused_and_empty_text_blocks_never_sent() {
    let w = World::new(vec![
        Reply::Tools(
            Some(String::new()),
            vec![("bash".into(), json!({"command": "echo one"}))],
        ),
        Reply::text("Streamed."),
        Reply::Tools(
            Some(String::new()),
            vec![("bash".into(), json!({"command": "echo two"}))],
        ),
        Reply::text("Whole."),
    ]);
    let (code, _, err) = w.ask("empty", "");
    assert_ne!(code, 0);
    assert!(err.contains("prompt is empty"), "{err}");
    let (code, _, err) = w.ask("empty", "   ");
    assert_ne!(code, 0, "{err}");
    assert!(w.llm.requests().is_empty(), "nothing was sent");

    let (code, out, err) = w.ask("empty", "streamed");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Streamed.");
    w.llm.set_streaming(false);
    let (code, out, err) = w.ask("empty", "whole");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Whole.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 4);
    assert!(!messages_text(&reqs[3]).contains(r#""text":"""#));
}

#[test]
fn chat_without_a_session_starts_a_fresh_one_and_continue_resumes_the_latest() {
    let w = World::new(vec![
        Reply::text("Older."),
        Reply::text("Fresh one."),
        Reply::text("Continued."),
    ]);
    assert_eq!(w.ask("older", "an older session").0, 0);
    let chat = |args: &[&str], input: &str| {
        let mut child = w
            .cmd()
            .arg("chat")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = chat(&[], "first words\nexit\n");
    let name = out
        .lines()
        .find_map(|l| l.strip_prefix("Session "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(name.starts_with("chat-") && name != "older", "{out}");
    assert!(out.contains("Fresh one."), "{out}");

    let out = chat(&["--continue"], "again\nexit\n");
    assert!(out.contains(&format!("Session {name} (")), "{out}");
    assert!(out.contains("Continued."), "{out}");
    let reqs = w.llm.requests();
    let text = messages_text(&reqs[2]);
    assert!(
        text.contains("first words") && text.contains("Fresh one."),
        "{text}"
    );
    assert!(!text.contains("an older session"), "{text}");
    assert_eq!(last_user_texts(&reqs[2]), vec!["again".to_string()]);
}

#[test]
fn refusal_and_max_tokens_end_the_turn_readably_and_the_session_goes_on() {
    let w = World::new(vec![
        Reply::Stop("refusal".into(), None, vec![]),
        Reply::Stop(
            "max_tokens".into(),
            Some("Cut off in the mid".into()),
            vec![],
        ),
        Reply::text("Fine again."),
    ]);
    let (code, out, err) = w.ask("st", "something bad");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("declined to answer"), "{err}");
    assert_eq!(out.trim(), "");
    let (code, out, err) = w.ask("st", "something long");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cut at max_tokens"), "{err}");
    assert_eq!(out.trim(), "Cut off in the mid");
    let (code, out, err) = w.ask("st", "something fine");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Fine again.");
    // The fake validated each conversation; the refused prompt is kept.
    let reqs = w.llm.requests();
    let text = messages_text(&reqs[2]);
    assert!(text.contains("something bad") && text.contains("Cut off in the mid"));
}

#[test]
fn pause_turn_continuations_are_capped() {
    let pause = |t: &str| Reply::Stop("pause_turn".into(), Some(t.into()), vec![]);
    let w = World::new((1..=6).map(|i| pause(&format!("p{i}"))).collect());
    let (code, out, err) = w.ask("pauses", "go on and on");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "p1\np2\np3\np4\np5\np6");
    assert!(err.contains("paused its turn 6 times"), "{err}");
    assert_eq!(w.llm.requests().len(), 6, "5 continuations, then it stops");
}

#[test]
fn requests_carry_the_api_key_and_version_headers_and_the_designed_system_prompt() {
    let w = World::new(vec![Reply::text("a"), Reply::text("o")]);
    assert_eq!(w.ask("h", "hi").0, 0);
    let mut cmd = w.env.agentctl();
    cmd.env("AGENTCTL_PROVIDER", "openai")
        .env("OPENAI_BASE_URL", w.llm.openai_url())
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .args(["ask", "--session", "ho", "hi"]);
    assert_eq!(run(&mut cmd).0, 0);
    let headers = w.llm.headers();
    let get = |i: usize, name: &str| {
        headers[i]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get(0, "x-api-key").as_deref(), Some(KEY));
    assert_eq!(get(0, "anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(get(0, "authorization"), None);
    assert_eq!(
        get(1, "authorization"),
        Some(format!("Bearer {OPENAI_KEY}"))
    );
    assert_eq!(get(1, "x-api-key"), None);
    let reqs = w.llm.requests();
    let system = reqs[0]["system"].as_str().unwrap();
    assert!(system.contains("background_run"), "{system}");
    assert!(system.contains("<background-results>"), "{system}");
    assert!(system.contains(w.workdir().to_str().unwrap()), "{system}");
    assert_eq!(reqs[1]["messages"][0]["content"], system);
}

#[test]
fn tool_results_survive_agentd_dying_before_the_next_model_call() {
    // The `bash` job kills agentd: its `job.wait` fails, and so does the
    // `notifications.peek` before the next model call. The results of the
    // tools that ran must be on disk by then.
    let mut w = World::new(vec![]);
    let pid = w.daemon.as_ref().unwrap().pid();
    w.llm.push(vec![
        Reply::Tools(
            None,
            vec![
                (
                    "write_file".into(),
                    json!({"path": "made.txt", "content": "x"}),
                ),
                ("bash".into(), json!({"command": format!("kill -9 {pid}")})),
            ],
        ),
        Reply::text("Saw both results."),
    ]);
    let (code, _, err) = w.ask("dies", "do two things");
    assert_ne!(code, 0, "agentd is gone: {err}");
    w.daemon.take().unwrap().wait();
    w.daemon = Some(w.env.start_daemon());
    let (code, out, err) = w.ask("dies", "go on");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Saw both results.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 2);
    let r = tool_results(&reqs[1]);
    assert_eq!(r.len(), 2);
    assert!(r[0].0.starts_with("Wrote 1 bytes to made.txt"), "{r:?}");
    assert!(!r[0].1, "{r:?}");
    assert!(
        r.iter().all(|(c, _)| !c.contains("interrupted")),
        "results of tools that ran are sent, not replaced: {r:?}"
    );
}

#[test]
fn cli_job_results_never_reach_the_agents_default_session_and_drain_there_needs_force() {
    let w = World::new(vec![Reply::text("one"), Reply::text("two")]);
    let (code, _, err) = run(w.cmd().args(["ask", "first"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(w.cmd().args(["run", "--", "echo cli-job-output"]));
    assert_eq!(code, 0, "{err}");
    let job = w.jobs("default").remove(0);
    assert!(out.contains(&job.short_id), "{out}");
    w.wait_job(&job.id);
    let (code, _, err) = run(w.cmd().args(["ask", "second"]));
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 2);
    assert!(!messages_text(&reqs[1]).contains("cli-job-output"));
    assert!(!messages_text(&reqs[1]).contains("[bg:"));
    assert_eq!(w.pending("default"), 1, "the CLI's result stays for people");

    // The agent's session: drain refuses, notifications warns.
    let (code, out, err) = run(w.cmd().args(["drain", "--session", "agent"]));
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("belongs to an agent"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, _, err) = run(w.cmd().args(["notifications", "--session", "agent"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("still owed to its model"), "{err}");
    let (code, _, err) = run(w.cmd().args(["drain", "--session", "agent", "--force"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("will not see"), "{err}");
    // The job CLI's own session drains without a word.
    let (code, out, err) = run(w.cmd().arg("drain"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&job.short_id), "{out}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(w.pending("default"), 0);

    let (code, out, err) = run(w.cmd().args(["sessions", "show", "agent"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 in all"), "{out}");
    assert!(out.contains("Last compaction: never"), "{out}");
    assert!(out.contains("tokens of 200000"), "{out}");
}

#[test]
fn sessions_rm_removes_the_transcript_and_pending_results_and_leaves_jobs_running() {
    let w = World::new(vec![
        Reply::Tools(
            None,
            vec![
                (
                    "background_run".into(),
                    json!({"command": "read x < gate0; echo early-result"}),
                ),
                (
                    "background_run".into(),
                    json!({"command": "read x < gate; echo late"}),
                ),
            ],
        ),
        Reply::text("Started."),
    ]);
    let gate = w.gate("gate");
    let gate0 = w.gate("gate0");
    let (code, _, err) = w.ask("gone", "start two");
    assert_eq!(code, 0, "{err}");
    let jobs = w.jobs("gone");
    let early = jobs.iter().find(|j| j.command.contains("early")).unwrap();
    let late = jobs.iter().find(|j| j.command.contains("late")).unwrap();
    release(&gate0);
    w.wait_job(&early.id);
    assert_eq!(w.pending("gone"), 1);

    let (code, out, err) = run(w.cmd().args(["sessions", "rm", "gone"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Removed session gone"), "{out}");
    assert!(out.contains("Cleared 1 pending results"), "{out}");
    assert!(
        out.contains("still run") && out.contains(&late.short_id),
        "{out}"
    );
    assert!(!w.transcripts().join("gone.jsonl").exists());
    assert_eq!(w.pending("gone"), 0);
    let c = w.client();
    let still =
        w.rt.block_on(c.call::<JobGet>(&IdParams {
            id: late.id.clone(),
        }))
        .unwrap();
    assert_eq!(still.state, JobState::Running);
    release(&gate);
    w.wait_job(&late.id);

    let (code, _, err) = run(w.cmd().args(["sessions", "rm", "gone"]));
    assert_eq!(code, 1);
    assert!(err.contains("no session gone"), "{err}");
    let (code, out, _) = run(w.cmd().arg("sessions"));
    assert_eq!(code, 0);
    assert!(!out.contains("gone"), "{out}");
}

#[test]
fn transcripts_older_than_the_retention_setting_are_removed() {
    let w = World::new(vec![]);
    let dir = w.env.root().join("config/agentctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "[retention]\nmax_age_days = 7\n").unwrap();
    std::fs::create_dir_all(w.transcripts()).unwrap();
    let line = r#"{"role":"user","content":[{"type":"text","text":"a"}]}"#;
    for name in ["old", "recent"] {
        std::fs::write(w.transcripts().join(format!("{name}.jsonl")), line).unwrap();
    }
    let status = Command::new("touch")
        .args(["-d", "10 days ago"])
        .arg(w.transcripts().join("old.jsonl"))
        .status()
        .unwrap();
    assert!(status.success());
    let (code, out, err) = run(w.cmd().arg("sessions"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("recent") && !out.contains("old"), "{out}");
    assert!(!w.transcripts().join("old.jsonl").exists());
    assert!(w.transcripts().join("recent.jsonl").exists());
}

/// `agentctl chat ARGS` on a pseudo-terminal (util-linux `script`); None
/// when `script` is missing.
fn pty_chat(
    w: &World,
    args: &str,
) -> Option<(std::process::Child, std::process::ChildStdin, Output)> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (for a pseudo-terminal) is not installed");
        return None;
    }
    let agentctl = agentd_tests::bin("agentctl");
    let mut cmd = w.env.command("script");
    cmd.env("ANTHROPIC_BASE_URL", w.llm.url())
        .env("ANTHROPIC_API_KEY", KEY)
        .env("TERM", "xterm")
        .args(["-qfec"])
        .arg(format!("exec {} chat {args}", agentctl.display()))
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let out = Output::new(child.stdout.take().unwrap());
    Some((child, stdin, out))
}

/// Leaves a pty chat with Ctrl-D at its prompt and checks it exits 0.
fn leave_chat(
    mut child: std::process::Child,
    mut stdin: std::process::ChildStdin,
    mut out: Output,
) {
    stdin.write_all(b"\x04").unwrap();
    if !out.closes() {
        let _ = child.kill();
        panic!("chat did not leave on Ctrl-D:\n{}", out.seen);
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_prompt_cancelled_in_chat_never_reaches_the_model_also_after_continue() {
    let w = World::new(vec![
        Reply::Stall,
        Reply::Partial("Shown part. Never shown!".into()),
        Reply::text("Hi there."),
    ]);
    let Some((child, mut stdin, mut out)) = pty_chat(&w, "--session cc") else {
        return;
    };
    out.until("Session cc");
    out.until("\x1b[?2004h");
    stdin.write_all(b"slow please\r").unwrap();
    w.llm.wait_for_requests(1);
    stdin.write_all(b"\x03").unwrap();
    out.until("(cancelled: the model never saw that prompt");
    out.until("\x1b[?2004h");
    stdin.write_all(b"tell me\r").unwrap();
    out.until("Shown part.");
    stdin.write_all(b"\x03").unwrap();
    out.until("(cancelled: the answer so far is kept)");
    out.until("\x1b[?2004h");
    leave_chat(child, stdin, out);

    let Some((child, mut stdin, mut out)) = pty_chat(&w, "--continue") else {
        return;
    };
    out.until("Session cc");
    out.until("\x1b[?2004h");
    stdin.write_all(b"hello\r").unwrap();
    out.until("Hi there.");
    out.until("\x1b[?2004h");
    leave_chat(child, stdin, out);

    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(last_user_texts(&reqs[1]), vec!["tell me".to_string()]);
    assert!(!messages_text(&reqs[1]).contains("slow please"));
    assert!(!messages_text(&reqs[2]).contains("slow please"));
    let msgs = reqs[2]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"][0]["text"], "Shown part.\n\n[cancelled]");
    assert_eq!(last_user_texts(&reqs[2]), vec!["hello".to_string()]);
    // The transcript keeps the history: the prompt and its withdrawal.
    let transcript = std::fs::read_to_string(w.transcripts().join("cc.jsonl")).unwrap();
    assert!(transcript.contains("slow please"));
    assert!(
        transcript.contains(r#""record":"withdrawn""#),
        "{transcript}"
    );
}

/// Sends SIGINT to a process.
fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ask_interrupted_drops_an_unanswered_prompt_and_answers_tool_calls_that_never_ran() {
    let w = World::new(vec![
        Reply::Stall,
        Reply::Tools(
            None,
            vec![
                (
                    "bash".into(),
                    json!({"command": "echo up > started; read x < gate; echo done"}),
                ),
                ("bash".into(), json!({"command": "echo never-ran"})),
            ],
        ),
        Reply::text("Fine."),
    ]);
    let gate = w.gate("gate");
    let started = w.gate("started");
    let spawn = |prompt: &str| {
        w.cmd()
            .args(["ask", "--session", "int", prompt])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let child = spawn("forget this");
    w.llm.wait_for_requests(1);
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("the prompt is dropped"), "{err}");

    let child = spawn("run two");
    // The first bash call is running once it has written to `started`.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::fs::File::open(&started).unwrap()),
        &mut line,
    )
    .unwrap();
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, out, err) = w.ask("int", "next");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Fine.");
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 3);
    assert!(!messages_text(&reqs[1]).contains("forget this"));
    assert!(!messages_text(&reqs[2]).contains("forget this"));
    let results = tool_results(&reqs[2]);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|(_, is_error)| *is_error));
    assert!(results[0].0.contains("while this call ran"), "{results:?}");
    assert!(results[1].0.contains("did not run"), "{results:?}");
    assert!(!messages_text(&reqs[2]).contains("never-ran\n"));
    assert_eq!(last_user_texts(&reqs[2]), vec!["next".to_string()]);
    release(&gate);
}

/// `agentctl` for the Anthropic fake, or (`openai`) for the OpenAI one.
fn agent_cmd(w: &World, openai: bool) -> Command {
    let mut cmd = w.cmd();
    if openai {
        cmd.env("AGENTCTL_PROVIDER", "openai")
            .env("OPENAI_BASE_URL", w.llm.openai_url())
            .env("AGENTCTL_MODEL", "local-model");
    }
    cmd
}

/// The system prompt of a request, either API.
fn system_of(req: &Value) -> String {
    match req["system"].as_str() {
        Some(s) => s.to_string(),
        None => req["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    }
}

/// Transcript lines (messages, not records) that deliver `job_id`.
fn deliveries(w: &World, session: &str, job_id: &str) -> usize {
    std::fs::read_to_string(w.transcripts().join(format!("{session}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| {
            v["bg_jobs"]
                .as_array()
                .is_some_and(|a| a.iter().any(|j| j == job_id))
        })
        .count()
}

fn a_session_past_the_context_window_compacts_and_keeps_working(openai: bool) {
    let w = World::new(vec![
        Reply::tool(
            "background_run",
            json!({"command": "read x < gate; echo bg-finished-$x"}),
        ),
        Reply::text("Started."),
        Reply::tool("bash", json!({"command": "seq 1 5000"})),
        Reply::tool("bash", json!({"command": "seq 1 5000"})),
        Reply::text("SUMMARY-ONE: a background task was started."),
        Reply::text("Counted twice."),
        Reply::text("Next works."),
    ]);
    let gate = w.gate("gate");
    let ask = |prompt: &str| run(agent_cmd(&w, openai).args(["ask", "--session", "big", prompt]));
    let (code, _, err) = ask("start it");
    assert_eq!(code, 0, "{err}");
    let job = w.jobs("big").remove(0);
    release(&gate);
    w.wait_job(&job.id);
    let bg = format!("[bg:{}]", job.short_id);

    // Two outputs of `seq 1 5000` (24 KB each) outgrow the fake's window.
    w.llm.set_max_prompt_bytes(Some(40_000));
    let (code, out, err) = ask("count");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Counted twice.");
    assert!(err.contains("(compacted: "), "{err}");
    assert_eq!(w.llm.too_long(), 1);
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 7);
    // The result finished between the asks reached the model with "count".
    assert_eq!(messages_text(&reqs[2]).matches(&bg).count(), 1);
    // reqs[4] was refused; reqs[5] is the dedicated summary request.
    let summary = &reqs[5];
    assert!(system_of(summary).starts_with("You summarise"));
    assert!(summary.get("tools").is_none(), "{summary}");
    assert!(messages_text(summary).contains("start it"));
    // The retry carries the summary and the current turn, its large
    // results elided, and the background result once.
    let retry = messages_text(&reqs[6]);
    assert!(retry.contains("SUMMARY-ONE"), "{retry}");
    assert!(retry.contains("count"), "{retry}");
    assert!(!retry.contains("start it"), "{retry}");
    assert_eq!(retry.matches("elided by compaction").count(), 2, "{retry}");
    assert_eq!(retry.matches(&bg).count(), 1, "{retry}");
    assert!(reqs[6]["messages"].to_string().len() < 40_000);

    let (code, out, err) = ask("next");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Next works.");
    let next = messages_text(&w.llm.requests()[7]);
    assert!(next.contains("SUMMARY-ONE") && next.contains("Counted twice."));
    assert_eq!(next.matches(&bg).count(), 1);
    assert_eq!(w.pending("big"), 0);
    assert_eq!(deliveries(&w, "big", &job.id), 1, "delivered exactly once");
}

#[test]
fn anthropic_prompt_too_long_compacts_and_the_turn_completes() {
    a_session_past_the_context_window_compacts_and_keeps_working(false);
}

#[test]
fn openai_context_length_exceeded_compacts_and_the_turn_completes() {
    a_session_past_the_context_window_compacts_and_keeps_working(true);
}

fn reported_usage_triggers_compaction_before_any_error(openai: bool) {
    let w = World::new(vec![
        Reply::text("one"),
        Reply::text("SUMMARY-P"),
        Reply::text("two"),
        Reply::text("three"),
        Reply::text("SUMMARY-C"),
    ]);
    let dir = w.env.root().join("config/agentctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "context_window_tokens = 10000\n").unwrap();
    let ask = |prompt: &str| run(agent_cmd(&w, openai).args(["ask", "--session", "p", prompt]));
    // The model says the first request took 9000 tokens (its bytes say
    // far fewer): 90% of the window.
    w.llm.set_input_tokens(Some(9000));
    assert_eq!(ask("first").0, 0);
    w.llm.set_input_tokens(None);
    let (code, out, err) = ask("second");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "two");
    assert_eq!(w.llm.too_long(), 0);
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 3);
    assert!(system_of(&reqs[1]).starts_with("You summarise"));
    assert!(messages_text(&reqs[1]).contains("first"));
    let sent = messages_text(&reqs[2]);
    assert!(
        sent.contains("SUMMARY-P") && sent.contains("second"),
        "{sent}"
    );
    assert!(!sent.contains("first"), "{sent}");

    // On demand: `agentctl compact`.
    assert_eq!(ask("third").0, 0);
    let (code, out, err) = run(agent_cmd(&w, openai).args(["compact", "--session", "p"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Compacted session p: 3 messages summarised"),
        "{out}"
    );
    let (code, out, err) = run(w.cmd().args(["sessions", "show", "p"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 messages summarised"), "{out}");
    assert!(
        out.contains("tokens of 10000 (compaction at 8000)"),
        "{out}"
    );
}

#[test]
fn anthropic_reported_usage_triggers_compaction_before_any_error() {
    reported_usage_triggers_compaction_before_any_error(false);
}

#[test]
fn openai_reported_usage_triggers_compaction_before_any_error() {
    reported_usage_triggers_compaction_before_any_error(true);
}

#[test]
fn model_api_failures_say_what_happened_what_to_check_and_how_often_it_was_tried() {
    let w = World::new(vec![
        Reply::Error(401, "invalid x-api-key".into()),
        Reply::Error(404, "model: nope-model".into()),
        Reply::ErrorAfter(429, "rate limited".into(), "0".into()),
        Reply::ErrorAfter(429, "rate limited".into(), "0".into()),
        Reply::ErrorAfter(429, "rate limited".into(), "0".into()),
        Reply::ErrorAfter(429, "rate limited".into(), "0".into()),
        Reply::ErrorAfter(429, "rate limited".into(), "0".into()),
    ]);
    let (code, _, err) = w.ask("e", "one");
    assert_eq!(code, 1);
    assert!(
        err.contains("401") && err.contains("check ANTHROPIC_API_KEY"),
        "{err}"
    );
    let (code, _, err) =
        run(w
            .cmd()
            .env("AGENTCTL_MODEL", "nope-model")
            .args(["ask", "--session", "e", "two"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("\"nope-model\""),
        "{err}"
    );
    assert!(err.contains("check AGENTCTL_MODEL"), "{err}");
    let (code, _, err) = w.ask("e", "three");
    assert_eq!(code, 1);
    assert!(err.contains("429: rate limited"), "{err}");
    assert!(err.contains("tried 5 times"), "{err}");
    assert!(err.contains("retry-after: 0.0 s"), "{err}");

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, err) =
        run(w
            .cmd()
            .env("ANTHROPIC_BASE_URL", &url)
            .args(["ask", "--session", "e", "four"]));
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("connection refused at {url}/v1/messages")),
        "{err}"
    );
    assert!(err.contains("tried 5 times"), "{err}");
    assert!(err.contains("check ANTHROPIC_BASE_URL"), "{err}");
}

#[test]
fn chat_on_a_terminal_styles_each_kind_of_line_and_spins_until_the_first_token() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (for a pseudo-terminal) is not installed");
        return;
    }
    let w = World::new(vec![
        Reply::Stall,
        Reply::tool("bash", json!({"command": "echo styled"})),
        Reply::text("Done."),
    ]);
    let agentctl = agentd_tests::bin("agentctl");
    let session = |no_color: bool| {
        let mut cmd = w.env.command("script");
        cmd.env("ANTHROPIC_BASE_URL", w.llm.url())
            .env("ANTHROPIC_API_KEY", KEY)
            .env("TERM", "xterm")
            .args(["-qfec"])
            .arg(format!("exec {} chat --session styled", agentctl.display()))
            .arg("/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        cmd.spawn().unwrap()
    };
    let mut child = session(false);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Output::new(child.stdout.take().unwrap());
    out.until("Session styled");
    stdin.write_all(b"hello\r").unwrap();
    w.llm.wait_for_requests(1);
    // The model has not answered: the spinner says so (stderr, the pty).
    out.until("waiting for the model");
    stdin.write_all(b"\x03").unwrap();
    out.until("(cancelled: the model never saw that prompt");
    stdin.write_all(b"again\r").unwrap();
    out.until("\x1b[36m  → bash: echo styled\x1b[0m");
    out.until("Done.");
    out.until("\x1b[2m  tokens: ");
    out.until("\x1b[?2004h");
    stdin.write_all(b"\x04").unwrap();
    assert!(out.closes(), "chat did not leave on Ctrl-D:\n{}", out.seen);
    assert!(child.wait().unwrap().success());

    // NO_COLOR: the same shapes, no colour.
    w.llm.push(vec![
        Reply::tool("bash", json!({"command": "echo plain"})),
        Reply::text("Plain."),
    ]);
    let mut child = session(true);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Output::new(child.stdout.take().unwrap());
    out.until("Session styled");
    stdin.write_all(b"once more\r").unwrap();
    out.until("  → bash: echo plain");
    out.until("Plain.");
    out.until("  tokens: ");
    out.until("\x1b[?2004h");
    stdin.write_all(b"\x04").unwrap();
    assert!(out.closes(), "chat did not leave on Ctrl-D:\n{}", out.seen);
    assert!(child.wait().unwrap().success());
    assert!(
        !out.seen.contains("\x1b[36m") && !out.seen.contains("\x1b[2m"),
        "{:?}",
        out.seen
    );
}

#[test]
fn slash_compact_in_chat_compacts_and_the_next_line_carries_the_summary() {
    let w = World::new(vec![
        Reply::text("r1"),
        Reply::text("r2"),
        Reply::text("SUMMARY-X"),
        Reply::text("r3"),
    ]);
    assert_eq!(w.ask("cx", "one").0, 0);
    assert_eq!(w.ask("cx", "two").0, 0);
    let mut child = w
        .cmd()
        .args(["chat", "--session", "cx"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/compact\nthree\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Compacted session cx: 2 messages summarised"),
        "{stdout}"
    );
    let reqs = w.llm.requests();
    assert_eq!(reqs.len(), 4);
    assert!(system_of(&reqs[2]).starts_with("You summarise"));
    let sent = messages_text(&reqs[3]);
    assert!(sent.contains("SUMMARY-X") && sent.contains("two") && sent.contains("three"));
    assert!(!sent.contains("\"one\""), "{sent}");
}
