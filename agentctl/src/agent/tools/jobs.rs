//! `check_background` and `kill_background`: reading and ending the
//! session's jobs through agentd.

use super::shell::{output_tail, rpc_err, state_text};
use super::{Outcome, ToolContext, str_arg};
use agentd_proto::methods::{
    IdParams, JobGet, JobKill, JobList, JobWait, KillParams, ListParams, WaitParams,
};
use serde_json::Value;

/// `check_background {task_id?}`: one task's state, exit code and output
/// tail; without an id, the session's tasks newest first.
///
/// Errors: unknown or ambiguous id; agentd errors.
pub async fn check(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    if let Some(id) = input.get("task_id").and_then(Value::as_str) {
        let job = ctx
            .client
            .call::<JobGet>(&IdParams { id: id.to_string() })
            .await
            .map_err(rpc_err)?;
        let tail = output_tail(ctx, &job.id, 2000).await;
        return Ok(Outcome::ok(format!(
            "Task {}: {}\ncommand: {}\nOutput (tail):\n{}",
            job.short_id,
            state_text(&job),
            job.command,
            if tail.is_empty() { "(none)" } else { &tail }
        )));
    }
    let list = ctx
        .client
        .call::<JobList>(&ListParams {
            states: None,
            session: Some(ctx.session.clone()),
            limit: Some(50),
            group: None,
            cursor: None,
        })
        .await
        .map_err(rpc_err)?;
    if list.jobs.is_empty() {
        return Ok(Outcome::ok("No tasks in this session."));
    }
    let lines: Vec<String> = list
        .jobs
        .iter()
        .map(|j| format!("{} {}: {}", j.short_id, state_text(j), j.command))
        .collect();
    Ok(Outcome::ok(lines.join("\n")))
}

/// `kill_background {task_id}`: signals the task's process group (TERM,
/// KILL after 5 s), waits briefly for it to end and returns its state.
///
/// Errors: unknown or ambiguous id; agentd errors.
pub async fn kill(ctx: &ToolContext, input: &Value) -> Result<Outcome, Outcome> {
    let id = str_arg(input, "task_id")?;
    let job = ctx
        .client
        .call::<JobKill>(&KillParams {
            id: id.to_string(),
            signal: None,
            grace_secs: None,
        })
        .await
        .map_err(rpc_err)?;
    let job = ctx
        .client
        .call::<JobWait>(&WaitParams {
            id: job.id.clone(),
            timeout_secs: Some(7.0),
        })
        .await
        .map_err(rpc_err)?;
    Ok(Outcome {
        content: format!(
            "Task {} {}: {}",
            job.short_id,
            state_text(&job),
            job.command
        ),
        is_error: false,
        fg_job: job.state.is_finished().then(|| job.id.clone()),
    })
}
