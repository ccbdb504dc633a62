//! What a cancelled turn (Ctrl-C in `chat`, SIGINT to `ask`) leaves behind,
//! so the conversation stays valid and the user's intent is honoured:
//!
//! - cancelled before the model produced anything: the prompt is withdrawn
//!   (a [`Record::Withdrawn`](super::transcript::Record) line), so it is
//!   never sent later, not with the next prompt, not after `--continue`;
//!   background results delivered with it stay (they were acked);
//! - cancelled mid-answer: the text shown so far is kept as the assistant's
//!   message, ending in [`CANCELLED_MARK`];
//! - cancelled while tools ran: results of the calls that finished are
//!   kept, the call running is answered "cancelled while running" and the
//!   calls after it "cancelled before it ran", and all of it is persisted
//!   at once.

use super::session::Session;
use super::transcript::{Block, Message, Role};

/// Ends the text of an answer cut by a cancel.
pub const CANCELLED_MARK: &str = "[cancelled]";

/// What [`Session::cancel`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// No model output yet: the prompt was withdrawn.
    PromptWithdrawn,
    /// The shown part of the answer was kept, marked.
    AnswerKept,
    /// Tool calls were answered (ran, or cancelled).
    ToolsAnswered,
    /// Nothing was in flight.
    Nothing,
}

impl Session {
    /// Puts the session right after the turn in flight was dropped (its
    /// future cancelled). Synchronous: nothing here can be cut again.
    ///
    /// Errors: the transcript cannot be written.
    pub fn cancel(&mut self) -> anyhow::Result<Cancelled> {
        let running = self.running_tool.take();
        let partial = std::mem::take(&mut self.partial);
        // Words still pending were never sent (a turn cancelled before it
        // began): they go, whatever else happened.
        self.pending.retain(|b| !matches!(b, Block::Text { .. }));
        let messages = self.transcript.messages();
        let start = self.turn_start.min(messages.len());
        let answered = messages[start..].iter().any(|m| m.role == Role::Assistant);
        if !partial.is_empty() {
            let text = format!("{}\n\n{CANCELLED_MARK}", partial.trim_end());
            self.transcript
                .push(Message::new(Role::Assistant, vec![Block::text(text)]))?;
            return Ok(Cancelled::AnswerKept);
        }
        if !answered {
            // The user's words of this turn, persisted (not the background
            // results that came with them).
            let withdraw: Vec<usize> = messages[start..]
                .iter()
                .enumerate()
                .filter(|(_, m)| {
                    m.role == Role::User
                        && m.bg_jobs.is_empty()
                        && m.content.iter().any(|b| matches!(b, Block::Text { .. }))
                })
                .map(|(i, _)| start + i)
                .collect();
            for i in &withdraw {
                self.transcript.withdraw(*i)?;
            }
            self.persist_pending()?;
            return Ok(if withdraw.is_empty() {
                Cancelled::Nothing
            } else {
                Cancelled::PromptWithdrawn
            });
        }
        // Tool calls of the last assistant message without a result yet.
        let last = messages.last().filter(|m| m.role == Role::Assistant);
        let calls = last.map(Message::tool_use_ids).unwrap_or_default();
        let has_result = |id: &str| {
            self.pending
                .iter()
                .any(|b| matches!(b, Block::ToolResult { tool_use_id, .. } if tool_use_id == id))
        };
        let missing: Vec<String> = calls.into_iter().filter(|id| !has_result(id)).collect();
        for id in &missing {
            let content = if running.as_deref() == Some(id.as_str()) {
                "error: cancelled: the user interrupted the turn while this call ran; it may \
                 have taken effect in part (a job it started keeps running: check_background \
                 lists it)"
            } else {
                "error: cancelled: the user interrupted the turn before this call ran; it did \
                 not run"
            };
            self.pending.push(Block::ToolResult {
                tool_use_id: id.clone(),
                content: content.into(),
                is_error: true,
            });
        }
        let any = !self.pending.is_empty();
        self.persist_pending()?;
        Ok(if any {
            Cancelled::ToolsAnswered
        } else {
            Cancelled::Nothing
        })
    }

    /// Persists `pending` (tool results, with the `bash` jobs they report)
    /// as a user message, without taking background results.
    ///
    /// Errors: the transcript cannot be written.
    fn persist_pending(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut message = Message::new(Role::User, std::mem::take(&mut self.pending));
        message.fg_jobs = std::mem::take(&mut self.pending_fg);
        self.transcript.push(message)
    }
}
