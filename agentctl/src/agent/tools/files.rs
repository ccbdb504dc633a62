//! `read_file`, `write_file`, `edit_file`: plain file access confined to
//! the workspace ([`super::workspace`]).

use super::cap::{MAX_CHARS, cap};
use super::workspace::resolve;
use super::{Outcome, ToolContext, str_arg};
use serde_json::Value;

fn path_arg(ctx: &ToolContext, input: &Value) -> Result<(String, std::path::PathBuf), Outcome> {
    let path = str_arg(input, "path")?;
    let resolved = resolve(&ctx.workdir, path).map_err(Outcome::err)?;
    Ok((path.to_string(), resolved))
}

/// `read_file {path, limit?}`: the file's text, or its first `limit` lines
/// and a note of how many more there are.
///
/// Errors: outside the workspace; unreadable; not UTF-8.
pub fn read(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    let (shown, path) = path_arg(ctx, input)?;
    let bytes =
        std::fs::read(&path).map_err(|e| Outcome::err(format!("cannot read {shown}: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Outcome::err(format!("{shown} is not UTF-8 text")))?;
    let limit = input.get("limit").and_then(Value::as_u64);
    let out = match limit {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let n = n as usize;
            if lines.len() > n {
                format!(
                    "{}\n... ({} more lines)",
                    lines[..n].join("\n"),
                    lines.len() - n
                )
            } else {
                text
            }
        }
        None => text,
    };
    Ok(Outcome::ok(cap(&out, MAX_CHARS)))
}

/// `write_file {path, content}`: creates parent directories, replaces the
/// file.
///
/// Errors: outside the workspace; cannot create or write.
pub fn write(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    let (shown, path) = path_arg(ctx, input)?;
    let content = str_arg(input, "content")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Outcome::err(format!("cannot create the directory of {shown}: {e}")))?;
    }
    std::fs::write(&path, content)
        .map_err(|e| Outcome::err(format!("cannot write {shown}: {e}")))?;
    Ok(Outcome::ok(format!(
        "Wrote {} bytes to {shown}",
        content.len()
    )))
}

/// `edit_file {path, old_text, new_text}`: replaces the one occurrence of
/// `old_text`.
///
/// Errors: outside the workspace; unreadable; `old_text` empty, absent, or
/// present more than once.
pub fn edit(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    let (shown, path) = path_arg(ctx, input)?;
    let old = str_arg(input, "old_text")?;
    let new = str_arg(input, "new_text")?;
    if old.is_empty() {
        return Err(Outcome::err("old_text is empty"));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Outcome::err(format!("cannot read {shown}: {e}")))?;
    match text.matches(old).count() {
        0 => Err(Outcome::err(format!("old_text not found in {shown}"))),
        1 => {
            std::fs::write(&path, text.replacen(old, new, 1))
                .map_err(|e| Outcome::err(format!("cannot write {shown}: {e}")))?;
            Ok(Outcome::ok(format!("Edited {shown}")))
        }
        n => Err(Outcome::err(format!(
            "old_text occurs {n} times in {shown}; include more context so it occurs once"
        ))),
    }
}
