//! `notifications.peek`, `.ack`, `.drain` and `.wait`: the per-session
//! queues of finished jobs.
//!
//! Exactly-once: peek, store, then ack. `drain` is peek-and-ack in one step
//! (at-most-once): what it returns leaves the queue before the reply.

use super::params;
use crate::daemon::Daemon;
use agentd_proto::RpcError;
use agentd_proto::methods::{
    AckParams, AckResult, DEFAULT_NOTIFICATIONS_MAX, DrainParams, MAX_PAGE_BYTES,
    NotificationsResult, NotificationsWaitParams, PeekParams,
};
use std::sync::Arc;

/// The page size asked for: `max`, default 100.
fn max(m: Option<u64>) -> usize {
    usize::try_from(m.unwrap_or(DEFAULT_NOTIFICATIONS_MAX)).unwrap_or(usize::MAX)
}

/// `notifications.peek`: pending notifications, oldest first, one page
/// (`max`, default 100, and at most [`MAX_PAGE_BYTES`] of JSON); `more`
/// says whether others follow.
pub async fn peek(d: &Arc<Daemon>, p: PeekParams) -> Result<NotificationsResult, RpcError> {
    let session = params::session(p.session)?;
    let queues = d.shared.queues.lock().expect("queues poisoned");
    let (notifications, more) = queues.peek(
        &session,
        p.after_seq.unwrap_or(0),
        max(p.max),
        MAX_PAGE_BYTES,
    );
    let (dropped, dropped_up_to_seq) = queues.dropped(&session);
    Ok(NotificationsResult {
        notifications,
        more,
        dropped,
        dropped_up_to_seq,
    })
}

/// `notifications.ack`: acknowledges up to `up_to_seq`; durable before the
/// reply.
pub async fn ack(d: &Arc<Daemon>, p: AckParams) -> Result<AckResult, RpcError> {
    let session = params::session(p.session)?;
    let acked = d.store.ack(session, p.up_to_seq).await.map_err(|e| {
        RpcError::internal(format!(
            "cannot record the ack in {}: {e}",
            d.config.state_dir.join("agentd.db").display()
        ))
    })?;
    d.retention_wake.notify_one();
    Ok(AckResult { acked })
}

/// `notifications.drain`: takes one page of pending notifications off the
/// queue (as [`peek`] pages) and acknowledges exactly those durably, and
/// the drops it reports (also when no notification is pending).
/// Concurrent drains never return the same notification twice.
pub async fn drain(d: &Arc<Daemon>, p: DrainParams) -> Result<NotificationsResult, RpcError> {
    let session = params::session(p.session)?;
    let (taken, more, (dropped, dropped_seq)) = {
        let mut queues = d.shared.queues.lock().expect("queues poisoned");
        let (page, more) = queues.peek(&session, 0, max(p.max), MAX_PAGE_BYTES);
        let dropped = queues.dropped(&session);
        match page.last() {
            Some(last) => (queues.remove_up_to(&session, last.seq), more, dropped),
            None => (Vec::new(), false, dropped),
        }
    };
    // The ack covers the page and the drops reported here.
    let Some(up_to) = taken.last().map(|n| n.seq).max(dropped_seq) else {
        return Ok(NotificationsResult::default());
    };
    if let Err(e) = d.store.ack(session, up_to).await {
        d.shared
            .queues
            .lock()
            .expect("queues poisoned")
            .restore(taken);
        return Err(RpcError::internal(format!(
            "cannot record the ack in {}: {e}",
            d.config.state_dir.join("agentd.db").display()
        )));
    }
    d.retention_wake.notify_one();
    Ok(NotificationsResult {
        notifications: taken,
        more,
        dropped,
        dropped_up_to_seq: dropped_seq,
    })
}

/// `notifications.wait`: returns a page of the pending notifications (as
/// [`peek`]) as soon as there is one (without acknowledging them), or none
/// at `timeout_ms` or at shutdown. Woken by the queue, never by polling.
/// Drops alone do not end the wait (a drop comes with a new notification;
/// one left without any, its notifications' jobs removed, is for `peek`
/// to report).
pub async fn wait(
    d: &Arc<Daemon>,
    p: NotificationsWaitParams,
) -> Result<NotificationsResult, RpcError> {
    let session = params::session(p.session)?;
    let deadline = tokio::time::Instant::now() + params::millis("timeout_ms", p.timeout_ms)?;
    loop {
        let changed = d.shared.queue_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let (notifications, more, dropped) = {
            let queues = d.shared.queues.lock().expect("queues poisoned");
            let (page, more) = queues.peek(&session, 0, max(p.max), MAX_PAGE_BYTES);
            (page, more, queues.dropped(&session))
        };
        if !notifications.is_empty() {
            return Ok(NotificationsResult {
                notifications,
                more,
                dropped: dropped.0,
                dropped_up_to_seq: dropped.1,
            });
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = d.shutting_down() => break,
        }
    }
    Ok(NotificationsResult::default())
}
