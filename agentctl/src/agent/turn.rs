//! The tool-use loop of one user turn: before every model call, take the
//! session's background results into the user message, persist it, ack;
//! call the model; persist its reply; run the tools it asked for; repeat
//! until it ends its turn.

use super::notifications;
use super::provider::{ProviderError, Request, StopReason};
use super::session::Session;
use super::tools;
use super::transcript::{Block, Message, Role, request_messages};

/// Test hook: when set, agentctl exits right after persisting a message
/// that carries background results and before acking them, to show that a
/// crash there still delivers them exactly once.
pub const CRASH_HOOK_ENV: &str = "AGENTCTL_TEST_CRASH_AFTER_PERSIST";

/// Where the loop reports what happens.
pub trait Ui: Send {
    /// A piece of the model's text as it streams.
    fn text(&mut self, delta: &str);
    /// One line per tool call (`> bash: cargo build`).
    fn tool(&mut self, line: &str);
    /// A note about the turn (cut at max_tokens, refusal, retries).
    fn notice(&mut self, line: &str);
}

/// How a turn ended.
#[derive(Debug)]
pub enum TurnError {
    /// The model API failed; the session is kept and the next turn goes on
    /// from the persisted transcript.
    Provider(ProviderError),
    /// agentd or the transcript failed.
    Other(anyhow::Error),
}

impl std::fmt::Display for TurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnError::Provider(e) => write!(f, "{e}"),
            TurnError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for TurnError {
    fn from(e: anyhow::Error) -> Self {
        TurnError::Other(e)
    }
}

impl Session {
    /// Persists `pending` (plus any background results) as the next user
    /// message and acks the results it carries. Returns whether any
    /// message or result was added. Cancel-safe: `pending` is cleared only
    /// once the message is on disk, by synchronous code.
    ///
    /// Errors: agentd or transcript errors.
    pub async fn flush_user_message(&mut self) -> anyhow::Result<bool> {
        let mut handled = self.transcript.handled_jobs();
        handled.extend(self.pending_fg.iter().cloned());
        let gathered = notifications::gather(&self.client, &self.name, &handled).await?;
        if self.pending.is_empty() && gathered.deliver.is_empty() {
            if let Some(seq) = gathered.max_seq {
                // Only results the persisted transcript already has.
                notifications::ack(&self.client, &self.name, seq).await?;
            }
            return Ok(false);
        }
        let mut content = self.pending.clone();
        let delivered = !gathered.deliver.is_empty();
        if delivered {
            content.push(Block::text(notifications::block(&gathered.deliver)));
        }
        let message = Message {
            role: Role::User,
            content,
            bg_seq: gathered.max_seq,
            bg_jobs: gathered.deliver.iter().map(|n| n.job_id.clone()).collect(),
            fg_jobs: self.pending_fg.clone(),
        };
        self.transcript.push(message)?;
        self.pending.clear();
        self.pending_fg.clear();
        if delivered && std::env::var_os(CRASH_HOOK_ENV).is_some() {
            eprintln!("agentctl: {CRASH_HOOK_ENV} is set: exiting before the ack");
            std::process::exit(86);
        }
        if let Some(seq) = gathered.max_seq {
            notifications::ack(&self.client, &self.name, seq).await?;
        }
        Ok(true)
    }

    /// True when background results wait for the model (results already
    /// given by `bash` are consumed on the way).
    ///
    /// Errors: agentd errors.
    pub async fn has_new_results(&mut self) -> anyhow::Result<bool> {
        let mut handled = self.transcript.handled_jobs();
        handled.extend(self.pending_fg.iter().cloned());
        let gathered = notifications::gather(&self.client, &self.name, &handled).await?;
        // Acking is safe only when every handled job is on disk.
        if gathered.deliver.is_empty()
            && self.pending.is_empty()
            && let Some(seq) = gathered.max_seq
        {
            notifications::ack(&self.client, &self.name, seq).await?;
        }
        Ok(!gathered.deliver.is_empty())
    }

    /// Runs the loop until the model ends its turn; returns its final
    /// text. The user's words (if any) must already be in `pending`.
    ///
    /// Errors: [`TurnError::Provider`] when the model API fails (the
    /// transcript stays consistent); [`TurnError::Other`] for agentd or
    /// disk errors.
    pub async fn turn(&mut self, ui: &mut dyn Ui) -> Result<String, TurnError> {
        loop {
            self.flush_user_message().await?;
            let messages = request_messages(self.transcript.messages());
            let request = Request {
                system: &self.system,
                messages: &messages,
                tools: &self.specs,
            };
            let reply = {
                let mut on_text = |t: &str| ui.text(t);
                self.provider.complete(&request, &mut on_text).await
            }
            .map_err(TurnError::Provider)?;
            let text = Message::new(Role::Assistant, reply.content.clone()).text();
            if !reply.content.is_empty() {
                self.transcript
                    .push(Message::new(Role::Assistant, reply.content.clone()))?;
            }
            let calls: Vec<(String, String, serde_json::Value)> = reply
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            match reply.stop {
                StopReason::MaxTokens if !calls.is_empty() => {
                    ui.notice("(the reply was cut at max_tokens; its tool calls were not run)");
                    for (id, _, _) in calls {
                        self.pending.push(Block::ToolResult {
                            tool_use_id: id,
                            content: "error: not run: the reply was cut at max_tokens; \
                                      send the call again, smaller"
                                .into(),
                            is_error: true,
                        });
                    }
                }
                _ if !calls.is_empty() => {
                    for (id, name, input) in calls {
                        ui.tool(&tools::summary(&name, &input));
                        let outcome = tools::run(&self.tools, &name, &input).await;
                        if let Some(job) = outcome.fg_job {
                            self.pending_fg.push(job);
                        }
                        self.pending.push(Block::ToolResult {
                            tool_use_id: id,
                            content: outcome.content,
                            is_error: outcome.is_error,
                        });
                    }
                }
                StopReason::PauseTurn => {}
                StopReason::MaxTokens => {
                    ui.notice("(the reply was cut at max_tokens)");
                    return Ok(text);
                }
                StopReason::Refusal => {
                    ui.notice("(the model declined to answer)");
                    return Ok(text);
                }
                StopReason::EndTurn | StopReason::ToolUse | StopReason::Other(_) => {
                    return Ok(text);
                }
            }
        }
    }
}
