//! The OpenAI provider out of the box, against the scripted chat-completions
//! server: the model each provider asks for when none is named (a local
//! server is asked which one it serves), the output-budget field each kind
//! of server takes, and tool names split across stream fragments.
//!
//! api.openai.com itself is never reached: a test that needs its base URL
//! sets `HTTP_PROXY` to the fake server, so the request for
//! `http://api.openai.com/v1/chat/completions` arrives there.

use agentd_tests::agent_world::World;
use agentd_tests::fake_llm::Reply;
use agentd_tests::run;
use serde_json::json;
use std::process::Command;

/// What these tests add to the agent world: the OpenAI provider.
trait OpenAi {
    /// `agentctl` with the OpenAI provider and the fake server as its base
    /// URL; no model named.
    fn openai(&self) -> Command;
    /// Writes agentctl's config file.
    fn write_config(&self, text: &str);
}

impl OpenAi for World {
    fn openai(&self) -> Command {
        let mut cmd = self.env.agentctl();
        cmd.env("AGENTCTL_PROVIDER", "openai")
            .env("OPENAI_BASE_URL", self.llm.openai_url())
            .env("OPENAI_API_KEY", "sk-test-openai");
        cmd
    }

    fn write_config(&self, text: &str) {
        let dir = self.env.root().join("config/agentctl");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), text).unwrap();
    }
}

#[test]
fn a_local_server_is_asked_for_its_model_when_none_is_named() {
    let w = World::new(vec![Reply::text("Hi.")]);
    w.llm.set_models(&["qwen2.5-coder"]);
    let (code, out, err) = run(w.openai().args(["ask", "--session", "oa", "hello"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Hi.");
    assert_eq!(w.llm.model_lists(), 1);
    let reqs = w.llm.requests();
    assert_eq!(reqs[0]["model"], "qwen2.5-coder");
    // A local server gets `max_tokens`, not OpenAI's newer field.
    assert_eq!(reqs[0]["max_tokens"], 8192);
    assert!(
        reqs[0].get("max_completion_tokens").is_none(),
        "{}",
        reqs[0]
    );
}

#[test]
fn a_server_with_several_models_is_named_with_them_and_nothing_is_sent() {
    let w = World::new(vec![Reply::text("never")]);
    w.llm.set_models(&["llama3", "qwen2.5-coder"]);
    let (code, _, err) = run(w.openai().args(["ask", "--session", "oa", "hello"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("serves 2 models (llama3, qwen2.5-coder)") && err.contains("AGENTCTL_MODEL="),
        "{err}"
    );
    assert!(w.llm.requests().is_empty(), "no model call without a model");
    assert_eq!(w.llm.remaining(), 1);
}

#[test]
fn a_named_model_is_used_without_asking_the_server() {
    let w = World::new(vec![Reply::text("Hi.")]);
    let (code, _, err) =
        run(w
            .openai()
            .env("AGENTCTL_MODEL", "my-model")
            .args(["ask", "--session", "oa", "hello"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(w.llm.model_lists(), 0);
    assert_eq!(w.llm.requests()[0]["model"], "my-model");
}

#[test]
fn api_openai_com_gets_a_current_openai_model_and_max_completion_tokens() {
    let w = World::new(vec![Reply::text("Hi from OpenAI.")]);
    let (code, out, err) = run(w
        .openai()
        .env("OPENAI_BASE_URL", "http://api.openai.com/v1")
        .env("HTTP_PROXY", w.llm.url())
        .args(["ask", "--session", "oa", "hello"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Hi from OpenAI.");
    assert_eq!(w.llm.model_lists(), 0, "OpenAI's own API is not asked");
    let reqs = w.llm.requests();
    assert_eq!(reqs[0]["model"], "gpt-5.1");
    assert_eq!(reqs[0]["max_completion_tokens"], 8192);
    assert!(reqs[0].get("max_tokens").is_none(), "{}", reqs[0]);
    let auth = w.llm.headers()[0]
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-openai"));
}

#[test]
fn the_anthropic_provider_keeps_its_own_default_model() {
    let w = World::new(vec![Reply::text("Hi.")]);
    let mut cmd = w.env.agentctl();
    cmd.env("ANTHROPIC_BASE_URL", w.llm.url())
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .args(["ask", "--session", "an", "hello"]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let reqs = w.llm.requests();
    assert_eq!(reqs[0]["model"], "claude-sonnet-4-5");
    assert_eq!(reqs[0]["max_tokens"], 8192);
}

#[test]
fn a_server_refusing_max_tokens_is_explained_and_the_config_key_fixes_it() {
    let w = World::new(vec![Reply::text("Now it works.")]);
    w.llm.set_reject_max_tokens(true);
    let (code, _, err) = run(w.openai().args(["ask", "--session", "oa", "hello"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Unsupported parameter: 'max_tokens'")
            && err.contains("max_tokens_param = \"max_completion_tokens\""),
        "{err}"
    );
    w.write_config("max_tokens_param = \"max_completion_tokens\"\n");
    let (code, out, err) = run(w.openai().args(["ask", "--session", "oa2", "hello"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Now it works.");
    let last = w.llm.requests().pop().unwrap();
    assert_eq!(last["max_completion_tokens"], 8192);
}

#[test]
fn a_tool_name_split_across_stream_fragments_calls_that_tool() {
    let w = World::new(vec![
        Reply::tool("bash", json!({"command": "echo split-ok"})),
        Reply::text("Done."),
    ]);
    w.llm.set_split_tool_names(true);
    let (code, out, err) = run(w.openai().args(["ask", "--session", "oa", "go"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Done.");
    let reqs = w.llm.requests();
    let msgs = reqs[1]["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["name"], "bash");
    let result = msgs[3]["content"].as_str().unwrap();
    assert!(result.contains("split-ok"), "{result}");
}
