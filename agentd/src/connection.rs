//! One client connection: peer check, line framing, JSON-RPC 2.0 requests,
//! notifications and batches, many requests in flight at once.
//!
//! The reader hands each line to its own task; replies go through a channel
//! to one writer, so a slow request never holds up the ones behind it.
//!
//! Memory per connection is bounded: at most [`MAX_IN_FLIGHT`] requests run
//! at once (a batch counts as many as it runs concurrently) and at most
//! [`MAX_QUEUED_REPLIES`] replies wait for the writer. When both are full
//! the reader stops reading the socket, so a client that sends without
//! reading is held back by the kernel's socket buffers instead of growing
//! the daemon.

use crate::daemon::Daemon;
use crate::rpc;
use agentd_proto::codec::{self, Frame, MAX_LINE_BYTES};
use agentd_proto::message;
use agentd_proto::{Id, Request, Response, RpcError};
use interprocess::local_socket::tokio::{Stream, prelude::*};
use serde_json::Value;
use std::sync::Arc;
use tokio::io::BufReader;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Most requests one connection has running at once. Past it the daemon
/// reads no further lines from that connection until one finishes (its
/// reply queued): backpressure, not an error. A long-poll counts too, so
/// a client wanting more than 64 long-polls at once opens more connections.
pub const MAX_IN_FLIGHT: usize = 64;
/// Most replies waiting to be written to one connection; a request whose
/// reply finds the queue full keeps its slot under [`MAX_IN_FLIGHT`] until
/// the client reads.
pub const MAX_QUEUED_REPLIES: usize = 64;
/// Most requests in one batch; a longer batch gets one -32600 error.
/// A batch's reply is one array, built whole before it is sent.
pub const MAX_BATCH: usize = 1024;

/// Serves one connection until the peer closes it, sends an oversized line,
/// or the daemon closes connections at the end of a shutdown (in-flight
/// requests still get their replies; requests read during the shutdown get
/// -32005).
///
/// `permit` is the connection's slot under the connection limit; it is
/// released before the socket closes, so a peer that sees the close can
/// count on the slot being free.
pub async fn serve(daemon: Arc<Daemon>, stream: Stream, permit: OwnedSemaphorePermit) {
    match stream.peer_creds() {
        Ok(creds) if creds.euid() == Some(rustix::process::geteuid().as_raw()) => {}
        Ok(creds) => {
            tracing::warn!(
                peer_uid = ?creds.euid(),
                peer_pid = ?creds.pid(),
                "refused a connection from another user"
            );
            discard_briefly(&stream).await;
            return;
        }
        Err(e) => {
            tracing::warn!("refused a connection whose credentials cannot be read: {e}");
            return;
        }
    }
    let stream = Arc::new(stream);
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(MAX_QUEUED_REPLIES);
    let writer = tokio::spawn(write_replies(stream.clone(), out_rx));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut reader = BufReader::new(&*stream);
    let mut buf = Vec::new();
    loop {
        let frame = tokio::select! {
            frame = codec::read_line(&mut reader, &mut buf, MAX_LINE_BYTES, Some(daemon.config.torn_request_timeout)) => frame,
            _ = daemon.closing() => break,
        };
        match frame {
            Ok(Frame::Line) => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // Whether the daemon takes new work is decided when the line
                // is read, so a request read before a shutdown is served.
                let accepting = daemon.shutdown_requested().is_none();
                let message = match parse_line(&buf) {
                    Ok(message) => message,
                    Err(reply) => Message::Reply(reply),
                };
                buf = Vec::new();
                let weight = message.weight();
                let permit = tokio::select! {
                    permit = in_flight.clone().acquire_many_owned(weight) => permit.expect("never closed"),
                    _ = daemon.closing() => break,
                };
                let daemon = daemon.clone();
                let out = out_tx.clone();
                tokio::spawn(async move {
                    if let Some(reply) = handle_message(&daemon, message, accepting).await {
                        let _ = out.send(reply).await;
                    }
                    drop(permit);
                });
            }
            Ok(Frame::TooLong) => {
                let err = RpcError::invalid_request(format!(
                    "line longer than {MAX_LINE_BYTES} bytes; closing the connection"
                ));
                drop(std::mem::take(&mut buf)); // its first 8 MiB are not kept
                tokio::select! {
                    _ = out_tx.send(encode(&Response::err(Id::Null, err))) => {}
                    _ = daemon.closing() => {}
                }
                break;
            }
            Ok(Frame::Torn) => {
                tracing::debug!("closing a connection whose request line was left unfinished");
                break;
            }
            Ok(Frame::Eof) | Err(_) => break,
        }
    }
    drop(out_tx);
    let _ = writer.await;
    drop(permit);
}

async fn write_replies(stream: Arc<Stream>, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = rx.recv().await {
        if codec::write_line(&mut &*stream, &line).await.is_err() {
            break;
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("responses always serialise")
}

/// A line, parsed.
enum Message {
    /// One request object (or something that must be answered as invalid).
    One(Value),
    /// A batch of 1 to [`MAX_BATCH`] items.
    Batch(Vec<Value>),
    /// Answered without running anything (parse error, empty or oversized
    /// batch, invalid UTF-8); `None` for a notification that gets no reply.
    Reply(Option<Vec<u8>>),
}

impl Message {
    /// How many in-flight slots handling it takes: a batch runs up to
    /// [`MAX_IN_FLIGHT`] of its items at once.
    fn weight(&self) -> u32 {
        match self {
            Message::Batch(items) => items.len().min(MAX_IN_FLIGHT) as u32,
            _ => 1,
        }
    }
}

/// Parses a line into what is to be run.
fn parse_line(line: &[u8]) -> Result<Message, Option<Vec<u8>>> {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Err(match message::invalid_utf8_request(line) {
                Some(reply) => reply.map(|r| encode(&r)),
                None => Some(encode(&Response::err(Id::Null, RpcError::parse_error(e)))),
            });
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Err(Some(encode(&Response::err(
            Id::Null,
            RpcError::invalid_request("an empty batch"),
        )))),
        Value::Array(items) if items.len() > MAX_BATCH => Err(Some(encode(&Response::err(
            Id::Null,
            RpcError::invalid_request(format!(
                "a batch of {} requests; at most {MAX_BATCH} per batch",
                items.len()
            )),
        )))),
        Value::Array(items) => Ok(Message::Batch(items)),
        value => Ok(Message::One(value)),
    }
}

/// Handles one line: a request, a notification or a batch. Returns the
/// reply line, or `None` when nothing is to be sent (notifications, a batch
/// of notifications). With `accepting` false (the line was read after
/// shutdown began) every method but `daemon.info` gets -32005.
pub async fn handle_line(daemon: &Arc<Daemon>, line: &[u8], accepting: bool) -> Option<Vec<u8>> {
    match parse_line(line) {
        Ok(message) => handle_message(daemon, message, accepting).await,
        Err(reply) => reply,
    }
}

async fn handle_message(
    daemon: &Arc<Daemon>,
    message: Message,
    accepting: bool,
) -> Option<Vec<u8>> {
    match message {
        Message::Reply(reply) => reply,
        Message::One(value) => handle_one(daemon, value, accepting)
            .await
            .map(|r| encode(&r)),
        Message::Batch(items) => {
            let mut replies = vec![None; items.len()];
            let mut running = tokio::task::JoinSet::new();
            let concurrency = items.len().min(MAX_IN_FLIGHT);
            for (i, item) in items.into_iter().enumerate() {
                if running.len() >= concurrency
                    && let Some(Ok((j, reply))) = running.join_next().await
                {
                    replies[j] = reply;
                }
                let daemon = daemon.clone();
                running.spawn(async move { (i, handle_one(&daemon, item, accepting).await) });
            }
            while let Some(done) = running.join_next().await {
                if let Ok((j, reply)) = done {
                    replies[j] = reply;
                }
            }
            let replies: Vec<Response> = replies.into_iter().flatten().collect();
            (!replies.is_empty()).then(|| encode(&replies))
        }
    }
}

async fn handle_one(daemon: &Arc<Daemon>, value: Value, accepting: bool) -> Option<Response> {
    let request = match Request::from_value(value) {
        Ok(r) => r,
        Err((id, err)) => return Some(Response::err(id, err)),
    };
    let result = rpc::dispatch(daemon, &request.method, request.params, accepting).await;
    let id = request.id?;
    Some(match result {
        Ok(value) => Response::ok(id, value),
        Err(err) => Response::err(id, err),
    })
}

/// Reads and discards what a refused peer sends, until it closes, for at
/// most 1 s and 64 KiB, before the connection is closed. Closing a Unix
/// socket with unread data resets the connection, so a peer that sent its
/// request at once would see "connection reset" (or a broken pipe) instead
/// of the clean end of file that says "refused, no answer".
async fn discard_briefly(stream: &Stream) {
    use tokio::io::AsyncReadExt;
    const LIMIT: usize = 64 * 1024;
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut reader = stream;
        while total < LIMIT {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}
