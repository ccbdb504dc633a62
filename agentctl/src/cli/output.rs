//! Formatting shared by the job commands: state colours, durations, the
//! exit column, notifications, JSON, and the terminal checks behind them.
//!
//! Colour is used only when the stream is a terminal and `NO_COLOR` is unset
//! or empty (<https://no-color.org>).

use agentd_proto::{Job, JobState, Notification};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// True when the chain of `err` holds an I/O error of kind `BrokenPipe`:
/// the reader of our stdout went away (`agentctl logs ID | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().map(|e| e.kind()) == broken
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                == broken
    })
}

/// True when `NO_COLOR` asks for no colour (set and not empty).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether to colour what goes to stdout.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && !no_color()
}

/// True when stderr is a terminal (spinners, progress).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether to colour what goes to stderr.
pub fn stderr_color() -> bool {
    stderr_is_terminal() && !no_color()
}

/// The terminal's width in columns when stdout is a terminal, else `None`
/// (no truncation when piped).
pub fn stdout_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// `text` in the colour of `state` (an ANSI SGR sequence) when `color`.
/// Green for success, red for failure and lost, yellow for killed and
/// timed out, cyan for running, dim for queued, magenta for paused.
pub fn paint(state: JobState, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let sgr = match state {
        JobState::Succeeded => "32",
        JobState::Failed | JobState::Lost => "31",
        JobState::Killed | JobState::TimedOut => "33",
        JobState::Running => "36",
        JobState::Queued => "2",
        JobState::Paused => "35",
    };
    format!("\x1b[{sgr}m{text}\x1b[0m")
}

/// A duration in milliseconds, compactly: `850ms`, `12.3s`, `5m03s`,
/// `2h04m`, `3d02h`.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms}ms"),
        1..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Milliseconds from an RFC 3339 timestamp to now; `None` when it does not
/// parse. A timestamp in the future counts as 0.
pub fn ms_since(timestamp: &str) -> Option<u64> {
    let then = OffsetDateTime::parse(timestamp, &Rfc3339).ok()?;
    let elapsed = OffsetDateTime::now_utc() - then;
    Some(elapsed.whole_milliseconds().max(0) as u64)
}

/// How long a job ran (finished) or has been running (running), in ms.
pub fn job_duration_ms(job: &Job) -> Option<u64> {
    match job.state {
        JobState::Queued => None,
        // A paused job's duration keeps counting wall time.
        JobState::Running | JobState::Paused => job.started_at.as_deref().and_then(ms_since),
        _ => job.duration_ms,
    }
}

/// The EXIT column: the exit code, else the signal's name, else `-`.
pub fn exit_column(exit_code: Option<i32>, signal: Option<&str>) -> String {
    match (exit_code, signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => sig.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// How a job ended, for one-line summaries: `(exit 3)`, `(SIGTERM)`, or
/// empty when neither is known.
pub fn outcome(exit_code: Option<i32>, signal: Option<&str>) -> String {
    match (exit_code, signal) {
        (Some(code), _) => format!(" (exit {code})"),
        (None, Some(sig)) => format!(" ({sig})"),
        (None, None) => String::new(),
    }
}

/// A command on one line: control characters (newlines, tabs) become
/// spaces.
pub fn one_line(command: &str) -> String {
    command
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `s` cut to at most `width` characters, ending in `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    match width {
        0 => String::new(),
        _ => s.chars().take(width - 1).chain(['…']).collect(),
    }
}

/// Writes `value` as pretty JSON and a newline to stdout.
///
/// Errors: writing stdout failed.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A notification as the agent shows it to the model (docs/agent.md):
/// `[bg:<short_id>] <state> (exit <code>): <command>`, then the output tail
/// ending in a newline.
pub fn notification(n: &Notification, color: bool) -> String {
    let mut text = format!(
        "[bg:{}] {}{}: {}\n",
        n.short_id,
        paint(n.state, n.state.as_str(), color),
        outcome(n.exit_code, n.signal.as_deref()),
        n.command
    );
    text.push_str(&n.output_tail);
    if !n.output_tail.is_empty() && !n.output_tail.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A JSON array written to stdout one element at a time, as it arrives
/// page by page, in the same pretty format as [`print_json`] of the whole
/// array: a reader sees every element once, and a valid array once
/// [`JsonArray::finish`] has run.
pub struct JsonArray {
    /// Elements written so far.
    count: usize,
}

impl JsonArray {
    /// Begins the array (writes nothing until the first element or
    /// [`JsonArray::finish`]).
    pub fn new() -> JsonArray {
        JsonArray { count: 0 }
    }

    /// Writes elements and flushes stdout.
    ///
    /// Errors: writing stdout failed.
    pub fn write<T: Serialize>(&mut self, items: &[T]) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        for item in items {
            out.write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
            let text = serde_json::to_string_pretty(item)?;
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                write!(out, "  {line}")?;
            }
            self.count += 1;
        }
        out.flush()?;
        Ok(())
    }

    /// Closes the array (`[]` when it had no element) and flushes.
    ///
    /// Errors: writing stdout failed.
    pub fn finish(self) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        out.flush()?;
        Ok(())
    }
}

impl Default for JsonArray {
    fn default() -> Self {
        JsonArray::new()
    }
}

/// Notifications printed page by page, as JSON (one array of Notification
/// objects) or in the human format of [`notification`], a blank line
/// between two.
pub struct NotificationPrinter {
    /// `Some` for `--json`.
    json: Option<JsonArray>,
    /// Notifications printed so far.
    count: usize,
    /// Colour the states.
    color: bool,
    /// The drop was reported already.
    told_dropped: bool,
}

impl NotificationPrinter {
    /// A printer for `--json` (`json`) or people.
    pub fn new(json: bool) -> NotificationPrinter {
        NotificationPrinter {
            json: json.then(JsonArray::new),
            count: 0,
            color: stdout_color(),
            told_dropped: false,
        }
    }

    /// Says on stderr, once, that `dropped` older notifications were
    /// dropped unread (agentd's `[retention] max_pending_per_session`).
    pub fn dropped(&mut self, dropped: u64) {
        if dropped > 0 && !self.told_dropped {
            self.told_dropped = true;
            eprintln!(
                "agentctl: {dropped} older notifications were dropped unread: the session held more \
                 than agentd's [retention] max_pending_per_session (take results sooner with \
                 `agentctl drain`, or raise that limit in agentd's config.toml)"
            );
        }
    }

    /// Prints a page and flushes stdout, so once this returns the page has
    /// reached whoever reads it (`drain` acks only after).
    ///
    /// Errors: writing stdout failed.
    pub fn page(&mut self, notifications: &[Notification]) -> anyhow::Result<()> {
        if let Some(json) = &mut self.json {
            json.write(notifications)?;
            self.count += notifications.len();
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        for n in notifications {
            if self.count > 0 {
                writeln!(out)?;
            }
            out.write_all(notification(n, self.color).as_bytes())?;
            self.count += 1;
        }
        out.flush()?;
        Ok(())
    }

    /// Ends the output: closes the JSON array, or says on stderr that there
    /// were none.
    ///
    /// Errors: writing stdout failed.
    pub fn finish(self, session: Option<&str>) -> anyhow::Result<()> {
        match self.json {
            Some(json) => json.finish(),
            None => {
                if self.count == 0 {
                    eprintln!(
                        "no notifications pending for session {}",
                        session.unwrap_or("default")
                    );
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_345), "12.3s");
        assert_eq!(duration(303_000), "5m03s");
        assert_eq!(duration(7_440_000), "2h04m");
        assert_eq!(duration(266_400_000), "3d02h");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("make test", 20), "make test");
        assert_eq!(truncate("make test", 5), "make…");
        assert_eq!(truncate("make", 0), "");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
