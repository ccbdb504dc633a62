//! The tool-use loop of one user turn: before every model call, take the
//! session's background results into the user message, persist it, ack;
//! call the model; persist its reply; run the tools it asked for; repeat
//! until it ends its turn.

use super::compaction::Mode;
use super::notifications;
use super::provider::{ProviderError, Reply, Request, StopReason};
use super::session::Session;
use super::tools;
use super::transcript::{Block, Message, Role, Usage, request_messages};

/// Test hook: when set, agentctl exits right after persisting a message
/// that carries background results and before acking them, to show that a
/// crash there still delivers them exactly once.
pub const CRASH_HOOK_ENV: &str = "AGENTCTL_TEST_CRASH_AFTER_PERSIST";

/// Most continuation calls after `pause_turn` in a row; one more pause
/// ends the turn (the next user message lets the model go on).
pub const MAX_PAUSE_CONTINUATIONS: u32 = 5;

/// Where the loop reports what happens.
pub trait Ui: Send {
    /// A piece of the model's text as it streams.
    fn text(&mut self, delta: &str);
    /// One line per tool call (`> bash: cargo build`).
    fn tool(&mut self, line: &str);
    /// A note about the turn (cut at max_tokens, refusal, retries).
    fn notice(&mut self, line: &str);
    /// A model call starts; nothing of its reply has come yet.
    fn waiting(&mut self) {}
    /// The token usage one model reply reported.
    fn usage(&mut self, _usage: &Usage) {}
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
    /// Persists `pending` as the next user message, then any background
    /// results as one more, and acks the results it delivered. Returns
    /// whether any message was added. Cancel-safe: `pending` is cleared
    /// only once its message is on disk, by synchronous code.
    ///
    /// The order matters:
    ///
    /// 1. `pending` (the user's words, the results of tools that already
    ///    ran, and the `bash` jobs they report in `fg_jobs`) is persisted
    ///    first, before agentd is asked anything: if the peek fails, the
    ///    tool results are on disk and a resume sends them, instead of
    ///    answering calls that did run with "interrupted".
    /// 2. `notifications.peek`; the jobs the transcript now lists (including
    ///    those `bash` just reported) are skipped.
    /// 3. The `<background-results>` block is persisted as its own user
    ///    message, with the delivered job ids (consecutive user messages
    ///    are merged when sent, tool results first).
    /// 4. Only then `notifications.ack`. A crash before it leaves the
    ///    results pending in agentd but listed in the transcript: the next
    ///    run acks them without showing them again. Exactly once.
    ///
    /// Errors: agentd or transcript errors.
    pub async fn flush_user_message(&mut self) -> anyhow::Result<bool> {
        let mut added = false;
        if !self.pending.is_empty() {
            let mut message = Message::new(Role::User, self.pending.clone());
            message.fg_jobs = self.pending_fg.clone();
            self.transcript.push(message)?;
            self.pending.clear();
            self.pending_fg.clear();
            added = true;
        }
        let handled = self.transcript.handled_jobs();
        let told = self.transcript.told_drops();
        let gathered = notifications::gather(&self.client, &self.name, &handled, &told).await?;
        if gathered.deliver.is_empty() && gathered.dropped == 0 {
            if let Some(seq) = gathered.max_seq {
                // Only results (and drops) the persisted transcript
                // already has.
                notifications::ack(&self.client, &self.name, seq).await?;
            }
            return Ok(added);
        }
        let message = Message {
            role: Role::User,
            content: vec![Block::text(notifications::block_with_dropped(
                &gathered.deliver,
                gathered.dropped,
            ))],
            bg_seq: gathered.max_seq,
            bg_jobs: gathered.deliver.iter().map(|n| n.job_id.clone()).collect(),
            bg_dropped_seq: gathered.dropped_seq,
            fg_jobs: Vec::new(),
            usage: None,
        };
        self.transcript.push(message)?;
        if std::env::var_os(CRASH_HOOK_ENV).is_some() {
            eprintln!("agentctl: {CRASH_HOOK_ENV} is set: exiting before the ack");
            std::process::exit(86);
        }
        if let Some(seq) = gathered.max_seq {
            notifications::ack(&self.client, &self.name, seq).await?;
        }
        Ok(true)
    }

    /// True when background results, or a drop of some the model was not
    /// told of, wait for the model (results already given by `bash` are
    /// consumed on the way).
    ///
    /// Errors: agentd errors.
    pub async fn has_new_results(&mut self) -> anyhow::Result<bool> {
        let mut handled = self.transcript.handled_jobs();
        handled.extend(self.pending_fg.iter().cloned());
        let told = self.transcript.told_drops();
        let gathered = notifications::gather(&self.client, &self.name, &handled, &told).await?;
        // Acking is safe only when every handled job is on disk, and
        // would clear a drop the model has not been told of.
        if gathered.deliver.is_empty()
            && gathered.dropped == 0
            && self.pending.is_empty()
            && let Some(seq) = gathered.max_seq
        {
            notifications::ack(&self.client, &self.name, seq).await?;
        }
        Ok(!gathered.deliver.is_empty() || gathered.dropped > 0)
    }

    /// Runs the loop until the model ends its turn; returns its final
    /// text (all of it when the reply came in several parts after
    /// `pause_turn`). The user's words (if any) must already be in
    /// `pending`.
    ///
    /// Errors: [`TurnError::Provider`] when the model API fails (the
    /// transcript stays consistent); [`TurnError::Other`] for agentd or
    /// disk errors.
    pub async fn turn(&mut self, ui: &mut dyn Ui) -> Result<String, TurnError> {
        // Text of the replies since the last tool calls (a reply continued
        // after `pause_turn` comes in several parts).
        let mut final_text = String::new();
        let mut pauses = 0;
        self.turn_start = self.transcript.messages().len();
        loop {
            self.flush_user_message().await?;
            let reply = self.call(ui).await?;
            let text = Message::new(Role::Assistant, reply.content.clone()).text();
            if !text.is_empty() {
                if !final_text.is_empty() {
                    final_text.push('\n');
                }
                final_text.push_str(&text);
            }
            if let Some(usage) = &reply.usage {
                ui.usage(usage);
            }
            if !reply.content.is_empty() {
                let mut message = Message::new(Role::Assistant, reply.content.clone());
                message.usage = reply.usage;
                self.transcript.push(message)?;
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
            if !calls.is_empty() {
                final_text.clear();
                pauses = 0;
            }
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
                        self.running_tool = Some(id.clone());
                        let outcome = tools::run(&self.tools, &name, &input).await;
                        self.running_tool = None;
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
                StopReason::PauseTurn if pauses < MAX_PAUSE_CONTINUATIONS => pauses += 1,
                StopReason::PauseTurn => {
                    ui.notice(&format!(
                        "(the model paused its turn {} times in a row; ending the turn here \
                         — send a message to let it go on)",
                        pauses + 1
                    ));
                    return Ok(final_text);
                }
                StopReason::MaxTokens => {
                    ui.notice("(the reply was cut at max_tokens)");
                    return Ok(final_text);
                }
                StopReason::Refusal => {
                    ui.notice("(the model declined to answer)");
                    return Ok(final_text);
                }
                StopReason::EndTurn | StopReason::ToolUse | StopReason::Other(_) => {
                    return Ok(final_text);
                }
            }
        }
    }
}

impl Session {
    /// Compacts with `mode`, telling the user what it did.
    ///
    /// Errors: see [`Session::compact`].
    pub async fn compact_noting(&mut self, mode: Mode, ui: &mut dyn Ui) -> Result<bool, TurnError> {
        ui.notice("(compacting the conversation to fit the model's context window…)");
        let outcome = self.compact(mode).await?;
        if let Some(o) = &outcome {
            ui.notice(&format!("(compacted: {o})"));
        }
        Ok(outcome.is_some())
    }

    /// One model call on the persisted view: compacts first when the
    /// context estimate reaches the threshold, and when the API still says
    /// the prompt is too long, compacts harder and tries once more.
    ///
    /// Errors: the call fails; [`ProviderError::ContextTooLong`] after the
    /// retry carries what to do.
    async fn call(&mut self, ui: &mut dyn Ui) -> Result<Reply, TurnError> {
        if self.needs_compaction() {
            self.compact_noting(Mode::Normal, ui).await?;
            if self.needs_compaction() {
                self.compact(Mode::Hard).await?;
            }
        }
        let mut retried = false;
        loop {
            let messages = request_messages(&without_empty_text(&self.transcript.view()));
            let request = Request {
                system: &self.system,
                messages: &messages,
                tools: &self.specs,
            };
            self.partial.clear();
            ui.waiting();
            let result = {
                let partial = &mut self.partial;
                let mut on_text = |t: &str| {
                    partial.push_str(t);
                    ui.text(t)
                };
                self.provider.complete(&request, &mut on_text).await
            };
            self.partial.clear();
            match result {
                Ok(reply) => return Ok(reply),
                Err(ProviderError::ContextTooLong(_)) if !retried => {
                    retried = true;
                    self.compact_noting(Mode::Hard, ui).await?;
                }
                Err(ProviderError::ContextTooLong(message)) => {
                    return Err(TurnError::Provider(ProviderError::ContextTooLong(format!(
                        "{message}. Compacting did not make it fit (about {} tokens left, \
                         context_window_tokens is {}). If the model's window is smaller, set \
                         context_window_tokens lower in {}; or go on in a new session \
                         (--session NEW); your prompt is kept in this one",
                        self.context_tokens(),
                        self.provider.context_window(),
                        super::config::config_path().map_or_else(
                            || "agentctl's config.toml".into(),
                            |p| p.display().to_string()
                        ),
                    ))));
                }
                Err(e) => return Err(TurnError::Provider(e)),
            }
        }
    }
}

/// The conversation without empty text blocks, which the API refuses
/// (transcripts written by earlier versions may hold some).
fn without_empty_text(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.content
                .retain(|b| !matches!(b, Block::Text { text } if text.is_empty()));
            m
        })
        .collect()
}
