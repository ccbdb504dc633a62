//! The MCP server: six tools over agentd's job methods, every job in one
//! agentd session ([`super::super::binding`]). A failure is a tool error
//! (`isError: true` with a readable message), never a protocol error or a
//! dead server: the model reads it and can act.
//!
//! Each call opens its own connection to agentd (starting agentd when
//! nothing answers, as every agentctl command does), so a restarted daemon
//! is picked up without restarting the server.

use super::format;
use super::inputs::{JobsInput, KillInput, OutputInput, ResultsInput, RunInput, WaitInput};
use crate::connect;
use crate::integrations::delivery;
use agentd_proto::methods::{
    JobKill, JobList, JobOutput, JobSubmit, JobWait, KillParams, ListParams, OutputParams,
    SubmitParams, WaitParams,
};
use agentd_proto::{Client, Job, JobState};
use rmcp::handler::server::common::schema_for_input;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, JsonObject, ProgressNotificationParam,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a long wait reports progress to a client that sent a
/// progress token: often enough that clients which reset their tool
/// timeout on progress keep waiting, rare enough to cost nothing.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Default and largest `wait` timeout, in seconds.
const WAIT_DEFAULT_SECS: f64 = 300.0;
const WAIT_MAX_SECS: f64 = 3600.0;
/// Default and largest output slice, in bytes: about 2,000 tokens by
/// default; more only when asked.
const OUTPUT_DEFAULT_BYTES: u64 = 8000;
const OUTPUT_MAX_BYTES: u64 = 100_000;
/// Output tail shown with a finished job, in bytes.
const FINISHED_TAIL_BYTES: u64 = 4000;

/// What every tool call needs: where agentd is and whose jobs these are.
#[derive(Debug)]
pub struct Binding {
    /// agentd's socket.
    pub socket: PathBuf,
    /// The agentd session of the agent session this server serves.
    pub session: String,
    /// The project directory: the default cwd of `run`, the base of a
    /// relative one.
    pub project_dir: PathBuf,
}

/// The server: the binding and the tool table.
#[derive(Clone)]
pub struct AgentdServer {
    binding: Arc<Binding>,
    tool_router: ToolRouter<AgentdServer>,
}

/// A tool's outcome before it becomes a [`CallToolResult`]: text for the
/// model and the structured result.
type Outcome = Result<(String, Value), String>;

#[tool_router]
impl AgentdServer {
    /// A server for `binding`.
    pub fn new(binding: Binding) -> AgentdServer {
        AgentdServer {
            binding: Arc::new(binding),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Start a shell command as a background job in agentd. It survives this session, \
                       keeps its exit code and output, and its result is delivered to you when it ends. \
                       Answers at once with the job id, or with the result if it ends within wait_secs.",
        input_schema = input_schema::<RunInput>()
    )]
    async fn run(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(finish(self.run_tool(args, ctx).await))
    }

    #[tool(
        description = "List this session's background jobs (running and queued; all=true adds finished ones).",
        input_schema = input_schema::<JobsInput>()
    )]
    async fn jobs(
        &self,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(finish(self.jobs_tool(args).await))
    }

    #[tool(
        description = "Read a job's output (stdout and stderr interleaved): the last tail_bytes, or a byte range.",
        input_schema = input_schema::<OutputInput>()
    )]
    async fn output(
        &self,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(finish(self.output_tool(args).await))
    }

    #[tool(
        description = "Wait for a job to finish (up to timeout_secs) and return it with the end of its output.",
        input_schema = input_schema::<WaitInput>()
    )]
    async fn wait(
        &self,
        Parameters(args): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(finish(self.wait_tool(args, ctx).await))
    }

    #[tool(
        description = "Stop a job: signal its whole process group (TERM by default, KILL 5 s later), or cancel it if queued.",
        input_schema = input_schema::<KillInput>()
    )]
    async fn kill(
        &self,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(finish(self.kill_tool(args).await))
    }

    #[tool(
        description = "Collect the results of this session's background jobs that finished and were not yet \
                       delivered (for clients without hooks). Each result is delivered once.",
        input_schema = input_schema::<ResultsInput>()
    )]
    async fn results(
        &self,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(finish(self.results_tool(args).await))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AgentdServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentd", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "agentd runs shell commands as durable background jobs. Use `run` for anything that \
                 takes more than a few seconds (builds, test suites, servers): it returns at once and \
                 the job's result is delivered to you when it ends, even across restarts. Jobs of this \
                 session belong to agentd session {}.",
                self.binding.session
            ))
    }
}

impl AgentdServer {
    async fn run_tool(&self, args: JsonObject, ctx: RequestContext<RoleServer>) -> Outcome {
        let input: RunInput = parse(args)?;
        let cwd = match input.cwd.as_deref() {
            None | Some("") => self.binding.project_dir.clone(),
            Some(dir) => self.binding.project_dir.join(dir),
        };
        let client = self.client().await?;
        let job = client
            .call::<JobSubmit>(&SubmitParams {
                command: input.command,
                cwd: Some(cwd.to_string_lossy().into_owned()),
                timeout_secs: input.timeout_secs,
                session: Some(self.binding.session.clone()),
                label: input.label,
                ..SubmitParams::default()
            })
            .await
            .map_err(|e| format!("agentd refused the job: {e}"))?;
        let wait_secs = input.wait_secs.unwrap_or(0.0).clamp(0.0, WAIT_MAX_SECS);
        if wait_secs <= 0.0 {
            return Ok(job_answer(format::started(&job), &job, None));
        }
        let job = self.wait_for(&client, &job.id, wait_secs, &ctx).await?;
        if job.state.is_finished() {
            self.finished(&client, job).await
        } else {
            Ok(job_answer(format::started(&job), &job, None))
        }
    }

    async fn jobs_tool(&self, args: JsonObject) -> Outcome {
        let input: JobsInput = parse(args)?;
        let all = input.all.unwrap_or(false);
        let client = self.client().await?;
        let jobs = client
            .call::<JobList>(&ListParams {
                states: (!all).then(|| JobState::LIVE.to_vec()),
                session: Some(self.binding.session.clone()),
                limit: Some(100),
                ..ListParams::default()
            })
            .await
            .map_err(|e| e.to_string())?
            .jobs;
        Ok((format::job_lines(&jobs, all), json!({ "jobs": jobs })))
    }

    async fn output_tool(&self, args: JsonObject) -> Outcome {
        let input: OutputInput = parse(args)?;
        let ranged = input.offset.is_some() || input.limit.is_some();
        let params = OutputParams {
            id: input.id,
            offset: input.offset.filter(|_| ranged),
            limit: ranged.then(|| {
                input
                    .limit
                    .unwrap_or(OUTPUT_DEFAULT_BYTES)
                    .min(OUTPUT_MAX_BYTES)
            }),
            tail: (!ranged).then(|| {
                input
                    .tail_bytes
                    .unwrap_or(OUTPUT_DEFAULT_BYTES)
                    .min(OUTPUT_MAX_BYTES)
            }),
            wait_ms: None,
        };
        let client = self.client().await?;
        let out = client
            .call::<JobOutput>(&params)
            .await
            .map_err(|e| job_error(&params.id, e))?;
        Ok((format::output(&out), to_value(&out)))
    }

    async fn wait_tool(&self, args: JsonObject, ctx: RequestContext<RoleServer>) -> Outcome {
        let input: WaitInput = parse(args)?;
        let secs = input
            .timeout_secs
            .unwrap_or(WAIT_DEFAULT_SECS)
            .clamp(0.0, WAIT_MAX_SECS);
        let client = self.client().await?;
        let job = self.wait_for(&client, &input.id, secs, &ctx).await?;
        if job.state.is_finished() {
            self.finished(&client, job).await
        } else {
            Ok(job_answer(format::still_running(&job, secs), &job, None))
        }
    }

    async fn kill_tool(&self, args: JsonObject) -> Outcome {
        let input: KillInput = parse(args)?;
        let client = self.client().await?;
        let job = client
            .call::<JobKill>(&KillParams {
                id: input.id.clone(),
                signal: input.signal,
                grace_secs: None,
            })
            .await
            .map_err(|e| job_error(&input.id, e))?;
        Ok((
            format!("Signalled. {}", format::header(&job)),
            job_answer(String::new(), &job, None).1,
        ))
    }

    async fn results_tool(&self, args: JsonObject) -> Outcome {
        let _: ResultsInput = parse(args)?;
        let client = self.client().await?;
        let session = &self.binding.session;
        let handover = delivery::take(&client, session)
            .await
            .map_err(|e| format!("cannot collect results: {e:#}"))?;
        let Some(handover) = handover else {
            return Ok((
                "No background results pending.".into(),
                json!({ "results": [], "dropped": 0 }),
            ));
        };
        // The answer goes back on stdout right after this returns; acking
        // first would lose the results if the client went away, acking
        // after cannot be done from here, so ack now: a tool answer the
        // client drops is at-most-once either way.
        delivery::finish(&client, session, &handover)
            .await
            .map_err(|e| format!("cannot consume results: {e:#}"))?;
        Ok((
            handover.block,
            json!({ "results": handover.shown, "dropped": handover.dropped }),
        ))
    }

    /// Connects to agentd, starting it when nothing answers.
    async fn client(&self) -> Result<Client, String> {
        connect::connect(&self.binding.socket)
            .await
            .map_err(|e| format!("cannot reach agentd: {e:#}"))
    }

    /// `job.wait` for up to `secs`, reporting progress every
    /// [`PROGRESS_EVERY`] when the client sent a progress token.
    async fn wait_for(
        &self,
        client: &Client,
        id: &str,
        secs: f64,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Job, String> {
        let params = WaitParams {
            id: id.to_string(),
            timeout_secs: Some(secs),
        };
        let wait = client.call::<JobWait>(&params);
        let Some(token) = ctx.meta.get_progress_token() else {
            return wait.await.map_err(|e| job_error(id, e));
        };
        tokio::pin!(wait);
        let start = Instant::now();
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            tokio::select! {
                done = &mut wait => return done.map_err(|e| job_error(id, e)),
                _ = ticks.tick() => {
                    let elapsed = start.elapsed().as_secs_f64();
                    let note = ProgressNotificationParam::new(token.clone(), elapsed.floor())
                        .with_total(secs.ceil())
                        .with_message(format!("job {id} still running after {elapsed:.0} s"));
                    // A client that went away shows up as the call's
                    // cancellation; a failed notification changes nothing.
                    let _ = ctx.peer.notify_progress(note).await;
                }
                _ = ctx.ct.cancelled() => return Err("cancelled by the client".into()),
            }
        }
    }

    /// A finished job's answer, with its output tail; noted as shown so
    /// the hook does not deliver it a second time.
    async fn finished(&self, client: &Client, job: Job) -> Outcome {
        let tail = client
            .call::<JobOutput>(&OutputParams {
                id: job.id.clone(),
                offset: None,
                limit: None,
                tail: Some(FINISHED_TAIL_BYTES),
                wait_ms: None,
            })
            .await
            .map(|o| o.data)
            .unwrap_or_default();
        if job.session == self.binding.session
            && let Err(e) = delivery::note_shown(&job.session, &job.id).await
        {
            eprintln!("agentctl mcp: {e:#}");
        }
        Ok(job_answer(format::finished(&job, &tail), &job, Some(&tail)))
    }
}

/// A tool answer about one job: the text, and as structured content the
/// Job with `message` (the text) and, for a finished job, `output_tail`
/// added. Clients that show the model the structured content rather than
/// the text (Claude Code does) so still show the words and the output.
fn job_answer(text: String, job: &Job, tail: Option<&str>) -> (String, Value) {
    let mut value = to_value(job);
    if let Some(map) = value.as_object_mut() {
        if !text.is_empty() {
            map.insert("message".into(), text.clone().into());
        }
        if let Some(tail) = tail {
            map.insert("output_tail".into(), tail.into());
        }
    }
    (text, value)
}

/// The published input schema of `T`.
fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().expect("tool inputs are objects")
}

/// Parses a tool's arguments; the error names what is wrong.
fn parse<T: DeserializeOwned>(args: JsonObject) -> Result<T, String> {
    serde_json::from_value(Value::Object(args)).map_err(|e| format!("invalid arguments: {e}"))
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// An agentd error about job `id`, with what to do next.
fn job_error(id: &str, e: agentd_proto::ClientError) -> String {
    match e.code() {
        Some(agentd_proto::codes::JOB_NOT_FOUND) => {
            format!("{e} (the `jobs` tool with all=true lists this session's jobs)")
        }
        _ => format!("job {id}: {e}"),
    }
}

/// The tool result: text and structured content, or a tool error.
fn finish(outcome: Outcome) -> CallToolResult {
    match outcome {
        Ok((text, structured)) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            if structured.is_object() {
                result.structured_content = Some(structured);
            }
            result
        }
        Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
    }
}
