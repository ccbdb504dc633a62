//! Background results: reading the session's pending notifications from
//! agentd, deciding which the model still needs, and the
//! `<background-results>` block they go in (docs/agent.md, "How background
//! results arrive").
//!
//! Exactly once: the caller peeks ([`gather`]), persists the user message
//! carrying the block (with the delivered job ids), and only then acks up
//! to [`Gathered::max_seq`]. A notification whose job the transcript already
//! lists was persisted by an earlier run that died before its ack (or was
//! reported by `bash`): it is acked, not shown again.

use agentd_proto::methods::{AckParams, NotificationsAck, NotificationsPeek, PeekParams};
use agentd_proto::{Client, Notification};
use std::collections::HashSet;

/// Most notifications taken per model call.
pub const MAX_PER_CALL: u64 = 50;

/// What [`gather`] found.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Notifications to show the model, oldest first.
    pub deliver: Vec<Notification>,
    /// Highest `seq` above the delivered one (shown or skipped as already
    /// reported by `bash`); to record in the message and ack after it.
    pub max_seq: Option<u64>,
    /// How many older results agentd dropped unread (the session held more
    /// than `[retention] max_pending_per_session`): the model is told.
    /// 0 when it was told already (`told_drops`).
    pub dropped: u64,
    /// The `dropped_up_to_seq` of those drops, when `dropped` is not 0.
    pub dropped_seq: Option<u64>,
}

/// Peeks the session's pending notifications and sorts them: those of
/// `handled` jobs (the transcript has them) are skipped; the rest are to be
/// delivered. Drops agentd reports are to be told unless `told_drops` (the
/// transcript's) has them; either way [`Gathered::max_seq`] covers them,
/// so the ack clears them even with no notification pending.
///
/// Errors: agentd errors.
pub async fn gather(
    client: &Client,
    session: &str,
    handled: &HashSet<String>,
    told_drops: &HashSet<u64>,
) -> anyhow::Result<Gathered> {
    let peeked = client
        .call::<NotificationsPeek>(&PeekParams {
            session: Some(session.to_string()),
            after_seq: None,
            max: Some(MAX_PER_CALL),
        })
        .await?;
    let mut out = Gathered {
        max_seq: peeked.dropped_up_to_seq,
        ..Gathered::default()
    };
    if let Some(seq) = peeked.dropped_up_to_seq
        && peeked.dropped > 0
        && !told_drops.contains(&seq)
    {
        out.dropped = peeked.dropped;
        out.dropped_seq = Some(seq);
    }
    for n in peeked.notifications {
        out.max_seq = Some(out.max_seq.map_or(n.seq, |m| m.max(n.seq)));
        if !handled.contains(&n.job_id) {
            out.deliver.push(n);
        }
    }
    Ok(out)
}

/// Acks the session's notifications up to `up_to_seq`.
///
/// Errors: agentd errors.
pub async fn ack(client: &Client, session: &str, up_to_seq: u64) -> anyhow::Result<()> {
    client
        .call::<NotificationsAck>(&AckParams {
            session: Some(session.to_string()),
            up_to_seq,
        })
        .await?;
    Ok(())
}

/// `[bg:1a2b3c4d] succeeded (exit 0): cargo build`; a job ended by a
/// signal shows `(signal SIGTERM)` instead of the exit code.
pub fn header(n: &Notification) -> String {
    let status = match (n.exit_code, &n.signal) {
        (Some(code), _) => format!(" (exit {code})"),
        (None, Some(sig)) => format!(" (signal {sig})"),
        (None, None) => String::new(),
    };
    format!("[bg:{}] {}{status}: {}", n.short_id, n.state, n.command)
}

/// The line telling the model that `dropped` earlier results were lost.
pub fn dropped_line(dropped: u64) -> String {
    format!(
        "{dropped} earlier background results were dropped unread: too many were waiting \
         (agentd's [retention] max_pending_per_session)."
    )
}

/// The text block for the model.
pub fn block(notifications: &[Notification]) -> String {
    block_with_dropped(notifications, 0)
}

/// The text block for the model: the results, after a line saying how
/// many earlier ones were dropped, if any were.
pub fn block_with_dropped(notifications: &[Notification], dropped: u64) -> String {
    let mut out = String::from("<background-results>\n");
    if dropped > 0 {
        out.push_str(&dropped_line(dropped));
        out.push('\n');
    }
    for n in notifications {
        out.push_str(&header(n));
        out.push('\n');
        let tail = n.output_tail.trim_end_matches('\n');
        if !tail.is_empty() {
            out.push_str(tail);
            out.push('\n');
        }
    }
    out.push_str("</background-results>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::JobState;

    fn notification(
        state: JobState,
        exit: Option<i32>,
        signal: Option<&str>,
        command: &str,
        tail: &str,
    ) -> Notification {
        Notification {
            seq: 1,
            job_id: "1a2b3c4d-0000".into(),
            short_id: String::new(),
            session: "agent".into(),
            state,
            exit_code: exit,
            signal: signal.map(str::to_string),
            command: command.into(),
            duration_ms: None,
            output_tail: tail.into(),
            finished_at: "2026-01-01T00:00:00Z".into(),
            reason: None,
        }
    }

    /// The block in a doc's first fenced example that starts with
    /// `<background-results>`.
    fn documented_block(doc: &str) -> &str {
        let start = doc
            .find("```\n<background-results>\n")
            .expect("the doc shows a block")
            + 4;
        let end = start + doc[start..].find("</background-results>").unwrap();
        &doc[start..end + "</background-results>".len()]
    }

    #[test]
    fn the_docs_show_the_block_exactly_as_sent() {
        let mut failed = notification(
            JobState::Failed,
            Some(101),
            None,
            "cargo test",
            "test parse::tests::empty_input ... FAILED\n",
        );
        failed.short_id = "1a2b3c4d".into();
        assert_eq!(
            documented_block(include_str!("../../../README.md")),
            block(&[failed.clone()])
        );
        failed
            .output_tail
            .push_str("test result: FAILED. 11 passed; 1 failed; 0 ignored\n");
        let mut killed = notification(JobState::Killed, None, Some("SIGTERM"), "./serve.sh", "");
        killed.short_id = "9e8d7c6b".into();
        assert_eq!(
            documented_block(include_str!("../../../docs/agent.md")),
            block(&[failed, killed])
        );
    }

    #[test]
    fn block_has_the_designed_shape() {
        let n = Notification {
            seq: 3,
            job_id: "1a2b3c4d-0000".into(),
            short_id: "1a2b3c4d".into(),
            session: "s".into(),
            state: JobState::Succeeded,
            exit_code: Some(0),
            signal: None,
            command: "cargo build".into(),
            duration_ms: Some(5),
            output_tail: "Finished\n".into(),
            finished_at: "2026-01-01T00:00:00Z".into(),
            reason: None,
        };
        assert_eq!(
            block(std::slice::from_ref(&n)),
            "<background-results>\n[bg:1a2b3c4d] succeeded (exit 0): cargo build\nFinished\n</background-results>"
        );
        assert!(
            block_with_dropped(&[n], 3).starts_with(
                "<background-results>\n3 earlier background results were dropped unread"
            )
        );
    }
}
