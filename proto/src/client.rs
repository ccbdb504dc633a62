//! A small tokio client: one connection, many requests in flight, replies
//! matched to callers by id.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentd_proto::ClientError> {
//! use agentd_proto::{Client, methods::{JobSubmit, SubmitParams}};
//! let client = Client::connect("/run/user/1000/agentd/agentd.sock".as_ref()).await?;
//! let job = client
//!     .call::<JobSubmit>(&SubmitParams { command: "make".into(), ..Default::default() })
//!     .await?;
//! println!("{}", job.short_id);
//! # Ok(()) }
//! ```

use crate::codec::{self, Frame};
use crate::message::{Id, Request, Response, RpcError};
use crate::methods::Method;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::BufReader;
use tokio::sync::oneshot;

/// The longest reply line the client takes: 64 MiB. The daemon's largest
/// replies stay well below: a page of `job.list` or `notifications.*` at
/// most [`crate::methods::MAX_PAGE_BYTES`] plus one entry (under 5 MiB),
/// and a `job.output` of 4 MiB of bytes that each escape to 6 (`\u0001`),
/// 24 MiB. A longer line is refused with [`ClientError::ReplyTooLarge`].
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// What can go wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered on the socket (no file, or connection refused).
    #[error("cannot connect to agentd at {path}: {source}")]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("connection to agentd failed: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon closed the connection before replying (it stopped or
    /// was killed). A connection the daemon refuses with an error (too
    /// many connections) is [`ClientError::Rpc`] with that error instead.
    #[error("agentd closed the connection before replying")]
    Closed,
    /// The daemon replied with a line longer than [`MAX_REPLY_BYTES`]; the
    /// client stopped reading that connection.
    #[error(
        "agentd's reply was larger than this client accepts ({limit} bytes); ask for fewer entries (limit, max)"
    )]
    ReplyTooLarge {
        /// The client's limit, in bytes.
        limit: usize,
    },
    /// Reading the connection failed before the reply arrived.
    #[error("reading agentd's reply failed: {0}")]
    ReadFailed(String),
    /// The daemon answered with a JSON-RPC error.
    #[error("{}", .0.message)]
    Rpc(RpcError),
    /// The reply did not have the expected shape.
    #[error("unexpected reply from agentd: {0}")]
    Decode(#[from] serde_json::Error),
}

impl ClientError {
    /// The JSON-RPC error code, when the daemon answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Callers waiting for their reply by request id; once the connection has
/// ended, why it ended.
type Pending = Arc<Mutex<Waiting>>;

/// See [`Pending`].
#[derive(Default)]
struct Waiting {
    /// Callers by request id.
    callers: HashMap<u64, oneshot::Sender<Response>>,
    /// `Some` once the reader stopped: the error every caller gets.
    ended: Option<Ended>,
    /// The read error that stopped the reader, if one did.
    io_error: Option<String>,
    /// An error the daemon sent for the connection as a whole (`id`
    /// null), such as -32003 "too many connections" before it closes a
    /// connection over its limit: what every caller gets once the
    /// connection ends.
    refused: Option<RpcError>,
}

/// Why the reader stopped.
#[derive(Clone, Copy)]
enum Ended {
    /// End of stream.
    Closed,
    /// A reply line over [`MAX_REPLY_BYTES`].
    TooLarge,
}

impl Waiting {
    /// The error a caller gets once the reader has stopped.
    fn error(&self) -> ClientError {
        if let Some(e) = &self.refused {
            return ClientError::Rpc(e.clone());
        }
        match (self.ended, self.io_error.as_deref()) {
            (Some(Ended::TooLarge), _) => ClientError::ReplyTooLarge {
                limit: MAX_REPLY_BYTES,
            },
            (_, Some(msg)) => ClientError::ReadFailed(msg.to_string()),
            _ => ClientError::Closed,
        }
    }
}

/// A connection to agentd. Cheap to share behind an `Arc`; calls from many
/// tasks run concurrently on the one connection.
pub struct Client {
    stream: Arc<Stream>,
    /// Held while a line is written, so lines never interleave.
    write_lock: tokio::sync::Mutex<()>,
    pending: Pending,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Connects to the daemon's socket.
    ///
    /// Errors: [`ClientError::Connect`] when nothing answers at `path`.
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let connect_err = |source| ClientError::Connect {
            path: path.to_owned(),
            source,
        };
        let name = path.to_fs_name::<GenericFilePath>().map_err(connect_err)?;
        let stream = Stream::connect(name).await.map_err(connect_err)?;
        let stream = Arc::new(stream);
        let pending: Pending = Arc::new(Mutex::new(Waiting::default()));
        let reader = tokio::spawn(read_replies(stream.clone(), pending.clone()));
        Ok(Client {
            stream,
            write_lock: tokio::sync::Mutex::new(()),
            pending,
            next_id: AtomicU64::new(1),
            reader,
        })
    }

    /// Calls a method with typed params and result.
    ///
    /// Errors: [`ClientError::Rpc`] with the daemon's error; I/O, closed
    /// connection and decode errors as their variants say.
    pub async fn call<M: Method>(&self, params: &M::Params) -> Result<M::Result, ClientError> {
        let text = self
            .call_text(M::NAME, serde_json::to_value(params)?)
            .await?;
        Ok(serde_json::from_str(
            text.as_deref().map_or("null", RawValue::get),
        )?)
    }

    /// Calls a method by name with raw JSON params and returns the raw
    /// result.
    ///
    /// Errors: as [`Client::call`].
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let text = self.call_text(method, params).await?;
        Ok(serde_json::from_str(
            text.as_deref().map_or("null", RawValue::get),
        )?)
    }

    /// Calls a method by name; the result as the JSON text the daemon sent
    /// (`None` for a reply without one).
    async fn call_text(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Option<Box<RawValue>>, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = self.pending.lock().expect("pending map poisoned");
            if waiting.ended.is_some() {
                return Err(waiting.error());
            }
            waiting.callers.insert(id, tx);
        }
        let line = serde_json::to_vec(&Request::new(Id::from(id), method, params))?;
        let written = {
            let _guard = self.write_lock.lock().await;
            codec::write_line(&mut &*self.stream, &line).await
        };
        if let Err(e) = written {
            use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
            if matches!(e.kind(), BrokenPipe | ConnectionReset) {
                // The daemon closed the connection, maybe after saying
                // why (too many connections): the reader reaches the end
                // of what it sent and wakes this caller; say its reason.
                let _ = rx.await;
                let waiting = self.pending.lock().expect("pending map poisoned");
                if waiting.refused.is_some() {
                    return Err(waiting.error());
                }
                return Err(e.into());
            }
            self.pending
                .lock()
                .expect("pending map poisoned")
                .callers
                .remove(&id);
            return Err(e.into());
        }
        let response = match rx.await {
            Ok(response) => response,
            Err(_) => {
                let waiting = self.pending.lock().expect("pending map poisoned");
                return Err(waiting.error());
            }
        };
        match (response.error, response.result) {
            (Some(err), _) => Err(ClientError::Rpc(err)),
            (None, result) => Ok(result),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads responses until the connection ends, handing each to its caller.
/// When it ends, every waiting caller gets the reason: [`ClientError::Closed`]
/// at end of stream, [`ClientError::ReplyTooLarge`] for a line over
/// [`MAX_REPLY_BYTES`], [`ClientError::ReadFailed`] for a read error.
async fn read_replies(stream: Arc<Stream>, pending: Pending) {
    let mut reader = BufReader::new(&*stream);
    let mut buf = Vec::new();
    let ended = loop {
        match codec::read_line(&mut reader, &mut buf, MAX_REPLY_BYTES, None).await {
            Ok(Frame::Line) => {}
            Ok(Frame::TooLong) => break (Ended::TooLarge, None),
            Ok(Frame::Eof | Frame::Torn) => break (Ended::Closed, None),
            Err(e) => break (Ended::Closed, Some(e.to_string())),
        }
        let Ok(response) = serde_json::from_slice::<Response>(&buf) else {
            continue;
        };
        let Id::Number(n) = &response.id else {
            if let (Id::Null, Some(err)) = (&response.id, response.error) {
                pending.lock().expect("pending map poisoned").refused = Some(err);
            }
            continue;
        };
        let Some(id) = n.as_u64() else { continue };
        let waiter = pending
            .lock()
            .expect("pending map poisoned")
            .callers
            .remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(response);
        }
    };
    // Dropping the senders wakes every caller, who reads why from `ended`.
    let mut waiting = pending.lock().expect("pending map poisoned");
    waiting.ended = Some(ended.0);
    waiting.io_error = ended.1;
    waiting.callers.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{DaemonInfo, Empty};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// A one-connection server at a fresh socket path that reads one
    /// request line and then answers with `reply` (which may be nothing).
    async fn server(reply: Vec<u8>) -> (PathBuf, tokio::task::JoinHandle<()>) {
        let path = std::env::temp_dir().join(format!(
            "agentd-proto-test-{}-{}.sock",
            std::process::id(),
            reply.len()
        ));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.split();
            let mut line = String::new();
            tokio::io::BufReader::new(r)
                .read_line(&mut line)
                .await
                .unwrap();
            let _ = w.write_all(&reply).await;
        });
        (path, task)
    }

    #[tokio::test]
    async fn an_early_close_and_an_oversized_reply_say_which() {
        let (path, task) = server(Vec::new()).await;
        let c = Client::connect(&path).await.unwrap();
        let e = c.call::<DaemonInfo>(&Empty {}).await.unwrap_err();
        assert!(matches!(e, ClientError::Closed), "{e}");
        assert_eq!(
            e.to_string(),
            "agentd closed the connection before replying"
        );
        task.await.unwrap();
        let _ = std::fs::remove_file(&path);

        let mut huge = br#"{"jsonrpc":"2.0","id":1,"result":""#.to_vec();
        huge.resize(MAX_REPLY_BYTES + 10, b'x');
        let (path, task) = server(huge).await;
        let c = Client::connect(&path).await.unwrap();
        let e = c.call::<DaemonInfo>(&Empty {}).await.unwrap_err();
        assert!(matches!(e, ClientError::ReplyTooLarge { .. }), "{e}");
        assert!(
            e.to_string().contains("larger than this client accepts"),
            "{e}"
        );
        drop(c);
        task.await.unwrap();
        let _ = std::fs::remove_file(&path);
    }
}
