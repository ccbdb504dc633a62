//! One client connection: peer check, line framing, JSON-RPC 2.0 requests,
//! notifications and batches, many requests in flight at once.
//!
//! The reader hands each line to its own task; replies go through a channel
//! to one writer, so a slow request never holds up the ones behind it.

use crate::daemon::Daemon;
use crate::rpc;
use agentd_proto::codec::{self, Frame, MAX_LINE_BYTES};
use agentd_proto::{Id, Request, Response, RpcError};
use interprocess::local_socket::tokio::{Stream, prelude::*};
use serde_json::Value;
use std::sync::Arc;
use tokio::io::BufReader;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

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
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_replies(stream.clone(), out_rx));
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
                let line = std::mem::take(&mut buf);
                // Whether the daemon takes new work is decided when the line
                // is read, so a request read before a shutdown is served.
                let accepting = daemon.shutdown_requested().is_none();
                let daemon = daemon.clone();
                let out = out_tx.clone();
                tokio::spawn(async move {
                    if let Some(reply) = handle_line(&daemon, &line, accepting).await {
                        let _ = out.send(reply);
                    }
                });
            }
            Ok(Frame::TooLong) => {
                let err = RpcError::invalid_request(format!(
                    "line longer than {MAX_LINE_BYTES} bytes; closing the connection"
                ));
                let _ = out_tx.send(encode(&Response::err(Id::Null, err)));
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

async fn write_replies(stream: Arc<Stream>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(line) = rx.recv().await {
        if codec::write_line(&mut &*stream, &line).await.is_err() {
            break;
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("responses always serialise")
}

/// Handles one line: a request, a notification or a batch. Returns the
/// reply line, or `None` when nothing is to be sent (notifications, a batch
/// of notifications). With `accepting` false (the line was read after
/// shutdown began) every method but `daemon.info` gets -32005.
pub async fn handle_line(daemon: &Arc<Daemon>, line: &[u8], accepting: bool) -> Option<Vec<u8>> {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return match bad_utf8_request(line) {
                Some(Some(reply)) => Some(encode(&reply)),
                Some(None) => None,
                None => Some(encode(&Response::err(Id::Null, RpcError::parse_error(e)))),
            };
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Some(encode(&Response::err(
            Id::Null,
            RpcError::invalid_request("an empty batch"),
        ))),
        Value::Array(items) => {
            let tasks: Vec<_> = items
                .into_iter()
                .map(|item| {
                    let daemon = daemon.clone();
                    tokio::spawn(async move { handle_one(&daemon, item, accepting).await })
                })
                .collect();
            let mut replies = Vec::new();
            for task in tasks {
                if let Ok(Some(reply)) = task.await {
                    replies.push(reply);
                }
            }
            (!replies.is_empty()).then(|| encode(&replies))
        }
        value => handle_one(daemon, value, accepting)
            .await
            .map(|r| encode(&r)),
    }
}

/// A line that is not UTF-8 but, decoded lossily, is one valid request
/// object: answered with its id and -32602 naming the strings that held
/// invalid bytes (`Some(None)` for a notification: no reply). `None` when
/// the line is not such a request, so it stays a parse error.
fn bad_utf8_request(line: &[u8]) -> Option<Option<Response>> {
    if std::str::from_utf8(line).is_ok() {
        return None;
    }
    let lossy = String::from_utf8_lossy(line);
    let value: Value = serde_json::from_str(&lossy).ok()?;
    let mut bad = Vec::new();
    replaced_strings(&value, String::new(), &mut bad);
    let request = Request::from_value(value).ok()?;
    if bad.is_empty() {
        return None;
    }
    let reply = |id: Id, err: RpcError| request.id.as_ref().map(|_| Response::err(id, err));
    let names = bad.join(", ");
    if bad.iter().all(|p| p.starts_with("params.")) {
        let field = bad[0]["params.".len()..]
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_string();
        let err = RpcError::invalid_params(format!("{names} is not valid UTF-8"), Some(&field));
        Some(reply(request.id.clone().unwrap_or(Id::Null), err))
    } else {
        // The method or the id itself is damaged: the id cannot be trusted.
        let id = if bad.iter().any(|p| p == "id") {
            Id::Null
        } else {
            request.id.clone().unwrap_or(Id::Null)
        };
        let err = RpcError::invalid_request(format!("{names} is not valid UTF-8"));
        Some(Some(Response::err(id, err)))
    }
}

/// Collects the paths (`params.command`, `params.env.A`) of the strings
/// and keys holding U+FFFD, which lossy decoding put where invalid bytes
/// were.
fn replaced_strings(value: &Value, path: String, out: &mut Vec<String>) {
    const MARK: char = char::REPLACEMENT_CHARACTER;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains(MARK) => out.push(path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                replaced_strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains(MARK) {
                    out.push(join(key));
                } else {
                    replaced_strings(item, join(key), out);
                }
            }
        }
        _ => {}
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
