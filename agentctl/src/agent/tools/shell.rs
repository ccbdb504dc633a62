//! `bash` and `background_run`: both submit an agentd job of the session
//! (cwd = workspace, env = ours without API keys), after the
//! [`super::blocklist`] check. `bash` waits for it up
//! to its timeout and, if it is still running then, leaves it running as a
//! background task; `background_run` returns at once.

use super::cap::{self, MAX_CHARS};
use super::{Outcome, ToolContext, str_arg};
use agentd_proto::methods::{
    JobOutput, JobSubmit, JobWait, OutputParams, SubmitParams, WaitParams,
};
use agentd_proto::{ClientError, Job, JobState};
use serde_json::Value;

/// Characters of output in a `bash` result: [`MAX_CHARS`] less room for
/// the state line that follows it (`[failed (exit 1)]`).
pub const OUTPUT_CHARS: usize = MAX_CHARS - 64;
/// `bash`'s default wait, in seconds.
pub const DEFAULT_TIMEOUT: f64 = 120.0;
/// `bash`'s longest wait, in seconds.
pub const MAX_TIMEOUT: f64 = 600.0;
/// Bytes of output kept in a background task's notification.
pub const TAIL_BYTES: u64 = 2000;

/// An agentd error as a tool error.
pub fn rpc_err(e: ClientError) -> Outcome {
    Outcome::err(format!("agentd: {e}"))
}

/// `succeeded (exit 0)`, `killed (signal SIGTERM)`, `running`.
pub fn state_text(job: &Job) -> String {
    let short = |id: &String| id.get(..8).unwrap_or(id).to_string();
    match (job.state, job.exit_code, &job.signal) {
        (JobState::Paused, _, _) if job.started_at.is_some() => {
            "paused (its processes are stopped until it is resumed)".to_string()
        }
        (JobState::Paused, _, _) => "paused before it started (held until it is resumed)".into(),
        (JobState::Queued, _, _) if !job.after.is_empty() => format!(
            "queued, to run once {} succeeded",
            job.after.iter().map(short).collect::<Vec<_>>().join(", ")
        ),
        (_, Some(code), _) => format!("{} (exit {code})", job.state),
        (_, None, Some(sig)) => format!("{} (signal {sig})", job.state),
        (_, None, None) => match &job.reason {
            Some(reason) if job.state.is_finished() => format!("{} ({reason})", job.state),
            _ => job.state.to_string(),
        },
    }
}

/// Where a job runs: `bash` always here; `background_run` where the
/// config's `[background]` says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Here,
    Background,
}

async fn submit(
    ctx: &ToolContext,
    command: &str,
    timeout_secs: Option<f64>,
    label: &str,
    place: Place,
) -> Result<Job, Outcome> {
    super::blocklist::check(command).map_err(Outcome::err)?;
    // A Slurm job runs on a node under the cluster's limits: agentd's
    // sandbox is the local shim's and is not sent (docs/slurm.md).
    let slurm =
        place == Place::Background && ctx.background.executor == agentd_proto::Executor::Slurm;
    ctx.client
        .call::<JobSubmit>(&SubmitParams {
            command: command.to_string(),
            cwd: Some(ctx.workdir.to_string_lossy().into_owned()),
            env: Some(ctx.env.clone()),
            timeout_secs,
            session: Some(ctx.session.clone()),
            label: Some(label.to_string()),
            tail_bytes: Some(TAIL_BYTES),
            sandbox: Some(ctx.sandbox.clone()).filter(|s| s.restricts() && !slurm),
            limits: None,
            executor: slurm.then_some(agentd_proto::Executor::Slurm),
            slurm: if slurm {
                ctx.background.slurm.clone()
            } else {
                None
            },
            after: None,
            group: None,
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

/// A finished job's output for the model: whole when it fits in
/// [`OUTPUT_CHARS`], else its head and tail around one marker
/// ([`cap::windows`]).
async fn full_output(ctx: &ToolContext, id: &str) -> Result<String, Outcome> {
    let head = ctx
        .client
        .call::<JobOutput>(&OutputParams {
            id: id.to_string(),
            offset: Some(0),
            limit: Some(cap::WINDOW_BYTES),
            tail: None,
            wait_ms: None,
        })
        .await
        .map_err(rpc_err)?;
    if head.total_bytes <= head.next_offset {
        return Ok(cap::cap(&head.data, OUTPUT_CHARS));
    }
    let tail = ctx
        .client
        .call::<JobOutput>(&OutputParams {
            id: id.to_string(),
            offset: None,
            limit: None,
            tail: Some(cap::WINDOW_BYTES),
            wait_ms: None,
        })
        .await
        .map_err(rpc_err)?;
    Ok(cap::windows(
        &head.data,
        &tail.data,
        head.total_bytes,
        OUTPUT_CHARS,
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
    let job = submit(ctx, command, None, "agent:bash", Place::Here).await?;
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
    if let Some(note) = sandbox_note(ctx, &job, &content) {
        content.push('\n');
        content.push_str(&note);
    }
    Ok(Outcome {
        content,
        is_error: false,
        fg_job: Some(job.id),
    })
}

/// What the model should know when a sandboxed command failed: the job's
/// `reason` when it was not started (a sandbox this kernel cannot
/// enforce), or, when its output says a write or connection was refused,
/// what the sandbox allows and that the user decides about more.
pub fn sandbox_note(ctx: &ToolContext, job: &Job, output: &str) -> Option<String> {
    let sandbox = job.sandbox.as_ref().filter(|s| s.restricts())?;
    if job.state == agentd_proto::JobState::Succeeded {
        return None;
    }
    if job.pid.is_none()
        && let Some(reason) = &job.reason
    {
        return Some(format!("[sandbox: {reason}]"));
    }
    let refused = [
        "Permission denied",
        "Operation not permitted",
        "Read-only file system",
    ]
    .iter()
    .any(|w| output.contains(w));
    if !refused {
        return None;
    }
    let mut allowed = match sandbox.mode {
        agentd_proto::SandboxMode::WorkspaceWrite => {
            let mut places = vec![ctx.workdir.display().to_string()];
            places.extend(sandbox.writable.iter().cloned());
            places.push("$TMPDIR".into());
            format!("writes only to {}", places.join(", "))
        }
        agentd_proto::SandboxMode::ReadOnly => "writes only to $TMPDIR".to_string(),
        agentd_proto::SandboxMode::None => "writes anywhere".to_string(),
    };
    if !sandbox.network_allowed() {
        allowed.push_str(", and no network");
    }
    Some(format!(
        "[sandbox: this command ran in the {} sandbox, which allows {allowed}; \
         \"Permission denied\" above is most likely the sandbox refusing. Do not work around it: \
         ask the user to allow the path (agentctl config [sandbox] writable) or to run \
         agentctl with --sandbox none]",
        sandbox.mode
    ))
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
    let job = submit(ctx, command, timeout, "agent:background", Place::Background).await?;
    Ok(Outcome::ok(format!(
        "Background task {} started: {}",
        job.short_id, job.command
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: JobState) -> Job {
        serde_json::from_value(serde_json::json!({
            "id": "0f6c2f4e-5b1d-4c3e-9a70-3d2b1f0e8a11", "short_id": "0f6c2f4e",
            "command": "make test", "cwd": "/", "state": state,
            "exit_code": null, "signal": null, "pid": null, "session": "agent",
            "label": null, "created_at": "", "started_at": null, "finished_at": null,
            "duration_ms": null, "timeout_secs": null, "output_bytes": 0
        }))
        .unwrap()
    }

    #[test]
    fn check_background_says_paused_and_dependency_waits_in_words() {
        let mut j = job(JobState::Paused);
        assert_eq!(
            state_text(&j),
            "paused before it started (held until it is resumed)"
        );
        j.started_at = Some("2026-12-02T00:00:00Z".into());
        assert_eq!(
            state_text(&j),
            "paused (its processes are stopped until it is resumed)"
        );
        let mut j = job(JobState::Queued);
        j.after = vec!["aaaabbbb-0000".into(), "ccccdddd-1111".into()];
        assert_eq!(
            state_text(&j),
            "queued, to run once aaaabbbb, ccccdddd succeeded"
        );
        let mut j = job(JobState::Failed);
        j.reason = Some("dependency aaaabbbb failed".into());
        assert_eq!(state_text(&j), "failed (dependency aaaabbbb failed)");
    }
}
