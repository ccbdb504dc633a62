//! `bash` and `background_run`: both submit an agentd job of the session
//! (cwd = workspace, env = ours without API keys). `bash` waits for it up
//! to its timeout and, if it is still running then, leaves it running as a
//! background task; `background_run` returns at once.

use super::cap::{MAX_CHARS, cap};
use super::{Outcome, ToolContext, str_arg};
use agentd_proto::methods::{
    JobOutput, JobSubmit, JobWait, OutputParams, SubmitParams, WaitParams,
};
use agentd_proto::{ClientError, Job};
use serde_json::Value;

/// `bash`'s default wait, in seconds.
pub const DEFAULT_TIMEOUT: f64 = 120.0;
/// `bash`'s longest wait, in seconds.
pub const MAX_TIMEOUT: f64 = 600.0;
/// Bytes of output kept in a background task's notification.
pub const TAIL_BYTES: u64 = 2000;

/// The reference lesson's blocklist: refused commands. Not a sandbox.
///
/// Errors: the command contains `rm -rf /` (the root itself), `sudo`,
/// `shutdown`, `reboot` (as words), or redirects into `/dev/` (other than
/// `/dev/null`, `/dev/stdout`, `/dev/stderr`).
pub fn check_blocklist(command: &str) -> Result<(), Outcome> {
    let words: Vec<&str> = command
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .collect();
    let word = |w: &str| words.contains(&w);
    let refused = |what: &str| {
        Err(Outcome::err(format!(
            "command refused: it contains {what}, which is on agentctl's blocklist"
        )))
    };
    for bad in ["sudo", "shutdown", "reboot"] {
        if word(bad) {
            return refused(&format!("`{bad}`"));
        }
    }
    let squeezed: String = command.split_whitespace().collect::<Vec<_>>().join(" ");
    for (i, _) in squeezed.match_indices("rm -rf /") {
        let after = squeezed[i + "rm -rf /".len()..].chars().next();
        if matches!(after, None | Some(' ' | '*' | ';' | '&' | '|')) {
            return refused("`rm -rf /`");
        }
    }
    for (i, _) in squeezed.match_indices("> /dev/") {
        let rest = &squeezed[i + "> /dev/".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !matches!(name.as_str(), "null" | "stdout" | "stderr") {
            return refused("`> /dev/`");
        }
    }
    Ok(())
}

/// An agentd error as a tool error.
pub fn rpc_err(e: ClientError) -> Outcome {
    Outcome::err(format!("agentd: {e}"))
}

/// `succeeded (exit 0)`, `killed (signal SIGTERM)`, `running`.
pub fn state_text(job: &Job) -> String {
    match (job.exit_code, &job.signal) {
        (Some(code), _) => format!("{} (exit {code})", job.state),
        (None, Some(sig)) => format!("{} (signal {sig})", job.state),
        (None, None) => job.state.to_string(),
    }
}

async fn submit(
    ctx: &ToolContext,
    command: &str,
    timeout_secs: Option<f64>,
    label: &str,
) -> Result<Job, Outcome> {
    check_blocklist(command)?;
    ctx.client
        .call::<JobSubmit>(&SubmitParams {
            command: command.to_string(),
            cwd: Some(ctx.workdir.to_string_lossy().into_owned()),
            env: Some(ctx.env.clone()),
            timeout_secs,
            session: Some(ctx.session.clone()),
            label: Some(label.to_string()),
            tail_bytes: Some(TAIL_BYTES),
        })
        .await
        .map_err(rpc_err)
}

/// The last `bytes` of a job's output (empty on error).
pub async fn output_tail(ctx: &ToolContext, id: &str, bytes: u64) -> String {
    ctx.client
        .call::<JobOutput>(&OutputParams {
            id: id.to_string(),
            offset: None,
            limit: None,
            tail: Some(bytes),
            wait_ms: None,
        })
        .await
        .map(|o| o.data)
        .unwrap_or_default()
}

/// A finished job's output, head and tail kept within [`MAX_CHARS`].
async fn full_output(ctx: &ToolContext, id: &str) -> Result<String, Outcome> {
    let window = (MAX_CHARS * 4) as u64;
    let head = ctx
        .client
        .call::<JobOutput>(&OutputParams {
            id: id.to_string(),
            offset: Some(0),
            limit: Some(window),
            tail: None,
            wait_ms: None,
        })
        .await
        .map_err(rpc_err)?;
    if head.total_bytes <= head.next_offset {
        return Ok(cap(&head.data, MAX_CHARS));
    }
    let tail = output_tail(ctx, id, window / 2).await;
    let omitted = head
        .total_bytes
        .saturating_sub(head.next_offset + tail.len() as u64);
    Ok(cap(
        &format!("{}\n[... {omitted} bytes omitted ...]\n{tail}", head.data),
        MAX_CHARS,
    ))
}

/// `bash {command, timeout?}`.
///
/// Errors: blocked command, agentd errors.
pub async fn bash(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    let command = str_arg(input, "command")?;
    let timeout = input
        .get("timeout")
        .and_then(Value::as_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
        .clamp(0.0, MAX_TIMEOUT);
    let job = submit(ctx, command, None, "agent:bash").await?;
    let job = ctx
        .client
        .call::<JobWait>(&WaitParams {
            id: job.id.clone(),
            timeout_secs: Some(timeout),
        })
        .await
        .map_err(rpc_err)?;
    if !job.state.is_finished() {
        let tail = output_tail(ctx, &job.id, 2000).await;
        return Ok(Outcome::ok(format!(
            "Still running after {timeout} s, so it was not killed: it continues as background \
             task {short} and its result will arrive in <background-results> like any other \
             (check_background / kill_background {short}).\nOutput so far (tail):\n{tail}",
            short = job.short_id
        )));
    }
    let output = full_output(ctx, &job.id).await?;
    let mut content = if output.is_empty() {
        "(no output)".to_string()
    } else {
        output
    };
    if !content.ends_with('\n') {
        content.push('\n');
    }
    content.push_str(&format!("[{}]", state_text(&job)));
    Ok(Outcome {
        content,
        is_error: false,
        fg_job: Some(job.id),
    })
}

/// `background_run {command, timeout?}`: `Background task <short_id>
/// started: <command>`.
///
/// Errors: blocked command, agentd errors.
pub async fn background_run(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    let command = str_arg(input, "command")?;
    let timeout = input
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|t| *t > 0.0);
    let job = submit(ctx, command, timeout, "agent:background").await?;
    Ok(Outcome::ok(format!(
        "Background task {} started: {}",
        job.short_id, job.command
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocklist_refuses_the_lessons_commands() {
        for bad in [
            "sudo ls",
            "ls && sudo rm x",
            "shutdown -h now",
            "reboot",
            "rm -rf /",
            "rm  -rf  / ",
            "rm -rf /*",
            "echo x > /dev/sda",
        ] {
            assert!(check_blocklist(bad).is_err(), "{bad} passed");
        }
        for ok in [
            "ls",
            "rm -rf /tmp/build",
            "rm -rf ./target",
            "echo pseudo",
            "cargo build > /dev/null",
            "make 2> /dev/null",
        ] {
            assert!(check_blocklist(ok).is_ok(), "{ok} refused");
        }
    }
}
