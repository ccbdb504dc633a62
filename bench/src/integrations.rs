//! What the other agents' integration costs (docs/integrations.md): the
//! hook that runs on every prompt of Claude Code, Codex or Gemini CLI, and
//! a `run` through the MCP server against the `job.submit` it wraps.

use crate::agentd_side::Agentd;
use crate::report::{Row, ms};
use crate::stats::median;
use agentd_proto::Client;
use agentd_proto::methods::{JobSubmit, SubmitParams};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Target: the hook answers in less than this with nothing pending (issue
/// 13): it runs before every prompt.
pub const HOOK_TARGET: Duration = Duration::from_millis(20);
/// Target: a `run` through the MCP server costs less than this beyond the
/// `job.submit` itself (issue 13).
pub const MCP_TARGET: Duration = Duration::from_millis(10);

/// `agentctl hook claude-code` with a `UserPromptSubmit` event and nothing
/// pending, fresh process each time, wall time from spawn to exit; beside
/// it the same with agentd down (a socket nobody listens on).
pub fn hook_nothing_pending(agentd: &Agentd, samples: usize) -> anyhow::Result<Row> {
    let event = json!({"session_id": "bench-hook", "transcript_path": "/dev/null", "cwd": "/",
        "hook_event_name": "UserPromptSubmit", "permission_mode": "default", "prompt": "go"})
    .to_string();
    let time_one = |down: bool| -> anyhow::Result<Duration> {
        let mut cmd = agentd.agentctl();
        if down {
            cmd.args(["--socket", "/nonexistent/agentd.sock"]);
        }
        let start = Instant::now();
        let mut child = cmd
            .args(["hook", "claude-code"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting agentctl hook")?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(event.as_bytes())?;
        let out = child.wait_with_output()?;
        let took = start.elapsed();
        if !out.status.success() || !out.stdout.is_empty() {
            bail!(
                "agentctl hook with nothing pending said {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(took)
    };
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        up.push(time_one(false)?);
        down.push(time_one(true)?);
    }
    let (up, down) = (median(&mut up), median(&mut down));
    Ok(Row::plain(
        format!(
            "`agentctl hook claude-code`, nothing pending, fresh process (vs agentd down; {samples} each)"
        ),
        ms(up),
        ms(down),
        "< 20 ms",
        up < HOOK_TARGET,
    ))
}

/// One `agentctl mcp` server: `samples` `tools/call run {command: "true"}`
/// round trips (request written to the answer read), against `samples`
/// direct `job.submit` round trips of the same job.
pub fn mcp_run_round_trip(
    agentd: &Agentd,
    rt: &tokio::runtime::Runtime,
    client: &Client,
    samples: usize,
) -> anyhow::Result<Row> {
    let mut server = (|| -> anyhow::Result<Vec<Duration>> {
        let mut child = agentd
            .agentctl()
            .args(["mcp", "--session", "bench-mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting agentctl mcp")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut call = |stdin: &mut std::process::ChildStdin,
                        id: u64,
                        method: &str,
                        params: Value|
         -> anyhow::Result<Value> {
            let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            writeln!(stdin, "{msg}")?;
            stdin.flush()?;
            loop {
                let line = lines.next().context("agentctl mcp closed its output")??;
                let reply: Value = serde_json::from_str(&line)?;
                if reply["id"] == id {
                    return Ok(reply);
                }
            }
        };
        call(
            &mut stdin,
            0,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "agentd-bench", "version": "1"}}),
        )?;
        writeln!(
            stdin,
            "{}",
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        )?;
        let mut took = Vec::new();
        for id in 1..=samples as u64 {
            let start = Instant::now();
            let reply = call(
                &mut stdin,
                id,
                "tools/call",
                json!({"name": "run", "arguments": {"command": "true", "cwd": "/"}}),
            )?;
            took.push(start.elapsed());
            if reply["result"]["isError"] != json!(false) {
                bail!("run through agentctl mcp failed: {reply}");
            }
        }
        drop(stdin);
        child.wait()?;
        Ok(took)
    })()?;
    let mut direct = Vec::new();
    for _ in 0..samples {
        let p = SubmitParams {
            command: "true".into(),
            cwd: Some("/".into()),
            session: Some("bench-mcp".into()),
            ..Default::default()
        };
        let start = Instant::now();
        rt.block_on(client.call::<JobSubmit>(&p))?;
        direct.push(start.elapsed());
    }
    let (m, d) = (median(&mut server), median(&mut direct));
    Ok(Row::plain(
        format!("MCP `tools/call run` round trip vs `job.submit` ({samples} each)"),
        ms(m),
        ms(d),
        "< 10 ms more",
        m.saturating_sub(d) < MCP_TARGET,
    ))
}
