//! Edits of JSON settings files that touch only agentd's own entries: the
//! `agentd` MCP server and hook commands running `agentctl hook`. Other
//! servers, hooks and keys stay as they are (keys come out in alphabetical
//! order: serde_json's map is sorted).

use serde_json::{Map, Value, json};

/// Parses a settings file's text; an empty or missing file is `{}`.
///
/// Errors: the text is not a JSON object (the file is then left alone).
pub fn parse(text: Option<&str>) -> Result<Map<String, Value>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(Map::new()),
        Some(t) => match serde_json::from_str(t) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("is not a JSON object".into()),
            Err(e) => Err(format!("is not valid JSON ({e})")),
        },
    }
}

/// The text written back: pretty JSON and a final newline.
pub fn render(map: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(map).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// The object under `key`, created when absent.
///
/// Errors: `key` holds something other than an object.
fn object<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let entry = map.entry(key).or_insert_with(|| json!({}));
    entry
        .as_object_mut()
        .ok_or_else(|| format!("`{key}` is not an object"))
}

/// Sets `<servers_key>.agentd` to `entry`.
///
/// Errors: `servers_key` is not an object.
pub fn set_server(
    map: &mut Map<String, Value>,
    servers_key: &str,
    entry: Value,
) -> Result<(), String> {
    object(map, servers_key)?.insert("agentd".into(), entry);
    Ok(())
}

/// Removes `<servers_key>.agentd` (and the key when nothing is left).
pub fn remove_server(map: &mut Map<String, Value>, servers_key: &str) {
    if let Some(servers) = map.get_mut(servers_key).and_then(Value::as_object_mut) {
        servers.remove("agentd");
        if servers.is_empty() {
            map.remove(servers_key);
        }
    }
}

/// True when hook command `command` is one of ours (runs `agentctl hook`).
pub fn is_our_command(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else {
        return false;
    };
    let program = program.trim_matches(['"', '\'']);
    (program == "agentctl" || program.ends_with("/agentctl")) && words.next() == Some("hook")
}

/// Makes `hooks.<event>` run `hook` (a hook object with a `command`)
/// exactly once: an existing hook of ours is replaced in place, else a new
/// group (with `matcher` when given) is appended.
///
/// Errors: `hooks` or `hooks.<event>` has an unexpected shape.
pub fn set_hook(
    map: &mut Map<String, Value>,
    event: &str,
    matcher: Option<&str>,
    hook: Value,
) -> Result<(), String> {
    let hooks = object(map, "hooks")?;
    let groups = hooks
        .entry(event)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| format!("`hooks.{event}` is not a list"))?;
    let mut placed = false;
    for group in groups.iter_mut() {
        let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
            continue;
        };
        list.retain_mut(|h| {
            if !is_ours(h) {
                return true;
            }
            if placed {
                return false;
            }
            *h = hook.clone();
            placed = true;
            true
        });
    }
    groups.retain(|g| {
        g.get("hooks")
            .and_then(Value::as_array)
            .is_none_or(|l| !l.is_empty())
    });
    if !placed {
        let mut group = Map::new();
        if let Some(m) = matcher {
            group.insert("matcher".into(), m.into());
        }
        group.insert("hooks".into(), json!([hook]));
        groups.push(Value::Object(group));
    }
    Ok(())
}

/// Removes every hook of ours from every event, and groups, events and the
/// `hooks` key left empty by that.
pub fn remove_hooks(map: &mut Map<String, Value>) {
    let Some(hooks) = map.get_mut("hooks").and_then(Value::as_object_mut) else {
        return;
    };
    for groups in hooks.values_mut() {
        let Some(groups) = groups.as_array_mut() else {
            continue;
        };
        for group in groups.iter_mut() {
            if let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) {
                list.retain(|h| !is_ours(h));
            }
        }
        groups.retain(|g| {
            g.get("hooks")
                .and_then(Value::as_array)
                .is_none_or(|l| !l.is_empty())
        });
    }
    hooks.retain(|_, groups| groups.as_array().is_none_or(|g| !g.is_empty()));
    if hooks.is_empty() {
        map.remove("hooks");
    }
}

/// Adds `value` to the list under `key` unless it is there.
///
/// Errors: `key` holds something other than a list.
pub fn add_to_list(map: &mut Map<String, Value>, key: &str, value: &str) -> Result<(), String> {
    let list = map
        .entry(key)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| format!("`{key}` is not a list"))?;
    if !list.iter().any(|v| v == value) {
        list.push(value.into());
    }
    Ok(())
}

/// Removes `value` from the list under `key` (and the key when empty).
pub fn remove_from_list(map: &mut Map<String, Value>, key: &str, value: &str) {
    if let Some(list) = map.get_mut(key).and_then(Value::as_array_mut) {
        list.retain(|v| v != value);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

fn is_ours(hook: &Value) -> bool {
    hook.get("command")
        .and_then(Value::as_str)
        .is_some_and(is_our_command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(cmd: &str) -> Value {
        json!({"type": "command", "command": cmd})
    }

    #[test]
    fn our_hook_is_added_once_beside_others() {
        let mut map = parse(Some(
            r#"{"model":"x","hooks":{"UserPromptSubmit":[{"hooks":[{"type":"command","command":"./mine.sh"}]}]}}"#,
        ))
        .unwrap();
        for _ in 0..2 {
            set_hook(
                &mut map,
                "UserPromptSubmit",
                None,
                hook("agentctl hook claude-code"),
            )
            .unwrap();
        }
        let groups = map["hooks"]["UserPromptSubmit"].as_array().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0]["hooks"][0]["command"], "./mine.sh");
        assert_eq!(
            groups[1]["hooks"][0]["command"],
            "agentctl hook claude-code"
        );
        // A moved binary: the command is updated in place.
        set_hook(
            &mut map,
            "UserPromptSubmit",
            None,
            hook("/opt/bin/agentctl hook claude-code"),
        )
        .unwrap();
        let groups = map["hooks"]["UserPromptSubmit"].as_array().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[1]["hooks"][0]["command"],
            "/opt/bin/agentctl hook claude-code"
        );
        remove_hooks(&mut map);
        assert_eq!(
            render(&map),
            "{\n  \"hooks\": {\n    \"UserPromptSubmit\": [\n      {\n        \"hooks\": [\n          {\n            \"command\": \"./mine.sh\",\n            \"type\": \"command\"\n          }\n        ]\n      }\n    ]\n  },\n  \"model\": \"x\"\n}\n"
        );
    }

    #[test]
    fn only_agentctl_hook_commands_are_ours() {
        assert!(is_our_command("agentctl hook codex"));
        assert!(is_our_command("/usr/local/bin/agentctl hook gemini"));
        assert!(!is_our_command("agentctl mcp"));
        assert!(!is_our_command("my-agentctl-wrapper hook codex"));
        assert!(!is_our_command(""));
    }

    #[test]
    fn a_file_that_is_not_an_object_is_refused() {
        assert!(parse(Some("[1]")).is_err());
        assert!(parse(Some("{")).is_err());
        assert!(parse(None).unwrap().is_empty());
    }
}
