//! `agentctl integrate claude-code|codex|gemini` on temp directories:
//! what it writes, that it keeps everything else, that a second run
//! changes nothing, that `--dry-run` writes nothing, that `--remove`
//! takes out only its own entries, and that a broken settings file is
//! left alone with an error naming it.

use agentd_tests::{TestEnv, bin, run};
use serde_json::{Value, json};
use std::path::Path;

fn integrate(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    run(env.agentctl().arg("integrate").args(args))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn claude_code_project_gets_server_and_hooks_beside_what_was_there() {
    let env = TestEnv::new();
    let project = env.workdir();
    std::fs::write(
        project.join(".mcp.json"),
        r#"{"mcpServers": {"other": {"command": "other-server"}}}"#,
    )
    .unwrap();
    std::fs::create_dir_all(project.join(".claude")).unwrap();
    std::fs::write(
        project.join(".claude/settings.json"),
        r#"{"model": "opus", "hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": "./mine.sh"}]}]}}"#,
    )
    .unwrap();
    let (code, out, err) = integrate(
        &env,
        &["claude-code", "--project", project.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("updated .mcp.json"), "{out}");
    assert!(out.contains("updated .claude/settings.json"), "{out}");
    assert!(out.contains("--allowedTools mcp__agentd"), "{out}");

    let agentctl = bin("agentctl").display().to_string();
    let servers = read_json(&project.join(".mcp.json"));
    assert_eq!(
        servers["mcpServers"]["other"],
        json!({"command": "other-server"})
    );
    assert_eq!(
        servers["mcpServers"]["agentd"],
        json!({"type": "stdio", "command": agentctl, "args": ["mcp"], "alwaysLoad": true})
    );
    let settings = read_json(&project.join(".claude/settings.json"));
    assert_eq!(settings["model"], "opus");
    assert_eq!(settings["enabledMcpjsonServers"], json!(["agentd"]));
    let ours = json!({"type": "command", "command": format!("{agentctl} hook claude-code"), "timeout": 10});
    let prompt = settings["hooks"]["UserPromptSubmit"].as_array().unwrap();
    assert_eq!(prompt.len(), 2);
    assert_eq!(prompt[0]["hooks"][0]["command"], "./mine.sh");
    assert_eq!(prompt[1]["hooks"][0], ours);
    assert_eq!(settings["hooks"]["SessionStart"][0]["hooks"][0], ours);
    assert_eq!(settings["hooks"]["PostToolUse"][0]["matcher"], "*");

    // Idempotent: the second run changes no byte.
    let before = (
        std::fs::read(project.join(".mcp.json")).unwrap(),
        std::fs::read(project.join(".claude/settings.json")).unwrap(),
    );
    let (code, out, _) = integrate(
        &env,
        &["claude-code", "--project", project.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "unchanged .mcp.json\nunchanged .claude/settings.json\n"
    );
    assert_eq!(before.0, std::fs::read(project.join(".mcp.json")).unwrap());
    assert_eq!(
        before.1,
        std::fs::read(project.join(".claude/settings.json")).unwrap()
    );

    // --remove: only ours goes.
    let (code, _, err) = integrate(
        &env,
        &[
            "claude-code",
            "--project",
            project.to_str().unwrap(),
            "--remove",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        read_json(&project.join(".mcp.json")),
        json!({"mcpServers": {"other": {"command": "other-server"}}})
    );
    assert_eq!(
        read_json(&project.join(".claude/settings.json")),
        json!({"model": "opus", "hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": "./mine.sh"}]}]}})
    );
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let env = TestEnv::new();
    let project = env.workdir();
    let (code, out, err) =
        run(env
            .agentctl()
            .current_dir(&project)
            .args(["integrate", "gemini", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("would create .gemini/settings.json:\n"),
        "{out}"
    );
    assert!(out.contains("+   \"mcpServers\": {"), "{out}");
    assert!(out.contains("hook gemini"), "{out}");
    assert!(!project.join(".gemini").exists());
}

#[test]
fn gemini_project_settings_get_server_hooks_and_hooks_enabled() {
    let env = TestEnv::new();
    let project = env.workdir();
    std::fs::create_dir_all(project.join(".gemini")).unwrap();
    std::fs::write(
        project.join(".gemini/settings.json"),
        r#"{"theme": "Dracula"}"#,
    )
    .unwrap();
    let (code, _, err) = integrate(&env, &["gemini", "--project", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let s = read_json(&project.join(".gemini/settings.json"));
    assert_eq!(s["theme"], "Dracula");
    assert_eq!(s["mcpServers"]["agentd"]["args"], json!(["mcp"]));
    assert_eq!(s["hooksConfig"]["enabled"], true);
    for event in ["SessionStart", "BeforeAgent", "AfterTool"] {
        let cmd = s["hooks"][event][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert!(cmd.ends_with("agentctl hook gemini"), "{event}: {cmd}");
    }
}

#[test]
fn codex_user_config_keeps_comments_and_other_servers() {
    let env = TestEnv::new();
    let home = env.root().join("home");
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    let original = "# my settings\nmodel = \"gpt-5.1\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # keep me\n";
    std::fs::write(home.join(".codex/config.toml"), original).unwrap();
    let (code, out, err) = integrate(&env, &["codex", "--user"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("updated .codex/config.toml"), "{out}");
    assert!(out.contains("created .codex/hooks.json"), "{out}");
    let config = std::fs::read_to_string(home.join(".codex/config.toml")).unwrap();
    assert!(config.starts_with(original), "{config}");
    let agentctl = bin("agentctl").display().to_string();
    assert!(
        config.contains(&format!(
            "[mcp_servers.agentd]\ncommand = \"{agentctl}\"\nargs = [\"mcp\"]\n"
        )),
        "{config}"
    );
    assert!(
        config.contains("[features]\ncodex_hooks = true\n"),
        "{config}"
    );
    let hooks = read_json(&home.join(".codex/hooks.json"));
    for event in ["SessionStart", "UserPromptSubmit"] {
        assert_eq!(
            hooks["hooks"][event][0]["hooks"][0]["command"],
            format!("{agentctl} hook codex")
        );
    }
    assert_eq!(
        integrate(&env, &["codex", "--user"]).1,
        "unchanged .codex/config.toml\nunchanged .codex/hooks.json\n"
    );
    let (code, _, _) = integrate(&env, &["codex", "--user", "--remove"]);
    assert_eq!(code, 0);
    let config = std::fs::read_to_string(home.join(".codex/config.toml")).unwrap();
    assert!(config.starts_with(original), "{config}");
    assert!(!config.contains("agentd"), "{config}");
}

#[test]
fn a_broken_settings_file_is_named_and_left_alone() {
    let env = TestEnv::new();
    let project = env.workdir();
    std::fs::write(project.join(".mcp.json"), "{ not json").unwrap();
    let (code, out, err) = integrate(
        &env,
        &["claude-code", "--project", project.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.contains(".mcp.json is not valid JSON"), "{err}");
    assert!(err.contains("fix or move it"), "{err}");
    assert_eq!(
        std::fs::read_to_string(project.join(".mcp.json")).unwrap(),
        "{ not json"
    );
    // Nothing else was written either.
    assert!(!project.join(".claude").exists());
    let (code, _, err) = integrate(&env, &["codex", "--project", "/no/such/dir"]);
    assert_eq!(code, 1);
    assert!(err.contains("no project directory /no/such/dir"), "{err}");
}
