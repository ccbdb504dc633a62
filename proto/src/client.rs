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

use crate::codec::{self, Frame, MAX_LINE_BYTES};
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
    /// The daemon closed the connection before replying.
    #[error("agentd closed the connection before replying")]
    Closed,
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

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>>;

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
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
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
        match self.pending.lock().expect("pending map poisoned").as_mut() {
            Some(map) => map.insert(id, tx),
            None => return Err(ClientError::Closed),
        };
        let line = serde_json::to_vec(&Request::new(Id::from(id), method, params))?;
        let written = {
            let _guard = self.write_lock.lock().await;
            codec::write_line(&mut &*self.stream, &line).await
        };
        if let Err(e) = written {
            if let Some(map) = self.pending.lock().expect("pending map poisoned").as_mut() {
                map.remove(&id);
            }
            return Err(e.into());
        }
        let response = rx.await.map_err(|_| ClientError::Closed)?;
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
/// On end of stream every waiting caller gets [`ClientError::Closed`].
async fn read_replies(stream: Arc<Stream>, pending: Pending) {
    let mut reader = BufReader::new(&*stream);
    let mut buf = Vec::new();
    while let Ok(Frame::Line) = codec::read_line(&mut reader, &mut buf, MAX_LINE_BYTES, None).await
    {
        let Ok(response) = serde_json::from_slice::<Response>(&buf) else {
            continue;
        };
        let Id::Number(n) = &response.id else {
            continue;
        };
        let Some(id) = n.as_u64() else { continue };
        let waiter = pending
            .lock()
            .expect("pending map poisoned")
            .as_mut()
            .and_then(|m| m.remove(&id));
        if let Some(tx) = waiter {
            let _ = tx.send(response);
        }
    }
    // Dropping the senders wakes every caller with `Closed`.
    pending.lock().expect("pending map poisoned").take();
}
