//! The accept loop: one task per connection, at most [`MAX_CONNECTIONS`] at
//! once, and a graceful stop that lets every connection finish the requests
//! it has in flight (so `daemon.shutdown` gets its reply) before returning.

use crate::connection;
use crate::daemon::Daemon;
use agentd_proto::codes;
use agentd_proto::{Id, Response, RpcError};
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Most connections served at once; one more gets a -32003 error and is
/// closed.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a stop waits for connections to finish their in-flight
/// requests before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until `stop` resolves, then stops listening and
/// returns the open connections: they keep being served (new requests get
/// -32005) until [`Daemon::close_connections`], then [`drain`] waits for
/// them.
pub async fn serve(
    listener: Listener,
    daemon: Arc<Daemon>,
    stop: impl Future<Output = ()>,
) -> JoinSet<()> {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let daemon = daemon.clone();
                        connections.spawn(connection::serve(daemon, stream, permit));
                    }
                    Err(_) => {
                        tokio::spawn(refuse(stream));
                    }
                },
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => break,
        }
    }
    connections
}

/// Waits (up to 5 s) for closing connections to finish the requests they
/// are handling, then drops the rest.
pub async fn drain(mut connections: JoinSet<()>) {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "dropping {} connections still busy at shutdown",
            connections.len()
        );
    }
}

/// Tells a connection over the limit why it is closed.
async fn refuse(stream: Stream) {
    let err = RpcError::new(
        codes::LIMIT_EXCEEDED,
        format!("too many connections (at most {MAX_CONNECTIONS}); try again later"),
    );
    let line = serde_json::to_vec(&Response::err(Id::Null, err)).expect("serialisable");
    let _ = agentd_proto::codec::write_line(&mut &stream, &line).await;
}
