//! Wire protocol v1 of agentd: JSON-RPC 2.0 messages, newline-delimited
//! framing, error codes, the typed params and results of every method, and a
//! small tokio client.
//!
//! `docs/protocol.md` describes it for people writing a client in another
//! language. The split follows
//! rust-analyzer's `lsp-server`: [`message`] holds the JSON-RPC envelope,
//! [`codec`] the framing, [`codes`] the error codes, [`types`] the objects
//! (`Job`, `Notification`), [`methods`] one params/result pair per method and
//! [`client`] the async client that `agentctl` and the tests use.

pub mod client;
pub mod codec;
pub mod codes;
pub mod executor;
pub mod message;
pub mod methods;
pub mod paths;
pub mod sandbox;
pub mod signal;
pub mod types;

pub use client::{Client, ClientError};
pub use executor::{Executor, SlurmOptions};
pub use message::{Id, Request, Response, RpcError};
pub use methods::Method;
pub use sandbox::{Limits, Sandbox, SandboxMode, SandboxSupport};
pub use types::{DEFAULT_GROUP, Job, JobState, Notification};

/// The protocol version this crate speaks, reported by `daemon.info`.
pub const PROTOCOL_VERSION: u32 = 1;
