//! `notifications.peek`, `.ack`, `.drain` and `.wait`: the per-session
//! queues of finished jobs.
//!
//! Exactly-once: peek, store, then ack. `drain` is peek-and-ack in one step
//! (at-most-once): what it returns leaves the queue before the reply.

use super::params;
use crate::daemon::Daemon;
use agentd_proto::RpcError;
use agentd_proto::methods::{
    AckParams, AckResult, DrainParams, NotificationsResult, NotificationsWaitParams, PeekParams,
};
use std::sync::Arc;

fn max(m: Option<u64>) -> usize {
    m.map_or(usize::MAX, |m| m as usize)
}

/// `notifications.peek`: pending notifications, oldest first.
pub async fn peek(d: &Arc<Daemon>, p: PeekParams) -> Result<NotificationsResult, RpcError> {
    let session = params::session(p.session)?;
    let notifications = d.shared.queues.lock().expect("queues poisoned").peek(
        &session,
        p.after_seq.unwrap_or(0),
        max(p.max),
    );
    Ok(NotificationsResult { notifications })
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
    Ok(AckResult { acked })
}

/// `notifications.drain`: takes pending notifications off the queue and
/// acknowledges them durably. Concurrent drains never return the same
/// notification twice.
pub async fn drain(d: &Arc<Daemon>, p: DrainParams) -> Result<NotificationsResult, RpcError> {
    let session = params::session(p.session)?;
    let taken = {
        let mut queues = d.shared.queues.lock().expect("queues poisoned");
        let pending = queues.peek(&session, 0, max(p.max));
        match pending.last() {
            Some(last) => queues.remove_up_to(&session, last.seq),
            None => Vec::new(),
        }
    };
    let Some(last) = taken.last() else {
        return Ok(NotificationsResult {
            notifications: taken,
        });
    };
    if let Err(e) = d.store.ack(session, last.seq).await {
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
    Ok(NotificationsResult {
        notifications: taken,
    })
}

/// `notifications.wait`: returns the pending notifications as soon as there
/// is one (without acknowledging them), or none at `timeout_ms` or at
/// shutdown. Woken by the queue, never by polling.
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
        let pending =
            d.shared
                .queues
                .lock()
                .expect("queues poisoned")
                .peek(&session, 0, usize::MAX);
        if !pending.is_empty() {
            return Ok(NotificationsResult {
                notifications: pending,
            });
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = d.shutting_down() => break,
        }
    }
    Ok(NotificationsResult {
        notifications: Vec::new(),
    })
}
