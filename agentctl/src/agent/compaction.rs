//! Compaction: keeping a session inside the model's context window.
//!
//! Before a model call, when the context estimate ([`super::context`])
//! reaches 80% of `context_window_tokens`, the turn compacts the view: the
//! older turns are replaced by a summary the model writes in a dedicated
//! request (a summarising system prompt, no tools), the recent turns are
//! kept verbatim, and large tool results in them are elided to their first
//! and last lines with a marker. When the API still answers that the
//! prompt is too long, the turn compacts harder (only the current turn
//! kept, every large tool result elided) and tries once more.
//!
//! The transcript stays append-only: a compaction is a record holding the
//! new view ([`Compaction`]). What was delivered is still decided by the
//! full history, so no background result is shown twice.

use super::context::{self, BYTES_PER_TOKEN};
use super::provider::{ProviderError, Request};
use super::session::Session;
use super::transcript::{Block, Compaction, Message, Role};
use super::turn::TurnError;

/// How hard to compact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keep the recent turns that fit in [`KEEP_PERCENT`] of the window;
    /// elide large tool results except in the newest message.
    Normal,
    /// Keep only the current turn; elide every large tool result.
    Hard,
}

/// Share of the window (percent) the turns kept verbatim may take in a
/// normal compaction; the summary and the reply need the rest.
pub const KEEP_PERCENT: u64 = 25;
/// Tool results longer than this (bytes) are elided in kept turns.
pub const ELIDE_MIN_BYTES: usize = 2048;
/// Lines kept at each end of an elided tool result.
pub const ELIDE_KEEP_LINES: usize = 10;
/// Longest line kept in an elided result (bytes); longer ones are cut.
pub const ELIDE_LINE_BYTES: usize = 200;
/// Share of the window (percent) the text sent for summarising may take;
/// the rest is left out from its middle.
pub const SUMMARY_INPUT_PERCENT: u64 = 50;

/// The summarising request's system prompt.
pub const SUMMARY_SYSTEM: &str = "You summarise the earlier part of a conversation between a \
    user and a coding agent, so that the agent can go on with only your summary and the most \
    recent turns. Keep: the user's goals and the instructions still in force; decisions made; \
    files created or changed and what matters in them; commands run and their important \
    results (errors, test outcomes); background tasks started (their ids) and what became of \
    them; open questions and next steps. Leave out chatter and long outputs. Write plain \
    text, at most a few hundred words. Do not call tools.";

/// Opens the summary message in the compacted view.
pub const SUMMARY_OPEN: &str = "<conversation-summary>\nThe earlier part of this conversation \
    was compacted to fit the context window; this summary replaces it.\n";
/// Closes it.
pub const SUMMARY_CLOSE: &str = "\n</conversation-summary>";

/// What a compaction did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Messages of the old view that went into the summary.
    pub summarised: usize,
    /// Tool results elided.
    pub elided: usize,
    /// Context estimate before, in tokens.
    pub tokens_before: u64,
    /// Context estimate after, in tokens.
    pub tokens_after: u64,
    /// Wall time of the whole compaction.
    pub took: std::time::Duration,
    /// Of which spent waiting for the summary request (the HTTP round
    /// trip: the server's latency plus the transfer).
    pub model: std::time::Duration,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages summarised, {} tool results elided, ~{} -> ~{} tokens, in {} ms \
             ({} ms waiting for the model)",
            self.summarised,
            self.elided,
            self.tokens_before,
            self.tokens_after,
            self.took.as_millis(),
            self.model.as_millis()
        )
    }
}

/// `content` cut to its first and last [`ELIDE_KEEP_LINES`] lines (each at
/// most [`ELIDE_LINE_BYTES`]) with a marker saying what was left out;
/// `None` when it is at most `min_bytes` long.
pub fn elide(content: &str, min_bytes: usize) -> Option<String> {
    if content.len() <= min_bytes {
        return None;
    }
    let lines: Vec<&str> = content.lines().collect();
    let keep = ELIDE_KEEP_LINES;
    let cut = |l: &str| -> String {
        if l.len() <= ELIDE_LINE_BYTES {
            return l.to_string();
        }
        let end = (0..=ELIDE_LINE_BYTES)
            .rev()
            .find(|&i| l.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}…", &l[..end])
    };
    let (head, tail, left) = if lines.len() > 2 * keep {
        (
            &lines[..keep],
            &lines[lines.len() - keep..],
            lines.len() - 2 * keep,
        )
    } else {
        (
            &lines[..lines.len().min(1)],
            &lines[..0],
            lines.len().saturating_sub(1),
        )
    };
    let head: Vec<String> = head.iter().map(|l| cut(l)).collect();
    let tail: Vec<String> = tail.iter().map(|l| cut(l)).collect();
    let mut out = head.join("\n");
    out.push_str(&format!(
        "\n[… {left} lines of {} bytes elided by compaction …]",
        content.len()
    ));
    if !tail.is_empty() {
        out.push('\n');
        out.push_str(&tail.join("\n"));
    }
    Some(out)
}

/// Elides the large tool results of `m`; returns how many.
fn elide_message(m: &mut Message) -> usize {
    let mut n = 0;
    for b in &mut m.content {
        if let Block::ToolResult { content, .. } = b
            && let Some(short) = elide(content, ELIDE_MIN_BYTES)
        {
            *content = short;
            n += 1;
        }
    }
    n
}

/// Where turns start in `view`: a user message after an assistant message
/// that called no tools (or the first message).
fn turn_starts(view: &[Message]) -> Vec<usize> {
    (0..view.len())
        .filter(|&i| {
            view[i].role == Role::User
                && (i == 0
                    || (view[i - 1].role == Role::Assistant
                        && view[i - 1].tool_use_ids().is_empty()))
        })
        .collect()
}

/// The older part of the conversation as plain text for the summary
/// request, at most `budget` bytes (the middle left out beyond).
fn render(older: &[Message], budget: usize) -> String {
    let mut out = String::new();
    for m in older {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Agent",
        };
        for b in &m.content {
            match b {
                Block::Text { text } => {
                    let text = elide(text, 4 * ELIDE_MIN_BYTES).unwrap_or_else(|| text.clone());
                    out.push_str(&format!("{who}: {text}\n\n"));
                }
                Block::ToolUse { name, input, .. } => {
                    let input = input.to_string();
                    let input = elide(&input, 500).unwrap_or(input);
                    out.push_str(&format!("Agent called {name}: {input}\n\n"));
                }
                Block::ToolResult {
                    content, is_error, ..
                } => {
                    let content = elide(content, 1000).unwrap_or_else(|| content.clone());
                    let kind = if *is_error { "error" } else { "result" };
                    out.push_str(&format!("Tool {kind}: {content}\n\n"));
                }
            }
        }
    }
    if out.len() <= budget {
        return out;
    }
    let boundary = |i: usize| {
        (0..=i)
            .rev()
            .find(|&j| out.is_char_boundary(j))
            .unwrap_or(0)
    };
    let head_end = boundary(budget / 4);
    let tail_start = boundary(out.len() - budget * 3 / 4);
    format!(
        "{}\n[… {} bytes of the conversation left out …]\n{}",
        &out[..head_end],
        tail_start - head_end,
        &out[tail_start..]
    )
}

impl Session {
    /// The context estimate of the next request, in tokens.
    pub fn context_tokens(&self) -> u64 {
        let pending = serde_json::to_string(&self.pending).map_or(0, |s| s.len() as u64);
        context::estimate(&self.system, &self.specs, &self.transcript.view())
            + pending.div_ceil(BYTES_PER_TOKEN)
    }

    /// True when the next request reaches the compaction threshold.
    pub fn needs_compaction(&self) -> bool {
        self.context_tokens() >= context::threshold(self.provider.context_window())
    }

    /// Compacts the view (see the module doc); `None` when there was
    /// nothing to summarise or elide. Cancel-safe: the record is written
    /// in one step after the summary call.
    ///
    /// Errors: [`TurnError::Provider`] when the summary request fails;
    /// [`TurnError::Other`] when the transcript cannot be written.
    pub async fn compact(&mut self, mode: Mode) -> Result<Option<Outcome>, TurnError> {
        let started = std::time::Instant::now();
        let mut model = std::time::Duration::ZERO;
        let tokens_before = self.context_tokens();
        let window = self.provider.context_window();
        let (view, origins): (Vec<Message>, Vec<Option<usize>>) =
            self.transcript.view_with_origins().into_iter().unzip();
        let starts = turn_starts(&view);
        let Some(&last_start) = starts.last() else {
            return Ok(None);
        };
        let cut = match mode {
            Mode::Hard => last_start,
            Mode::Normal => {
                let budget = window / 100 * KEEP_PERCENT;
                let mut cut = last_start;
                for &s in starts.iter().rev().skip(1) {
                    let kept: u64 = view[s..].iter().map(context::message_tokens).sum();
                    if kept > budget {
                        break;
                    }
                    cut = s;
                }
                cut
            }
        };
        let mut kept: Vec<Message> = view[cut..].iter().map(Message::bare).collect();
        let newest = kept.len().saturating_sub(1);
        let mut elided = 0;
        for (i, m) in kept.iter_mut().enumerate() {
            if mode == Mode::Hard || i < newest {
                elided += elide_message(m);
            }
        }
        if cut == 0 && elided == 0 {
            return Ok(None);
        }
        let mut new_view = Vec::new();
        let mut new_origins = Vec::new();
        if cut > 0 {
            let (summary, waited) = self.summarise(&view[..cut], window, mode).await?;
            model = waited;
            new_view.push(Message::new(
                Role::User,
                vec![Block::text(format!(
                    "{SUMMARY_OPEN}{summary}{SUMMARY_CLOSE}"
                ))],
            ));
            new_origins.push(None);
        }
        new_view.extend(kept);
        new_origins.extend_from_slice(&origins[cut..]);
        let tokens_after = context::estimate(&self.system, &self.specs, &new_view);
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.transcript.push_compaction(Compaction {
            at,
            upto: self.transcript.messages().len(),
            summarised: cut,
            tokens_before,
            tokens_after,
            view: new_view,
            origins: new_origins,
        })?;
        Ok(Some(Outcome {
            summarised: cut,
            elided,
            tokens_before,
            tokens_after,
            took: started.elapsed(),
            model,
        }))
    }

    /// Asks the model for a summary of `older` (a dedicated request: the
    /// summarising system prompt, no tools). A summary request that is
    /// itself too long is tried once more with a quarter of the text.
    /// Also returns the time spent waiting for the model.
    ///
    /// Errors: the request fails.
    async fn summarise(
        &self,
        older: &[Message],
        window: u64,
        mode: Mode,
    ) -> Result<(String, std::time::Duration), TurnError> {
        let mut budget = (window / 100 * SUMMARY_INPUT_PERCENT * BYTES_PER_TOKEN) as usize;
        if mode == Mode::Hard {
            budget /= 2;
        }
        let mut tries = 0;
        let mut waited = std::time::Duration::ZERO;
        loop {
            tries += 1;
            let text = format!(
                "<conversation>\n{}</conversation>\n\nSummarise the conversation above.",
                render(older, budget)
            );
            let messages = [Message::new(Role::User, vec![Block::text(text)])];
            let request = Request {
                system: SUMMARY_SYSTEM,
                messages: &messages,
                tools: &[],
            };
            let asked = std::time::Instant::now();
            let result = self.provider.complete(&request, &mut |_: &str| {}).await;
            waited += asked.elapsed();
            match result {
                Ok(reply) => {
                    let summary = Message::new(Role::Assistant, reply.content).text();
                    let summary = if summary.trim().is_empty() {
                        "(the model wrote no summary)".into()
                    } else {
                        summary
                    };
                    return Ok((summary, waited));
                }
                Err(ProviderError::ContextTooLong(_)) if tries == 1 => budget /= 4,
                Err(e) => return Err(TurnError::Provider(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_results_keep_their_first_and_last_lines_and_say_what_went() {
        let seq: String = (1..=5000).map(|i| format!("{i}\n")).collect();
        let short = elide(&seq, ELIDE_MIN_BYTES).unwrap();
        assert!(short.starts_with("1\n2\n"));
        assert!(short.ends_with("4999\n5000"));
        assert!(short.contains("[… 4980 lines of 23893 bytes elided by compaction …]"));
        assert!(elide("small", ELIDE_MIN_BYTES).is_none());
        let one_line = "x".repeat(10_000);
        assert!(elide(&one_line, ELIDE_MIN_BYTES).unwrap().len() < 300);
    }

    #[test]
    fn turns_start_at_user_messages_that_answer_no_tool_call() {
        let tool = Block::ToolUse {
            id: "t".into(),
            name: "bash".into(),
            input: serde_json::json!({}),
        };
        let result = Block::ToolResult {
            tool_use_id: "t".into(),
            content: "ok".into(),
            is_error: false,
        };
        let view = vec![
            Message::new(Role::User, vec![Block::text("a")]),
            Message::new(Role::Assistant, vec![tool]),
            Message::new(Role::User, vec![result]),
            Message::new(Role::Assistant, vec![Block::text("done")]),
            Message::new(Role::User, vec![Block::text("b")]),
            Message::new(Role::User, vec![Block::text("<background-results>")]),
        ];
        assert_eq!(turn_starts(&view), vec![0, 4]);
    }

    #[test]
    fn an_oversized_rendering_keeps_its_start_and_its_end() {
        let older: Vec<Message> = (0..2000)
            .map(|i| Message::new(Role::User, vec![Block::text(format!("msg {i}"))]))
            .collect();
        let r = render(&older, 4000);
        assert!(r.len() < 4200, "{}", r.len());
        assert!(r.starts_with("User: msg 0\n") && r.ends_with("User: msg 1999\n\n"));
        assert!(r.contains("bytes of the conversation left out"));
    }
}
