//! How `agentctl chat` looks on a terminal: each kind of line gets a
//! distinct, restrained style, so the model's words, its tool calls,
//! background results, notices and the per-turn token count are told apart
//! at a glance:
//!
//! | line | looks like | colour |
//! | --- | --- | --- |
//! | your prompt | `> run the tests` | as typed |
//! | the model's text | plain | none |
//! | a tool call | `  → bash: cargo test` (indented, an arrow, not `>`) | cyan |
//! | a background result | `[bg:1a2b3c4d] failed (exit 101): cargo test` | `[bg:…]` bold, the rest in the state's colour |
//! | a notice | `(the reply was cut at max_tokens)` | dim italic |
//! | token usage, after each turn | `  tokens: 12,345 in · 456 out` | dim |
//!
//! Colour only when stdout is a terminal and `NO_COLOR` is unset or empty;
//! the shapes (indent, arrow) stay without colour. While the model has not
//! sent its first token, a spinner runs on stderr (a terminal only).

use super::notifications;
use super::transcript::Usage;
use crate::cli::output;
use agentd_proto::Notification;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// The styles of chat's lines; `color` off gives the plain shapes.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// Whether to emit ANSI colour (SGR) sequences.
    color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` does not forbid it.
    pub fn for_stdout() -> Style {
        Style {
            color: output::stdout_color(),
        }
    }

    /// `text` wrapped in the SGR sequence `sgr` when colouring.
    fn sgr(&self, sgr: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A tool call, from its summary (`> bash: cargo test`):
    /// `  → bash: cargo test`, in cyan.
    pub fn tool(&self, summary: &str) -> String {
        let call = summary.strip_prefix("> ").unwrap_or(summary);
        self.sgr("36", &format!("  → {call}"))
    }

    /// A background result's line: `[bg:…]` in bold, the rest in the colour
    /// of the job's state.
    pub fn background(&self, n: &Notification) -> String {
        let header = notifications::header(n);
        match header.split_once(' ') {
            Some((marker, rest)) if self.color => format!(
                "{} {}",
                self.sgr("1", marker),
                output::paint(n.state, rest, true)
            ),
            _ => header,
        }
    }

    /// A notice about the turn, dim and italic.
    pub fn notice(&self, line: &str) -> String {
        self.sgr("2;3", line)
    }

    /// The dim status line with a turn's token usage, summed over its
    /// model calls (each call's input counts the whole context it sent).
    pub fn usage(&self, usage: &Usage, calls: u32) -> String {
        let calls = if calls > 1 {
            format!(" ({calls} model calls)")
        } else {
            String::new()
        };
        self.sgr(
            "2",
            &format!(
                "  tokens: {} in · {} out{calls}",
                thousands(usage.input_tokens),
                thousands(usage.output_tokens)
            ),
        )
    }
}

/// A spinner on stderr while the model has not answered yet; hidden when
/// stderr is not a terminal.
pub fn waiting_spinner() -> ProgressBar {
    if !output::stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message("waiting for the model");
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::JobState;

    fn notification() -> Notification {
        Notification {
            seq: 1,
            job_id: "1a2b3c4d-0000".into(),
            short_id: "1a2b3c4d".into(),
            session: "s".into(),
            state: JobState::Failed,
            exit_code: Some(101),
            signal: None,
            command: "cargo test".into(),
            duration_ms: None,
            output_tail: String::new(),
            finished_at: "2026-01-01T00:00:00Z".into(),
            reason: None,
        }
    }

    #[test]
    fn plain_lines_keep_distinct_shapes() {
        let plain = Style { color: false };
        assert_eq!(plain.tool("> bash: cargo test"), "  → bash: cargo test");
        assert_eq!(
            plain.background(&notification()),
            "[bg:1a2b3c4d] failed (exit 101): cargo test"
        );
        assert_eq!(plain.notice("(cut)"), "(cut)");
        let usage = Usage {
            input_tokens: 1_234_567,
            output_tokens: 89,
        };
        assert_eq!(
            plain.usage(&usage, 2),
            "  tokens: 1,234,567 in · 89 out (2 model calls)"
        );
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }

    #[test]
    fn colour_wraps_each_kind_differently() {
        let color = Style { color: true };
        assert_eq!(color.tool("> bash: x"), "\x1b[36m  → bash: x\x1b[0m");
        assert_eq!(
            color.background(&notification()),
            "\x1b[1m[bg:1a2b3c4d]\x1b[0m \x1b[31mfailed (exit 101): cargo test\x1b[0m"
        );
        assert_eq!(color.notice("(n)"), "\x1b[2;3m(n)\x1b[0m");
        assert!(
            color
                .usage(&Usage::default(), 1)
                .starts_with("\x1b[2m  tokens: 0 in")
        );
    }
}
